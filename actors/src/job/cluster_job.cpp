// The job actor in a cluster (see job_actor.hpp): the leader waits for a settled
// assignment table, places key partitions on their hosts and watches the members; a node
// that only hosts partitions leaves gracefully.

#include <algorithm>
#include <set>

#include "cluster/node_actor.hpp"
#include "cluster/relocation.hpp"
#include "eddy/actors/messages.hpp"
#include "eddy/core/error.hpp"
#include "eddy/core/log.hpp"
#include "job/job_actor.hpp"
#include "limits.hpp"

namespace eddy::detail {

namespace {

/// Asks the hosts of the partitions placed on other members to prepare them, then plans
/// where every producer resumes and spawns the incarnation.
void prepare_remote(job_ptr self, uint64_t inc, std::shared_ptr<std::vector<instance_plan>> plan) {
  auto& st = self->state;
  auto finish = [self, plan] {
    auto& now = self->state;
    if (now.env.durable) {
      plan_replay(*plan);
    }
    auto successor = now.env.cluster->view->successor();
    for (auto& p : *plan) {
      auto& init = *p.init;
      auto kind = init.graph->node(init.node).kind;
      if (kind == node_kind::sink && init.journal && now.hosts.count(successor) > 0) {
        // The sink's committed output, where the job would be taken over.
        init.owner_epoch = now.table.epoch;
        init.standby = now.hosts[successor];
        init.sync_standby = now.env.cluster->standby_sync;
        init.standby_timeout_ms = now.env.cluster->timeout_ms;
      }
      if (kind != node_kind::keyed || init.ctx.index >= now.table.partitions.size()) {
        continue;
      }
      const auto& row = now.table.partitions[init.ctx.index];
      init.owner_epoch = now.table.epoch;
      if (!row.standby.empty()) {
        init.standby = now.hosts[row.standby];
        init.sync_standby = now.env.cluster->standby_sync;
        init.standby_timeout_ms = now.env.cluster->timeout_ms;
      }
    }
    spawn_incarnation(self, std::move(*plan));
  };
  auto pending = std::make_shared<size_t>(1);
  auto one_done = [pending, finish] {
    if (--*pending == 0) {
      finish();
    }
  };
  for (size_t k = 0; k < plan->size(); ++k) {
    auto init = (*plan)[k].init;
    if (init->host.empty()) {
      continue;
    }
    host_prepare req;
    req.job = init->ctx.job;
    req.node = static_cast<uint32_t>(init->node);
    req.index = init->ctx.index;
    req.producer = init->ctx.producer;
    req.failed_cause = init->failed_cause;
    req.poison.assign(st.slots[k].poison.begin(), st.slots[k].poison.end());
    ++*pending;
    self->request(st.hosts[init->host], host_timeout, prepare_atom::value, std::move(req))
      .then(
        [self, inc, init, one_done](std::vector<std::pair<uint64_t, uint64_t>>& positions) {
          if (inc != self->state.incarnation || self->state.restarting) {
            return;
          }
          init->positions = std::map<uint64_t, uint64_t>(positions.begin(), positions.end());
          one_done();
        },
        [self, inc, init](caf::error& err) {
          build_failed(self, inc, "prepare " + init->who() + " on " + init->host, err);
        });
  }
  one_done();
}

} // namespace

/// In a cluster: true when this node leads the job and the assignment table places every
/// partition on members that are up (kept in `st.table`). Otherwise looks again soon,
/// unless this node hosts partitions for another leader.
bool cluster_ready(job_ptr self) {
  auto& st = self->state;
  const auto& c = *st.env.cluster;
  auto retry = [self] {
    self->delayed_send(self, limits::cluster_wait_interval, restart_atom::value);
    return false;
  };
  auto self_id = c.view->self_id();
  auto coordinator = c.view->coordinator();
  if (self_id.empty() || coordinator.empty()) {
    return retry();
  }
  auto members = c.view->members();
  std::set<std::string> up;
  for (const auto& m : members) {
    if (m.state == member_state::up) {
      up.insert(m.id);
    }
  }
  if (st.leading && !coordinator.empty() && coordinator != self_id) {
    // A cut healed and the other side's coordinator kept its role (see cluster/node_actor.cpp):
    // its leader runs the job; this node only hosts partitions now.
    log(log_level::warn, "supervisor",
        "job " + st.env.graph->name() + " is led by the coordinator " + coordinator +
          " now; this node stops leading it");
    st.leading = false;
    if (st.relocation) {
      self->send_exit(st.relocation, caf::exit_reason::user_shutdown);
      st.relocation = caf::actor{};
    }
  }
  auto waited = clock_type::now() - st.waiting_since;
  bool settled = up.size() >= c.view->seed_count() ||
                 waited > std::chrono::milliseconds(2 * uint64_t{c.timeout_ms});
  if (!st.leading) {
    if (!settled) {
      return retry();
    }
    if (coordinator != self_id) {
      if (!st.following) {
        st.following = true;
        log(log_level::info, "supervisor",
            "job " + st.env.graph->name() + " runs on the coordinator " + coordinator + "; " +
              self_id + " hosts the partitions it places here");
      }
      // Should the coordinator go, this node may be the next one and take the job over.
      self->delayed_send(self, limits::follower_wait_interval, restart_atom::value);
      return false;
    }
  }
  auto table = c.view->table();
  uint32_t rows = 0;
  for (size_t n = 0; n < st.env.graph->nodes().size(); ++n) {
    if (st.env.graph->node(n).kind == node_kind::keyed) {
      rows = std::max(rows, st.env.graph->instances(n));
    }
  }
  // The coordinator's table, once every member that is up has it: a node that comes back
  // as coordinator starts from the table it saved, and learns newer ones from the others.
  bool placed = table.epoch > 0 && table.partitions.size() >= rows && c.view->settled() &&
                table.coordinator == self_id;
  for (const auto& row : table.partitions) {
    placed =
      placed && up.count(row.primary) > 0 && (row.standby.empty() || up.count(row.standby) > 0);
  }
  if (!placed) {
    return retry();
  }
  if (!st.leading && st.following) {
    log(log_level::warn, "supervisor",
        "job " + st.env.graph->name() + " taken over by " + self_id +
          ", the coordinator now: it resumes from the partitions' journals, placed by "
          "assignment epoch " +
          std::to_string(table.epoch));
  } else if (!st.leading) {
    log(log_level::info, "supervisor",
        "job " + st.env.graph->name() + " runs here, on the coordinator " + self_id +
          ", with its partitions placed by assignment epoch " + std::to_string(table.epoch));
  }
  if (!st.leading) {
    st.following = false;
    relocation_config rc;
    rc.job = st.env.graph->name();
    rc.job_actor = caf::actor_cast<caf::actor>(self);
    rc.cluster = st.env.cluster;
    rc.partitions = rows;
    rc.moves_max = c.moves_max;
    rc.rebalance_on_join = c.rebalance_on_join;
    st.relocation = spawn_relocation(self->system(), std::move(rc));
    if (!st.watching) {
      st.watching = true;
      self->send(self, tick_atom::value);
      self->send(c.node, lead_atom::value, caf::actor_cast<caf::actor>(self));
    }
  }
  st.leading = true;
  st.table = std::move(table);
  return true;
}

/// Finds the host actor of every member the table names, then prepares the partitions.
void place_and_spawn(job_ptr self, std::vector<instance_plan> plan) {
  auto& st = self->state;
  auto inc = st.incarnation;
  std::set<std::string> ids;
  if (auto successor = st.env.cluster->view->successor(); !successor.empty()) {
    ids.insert(successor);
  }
  for (const auto& row : st.table.partitions) {
    ids.insert(row.primary);
    if (!row.standby.empty()) {
      ids.insert(row.standby);
    }
  }
  auto shared_plan = std::make_shared<std::vector<instance_plan>>(std::move(plan));
  auto pending = std::make_shared<size_t>(ids.size());
  for (const auto& id : ids) {
    self->request(st.env.cluster->node, host_timeout, host_atom::value, id)
      .then(
        [self, inc, id, pending, shared_plan](caf::actor& host) {
          auto& now = self->state;
          if (inc != now.incarnation || now.restarting) {
            return;
          }
          now.hosts[id] = std::move(host);
          if (--*pending == 0) {
            prepare_remote(self, inc, shared_plan);
          }
        },
        [self, inc, id](caf::error& err) {
          build_failed(self, inc, "reach the host of member " + id, err);
        });
  }
}

/// Every half heartbeat while this node leads: a member that hosts partitions of the
/// running incarnation and is unreachable (connected, but silent past --node.timeout-ms: a
/// network cut or a hung process) gives no down message, and the job would wait for it
/// forever. Its partitions are given up like lost ones: the job restarts once the
/// coordinator's table places them on members that are up; if the member comes back, the
/// old partitions' commits are refused by the hosts that took over (see host.cpp).
void watch_members(job_ptr self) {
  auto& st = self->state;
  if (!st.leading || !st.building.empty() || st.stages.empty() || st.alive == 0) {
    return;
  }
  const auto& view = *st.env.cluster->view;
  if (view.coordinator() != view.self_id()) {
    // No majority of the seeds is up here (a cut), or another member coordinates: the job
    // stops on this side, and runs again where the coordinator is (here, once the majority
    // is back; on the other side of a cut, taken over from the journals).
    if (!st.restarting) {
      log(log_level::warn, "supervisor",
          "job " + st.env.graph->name() + " stops here: " +
            (view.coordinator().empty() ? std::string{"this node sees no majority of the seeds up"}
                                        : view.coordinator() + " coordinates now"));
      restart_after(self, clock_type::duration::zero(), false);
    }
    return;
  }
  std::map<std::string, member_state> state;
  for (const auto& m : st.env.cluster->view->members()) {
    state[m.id] = m.state;
  }
  std::vector<size_t> lost;
  for (size_t k = 0; k < st.inits.size(); ++k) {
    const auto& host = st.inits[k]->host;
    if (!host.empty() && st.stages[k] && st.index_of.count(st.stages[k].address()) > 0 &&
        state[host] != member_state::up) {
      lost.push_back(k);
    }
  }
  if (lost.empty()) {
    return;
  }
  log(log_level::warn, "supervisor",
      "member " + st.inits[lost.front()]->host + " is " +
        to_string(state[st.inits[lost.front()]->host]) + ": its partitions are given up and " +
        "the job restarts on the members that are up");
  for (auto k : lost) {
    // No down message is awaited from it.
    st.index_of.erase(st.stages[k].address());
    st.inits[k]->metrics->status = actor_status::restarting;
    --st.alive;
  }
  if (!st.restarting) {
    restart_after(self, backoff(st.env.opts.supervision, 1));
  } else if (st.alive == 0) {
    // A restart under way waited for them.
    rebuild_when_due(self);
  }
}

/// Why this node cannot move the job's partitions.
std::string not_leading(const job_state& st) {
  if (!st.env.cluster) {
    return "job " + st.env.graph->name() + " does not run in a cluster (--node.seeds)";
  }
  return "job " + st.env.graph->name() + " is led by the coordinator " +
         st.env.cluster->view->coordinator() + ", not by this node: connect the console there";
}

/// Stop of a node that only hosts partitions: it leaves gracefully once the leader moved
/// the partitions and standby copies it holds to other members (see relocation.hpp).
void leave_cluster(job_ptr self) {
  auto& st = self->state;
  auto self_id = st.env.cluster->view->self_id();
  log(log_level::info, "supervisor",
      self_id + " leaves: the leader of job " + st.env.graph->name() + " drains it");
  self->request(st.env.cluster->node, limits::drain_timeout, leave_atom::value, self_id)
    .then(
      [self](std::string& answer) {
        log(log_level::info, "supervisor", "left the cluster: " + answer);
        finish_job(self);
      },
      [self](caf::error& err) {
        log(log_level::warn, "supervisor",
            "leaving without a drain: " + describe(err) + " (the job fails over)");
        finish_job(self);
      });
}

} // namespace eddy::detail
