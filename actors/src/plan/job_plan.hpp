#pragma once

// Private to the runtime: how a job is planned and supervised. engine.cpp starts a job,
// plan.cpp builds an incarnation of it (every actor's init, journal and channels),
// job/job_actor.cpp runs the job actor that spawns, monitors and restarts the incarnations.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <caf/actor.hpp>

#include "eddy/actors/engine.hpp"
#include "stage/stage.hpp"

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

class cluster_view;

/// What the job actor of a node in a cluster works with (see host.hpp).
struct cluster_env {
  /// This node's node actor (answers `host, member`) and host actor.
  caf::actor node;
  caf::actor host;
  std::shared_ptr<cluster_view> view;
  /// A commit waits for the standby copy (--node.replication sync).
  bool standby_sync = true;
  /// --node.timeout-ms: how long the leader waits for the seeds to join before it starts.
  uint32_t timeout_ms = 3000;
  /// --node.max-moves and --node.rebalance (see relocation.hpp).
  uint32_t moves_max = 1;
  bool rebalance_on_join = true;
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
  /// A source that cannot read its input again (stdin), or empty: its job can be neither
  /// restarted nor restored from a savepoint.
  std::string unreplayable_source;
  /// Set when the node is in a cluster: the job runs on the coordinator, which places its
  /// key partitions on the members by the assignment table.
  std::shared_ptr<const cluster_env> cluster;
  /// Savepoints: where the stages of every incarnation report their part of a cut.
  std::shared_ptr<cut_registry> cuts = std::make_shared<cut_registry>();
  /// After a failure: the partitions of the incarnations built until then commit after
  /// each group (see `stage_init::eager_commits_until`).
  std::chrono::steady_clock::time_point eager_commits_until{};
};

/// Builds one incarnation of the job: every actor's init with its logic and journal, the
/// channels, and where producers resume. On error `culprit` is the actor that could not be
/// built.
/// `host_of(node, index)`, when given, names the cluster member that hosts a key partition
/// (empty: this node): such an init is a placeholder (no logic, no journal) whose positions
/// the caller asks of the host, and then calls `plan_replay`.
caf::expected<std::vector<instance_plan>>
plan_job(job_env& env, const std::vector<actor_slot>& slots, size_t& culprit,
         const std::function<std::string(size_t, uint32_t)>& host_of = nullptr);

/// Sets where each producer resumes: after the least position that the durable consumers
/// it reaches committed for it (0 when one of them has none). Partitions with durable
/// consumers keep an outbox acknowledged by those consumers' channels.
void plan_replay(std::vector<instance_plan>& plan);

/// The journal of instance `index` of `spec`: <data-dir>/<job>/<node>/p<index>.db for
/// partitions, .../sink-<index>.db for sinks.
std::filesystem::path journal_path(const std::filesystem::path& data_dir, const job_graph& g,
                                   const node_spec& spec, uint32_t index);

/// The journal of instance `index` of node `node` (a partition or a transactional sink)
/// alone, without its logic (a sink's would open its output): a host's standby copy.
caf::expected<std::unique_ptr<journal_store>> open_journal_copy(job_env& env, size_t node,
                                                                uint32_t index);

/// The init of instance `index` of node `node`: its logic, and its journal when it keeps
/// one (what `plan_job` builds for each instance; a host builds its partitions with it).
caf::expected<std::shared_ptr<stage_init>> build_instance(job_env& env, size_t node, uint32_t index,
                                                          uint32_t producer,
                                                          std::string failed_cause,
                                                          const std::set<origin_t>& poison,
                                                          std::shared_ptr<actor_metrics> metrics);

} // namespace detail

} // namespace eddy
