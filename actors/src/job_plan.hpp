#pragma once

// Private to the runtime: how a job is planned and supervised. engine.cpp starts a job,
// plan.cpp builds an incarnation of it (every actor's init, journal and channels),
// supervisor.cpp runs the job actor that spawns, monitors and restarts the incarnations.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <caf/actor.hpp>

#include "eddy/actors/engine.hpp"
#include "stage.hpp"

namespace eddy {

struct job_handle::shared {
  std::mutex mtx;
  std::condition_variable cv;
  bool done = false;
  caf::error error;
  /// `failure` of each entry is guarded by `mtx`; the rest is immutable after start.
  std::vector<actor_info> actors;
  std::unique_ptr<dead_letter_log> dead_letters;
  std::atomic<uint64_t> restarts{0};
  caf::actor job;
  std::shared_ptr<const job_graph> graph;
  std::filesystem::path data_dir;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

namespace detail {

using clock_type = std::chrono::steady_clock;

/// One actor to spawn: its init and the instances its channels lead to.
struct instance_plan {
  std::shared_ptr<detail::stage_init> init;
  std::vector<std::pair<size_t, channel_id>> targets;
};

/// What the supervisor remembers of one actor across the job's incarnations.
struct actor_slot {
  /// The restarts this actor caused within the window, with the origin of the record it
  /// failed on (0: not a record).
  std::deque<std::pair<clock_type::time_point, origin_t>> restarts;
  /// The record it failed on last, and how many consecutive times.
  origin_t last_origin = 0;
  uint32_t attempts = 0;
  /// Records sent to the dead-letter journal as poison.
  std::set<origin_t> poison;
  /// Non-empty once the actor failed for good.
  std::string failed_cause;
};

/// Everything needed to build an incarnation of a job: the first at `engine::start`, the
/// next ones at every restart.
struct job_env {
  std::shared_ptr<const job_graph> graph;
  runtime_options opts;
  std::filesystem::path data_dir;
  dead_letter_log* rejects = nullptr;
  bool durable = false;
  /// The failure policy of every node.
  std::vector<failure_policy> policies;
  /// Every actor's counters, kept across incarnations.
  std::vector<std::shared_ptr<actor_metrics>> metrics;
  std::shared_ptr<dead_letter_store> dead_letters;
  /// Empty when a failed actor can be restarted, else why not.
  std::string not_restartable;
};

/// Builds one incarnation of the job: every actor's init with its logic and journal, the
/// channels, and where producers resume. On error `culprit` is the actor that could not be
/// built.
caf::expected<std::vector<instance_plan>>
plan_job(job_env& env, const std::vector<actor_slot>& slots, size_t& culprit);

/// The failure policy of every node of `g`: the one set in code, overridden by
/// `--supervision.policy`.
caf::expected<std::vector<failure_policy>> policies_of(const job_graph& g,
                                                       const supervision_options& opts);

/// Spawns the job actor, which runs `plan` (the first incarnation) and supervises the job.
caf::actor spawn_supervisor(caf::actor_system& sys, std::shared_ptr<job_handle::shared> shared,
                            job_env env, std::vector<instance_plan> plan);

} // namespace detail

} // namespace eddy
