// The job actor: spawns every stage of an incarnation, monitors them, and rebuilds the job
// after a failure (see "Supervision" in docs/design.md). What a failure leads to is decided
// in failure_policy.cpp, the console's requests are in job_admin.cpp and the cluster part in
// cluster_job.cpp; job_actor.hpp lists what they share.

#include <algorithm>
#include <chrono>
#include <functional>

#include <caf/stateful_actor.hpp>

#include "cluster/node_actor.hpp"
#include "eddy/core/error.hpp"
#include "eddy/core/log.hpp"
#include "job/job_actor.hpp"
#include "limits.hpp"
#include "stage/transform_stage.hpp"

namespace eddy::detail {

namespace {

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

void start_incarnation(job_ptr self);

void record_stage(job_ptr self, size_t k, stage_actor stage) {
  auto& st = self->state;
  st.stages[k] = std::move(stage);
  st.index_of.emplace(st.stages[k].address(), k);
  ++st.alive;
  const auto& init = *st.building[k].init;
  if (init.graph->node(init.node).kind == node_kind::source) {
    st.sources.push_back(st.stages[k]);
  }
}

/// Spawns the stages of `st.building` from `k - 1` down to 0 (downstream first, so that
/// each stage knows its receivers); a partition hosted by another member is spawned there,
/// and the rest continues when it answers. Then starts the incarnation.
void spawn_from(job_ptr self, size_t k) {
  auto& st = self->state;
  auto& plan = st.building;
  while (k-- > 0) {
    auto& init = plan[k].init;
    for (auto& [target, channel] : plan[k].targets) {
      init->outputs.push_back(detail::output_target{st.stages[target], channel});
    }
    if (init->host.empty()) {
      record_stage(self, k, spawn_stage(self, init));
      continue;
    }
    host_spawn req;
    req.job = init->ctx.job;
    req.node = static_cast<uint32_t>(init->node);
    req.index = init->ctx.index;
    for (auto& out : init->outputs) {
      req.outputs.push_back(caf::actor_cast<caf::actor>(out.dest));
      req.channels.push_back(out.channel);
    }
    req.input_count = init->input_count;
    req.resume_after = init->resume_after;
    req.ack_channels = init->ack_channels;
    req.acked = init->acked;
    req.standby = init->standby;
    req.sync_standby = init->sync_standby;
    req.standby_timeout_ms = init->standby_timeout_ms;
    req.epoch = init->owner_epoch;
    auto inc = st.incarnation;
    auto who = init->who() + " on " + init->host;
    self->request(st.hosts[init->host], host_timeout, spawn_atom::value, std::move(req))
      .then(
        [self, k, inc](caf::actor& partition) {
          if (inc != self->state.incarnation || self->state.restarting) {
            caf::anon_send_exit(partition, caf::exit_reason::user_shutdown);
            return;
          }
          self->monitor(partition);
          record_stage(self, k, caf::actor_cast<stage_actor>(partition));
          spawn_from(self, k);
        },
        [self, inc, who](caf::error& err) { build_failed(self, inc, "spawn " + who, err); });
    return;
  }
  start_incarnation(self);
}

void start_incarnation(job_ptr self) {
  auto& st = self->state;
  st.started_once = true;
  // Every init shares one table of producers; sinks read it only when they receive
  // batches, after the start below.
  for (size_t k = 0; k < st.inits.size(); ++k) {
    auto& init = *st.inits[k];
    if (init.ctx.producer != 0) {
      auto& producers = *init.producers;
      producers.resize(std::max<size_t>(producers.size(), init.ctx.producer + 1));
      producers[init.ctx.producer] = st.stages[k];
    }
    auto& m = *init.metrics;
    m.status = init.failed() ? actor_status::failed : actor_status::running;
  }
  st.building.clear();
  for (auto& stage : st.stages) {
    self->send(stage, start_atom::value);
  }
  for (auto& rp : st.switches) {
    rp.deliver(true);
  }
  st.switches.clear();
  if (st.stop_requested) {
    for (auto& src : st.sources) {
      self->send(src, stop_atom::value);
    }
  }
}

/// Builds and starts the next incarnation. A failure to build it counts as a failure of
/// the actor that could not be built.
void build_next(job_ptr self);

void respawn(job_ptr self) {
  auto& st = self->state;
  st.restarting = false;
  if (!st.env.cluster) {
    build_next(self);
    return;
  }
  if (!cluster_ready(self)) {
    return;
  }
  // The partitions placed on this node run from its journals, which are the standby
  // copies its host keeps when they ran elsewhere: the host lets go of them first.
  auto self_id = st.env.cluster->view->self_id();
  std::vector<uint32_t> here;
  for (uint32_t row = 0; row < st.table.partitions.size(); ++row) {
    if (st.table.partitions[row].primary == self_id) {
      here.push_back(row);
    }
  }
  self->request(st.env.cluster->host, host_timeout, release_atom::value, st.env.graph->name(), here)
    .then([self] { build_next(self); },
          [self](caf::error& err) {
            escalate(self, make_error(errc::actor_failed,
                                      "this node's host does not answer: " + to_string(err)));
          });
}

void build_next(job_ptr self) {
  auto& st = self->state;
  ++st.incarnation;
  size_t culprit = 0;
  std::function<std::string(size_t, uint32_t)> host_of;
  if (st.env.cluster) {
    auto self_id = st.env.cluster->view->self_id();
    host_of = [&st, self_id](size_t, uint32_t index) {
      if (index >= st.table.partitions.size()) {
        return std::string{};
      }
      const auto& primary = st.table.partitions[index].primary;
      return primary == self_id ? std::string{} : primary;
    };
  }
  auto plan = plan_job(st.env, st.slots, culprit, host_of);
  if (!plan) {
    if (culprit >= st.inits.size()) {
      escalate(self, plan.error());
      return;
    }
    // Nothing runs now: treat it like a failure of that actor in an empty incarnation
    // (restart_after schedules the next attempt).
    st.stages.clear();
    st.alive = 0;
    on_failure(self, culprit, plan.error(), nullptr);
    if (!st.restarting) {
      finish_job(self);
    }
    return;
  }
  auto ms = [](clock_type::duration d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
  };
  if (st.started_once && !st.switches.empty()) {
    log(log_level::info, "supervisor",
        "job " + st.env.graph->name() + " switched to the new placement (stopped in " +
          ms(st.down_at - st.failed_at) + " ms, rebuilt from the journals in " +
          ms(clock_type::now() - st.down_at) + " ms)");
  } else if (st.started_once) {
    log(log_level::info, "supervisor",
        "job " + st.env.graph->name() + " restarted (restart " +
          std::to_string(st.shared->restarts.load()) + "; stopped in " +
          ms(st.down_at - st.failed_at) + " ms, rebuilt from the journals in " +
          ms(clock_type::now() - st.down_at) + " ms after the backoff)");
  }
  if (st.env.cluster) {
    place_and_spawn(self, std::move(*plan));
  } else {
    spawn_incarnation(self, std::move(*plan));
  }
}

/// A stage of the job is down: a failure goes to the failure policy, a lost node restarts
/// the job on the members left, and the last stage down rebuilds or ends the job.
void on_down(job_ptr self, const caf::down_msg& msg) {
  auto& st = self->state;
  auto i = st.index_of.find(msg.source);
  if (i == st.index_of.end()) {
    return;
  }
  auto k = i->second;
  // Down once: a member found unreachable later gives up only the stages still up.
  st.index_of.erase(i);
  bool failed = msg.reason && msg.reason != caf::exit_reason::normal &&
                msg.reason != caf::exit_reason::user_shutdown;
  if (msg.reason == caf::exit_reason::remote_link_unreachable) {
    // Its node is gone: not the actor's failure. The job restarts from the journals once
    // the coordinator placed its partitions on members that are up (their standbys).
    log(log_level::warn, "supervisor",
        name_of(st, k) + " was lost with its node; the job restarts on the members left");
    st.inits[k]->metrics->status = actor_status::restarting;
    restart_after(self, backoff(st.env.opts.supervision, 1));
  } else if (failed) {
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
    rebuild_when_due(self);
    return;
  }
  finish_job(self);
}

/// `stop`: the sources stop and the job drains; a node that only hosts partitions leaves.
void stop_job(job_ptr self) {
  auto& st = self->state;
  st.stop_requested = true;
  if (st.following) {
    leave_cluster(self);
    return;
  }
  for (auto& src : st.sources) {
    self->send(src, stop_atom::value);
  }
  // A stage paused from the console would keep the job from draining.
  resume_stages(self);
}

/// The relocation actor asks for the running instances of partition `row` to copy them,
/// with the partition's standby.
caf::result<std::vector<caf::actor>, std::string> partition_instances(job_ptr self, uint32_t row) {
  auto& st = self->state;
  if (!st.leading || st.restarting || !st.building.empty() || st.stop_requested) {
    return make_error(errc::actor_failed, "the job is not running now");
  }
  std::vector<caf::actor> instances;
  for (size_t k = 0; k < st.inits.size(); ++k) {
    const auto& init = *st.inits[k];
    if (init.graph->node(init.node).kind == node_kind::keyed && init.ctx.index == row &&
        st.stages[k]) {
      instances.push_back(caf::actor_cast<caf::actor>(st.stages[k]));
    }
  }
  if (instances.empty()) {
    return make_error(errc::actor_failed, "the job is not running now");
  }
  auto standby = row < st.table.partitions.size() ? st.table.partitions[row].standby : "";
  return {std::move(instances), std::move(standby)};
}

/// The switch of moves: the table places the moved partitions on their targets now; the
/// next incarnation runs them there, from the copies. Answered once it started.
caf::result<bool> switch_placement(job_ptr self) {
  auto& st = self->state;
  if (st.stop_requested || st.shared->error) {
    return make_error(errc::actor_failed, "the job is ending");
  }
  log(log_level::info, "supervisor",
      "job " + st.env.graph->name() + " switches moved partitions to their new primaries");
  st.switches.push_back(self->make_response_promise<bool>());
  restart_after(self, clock_type::duration::zero(), false);
  return st.switches.back();
}

/// The job actor supervises the job: it spawns and monitors every stage and handles their
/// failures (see "Supervision" in docs/design.md). A restart stops every stage and builds
/// the job again from its journals: channels carry sequence numbers and credit that only
/// stay consistent when both ends restart together, and the journals make the restart
/// exactly-once (Flink restarts a failed pipeline the same way).
caf::behavior job_actor(job_ptr self, std::shared_ptr<job_handle::shared> shared, job_env env,
                        std::vector<instance_plan> plan) {
  auto& st = self->state;
  st.shared = shared;
  st.env = std::move(env);
  st.slots.resize(st.env.metrics.size());
  if (st.env.cluster) {
    // The plan waits for the cluster: which node leads, where the partitions go.
    self->send(self, restart_atom::value);
  } else {
    ++st.incarnation;
    spawn_incarnation(self, std::move(plan));
  }
  self->set_down_handler([self](caf::down_msg& msg) { on_down(self, msg); });
  return {
    [self](stop_atom) { stop_job(self); },
    [self](admin_atom, const std::string& target, const admin_request& request) {
      return route_admin(self, target, request);
    },
    [self](restart_atom) {
      if (self->state.shared->error) {
        finish_job(self);
        return;
      }
      respawn(self);
    },
    [self](move_atom, uint32_t row) { return partition_instances(self, row); },
    [self](move_atom, const std::string&) { return switch_placement(self); },
    [self](move_atom, uint32_t row, const std::string& to) {
      return move_partition(self, row, to);
    },
    [self](leave_atom, const std::string& member) { return drain_member(self, member); },
    [self](rebalance_atom, const std::string& mode) { return rebalance_job(self, mode); },
    [self](tick_atom) {
      watch_members(self);
      auto every = std::max<uint32_t>(self->state.env.cluster->timeout_ms / 4, 50);
      self->delayed_send(self, std::chrono::milliseconds(every), tick_atom::value);
    },
    [self](kill_atom, const std::string& actor) { kill_from_console(self, actor); },
    [self](savepoint_atom, bool stop) { return take_savepoint(self, stop); },
    [self](savepoint_atom, uint64_t cut, const std::string& error, const std::string& summary) {
      savepoint_done(self, cut, error, summary);
    },
    [self](savepoint_atom, uint64_t cut) { check_alignment(self, cut); },
    [self](savepoints_atom) { return savepoints_json(self); },
  };
}

} // namespace

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

// Shared with the cluster part of the job actor (cluster_job.cpp); see job_actor.hpp.

void spawn_incarnation(job_ptr self, std::vector<instance_plan> plan) {
  auto& st = self->state;
  st.stages.assign(plan.size(), stage_actor{});
  st.sources.clear();
  st.index_of.clear();
  st.inits.clear();
  st.alive = 0;
  for (auto& p : plan) {
    st.inits.push_back(p.init);
  }
  st.building = std::move(plan);
  spawn_from(self, st.building.size());
}

clock_type::duration backoff(const supervision_options& opts, size_t n) {
  uint64_t delay = opts.backoff_ms;
  for (size_t i = 1; i < n && delay < opts.backoff_max_ms; ++i) {
    delay *= 2;
  }
  return std::chrono::milliseconds(std::min<uint64_t>(delay, opts.backoff_max_ms));
}

void rebuild_when_due(job_ptr self) {
  auto& st = self->state;
  st.down_at = clock_type::now();
  self->delayed_send(self, std::max(clock_type::duration::zero(), st.restart_at - st.down_at),
                     restart_atom::value);
}

void restart_after(job_ptr self, clock_type::duration delay, bool counted) {
  auto& st = self->state;
  auto at = clock_type::now() + delay;
  if (!st.restarting || at > st.restart_at) {
    st.restart_at = at;
  }
  if (!st.restarting) {
    abort_savepoint(self, "the job restarted");
    st.restarting = true;
    st.failed_at = clock_type::now();
    if (counted) {
      st.shared->restarts.fetch_add(1, std::memory_order_relaxed);
      // A failure: the replay commits per group for a supervision window.
      st.env.eager_commits_until =
        clock_type::now() + delay + std::chrono::seconds(st.env.opts.supervision.window_s);
    }
    for (auto& stage : st.stages) {
      stop_stage(self, stage);
    }
  }
  for (size_t k = 0; k < st.slots.size(); ++k) {
    if (st.slots[k].failed_cause.empty()) {
      st.env.metrics[k]->status = actor_status::restarting;
    }
  }
  if (st.alive == 0) {
    // Nothing runs (an incarnation that could not be built): no down message will come.
    rebuild_when_due(self);
  }
}

void build_failed(job_ptr self, uint64_t incarnation, const std::string& what,
                  const caf::error& err) {
  auto& st = self->state;
  if (incarnation != st.incarnation || st.restarting || st.shared->error) {
    return;
  }
  log(log_level::warn, "supervisor",
      "job " + st.env.graph->name() + ": cannot " + what + " (" + to_string(err) +
        "); trying again");
  st.building.clear();
  restart_after(self, backoff(st.env.opts.supervision, 1));
}

void finish_job(job_ptr self) {
  auto& st = self->state;
  if (savepoint_holds_finish(self)) {
    return;
  }
  abort_savepoint(self, "the job ended");
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
  if (st.leading) {
    // The members hosting partitions learn that the job ended.
    std::string error = st.shared->error ? describe(st.shared->error) : std::string{};
    auto self_id = st.env.cluster->view->self_id();
    for (const auto& [id, host] : st.hosts) {
      if (id != self_id) {
        self->send(host, done_atom::value, st.env.graph->name(), error);
      }
    }
  }
  {
    std::lock_guard guard{st.shared->mtx};
    st.shared->done = true;
  }
  st.shared->cv.notify_all();
  if (st.relocation) {
    self->send_exit(st.relocation, caf::exit_reason::user_shutdown);
    st.relocation = caf::actor{};
  }
  for (auto& rp : st.switches) {
    rp.deliver(make_error(errc::actor_failed, "the job ended"));
  }
  st.switches.clear();
  // Handles of other members' actors are let go now, not at some later cleanup.
  st.hosts.clear();
  st.inits.clear();
  st.stages.clear();
  self->quit();
}

caf::actor spawn_job_actor(caf::actor_system& sys, std::shared_ptr<job_handle::shared> shared,
                           job_env env, std::vector<instance_plan> plan) {
  return sys.spawn(job_actor, std::move(shared), std::move(env), std::move(plan));
}

} // namespace eddy::detail
