// Moves of key partitions between the members of a cluster (see relocation.hpp).

#include "cluster/relocation.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <set>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <nlohmann/json.hpp>

#include "cluster/node_actor.hpp"
#include "eddy/actors/messages.hpp"
#include "eddy/cluster/assignment.hpp"
#include "eddy/core/error.hpp"
#include "eddy/core/log.hpp"
#include "limits.hpp"

namespace eddy::detail {

namespace {

using clock_type = std::chrono::steady_clock;
using json = nlohmann::ordered_json;

enum class phase : uint8_t { queued, copying, ready, switching, done, failed, aborted };

const char* to_string(phase p) {
  switch (p) {
    case phase::queued:
      return "queued";
    case phase::copying:
      return "copying";
    case phase::ready:
      return "ready";
    case phase::switching:
      return "switching";
    case phase::done:
      return "done";
    case phase::failed:
      return "failed";
    case phase::aborted:
      return "aborted";
  }
  return "?";
}

/// Bytes sent, bytes in all and commits waiting of one partition instance's copy.
struct copy_progress {
  uint64_t sent = 0;
  uint64_t total = 0;
  uint64_t waiting = 0;
};

struct move_task {
  uint64_t id = 0;
  uint32_t partition = 0;
  std::string from;
  std::string to;
  std::string reason;
  /// Only the standby moves (to `to`): a copy, and no switch.
  bool standby_only = false;
  /// The member this move drains (it leaves): not the moved partition's next standby.
  std::string leaving;
  phase state = phase::queued;
  std::string error;
  /// By actor name ("count/2"): a row of the table is one instance of every keyed operator.
  std::map<std::string, copy_progress> copies;
  /// Commits sent after the snapshots.
  uint64_t entries = 0;
  size_t attempts = 0;
  size_t waiting = 0;
  clock_type::time_point queued_at = clock_type::now();
  clock_type::time_point started_at;
  clock_type::time_point finished_at;
  /// How long the job stood still for the switch.
  int64_t pause_ms = -1;

  [[nodiscard]] bool active() const {
    return state == phase::copying || state == phase::ready || state == phase::switching;
  }
  [[nodiscard]] bool open() const {
    return state == phase::queued || active();
  }
};

using limits::copy_timeout;
using limits::move_attempts_max;
using limits::move_history_max;

struct relocation_state {
  static constexpr const char* name = "relocation";
  relocation_config cfg;
  std::deque<move_task> tasks;
  uint64_t next_id = 1;
  /// Members that were up at the last look (a new one is a join).
  std::set<std::string> known;
  bool switching = false;
  /// Members that leave, answered once no move drains them any more.
  std::vector<std::pair<std::string, caf::typed_response_promise<std::string>>> leaving;
};

using self_ptr = caf::stateful_actor<relocation_state>*;

int64_t ms_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

json to_json(const move_task& t) {
  uint64_t sent = 0;
  uint64_t total = 0;
  uint64_t waiting = 0;
  for (const auto& [who, c] : t.copies) {
    sent += c.sent;
    total += c.total;
    waiting += c.waiting;
  }
  auto now = clock_type::now();
  auto end = t.active() ? now : t.finished_at;
  int64_t elapsed = t.state == phase::queued ? 0 : ms_between(t.started_at, end);
  json eta;
  if (t.state == phase::copying && sent > 0 && total > sent) {
    eta = static_cast<int64_t>(static_cast<double>(elapsed) * static_cast<double>(total - sent) /
                               static_cast<double>(sent));
  }
  return json{{"move", t.id},
              {"partition", t.partition},
              {"from", t.from},
              {"to", t.to},
              {"phase", to_string(t.state)},
              {"bytes", sent},
              {"of_bytes", total},
              {"commits_waiting", t.state == phase::copying ? waiting : t.entries},
              {"elapsed_ms", elapsed},
              {"eta_ms", eta},
              {"pause_ms", t.pause_ms >= 0 ? json(t.pause_ms) : json{}},
              {"reason", t.reason},
              {"error", t.error}};
}

move_task* find(self_ptr self, uint64_t id) {
  for (auto& t : self->state.tasks) {
    if (t.id == id) {
      return &t;
    }
  }
  return nullptr;
}

/// The primary of `partition` in the table this node has.
std::string primary_of(self_ptr self, uint32_t partition) {
  auto table = self->state.cfg.cluster->view->table();
  return partition < table.partitions.size() ? table.partitions[partition].primary : "";
}

std::vector<std::string> up_members(const relocation_state& st) {
  std::vector<std::string> up;
  for (const auto& m : st.cfg.cluster->view->members()) {
    if (m.state == member_state::up) {
      up.push_back(m.id);
    }
  }
  return up;
}

void pump(self_ptr self);

/// Answers the members that leave once no move drains them any more.
void answer_leavers(self_ptr self) {
  auto& st = self->state;
  for (auto i = st.leaving.begin(); i != st.leaving.end();) {
    const auto& member = i->first;
    bool draining = std::any_of(st.tasks.begin(), st.tasks.end(), [&member](const move_task& m) {
      return m.open() && m.leaving == member;
    });
    if (draining) {
      ++i;
      continue;
    }
    size_t failed = 0;
    for (const auto& m : st.tasks) {
      failed += m.leaving == member && m.state == phase::failed ? 1 : 0;
    }
    log(log_level::info, "relocation",
        "member " + member + " is drained" +
          (failed > 0 ? " (" + std::to_string(failed) + " moves failed)" : ""));
    i->second.deliver(std::string{failed > 0 ? "partly drained" : "drained"});
    i = st.leaving.erase(i);
  }
}

void finish(self_ptr self, move_task& t, phase p, std::string error = {}) {
  t.state = p;
  t.error = std::move(error);
  t.finished_at = clock_type::now();
  auto what = "move " + std::to_string(t.id) + " of partition " + std::to_string(t.partition) +
              " from " + t.from + " to " + t.to;
  if (p == phase::done) {
    // Done without a switch: a standby copy, or nothing to move (t.error says why).
    auto how = t.pause_ms >= 0
                 ? " ms (the job paused " + std::to_string(t.pause_ms) + " ms for the switch)"
                 : " ms, without a pause" + (t.error.empty() ? "" : " (" + t.error + ")");
    log(log_level::info, "relocation",
        what + (t.standby_only ? " (the standby copy)" : "") + " done in " +
          std::to_string(ms_between(t.started_at, t.finished_at)) + how);
  } else {
    log(log_level::warn, "relocation", what + " " + to_string(p) + ": " + t.error);
  }
  answer_leavers(self);
  auto& tasks = self->state.tasks;
  while (tasks.size() > move_history_max && !tasks.front().open()) {
    tasks.pop_front();
  }
}

/// A step of move `id` failed: it is tried again (from its start) unless it failed too
/// often.
void step_failed(self_ptr self, uint64_t id, const std::string& what) {
  auto* t = find(self, id);
  if (t == nullptr || !t->active() || t->state == phase::switching) {
    return;
  }
  if (t->attempts < move_attempts_max) {
    log(log_level::info, "relocation",
        "move " + std::to_string(id) + ": " + what + "; trying again (attempt " +
          std::to_string(t->attempts + 1) + " of " + std::to_string(move_attempts_max) + ")");
    // The next look (half a second on) starts it again.
    t->state = phase::queued;
    t->copies.clear();
  } else {
    finish(self, *t, phase::failed, what);
    pump(self);
  }
}

void switch_rows(self_ptr self, std::shared_ptr<std::vector<uint64_t>> ids, size_t i);

/// Switches every move whose copy is current, once no copy is under way: the table makes
/// the targets primaries, then the job restarts its incarnation on the new placement.
void switch_ready(self_ptr self) {
  auto& st = self->state;
  if (st.switching) {
    return;
  }
  auto ready = std::make_shared<std::vector<uint64_t>>();
  for (const auto& t : st.tasks) {
    if (t.state == phase::copying) {
      return;
    }
    if (t.state == phase::ready) {
      ready->push_back(t.id);
    }
  }
  if (ready->empty()) {
    return;
  }
  st.switching = true;
  for (auto id : *ready) {
    find(self, id)->state = phase::switching;
  }
  switch_rows(self, std::move(ready), 0);
}

/// The switch failed: the moves being switched fail.
void switch_failed(self_ptr self, const std::vector<uint64_t>& ids, const std::string& why) {
  self->state.switching = false;
  for (auto id : ids) {
    if (auto* t = find(self, id)) {
      finish(self, *t, phase::failed, why);
    }
  }
  pump(self);
}

/// Makes the target of move `ids[i]` its partition's primary (each row is a new epoch of
/// the table), then the next; after the last one the job restarts once for all of them.
void switch_rows(self_ptr self, std::shared_ptr<std::vector<uint64_t>> ids, size_t i) {
  auto& st = self->state;
  if (i == ids->size()) {
    auto asked = clock_type::now();
    self->request(st.cfg.job_actor, limits::switch_timeout, move_atom::value, std::string{"switch"})
      .then(
        [self, ids, asked](bool) {
          self->state.switching = false;
          auto pause = ms_between(asked, clock_type::now());
          for (auto id : *ids) {
            if (auto* t = find(self, id)) {
              t->pause_ms = pause;
              finish(self, *t, phase::done);
            }
          }
          pump(self);
        },
        [self, ids](caf::error& err) {
          switch_failed(self, *ids, "the switch failed: " + describe(err));
        });
    return;
  }
  auto* t = find(self, (*ids)[i]);
  // The old primary keeps a copy, unless it leaves or left: then another member does.
  auto standby = t->from;
  auto up = up_members(st);
  if (standby == t->leaving || std::find(up.begin(), up.end(), standby) == up.end()) {
    standby.clear();
    for (const auto& m : up) {
      if (m != t->to && m != t->leaving) {
        standby = m;
        break;
      }
    }
  }
  self
    ->request(st.cfg.cluster->node, limits::relocation_peer_timeout, assignment_atom::value,
              t->partition, t->to, standby)
    .then([self, ids, i](std::string&) { switch_rows(self, ids, i + 1); },
          [self, ids](caf::error& err) {
            switch_failed(self, *ids,
                          "the coordinator did not take the new primary: " + describe(err));
          });
}

/// Sends the running instances of the move's partition to their new standby; the move is
/// ready once all of them answered that the copy is current.
void copy_to_target(self_ptr self, uint64_t id, const caf::actor& host,
                    const std::vector<caf::actor>& instances) {
  auto* t = find(self, id);
  if (instances.empty()) {
    step_failed(self, id, "the partition has no running instance");
    return;
  }
  t->waiting = instances.size();
  for (const auto& instance : instances) {
    self->request(instance, copy_timeout, standby_atom::value, host)
      .then(
        [self, id](std::string& answer) {
          auto* live = find(self, id);
          if (live == nullptr || live->state != phase::copying) {
            return;
          }
          auto j = json::parse(answer, nullptr, false);
          if (j.is_object()) {
            live->entries += j.value("entries", uint64_t{0});
          }
          if (--live->waiting == 0) {
            if (live->standby_only) {
              finish(self, *live, phase::done);
              pump(self);
              return;
            }
            live->state = phase::ready;
            switch_ready(self);
          }
        },
        [self, id](caf::error& err) {
          step_failed(self, id, "the copy to the target failed: " + describe(err));
        });
  }
}

/// Starts move `id`: the target becomes the standby of the partition (unless it is) and
/// the running instances copy their journals there.
void start(self_ptr self, move_task& t) {
  auto& st = self->state;
  t.started_at = clock_type::now();
  auto table = st.cfg.cluster->view->table();
  if (t.partition >= table.partitions.size()) {
    finish(self, t, phase::failed, "the assignment table has no such partition");
    return;
  }
  const auto& row = table.partitions[t.partition];
  if (t.standby_only ? row.standby == t.to : row.primary == t.to) {
    finish(self, t, phase::done, "already there");
    return;
  }
  if (t.standby_only && row.primary == t.to) {
    finish(self, t, phase::failed, t.to + " is the partition's primary");
    return;
  }
  t.from = t.standby_only ? row.standby : row.primary;
  t.state = phase::copying;
  ++t.attempts;
  auto id = t.id;
  auto cluster = st.cfg.cluster;
  auto fail = [self, id](std::string what) {
    return [self, id, what](caf::error& err) {
      step_failed(self, id, what + describe(err));
    };
  };
  self->request(cluster->node, limits::relocation_peer_timeout, host_atom::value, t.to)
    .then(
      [self, id, fail](caf::actor& host) {
        auto* live = find(self, id);
        if (live == nullptr || live->state != phase::copying) {
          return;
        }
        auto partition = live->partition;
        self
          ->request(self->state.cfg.job_actor, limits::relocation_peer_timeout, move_atom::value,
                    partition)
          .then(
            [self, id, host, fail](std::vector<caf::actor>& instances, std::string& standby) {
              auto* moving = find(self, id);
              if (moving == nullptr || moving->state != phase::copying) {
                return;
              }
              if (standby == moving->to && !moving->standby_only) {
                // The incarnation runs with the target as standby: its copy is current.
                moving->state = phase::ready;
                switch_ready(self);
                return;
              }
              self
                ->request(self->state.cfg.cluster->node, limits::relocation_peer_timeout,
                          assignment_atom::value, moving->partition,
                          primary_of(self, moving->partition), moving->to)
                .then(
                  [self, id, host, instances](std::string&) {
                    if (auto* still = find(self, id);
                        still != nullptr && still->state == phase::copying) {
                      copy_to_target(self, id, host, instances);
                    }
                  },
                  fail("the coordinator did not take the new standby: "));
            },
            fail("the job cannot move it now: "));
      },
      fail("the target cannot be reached: "));
}

/// Starts queued moves while fewer than moves_max copy.
void pump(self_ptr self) {
  auto& st = self->state;
  if (st.switching) {
    return;
  }
  size_t active = 0;
  for (const auto& t : st.tasks) {
    active += t.active() ? 1 : 0;
  }
  for (auto& t : st.tasks) {
    if (active >= st.cfg.moves_max) {
      break;
    }
    if (t.state == phase::queued) {
      start(self, t);
      active += t.active() ? 1 : 0;
    }
  }
}

/// Queues a move of `partition` to `to`; an error names what is wrong with it.
caf::expected<json> enqueue(self_ptr self, uint32_t partition, const std::string& to,
                            std::string reason, bool standby_only = false,
                            std::string leaving = {}) {
  auto& st = self->state;
  if (partition >= st.cfg.partitions) {
    return make_error(errc::invalid_config, "no partition " + std::to_string(partition) + " (job " +
                                              st.cfg.job + " has partitions 0.." +
                                              std::to_string(st.cfg.partitions - 1) + ")");
  }
  auto up = up_members(st);
  if (std::find(up.begin(), up.end(), to) == up.end()) {
    std::string names;
    for (const auto& m : up) {
      names += (names.empty() ? "" : ", ") + m;
    }
    return make_error(errc::invalid_config, "member " + to + " is not up (up: " + names + ")");
  }
  for (const auto& t : st.tasks) {
    if (t.open() && t.partition == partition) {
      return make_error(errc::invalid_config, "partition " + std::to_string(partition) +
                                                " is already moving (move " + std::to_string(t.id) +
                                                ", to " + t.to + ")");
    }
  }
  auto table = st.cfg.cluster->view->table();
  if (partition < table.partitions.size() && table.partitions[partition].primary == to) {
    return make_error(errc::invalid_config,
                      "partition " + std::to_string(partition) + " already runs on " + to);
  }
  move_task t;
  t.id = st.next_id++;
  t.partition = partition;
  if (partition < table.partitions.size()) {
    const auto& row = table.partitions[partition];
    t.from = standby_only ? row.standby : row.primary;
  }
  t.to = to;
  t.reason = std::move(reason);
  t.standby_only = standby_only;
  t.leaving = std::move(leaving);
  log(log_level::info, "relocation",
      "move " + std::to_string(t.id) + ": partition " + std::to_string(partition) + " from " +
        t.from + " to " + to + " (" + t.reason + ")");
  st.tasks.push_back(std::move(t));
  auto row = to_json(st.tasks.back());
  pump(self);
  return row;
}

/// A member leaves gracefully: its primaries move to other members (onto their standbys
/// where those stay), its standby copies to members that hold none; answered once done.
caf::result<std::string> drain(self_ptr self, const std::string& member) {
  auto& st = self->state;
  auto up = up_members(st);
  if (std::none_of(up.begin(), up.end(), [&member](const auto& m) { return m != member; })) {
    return make_error(errc::invalid_config, "no other member is up to take over from " + member);
  }
  size_t queued = 0;
  for (auto& m : drain_plan(st.cfg.cluster->view->table(), up, member)) {
    if (m.partition < st.cfg.partitions &&
        enqueue(self, m.partition, m.to, std::move(m.reason), m.standby_only, member)) {
      ++queued;
    }
  }
  log(log_level::info, "relocation",
      "member " + member + " leaves: draining with " + std::to_string(queued) + " moves");
  auto rp = self->make_response_promise<std::string>();
  st.leaving.emplace_back(member, rp);
  answer_leavers(self);
  return rp;
}

/// The moves that balance the table, counting the moves already under way as done.
std::vector<partition_move> plan(self_ptr self) {
  auto& st = self->state;
  auto table = st.cfg.cluster->view->table();
  std::set<uint32_t> moving;
  for (const auto& t : st.tasks) {
    if (t.open() && t.partition < table.partitions.size()) {
      table.partitions[t.partition] = partition_owner{t.to, table.partitions[t.partition].primary};
      moving.insert(t.partition);
    }
  }
  auto moves = rebalance_plan(table, up_members(st));
  std::erase_if(moves, [&moving](const partition_move& m) { return moving.count(m.partition); });
  return moves;
}

json rebalance(self_ptr self, const std::string& mode, const std::string& why) {
  auto& st = self->state;
  json rows = json::array();
  if (mode == "status") {
    for (const auto& t : st.tasks) {
      rows.push_back(to_json(t));
    }
    return rows;
  }
  if (mode == "abort") {
    for (auto& t : st.tasks) {
      if (t.state == phase::queued) {
        finish(self, t, phase::aborted, "aborted from the console");
        rows.push_back(to_json(t));
      }
    }
    return rows;
  }
  for (auto& m : plan(self)) {
    if (mode == "dry-run") {
      rows.push_back(json{{"partition", m.partition},
                          {"from", m.from},
                          {"to", m.to},
                          {"phase", "planned"},
                          {"reason", m.reason}});
    } else if (auto row = enqueue(self, m.partition, m.to, why + m.reason)) {
      rows.push_back(std::move(*row));
    }
  }
  return rows;
}

/// Every half second: moves waiting for a retry, and a rebalance when a member joined.
void look(self_ptr self) {
  auto& st = self->state;
  auto up = up_members(st);
  std::set<std::string> now(up.begin(), up.end());
  std::string joined;
  for (const auto& m : now) {
    if (st.known.count(m) == 0) {
      joined += (joined.empty() ? "" : ", ") + m;
    }
  }
  bool first = st.known.empty();
  st.known = std::move(now);
  if (!joined.empty() && st.cfg.rebalance_on_join) {
    // A leader that starts on a table left unbalanced (members that came back while no
    // job ran) balances it as if they joined now.
    auto why = first ? std::string{"the job started on an unbalanced table"}
                     : "member " + joined + " joined";
    auto rows = rebalance(self, "run", why + "; ");
    if (!rows.empty()) {
      log(log_level::info, "relocation",
          why + ": rebalancing with " + std::to_string(rows.size()) + " moves");
    }
  }
  pump(self);
}

caf::behavior relocation_actor(self_ptr self, relocation_config cfg) {
  self->state.cfg = std::move(cfg);
  self->send(self, tick_atom::value);
  return {
    [self](move_atom, uint32_t partition, const std::string& to) -> caf::result<std::string> {
      auto row = enqueue(self, partition, to, "requested from the console");
      if (!row) {
        return row.error();
      }
      return row->dump();
    },
    [self](leave_atom, const std::string& member) { return drain(self, member); },
    [self](rebalance_atom, const std::string& mode) {
      return rebalance(self, mode, "rebalance: ").dump();
    },
    [self](progress_atom, const std::string& who, uint64_t sent, uint64_t total, uint64_t waiting) {
      for (auto& t : self->state.tasks) {
        // "count/2": instance 2 of an operator copies for the move of partition 2.
        if (t.state == phase::copying &&
            who.substr(who.rfind('/') + 1) == std::to_string(t.partition)) {
          t.copies[who] = copy_progress{sent, total, waiting};
        }
      }
    },
    [self](tick_atom) {
      look(self);
      self->delayed_send(self, limits::relocation_tick_interval, tick_atom::value);
    },
  };
}

} // namespace

caf::actor spawn_relocation(caf::actor_system& sys, relocation_config cfg) {
  return sys.spawn(relocation_actor, std::move(cfg));
}

} // namespace eddy::detail
