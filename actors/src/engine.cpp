#include "eddy/actors/engine.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <filesystem>
#include <mutex>
#include <set>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/stateful_actor.hpp>

#include "eddy/core/error.hpp"
#include "eddy/core/log.hpp"
#include "eddy/flow/replay_filter.hpp"
#include "transform_stage.hpp"

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

namespace {

using clock_type = std::chrono::steady_clock;

std::atomic<bool> stop_flag{false};

extern "C" void on_signal(int) {
  if (stop_flag.exchange(true)) {
    // Second signal: leave at once. Safe with durable state: what was not committed is
    // replayed by the next run.
    ::_exit(130);
  }
}

/// One actor to spawn: its init and the instances its channels lead to.
struct instance_plan {
  std::shared_ptr<detail::stage_init> init;
  std::vector<std::pair<size_t, channel_id>> targets;
};

/// Producer ids fit the 16 bits an origin gives them; 0 means "cannot replay" and the
/// largest marks re-processed dead letters.
constexpr uint32_t producers_max = detail::dead_letter_producer - 1;

/// The journal of instance `index` of `spec`: <data-dir>/<job>/<node>/p<index>.db for
/// partitions, .../sink-<index>.db for sinks.
std::filesystem::path journal_path(const std::filesystem::path& data_dir, const job_graph& g,
                                   const node_spec& spec, uint32_t index) {
  auto file = (spec.kind == node_kind::keyed ? "p" : "sink-") + std::to_string(index) + ".db";
  return data_dir / g.name() / spec.name / file;
}

/// "node:instances,..." of every node of `g`.
std::string topology_of(const job_graph& g) {
  std::string result;
  for (size_t n = 0; n < g.nodes().size(); ++n) {
    result += (n == 0 ? "" : ",") + g.node(n).name + ":" + std::to_string(g.instances(n));
  }
  return result;
}

/// Opens the journal of a partition or a transactional sink and reads its positions; a
/// transactional sink cuts its output back to the committed length.
caf::error open_journal(detail::stage_init& init, const job_graph& g, const node_spec& spec,
                        const std::filesystem::path& data_dir, durability level,
                        size_t keep_changes) {
  journal_meta meta{g.name(),
                    spec.name,
                    init.ctx.index,
                    init.ctx.instances,
                    init.transform ? init.transform->state_version() : 1,
                    topology_of(g)};
  // A partition folds its journal's log itself when it starts: the partitions of a job (or
  // of a restart) recover in parallel on the scheduler's threads.
  auto journal = journal_store::open(journal_path(data_dir, g, spec, init.ctx.index), meta, level,
                                     keep_changes, spec.kind != node_kind::keyed);
  if (!journal) {
    return journal.error();
  }
  auto positions = journal->positions();
  if (!positions) {
    return positions.error();
  }
  init.positions = std::move(*positions);
  init.journal = std::make_unique<journal_store>(std::move(*journal));
  if (init.sink) {
    auto i = init.positions.find(0);
    try {
      init.sink->resume(i == init.positions.end() ? 0 : i->second);
    } catch (const std::exception& e) {
      return make_error(errc::io_failure, "sink '" + spec.name + "': " + e.what());
    }
  }
  return {};
}

/// The durable consumers (partitions, transactional sinks, failed actors in their place)
/// that the output of `from` reaches through stateless operators, with the channel each
/// receives it on.
std::vector<std::pair<size_t, channel_id>> durable_consumers(const std::vector<instance_plan>& plan,
                                                             size_t from) {
  std::vector<std::pair<size_t, channel_id>> result;
  std::vector<std::pair<size_t, channel_id>> todo = plan[from].targets;
  while (!todo.empty()) {
    auto [k, channel] = todo.back();
    todo.pop_back();
    const auto& init = *plan[k].init;
    auto kind = init.graph->node(init.node).kind;
    if (init.journal || (init.failed() && kind != node_kind::transform)) {
      result.emplace_back(k, channel);
    } else if (kind == node_kind::transform) {
      todo.insert(todo.end(), plan[k].targets.begin(), plan[k].targets.end());
    }
  }
  return result;
}

/// Sets where each producer resumes: after the least position that the durable consumers
/// it reaches committed for it (0 when one of them has none). Partitions with durable
/// consumers keep an outbox acknowledged by those consumers' channels.
void plan_replay(std::vector<instance_plan>& plan) {
  for (size_t k = 0; k < plan.size(); ++k) {
    auto& init = *plan[k].init;
    if (init.ctx.producer == 0) {
      continue;
    }
    auto consumers = durable_consumers(plan, k);
    uint64_t resume = consumers.empty() ? 0 : UINT64_MAX;
    for (auto [c, channel] : consumers) {
      const auto& positions = plan[c].init->positions;
      auto i = positions.find(replay_filter::key_of(channel, init.ctx.producer));
      auto committed = i == positions.end() ? 0 : i->second;
      resume = std::min(resume, committed);
      if (init.transform) {
        init.ack_channels.push_back(channel);
        init.acked[channel] = committed;
      }
    }
    init.resume_after = resume;
  }
}

/// Which receivers sender `i` of `senders` talks to: all partitions on a hash edge, one
/// receiver when the downstream has as many or fewer instances, else its share of them.
std::vector<uint32_t> receivers_of(uint32_t i, uint32_t senders, uint32_t receivers, bool hash) {
  std::vector<uint32_t> result;
  for (uint32_t j = 0; j < receivers; ++j) {
    if (hash || (senders >= receivers ? j == i % receivers : j % senders == i)) {
      result.push_back(j);
    }
  }
  return result;
}

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

/// Creates the logic of an instance. A failed actor runs no user code and gets what can
/// still be made: an inert logic where its own fails, no source, no sink.
caf::error make_logic(detail::stage_init& init, const node_spec& spec) {
  try {
    if (spec.make_source) {
      if (!init.failed()) {
        init.source = spec.make_source(init.ctx);
      }
    } else if (spec.make_sink) {
      init.sink = spec.make_sink(init.ctx);
    } else {
      init.transform = spec.make_transform(init.ctx);
    }
  } catch (const std::exception& e) {
    if (!init.failed()) {
      return make_error(errc::io_failure,
                        std::string{to_string(spec.kind)} + " '" + spec.name + "': " + e.what());
    }
  }
  if (init.failed() && !spec.make_source && !spec.make_sink && !init.transform) {
    init.transform = detail::make_inert_logic();
  }
  return {};
}

/// Builds one incarnation of the job: every actor's init with its logic and journal, the
/// channels, and where producers resume. On error `culprit` is the actor that could not be
/// built.
caf::expected<std::vector<instance_plan>>
plan_job(job_env& env, const std::vector<actor_slot>& slots, size_t& culprit) {
  const auto& g = *env.graph;
  uint32_t next_producer = 1;
  auto producers_table = std::make_shared<std::vector<stage_actor>>();
  std::vector<instance_plan> plan;
  std::vector<size_t> first(g.nodes().size());
  for (size_t n = 0; n < g.nodes().size(); ++n) {
    const auto& spec = g.node(n);
    first[n] = plan.size();
    for (uint32_t i = 0; i < g.instances(n); ++i) {
      culprit = plan.size();
      const auto& slot = slots[culprit];
      auto init = std::make_shared<detail::stage_init>();
      init->graph = env.graph;
      init->node = n;
      init->ctx =
        instance_context{g.name(), spec.name, i, g.instances(n), env.data_dir, env.rejects};
      init->ctx.durable = env.durable;
      if (env.durable && (spec.kind == node_kind::source || spec.kind == node_kind::keyed)) {
        if (next_producer > producers_max) {
          return make_error(errc::invalid_graph,
                            "job " + g.name() + " has more than " + std::to_string(producers_max) +
                              " source instances and partitions; durable state supports that many");
        }
        init->ctx.producer = next_producer++;
      }
      init->producers = producers_table;
      init->opts = env.opts;
      init->metrics = env.metrics[culprit];
      init->failed_cause = slot.failed_cause;
      if (!slot.poison.empty()) {
        init->skip = std::make_shared<const std::set<origin_t>>(slot.poison);
      }
      init->dead_letters = env.dead_letters;
      if (auto err = make_logic(*init, spec)) {
        return err;
      }
      if (init->source && !init->source->replayable() && env.not_restartable.empty()) {
        env.not_restartable = "source '" + spec.name + "' cannot replay its input";
      }
      bool journaled = spec.kind == node_kind::keyed || (init->sink && init->sink->transactional());
      if (env.durable && journaled) {
        if (auto err = open_journal(*init, g, spec, env.data_dir, env.opts.state.level,
                                    env.opts.state.keep_changes)) {
          if (!init->failed()) {
            return err;
          }
          log(log_level::warn, "supervisor",
              init->who() + " failed and its journal cannot be read (" + describe(err) +
                "): all its input will go to the dead-letter journal");
          init->journal.reset();
          init->positions.clear();
        }
      }
      plan.push_back(instance_plan{std::move(init), {}});
    }
  }
  channel_id next_channel = 1;
  for (size_t n = 0; n < g.nodes().size(); ++n) {
    const auto& spec = g.node(n);
    if (!spec.input) {
      continue;
    }
    auto u = *spec.input;
    auto senders = g.instances(u);
    for (uint32_t i = 0; i < senders; ++i) {
      for (auto j : receivers_of(i, senders, g.instances(n), spec.kind == node_kind::keyed)) {
        plan[first[u] + i].targets.emplace_back(first[n] + j, next_channel++);
        plan[first[n] + j].init->input_count++;
      }
    }
  }
  if (env.durable) {
    plan_replay(plan);
  }
  return plan;
}

struct job_state {
  static constexpr const char* name = "job";
  std::shared_ptr<job_handle::shared> shared;
  job_env env;
  std::vector<actor_slot> slots;
  /// The current incarnation.
  std::vector<std::shared_ptr<detail::stage_init>> inits;
  std::vector<stage_actor> stages;
  std::vector<stage_actor> sources;
  std::unordered_map<caf::actor_addr, size_t> index_of;
  size_t alive = 0;
  /// A restart is under way: the incarnation is being stopped, then rebuilt at restart_at.
  bool restarting = false;
  clock_type::time_point restart_at;
  /// When the restart under way began, and when the last stage of the incarnation was down.
  clock_type::time_point failed_at;
  clock_type::time_point down_at;
  bool stop_requested = false;
};

using job_ptr = caf::stateful_actor<job_state>*;

stage_actor spawn_stage(job_ptr self, const std::shared_ptr<detail::stage_init>& init) {
  switch (init->graph->node(init->node).kind) {
    case node_kind::source:
      if (init->source && init->source->blocking()) {
        return self->spawn<caf::detached + caf::monitored>(detail::source_stage, init);
      }
      return self->spawn<caf::monitored>(detail::source_stage, init);
    case node_kind::transform:
      return self->spawn<caf::monitored>(detail::operator_stage, init);
    case node_kind::keyed:
      return self->spawn<caf::monitored>(detail::partition_stage, init);
    case node_kind::sink:
      return self->spawn<caf::monitored>(detail::sink_stage, init);
  }
  return {};
}

/// Spawns an incarnation (downstream first, so that each stage knows its receivers) and
/// starts it.
void spawn_incarnation(job_ptr self, std::vector<instance_plan> plan) {
  auto& st = self->state;
  st.stages.assign(plan.size(), stage_actor{});
  st.sources.clear();
  st.index_of.clear();
  st.inits.clear();
  for (size_t k = plan.size(); k-- > 0;) {
    for (auto& [target, channel] : plan[k].targets) {
      plan[k].init->outputs.push_back(detail::output_target{st.stages[target], channel});
    }
    st.stages[k] = spawn_stage(self, plan[k].init);
    st.index_of.emplace(st.stages[k].address(), k);
    if (plan[k].init->graph->node(plan[k].init->node).kind == node_kind::source) {
      st.sources.push_back(st.stages[k]);
    }
  }
  st.alive = plan.size();
  // Every init shares one table of producers; sinks read it only when they receive
  // batches, after the start below.
  for (size_t k = 0; k < plan.size(); ++k) {
    auto& init = *plan[k].init;
    if (init.ctx.producer != 0) {
      auto& producers = *init.producers;
      producers.resize(std::max<size_t>(producers.size(), init.ctx.producer + 1));
      producers[init.ctx.producer] = st.stages[k];
    }
    auto& m = *init.metrics;
    m.status = init.failed() ? actor_status::failed : actor_status::running;
    st.inits.push_back(std::move(plan[k].init));
  }
  for (auto& stage : st.stages) {
    self->send(stage, start_atom::value);
  }
  if (st.stop_requested) {
    for (auto& src : st.sources) {
      self->send(src, stop_atom::value);
    }
  }
}

std::string name_of(const job_state& st, size_t k) {
  return st.inits[k]->who();
}

void mark_failed(job_state& st, size_t k, std::string cause) {
  st.slots[k].failed_cause = cause;
  std::lock_guard guard{st.shared->mtx};
  st.shared->actors[k].failure = std::move(cause);
}

/// Stops a stage of the current incarnation. The exit message jumps the queue of batches in
/// its mailbox: what it would still process is replayed by the next incarnation anyway.
void stop_stage(job_ptr self, const stage_actor& stage) {
  if (stage) {
    self->send<caf::message_priority::high>(
      caf::actor_cast<caf::actor>(stage),
      caf::exit_msg{self->address(), caf::exit_reason::user_shutdown});
  }
}

/// Stops the whole job with `reason`.
void escalate(job_ptr self, caf::error reason) {
  auto& st = self->state;
  if (st.shared->error) {
    return;
  }
  log(log_level::error, "supervisor",
      "job " + st.env.graph->name() + " fails: " + describe(reason));
  {
    std::lock_guard guard{st.shared->mtx};
    st.shared->error = std::move(reason);
  }
  st.restarting = false;
  for (auto& stage : st.stages) {
    stop_stage(self, stage);
  }
}

/// Backoff before the restart that makes `n` restarts in the window.
clock_type::duration backoff(const supervision_options& opts, size_t n) {
  uint64_t delay = opts.backoff_ms;
  for (size_t i = 1; i < n && delay < opts.backoff_max_ms; ++i) {
    delay *= 2;
  }
  return std::chrono::milliseconds(std::min<uint64_t>(delay, opts.backoff_max_ms));
}

/// Stops every stage of the incarnation; the next one is built `delay` from now, once all
/// of them are down.
void restart_after(job_ptr self, clock_type::duration delay) {
  auto& st = self->state;
  auto at = clock_type::now() + delay;
  if (!st.restarting || at > st.restart_at) {
    st.restart_at = at;
  }
  if (!st.restarting) {
    st.restarting = true;
    st.failed_at = clock_type::now();
    st.shared->restarts.fetch_add(1, std::memory_order_relaxed);
    for (auto& stage : st.stages) {
      stop_stage(self, stage);
    }
  }
  for (size_t k = 0; k < st.slots.size(); ++k) {
    if (st.slots[k].failed_cause.empty()) {
      st.env.metrics[k]->status = actor_status::restarting;
    }
  }
}

/// Sends the poison record of `report` to the dead-letter journal. Returns an error when
/// the journal cannot take it.
caf::error dead_letter_poison(job_state& st, size_t k, const detail::failure_report& report,
                              uint32_t attempts) {
  const auto& init = *st.inits[k];
  failed_record r;
  r.at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::system_clock::now().time_since_epoch())
              .count();
  r.job = init.ctx.job;
  r.op = init.ctx.node;
  r.partition = init.ctx.index;
  r.origin = report.origin;
  r.key = report.key;
  r.record = report.record;
  r.payload = report.payload;
  r.error = report.error;
  r.attempts = attempts;
  auto added = st.env.dead_letters->add(r);
  if (!added) {
    return added.error();
  }
  if (*added) {
    init.metrics->dead_lettered.fetch_add(1, std::memory_order_relaxed);
  }
  log(log_level::warn, "supervisor",
      name_of(st, k) + (report.key.empty() ? "" : " key '" + report.key + "'") + " record " +
        report.record + " failed " + std::to_string(attempts) + " times (" + report.error +
        "): sent to the dead-letter journal " + st.env.dead_letters->path().string());
  return {};
}

/// A journal that cannot be written or read (as opposed to user code that threw).
bool is_storage_failure(const caf::error& reason) {
  if (reason.category() != caf::atom("eddy")) {
    return false;
  }
  auto code = static_cast<errc>(reason.code());
  return code == errc::disk_full || code == errc::io_failure || code == errc::corrupt_journal;
}

/// A failure no restart can fix: stored state of another version or shape.
bool is_fatal(const caf::error& reason) {
  return reason.category() == caf::atom("eddy") &&
         static_cast<errc>(reason.code()) == errc::state_mismatch;
}

/// User code threw (as opposed to the runtime or its storage failing).
bool is_user_failure(const caf::error& reason) {
  return reason.category() == caf::atom("eddy") &&
         static_cast<errc>(reason.code()) == errc::user_code_failed;
}

/// Decides what the failure of actor `k` with `reason` leads to: a restart (after backoff),
/// the actor marked failed and the job restarted without it, or the end of the job.
void on_failure(job_ptr self, size_t k, const caf::error& reason,
                const detail::failure_report* report) {
  auto& st = self->state;
  auto& slot = st.slots[k];
  const auto& init = *st.inits[k];
  const auto& opts = st.env.opts.supervision;
  auto who = name_of(st, k);
  log(log_level::error, "supervisor", who + " failed: " + describe(reason));
  init.metrics->status = actor_status::failed;
  if (st.shared->error) {
    return;
  }
  auto policy = st.env.policies[init.node];
  if (init.failed()) {
    escalate(self, make_error(errc::actor_failed,
                              "'" + who + "' failed (" + init.failed_cause +
                                ") and cannot take its input either: " + describe(reason)));
    return;
  }
  if (policy == failure_policy::escalate || is_fatal(reason)) {
    escalate(self, reason);
    return;
  }
  if (!st.env.not_restartable.empty()) {
    log(log_level::error, "supervisor",
        "cannot restart the job: " + st.env.not_restartable +
          (st.env.durable ? "" : " and it keeps no durable state"));
    escalate(self, reason);
    return;
  }
  if (policy == failure_policy::stop) {
    mark_failed(st, k, describe(reason));
    log(log_level::error, "supervisor",
        who + " is stopped (failure policy stop); its input goes to the dead-letter journal");
    restart_after(self, backoff(opts, 1));
    return;
  }
  auto now = clock_type::now();
  while (!slot.restarts.empty() &&
         now - slot.restarts.front().first > std::chrono::seconds(opts.window_s)) {
    slot.restarts.pop_front();
  }
  origin_t origin =
    report != nullptr && report->set && is_user_failure(reason) ? report->origin : 0;
  if (origin != 0) {
    slot.attempts = origin == slot.last_origin ? slot.attempts + 1 : 1;
    slot.last_origin = origin;
    if (slot.attempts >= opts.poison_attempts) {
      if (origin_producer(origin) == detail::dead_letter_producer) {
        log(log_level::warn, "supervisor",
            who + ": dead letter " + std::to_string(origin_position(origin)) +
              " failed again when re-processed; it stays in the dead-letter journal");
      } else if (auto err = dead_letter_poison(st, k, *report, slot.attempts)) {
        escalate(self, std::move(err));
        return;
      }
      slot.poison.insert(origin);
      // The supervisor dealt with this record: its failures do not count against the
      // actor any more.
      std::erase_if(slot.restarts, [origin](const auto& r) { return r.second == origin; });
      slot.attempts = 0;
      slot.last_origin = 0;
      init.metrics->restarts.fetch_add(1, std::memory_order_relaxed);
      restart_after(self, backoff(opts, 1));
      return;
    }
  } else {
    slot.attempts = 0;
    slot.last_origin = 0;
  }
  if (slot.restarts.size() >= opts.max_restarts && is_storage_failure(reason)) {
    // Without its journal the actor cannot commit: nothing could take its input exactly
    // once. The job stops; its committed state is intact and a start resumes from it.
    escalate(self, make_error(static_cast<errc>(reason.code()),
                              "'" + who + "' cannot use its journal (" + describe(reason) +
                                "), also after " + std::to_string(slot.restarts.size()) +
                                " restarts; the job stops with its committed state intact: "
                                "fix the cause and start it again to resume"));
    return;
  }
  if (slot.restarts.size() >= opts.max_restarts) {
    auto cause = describe(reason) + " (" + std::to_string(slot.restarts.size() + 1) +
                 " failures within " + std::to_string(opts.window_s) + " s)";
    mark_failed(st, k, cause);
    log(log_level::error, "supervisor",
        who + " failed " + std::to_string(slot.restarts.size() + 1) + " times within " +
          std::to_string(opts.window_s) +
          " s: marked failed, its input goes to the dead-letter journal");
    restart_after(self, backoff(opts, 1));
    return;
  }
  slot.restarts.emplace_back(now, origin);
  init.metrics->restarts.fetch_add(1, std::memory_order_relaxed);
  auto delay = backoff(opts, slot.restarts.size());
  log(log_level::warn, "supervisor",
      "restarting job " + st.env.graph->name() + " from its journals in " +
        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(delay).count()) +
        " ms (" + who + ": restart " + std::to_string(slot.restarts.size()) + " of " +
        std::to_string(opts.max_restarts) + " within " + std::to_string(opts.window_s) + " s)");
  restart_after(self, delay);
}

void finish_job(job_ptr self);

/// Builds and starts the next incarnation. A failure to build it counts as a failure of
/// the actor that could not be built.
void respawn(job_ptr self) {
  auto& st = self->state;
  st.restarting = false;
  size_t culprit = 0;
  auto plan = plan_job(st.env, st.slots, culprit);
  if (!plan) {
    if (culprit >= st.inits.size()) {
      escalate(self, plan.error());
      return;
    }
    // Nothing runs now: treat it like a failure of that actor in an empty incarnation.
    st.stages.clear();
    on_failure(self, culprit, plan.error(), nullptr);
    if (st.restarting) {
      auto delay = std::max(clock_type::duration::zero(), st.restart_at - clock_type::now());
      self->delayed_send(self, delay, restart_atom::value);
    } else {
      finish_job(self);
    }
    return;
  }
  auto ms = [](clock_type::duration d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
  };
  log(log_level::info, "supervisor",
      "job " + st.env.graph->name() + " restarted (restart " +
        std::to_string(st.shared->restarts.load()) + "; stopped in " +
        ms(st.down_at - st.failed_at) + " ms, rebuilt from the journals in " +
        ms(clock_type::now() - st.down_at) + " ms after the backoff)");
  spawn_incarnation(self, std::move(*plan));
}

void finish_job(job_ptr self) {
  auto& st = self->state;
  if (!st.shared->error) {
    std::string failed;
    for (size_t k = 0; k < st.slots.size(); ++k) {
      if (!st.slots[k].failed_cause.empty()) {
        failed +=
          (failed.empty() ? "" : ", ") + name_of(st, k) + " (" + st.slots[k].failed_cause + ")";
      }
    }
    if (!failed.empty() && st.env.dead_letters) {
      std::lock_guard guard{st.shared->mtx};
      st.shared->error = make_error(
        errc::actor_failed,
        "job " + st.env.graph->name() + " completed with failed actors: " + failed +
          "; their input is in the dead-letter journal " + st.env.dead_letters->path().string());
    }
  }
  st.shared->dead_letters->flush();
  {
    std::lock_guard guard{st.shared->mtx};
    st.shared->done = true;
  }
  st.shared->cv.notify_all();
  self->quit();
}

/// The job actor supervises the job: it spawns and monitors every stage and handles their
/// failures (see "Supervision" in the design notes). A restart stops every stage and
/// builds the job again from its journals: channels carry sequence numbers and credit that
/// only stay consistent when both ends restart together, and the journals make the
/// restart exactly-once (Flink restarts a failed pipeline the same way).
caf::behavior job_actor(job_ptr self, std::shared_ptr<job_handle::shared> shared, job_env env,
                        std::vector<instance_plan> plan) {
  auto& st = self->state;
  st.shared = shared;
  st.env = std::move(env);
  st.slots.resize(plan.size());
  spawn_incarnation(self, std::move(plan));
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    auto i = st.index_of.find(msg.source);
    if (i == st.index_of.end()) {
      return;
    }
    auto k = i->second;
    bool failed = msg.reason && msg.reason != caf::exit_reason::normal &&
                  msg.reason != caf::exit_reason::user_shutdown;
    if (failed) {
      on_failure(self, k, msg.reason, st.inits[k]->failure.get());
    } else if (msg.reason == caf::exit_reason::user_shutdown && !st.restarting) {
      st.inits[k]->metrics->status = actor_status::stopped;
    } else if (st.inits[k]->failed()) {
      // The stand-in of a failed actor finished its work; the actor stays failed.
      st.inits[k]->metrics->status = actor_status::failed;
    }
    if (--st.alive > 0) {
      return;
    }
    if (st.restarting) {
      st.down_at = clock_type::now();
      auto delay = std::max(clock_type::duration::zero(), st.restart_at - st.down_at);
      self->delayed_send(self, delay, restart_atom::value);
      return;
    }
    finish_job(self);
  });
  return {
    [self](stop_atom) {
      auto& st = self->state;
      st.stop_requested = true;
      for (auto& src : st.sources) {
        self->send(src, stop_atom::value);
      }
    },
    [self](restart_atom) {
      if (self->state.shared->error) {
        finish_job(self);
        return;
      }
      respawn(self);
    },
    [self](kill_atom, const std::string& actor) {
      // From the console: the actor exits abnormally and supervision does the rest.
      auto& st = self->state;
      for (size_t k = 0; k < st.inits.size(); ++k) {
        if (st.stages[k] && name_of(st, k) == actor) {
          log(log_level::warn, "supervisor", actor + " is killed from the console");
          self->send<caf::message_priority::high>(
            caf::actor_cast<caf::actor>(st.stages[k]),
            caf::exit_msg{self->address(), make_error(errc::actor_failed,
                                                      "'" + actor + "' killed from the console")});
        }
      }
    },
  };
}

/// The failure policy of every node of `g`: the one set in code, overridden by
/// `--supervision.policy`.
caf::expected<std::vector<failure_policy>> policies_of(const job_graph& g,
                                                       const supervision_options& opts) {
  std::vector<failure_policy> result;
  for (const auto& spec : g.nodes()) {
    result.push_back(spec.on_failure);
  }
  const auto& text = opts.policies;
  for (size_t pos = 0; pos < text.size();) {
    auto end = std::min(text.find(',', pos), text.size());
    auto item = std::string_view{text}.substr(pos, end - pos);
    auto eq = item.find('=');
    auto name = item.substr(0, eq);
    auto policy =
      eq == std::string_view::npos ? std::nullopt : parse_failure_policy(item.substr(eq + 1));
    if (!policy) {
      return make_error(errc::invalid_config, "--supervision.policy item '" + std::string{item} +
                                                "' is not node=restart|stop|escalate");
    }
    auto it = std::find_if(g.nodes().begin(), g.nodes().end(),
                           [name](const node_spec& spec) { return spec.name == name; });
    if (it == g.nodes().end()) {
      return make_error(errc::invalid_config, "--supervision.policy names node '" +
                                                std::string{name} + "', which job " + g.name() +
                                                " does not have");
    }
    result[static_cast<size_t>(it - g.nodes().begin())] = *policy;
    pos = end + 1;
  }
  return result;
}

} // namespace

const char* to_string(actor_status status) noexcept {
  switch (status) {
    case actor_status::running:
      return "running";
    case actor_status::finished:
      return "finished";
    case actor_status::failed:
      return "failed";
    case actor_status::restarting:
      return "restarting";
    case actor_status::stopped:
      return "stopped";
  }
  return "?";
}

bool stop_requested() noexcept {
  return stop_flag.load();
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  // No SA_RESTART: a blocking read of stdin returns so the source can finish.
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

engine::engine(runtime_options opts, common_options common)
  : opts_(std::move(opts))
  , common_(std::move(common)) {
  cfg_ = std::make_unique<caf::actor_system_config>();
  cfg_->add_message_types<caf::id_block::eddy>();
  if (common_.inspect) {
    cfg_->load<caf::io::middleman>();
  }
  if (opts_.threads > 0) {
    cfg_->set("scheduler.max-threads", static_cast<size_t>(opts_.threads));
  }
  sys_ = std::make_unique<caf::actor_system>(*cfg_);
}

engine::~engine() {
  // The system waits for every actor before it shuts down: the inspector must go.
  if (inspector_) {
    caf::anon_send_exit(caf::actor_cast<caf::actor>(inspector_), caf::exit_reason::user_shutdown);
  }
}

caf::actor_system& engine::system() noexcept {
  return *sys_;
}

caf::expected<std::shared_ptr<job_handle>> engine::start(job_graph graph) {
  if (auto err = graph.validate()) {
    return err;
  }
  auto g = std::make_shared<const job_graph>(std::move(graph));
  auto policies = policies_of(*g, opts_.supervision);
  if (!policies) {
    return policies.error();
  }
  auto sh = std::make_shared<job_handle::shared>();
  sh->dead_letters = std::make_unique<dead_letter_log>(
    opts_.dead_letters.empty() ? common_.data_dir / "deadletters.jsonl" : opts_.dead_letters);
  bool durable = opts_.state.level != durability::none;
  if (durable && opts_.state.reset) {
    std::error_code ec;
    std::filesystem::remove_all(common_.data_dir / g->name(), ec);
    if (ec) {
      return make_error(errc::io_failure, "cannot reset the state of job " + g->name() + " in " +
                                            common_.data_dir.string() + ": " + ec.message());
    }
    log(log_level::info, "engine", "--state.reset: deleted the state of job " + g->name());
  }
  job_env env;
  env.graph = g;
  env.opts = opts_;
  env.data_dir = common_.data_dir;
  env.rejects = sh->dead_letters.get();
  env.durable = durable;
  env.policies = std::move(*policies);
  if (durable) {
    auto store = dead_letter_store::open(dead_letter_store::path_in(common_.data_dir));
    if (!store) {
      return store.error();
    }
    env.dead_letters = std::move(*store);
  } else {
    env.not_restartable = "state.durability is none";
  }
  for (size_t n = 0; n < g->nodes().size(); ++n) {
    const auto& spec = g->node(n);
    for (uint32_t i = 0; i < g->instances(n); ++i) {
      env.metrics.push_back(std::make_shared<actor_metrics>());
      sh->actors.push_back(actor_info{
        spec.name + "/" + std::to_string(i), spec.name, spec.kind, i, env.metrics.back(), {}});
    }
  }
  std::vector<actor_slot> slots(env.metrics.size());
  size_t culprit = 0;
  auto plan = plan_job(env, slots, culprit);
  if (!plan) {
    return plan.error();
  }
  log(log_level::info, "engine",
      "job " + g->name() + " starting on " + std::to_string(plan->size()) + " actors" +
        (durable ? ", state in " + (common_.data_dir / g->name()).string() + " (durability " +
                     to_string(opts_.state.level) + ")"
                 : std::string{", state in memory"}));
  if (!env.not_restartable.empty()) {
    log(log_level::info, "engine",
        "supervision cannot restart job " + g->name() + " (" + env.not_restartable +
          "): a failure stops it");
  }
  sh->graph = g;
  sh->data_dir = common_.data_dir;
  if (common_.inspect && inspector_port_ == 0) {
    if (auto err = publish_inspector()) {
      return err;
    }
  }
  sh->job = sys_->spawn(job_actor, sh, std::move(env), std::move(*plan));
  auto handle = std::make_shared<job_handle>(sh);
  std::lock_guard guard{registry_->mtx};
  registry_->jobs.push_back(handle);
  return handle;
}

std::vector<std::shared_ptr<job_handle>> engine::jobs() const {
  std::lock_guard guard{registry_->mtx};
  return registry_->jobs;
}

caf::error engine::run(job_graph graph, bool handle_signals) {
  if (handle_signals) {
    install_signal_handlers();
  }
  auto job = start(std::move(graph));
  if (!job) {
    return job.error();
  }
  return handle_signals ? (*job)->wait_stopping_on_signal() : (*job)->wait();
}

std::vector<actor_info> job_handle::actors() const {
  std::lock_guard guard{state_->mtx};
  return state_->actors;
}

uint64_t job_handle::restarts() const {
  return state_->restarts.load();
}

const std::string& job_handle::name() const {
  return state_->graph->name();
}

const job_graph& job_handle::graph() const {
  return *state_->graph;
}

const std::filesystem::path& job_handle::data_dir() const {
  return state_->data_dir;
}

double job_handle::uptime_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - state_->started).count();
}

bool job_handle::done() const {
  std::lock_guard guard{state_->mtx};
  return state_->done;
}

caf::error job_handle::error() const {
  std::lock_guard guard{state_->mtx};
  return state_->error;
}

const dead_letter_log& job_handle::dead_letters() const {
  return *state_->dead_letters;
}

void job_handle::stop() {
  caf::anon_send(state_->job, stop_atom::value);
}

caf::error job_handle::kill(const std::string& actor) {
  {
    std::lock_guard guard{state_->mtx};
    auto known = std::any_of(state_->actors.begin(), state_->actors.end(),
                             [&actor](const actor_info& a) { return a.name == actor; });
    if (!known) {
      return make_error(errc::invalid_config,
                        "job " + state_->graph->name() + " has no actor '" + actor + "'");
    }
  }
  caf::anon_send(state_->job, kill_atom::value, actor);
  return {};
}

caf::error job_handle::wait() {
  std::unique_lock guard{state_->mtx};
  state_->cv.wait(guard, [this] { return state_->done; });
  return state_->error;
}

caf::error job_handle::wait_stopping_on_signal() {
  bool stop_sent = false;
  while (!wait_for(100)) {
    if (!stop_sent && stop_requested()) {
      log(log_level::info, "engine", "stop requested: draining the job");
      stop();
      stop_sent = true;
    }
  }
  return wait();
}

bool job_handle::wait_for(uint32_t timeout_ms) {
  std::unique_lock guard{state_->mtx};
  return state_->cv.wait_for(guard, std::chrono::milliseconds(timeout_ms),
                             [this] { return state_->done; });
}

} // namespace eddy
