#include "cluster/node_actor.hpp"

#include <algorithm>
#include <map>
#include <set>

#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <nlohmann/json.hpp>

#include "eddy/actors/messages.hpp"
#include "eddy/core/error.hpp"
#include "eddy/core/log.hpp"
#include "limits.hpp"

namespace eddy::detail {

namespace {

using clock_type = std::chrono::steady_clock;
using json = nlohmann::json;

/// Another member as this node knows it, by address.
struct peer {
  std::string id;
  /// Its node actor while connected.
  caf::actor node;
  bool connecting = false;
  bool answered = false;
  clock_type::time_point last_seen;
  member_state state = member_state::down;
  /// The epoch of the assignment table it said it has.
  uint64_t table_epoch = 0;
  /// It said it coordinates (in its last heartbeat answer).
  bool coordinates = false;
  /// The HTTP address of its service, from its last heartbeat answer.
  std::string http;
};

struct node_state {
  static constexpr const char* name = "node";
  membership_config cfg;
  std::string address;
  caf::actor inspector;
  std::shared_ptr<cluster_view> view;
  std::map<std::string, peer> peers;
  /// The newest assignment table this node knows (made here if it coordinates).
  assignment table;
  std::string coordinator;
  clock_type::time_point started = clock_type::now();
  /// The job actors that lead a job on this node.
  std::vector<caf::actor> leaders;
};

using node_ptr = caf::stateful_actor<node_state>*;

/// Splits "host:port"; false when it is not one.
bool split_address(const std::string& address, std::string& host, uint16_t& port) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return false;
  }
  host = address.substr(0, colon);
  try {
    auto p = std::stoul(address.substr(colon + 1));
    if (p == 0 || p > 65535) {
      return false;
    }
    port = static_cast<uint16_t>(p);
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

/// Every member this node knows, itself first, as the join answer carries them.
std::string members_text(const node_state& st) {
  json list = json::array();
  list.push_back(json{{"id", st.cfg.id}, {"address", st.address}});
  for (const auto& [address, p] : st.peers) {
    list.push_back(json{{"id", p.id}, {"address", address}});
  }
  return list.dump();
}

/// Learns the members listed by another node (its join answer).
void learn(node_ptr self, const std::string& text) {
  auto& st = self->state;
  auto list = json::parse(text, nullptr, false);
  if (!list.is_array()) {
    return;
  }
  for (const auto& m : list) {
    auto address = m.value("address", std::string{});
    if (address.empty() || address == st.address) {
      continue;
    }
    auto& p = st.peers[address];
    if (p.id.empty()) {
      p.id = m.value("id", address);
    }
  }
}

/// True once this node coordinates: past its first timeout (a starting node hears the
/// others first) and chosen by `elect`.
bool coordinating(const node_state& st) {
  return !st.coordinator.empty() && st.coordinator == st.cfg.id &&
         clock_type::now() - st.started >= std::chrono::milliseconds(st.cfg.timeout_ms);
}

/// A seed that is up: its id and whether it says it coordinates.
struct seed_up {
  std::string id;
  bool claims = false;
};

/// The seeds that are up (this node included), in configured order.
std::vector<seed_up> seeds_up(const node_state& st) {
  std::vector<seed_up> result;
  for (const auto& seed : st.cfg.seeds) {
    if (seed == st.address) {
      result.push_back({st.cfg.id, coordinating(st)});
    } else if (auto i = st.peers.find(seed); i != st.peers.end() &&
                                             i->second.state == member_state::up &&
                                             i->second.node && !i->second.id.empty()) {
      result.push_back({i->second.id, i->second.coordinates});
    }
  }
  return result;
}

/// The coordinator as this node sees it, among `up` (see `seeds_up`). Only a side of the
/// cluster that sees a majority of the seeds up has one, so that a network cut never
/// leaves two (the minority waits). A member that coordinates keeps the role while it is
/// up: a seed that comes back joins as a member, as Akka's oldest node keeps its
/// singletons, so that the job it leads is not taken from it. Without one, the first seed
/// in configured order that is up coordinates; of two that claim it (after a cut heals),
/// the one earlier in the seeds.
std::string elect(const node_state& st, const std::vector<seed_up>& up) {
  if (st.cfg.seeds.empty()) {
    return st.cfg.id;
  }
  if (2 * up.size() <= st.cfg.seeds.size()) {
    return {};
  }
  for (const auto& s : up) {
    if (s.claims) {
      return s.id;
    }
  }
  return up.front().id;
}

/// Publishes the membership for the inspector.
void publish_view(node_ptr self) {
  auto& st = self->state;
  auto now = clock_type::now();
  std::vector<member_info> members;
  members.push_back(member_info{st.cfg.id, st.address, member_state::up, true, 0, st.view->http()});
  for (const auto& [address, p] : st.peers) {
    int64_t silent = -1;
    if (p.answered) {
      silent = std::chrono::duration_cast<std::chrono::milliseconds>(now - p.last_seen).count();
    }
    members.push_back(
      member_info{p.id.empty() ? address : p.id, address, p.state, false, silent, p.http});
  }
  auto up = seeds_up(st);
  auto coordinator = elect(st, up);
  std::sort(members.begin() + 1, members.end(),
            [](const member_info& a, const member_info& b) { return a.id < b.id; });
  // Who would coordinate if the coordinator went: the first other seed that is up.
  std::string successor;
  for (const auto& s : up) {
    if (s.id != coordinator) {
      successor = s.id;
      break;
    }
  }
  st.coordinator = coordinator;
  st.view->set(std::move(members), std::move(coordinator), std::move(successor));
}

/// The position in the seed list of the member `id` (seeds.size() when it is not a seed):
/// of two tables with one epoch, the one made by the earlier seed wins.
size_t seed_rank(const node_state& st, const std::string& id) {
  std::string address = id == st.cfg.id ? st.address : std::string{};
  for (const auto& [a, p] : st.peers) {
    if (p.id == id) {
      address = a;
    }
  }
  auto i = std::find(st.cfg.seeds.begin(), st.cfg.seeds.end(), address);
  return static_cast<size_t>(i - st.cfg.seeds.begin());
}

/// Keeps `table` if it is newer than the one this node has; returns true if it did.
bool adopt(node_ptr self, assignment table) {
  auto& st = self->state;
  bool newer = table.epoch > st.table.epoch ||
               (table.epoch == st.table.epoch && table.coordinator != st.table.coordinator &&
                seed_rank(st, table.coordinator) < seed_rank(st, st.table.coordinator));
  if (!newer) {
    return false;
  }
  st.table = std::move(table);
  if (auto err = st.table.save(st.cfg.table_file)) {
    log(log_level::error, "cluster", describe(err));
  }
  st.view->set_table(st.table);
  return true;
}

void send_table(node_ptr self);

/// The coordinator's part of a round: a new table when the members that are up changed
/// (after a first timeout, so that a starting node does not assign everything to itself
/// before it reached the others), then the table to every member that does not have it.
void coordinate(node_ptr self) {
  auto& st = self->state;
  // A node without seeds is not in a cluster: nothing to assign.
  if (st.cfg.seeds.empty() || st.coordinator != st.cfg.id ||
      clock_type::now() - st.started < std::chrono::milliseconds(st.cfg.timeout_ms)) {
    st.view->set_settled(false);
    return;
  }
  std::vector<std::string> up{st.cfg.id};
  for (const auto& [address, p] : st.peers) {
    if (p.state == member_state::up && !p.id.empty()) {
      up.push_back(p.id);
    }
  }
  std::vector<std::string> reasons;
  // Primaries of members that are up stay: balancing is the leader's rebalance, which
  // copies a partition's state to its target before it moves (job/job_actor.cpp).
  auto next = next_assignment(st.table, up, st.cfg.partitions, st.cfg.id, &reasons, false);
  if (next.epoch != st.table.epoch) {
    log(log_level::info, "cluster",
        "assignment epoch " + std::to_string(next.epoch) + " over " + std::to_string(up.size()) +
          " members: " + std::to_string(reasons.size()) + " changes");
    for (size_t i = 0; i < reasons.size() && i < 16; ++i) {
      log(log_level::debug, "cluster", reasons[i]);
    }
    st.table = std::move(next);
    if (auto err = st.table.save(st.cfg.table_file)) {
      log(log_level::error, "cluster", describe(err));
    }
    st.view->set_table(st.table);
  }
  send_table(self);
  bool settled = st.table.epoch > 0;
  for (const auto& [address, p] : st.peers) {
    if (p.node && p.state == member_state::up && p.table_epoch != st.table.epoch) {
      settled = false;
    }
  }
  st.view->set_settled(settled);
}

/// Sends the table to every member that is up and does not have it yet.
void send_table(node_ptr self) {
  auto& st = self->state;
  auto text = st.table.to_json();
  for (auto& [address, p] : st.peers) {
    if (p.node && p.state == member_state::up && p.table_epoch < st.table.epoch) {
      self
        ->request(p.node, std::chrono::milliseconds(st.cfg.timeout_ms), assignment_atom::value,
                  text)
        .then(
          [self, address = address](std::string& theirs) {
            // The member answers with the table it keeps: a newer one (made while this node
            // was away) becomes the base of the next version made here.
            std::string reason;
            if (auto t = assignment::from_json(theirs, reason)) {
              self->state.peers[address].table_epoch = t->epoch;
              if (t->epoch > self->state.table.epoch) {
                adopt(self, std::move(*t));
              }
            }
          },
          [](caf::error&) {});
    }
  }
}

void set_state(node_ptr self, const std::string& address, member_state s) {
  auto& p = self->state.peers[address];
  if (p.state != s) {
    log(s == member_state::up ? log_level::info : log_level::warn, "cluster",
        "member " + (p.id.empty() ? address : p.id) + " (" + address + ") is " + to_string(s));
    p.state = s;
    if (s != member_state::up) {
      p.coordinates = false;
    }
  }
}

/// Connects to the node actor at `address` and joins through it.
void connect(node_ptr self, const std::string& address) {
  auto& st = self->state;
  std::string host;
  uint16_t port = 0;
  if (!split_address(address, host, port)) {
    return;
  }
  st.peers[address].connecting = true;
  auto mm = self->system().middleman().actor_handle();
  auto timeout = std::chrono::milliseconds(std::max<uint32_t>(st.cfg.timeout_ms, 1000));
  self->request(mm, timeout, caf::connect_atom::value, host, port)
    .then(
      [self, address, timeout](caf::node_id& nid, caf::strong_actor_ptr& ptr,
                               std::set<std::string>&) {
        auto& now = self->state; // the state when the answer arrives
        if (nid == self->node() || !ptr) {
          // One of the seeds is this node under another name.
          now.peers.erase(address);
          return;
        }
        auto node = caf::actor_cast<caf::actor>(ptr);
        self->request(node, timeout, join_atom::value, now.cfg.id, now.address)
          .then(
            [self, address, node](std::string& members) {
              auto& p = self->state.peers[address];
              p.connecting = false;
              p.node = node;
              p.answered = true;
              p.last_seen = clock_type::now();
              self->monitor(node);
              learn(self, members);
              set_state(self, address, member_state::up);
              publish_view(self);
            },
            [self, address](caf::error&) { self->state.peers[address].connecting = false; });
      },
      [self, address](caf::error&) { self->state.peers[address].connecting = false; });
}

/// One heartbeat round: connect to the members not connected, ping the others, and mark
/// those silent for longer than the timeout unreachable.
void round(node_ptr self) {
  auto& st = self->state;
  auto now = clock_type::now();
  auto timeout = std::chrono::milliseconds(st.cfg.timeout_ms);
  for (auto& [address, p] : st.peers) {
    if (!p.node) {
      if (!p.connecting) {
        connect(self, address);
      }
      continue;
    }
    self->request(p.node, timeout, heartbeat_atom::value, st.cfg.id)
      .then(
        [self, address = address](std::string& id, bool coordinates, std::string& http) {
          auto& peer = self->state.peers[address];
          peer.id = id;
          peer.coordinates = coordinates;
          peer.http = std::move(http);
          peer.answered = true;
          peer.last_seen = clock_type::now();
          if (peer.node) {
            set_state(self, address, member_state::up);
          }
        },
        [](caf::error&) {});
    if (p.answered && now - p.last_seen > timeout) {
      set_state(self, address, member_state::unreachable);
    }
  }
  publish_view(self);
  coordinate(self);
}

/// A member leaves: the coordinator's leading jobs drain it; another node passes the
/// request on to the coordinator.
caf::result<std::string> leave(node_ptr self, const std::string& member) {
  auto& st = self->state;
  auto rp = self->make_response_promise<std::string>();
  if (st.coordinator != st.cfg.id) {
    for (auto& [address, p] : st.peers) {
      if (p.id == st.coordinator && p.node) {
        self->request(p.node, limits::drain_timeout, leave_atom::value, member)
          .then([rp](std::string& answer) mutable { rp.deliver(std::move(answer)); },
                [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      }
    }
    return make_error(errc::invalid_config, "the coordinator cannot be reached");
  }
  drop_terminated(st.leaders);
  if (st.leaders.empty()) {
    return std::string{"no job to drain"};
  }
  auto pending = std::make_shared<size_t>(st.leaders.size());
  for (auto& job : st.leaders) {
    self->request(job, limits::drain_timeout, leave_atom::value, member)
      .then(
        [rp, pending](std::string& answer) mutable {
          if (--*pending == 0) {
            rp.deliver(std::move(answer));
          }
        },
        [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  }
  return rp;
}

/// A connection to a member was lost.
void on_down(node_ptr self, const caf::down_msg& msg) {
  auto& st = self->state;
  for (auto& [address, p] : st.peers) {
    if (p.node && p.node.address() == msg.source) {
      p.node = caf::actor{};
      set_state(self, address, member_state::down);
    }
  }
  publish_view(self);
}

/// The middleman bound `port`: this node's address is known, and the rounds begin.
void start_node(node_ptr self, uint16_t port) {
  auto& st = self->state;
  if (auto saved = assignment::load(st.cfg.table_file); !saved) {
    log(log_level::error, "cluster", describe(saved.error()) + "; starting without it");
  } else if (*saved) {
    st.table = std::move(**saved);
    st.view->set_table(st.table);
  }
  st.cfg.port = port;
  st.address = st.cfg.host + ":" + std::to_string(port);
  if (st.cfg.id.empty()) {
    st.cfg.id = st.address;
  }
  st.view->set_self(st.cfg.id, st.cfg.seeds.size());
  for (const auto& seed : st.cfg.seeds) {
    if (seed != st.address) {
      st.peers.try_emplace(seed);
    }
  }
  round(self);
  self->send(self, tick_atom::value);
}

/// A member joins through this node (the sender): it is monitored, the others learn of it,
/// and it learns the members this node knows.
std::string on_join(node_ptr self, const std::string& id, const std::string& address) {
  auto& st = self->state;
  auto node = caf::actor_cast<caf::actor>(self->current_sender());
  if (address != st.address && node) {
    auto& p = st.peers[address];
    bool known = static_cast<bool>(p.node);
    p.id = id;
    p.node = node;
    p.answered = true;
    p.last_seen = clock_type::now();
    if (!known) {
      self->monitor(node);
    }
    set_state(self, address, member_state::up);
    // The others learn of it and connect to it themselves.
    for (auto& [other, q] : st.peers) {
      if (other != address && q.node) {
        self->send(q.node, member_atom::value, id, address);
      }
    }
    publish_view(self);
  }
  return members_text(st);
}

/// The host actor of `member`: this node's own, or asked of the member's node actor.
caf::result<caf::actor> host_of(node_ptr self, const std::string& member) {
  auto& st = self->state;
  if (member == st.cfg.id) {
    return st.cfg.host_actor;
  }
  for (auto& [address, p] : st.peers) {
    if (p.id == member && p.node && p.state == member_state::up) {
      auto rp = self->make_response_promise<caf::actor>();
      self->request(p.node, limits::host_lookup_timeout, host_atom::value, member)
        .then([rp](caf::actor& host) mutable { rp.deliver(std::move(host)); },
              [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    }
  }
  return make_error(errc::invalid_config, "member " + member + " is not up");
}

/// True when `id` is this node or a member that is up.
bool member_up(const node_state& st, const std::string& id) {
  if (id == st.cfg.id) {
    return true;
  }
  return std::any_of(st.peers.begin(), st.peers.end(), [&id](const auto& kv) {
    return kv.second.id == id && kv.second.node && kv.second.state == member_state::up;
  });
}

/// The leader of a job moves a partition (job/job_actor.cpp): only the coordinator changes
/// the table, and only to members that are up. Answers the table.
caf::result<std::string> reassign(node_ptr self, uint32_t row, const std::string& primary,
                                  const std::string& standby) {
  auto& st = self->state;
  if (st.coordinator != st.cfg.id) {
    return make_error(errc::invalid_config, "only the coordinator (" + st.coordinator +
                                              ") changes the assignment table, not " + st.cfg.id);
  }
  if (row >= st.table.partitions.size()) {
    return make_error(errc::invalid_config,
                      "no partition " + std::to_string(row) + " in the assignment table (" +
                        std::to_string(st.table.partitions.size()) + " partitions)");
  }
  for (const auto& id : {primary, standby}) {
    if (!id.empty() && !member_up(st, id)) {
      return make_error(errc::invalid_config, "member " + id + " is not up");
    }
  }
  if (primary.empty() || primary == standby) {
    return make_error(errc::invalid_config, "a partition needs a primary other than its standby");
  }
  auto& o = st.table.partitions[row];
  if (o.primary != primary || o.standby != standby) {
    o = partition_owner{primary, standby};
    ++st.table.epoch;
    st.table.coordinator = st.cfg.id;
    log(log_level::info, "cluster",
        "assignment epoch " + std::to_string(st.table.epoch) + ": partition " +
          std::to_string(row) + " primary " + primary + ", standby " +
          (standby.empty() ? "none" : standby));
    if (auto err = st.table.save(st.cfg.table_file)) {
      log(log_level::error, "cluster", describe(err));
    }
    st.view->set_table(st.table);
    send_table(self);
  }
  return st.table.to_json();
}

/// The coordinator sent its table: kept if it is newer than this node's.
std::string on_table(node_ptr self, const std::string& text) {
  std::string reason;
  if (auto table = assignment::from_json(text, reason)) {
    if (adopt(self, std::move(*table))) {
      log(log_level::info, "cluster",
          "assignment epoch " + std::to_string(self->state.table.epoch) + " from " +
            self->state.table.coordinator);
    }
  } else {
    log(log_level::warn, "cluster", "an assignment table that is not one: " + reason);
  }
  return self->state.table.to_json();
}

caf::behavior node_actor(node_ptr self, membership_config cfg, caf::actor inspector,
                         std::shared_ptr<cluster_view> view) {
  self->state.cfg = std::move(cfg);
  self->state.inspector = std::move(inspector);
  self->state.view = std::move(view);
  self->set_down_handler([self](caf::down_msg& msg) { on_down(self, msg); });
  return {
    [self](inspect_atom, const std::string& line) {
      return self->delegate(self->state.inspector, inspect_atom::value, line);
    },
    // The port is known once the middleman bound it.
    [self](start_atom, uint16_t port) { start_node(self, port); },
    [self](tick_atom) {
      round(self);
      self->delayed_send(self, std::chrono::milliseconds(self->state.cfg.heartbeat_ms),
                         tick_atom::value);
    },
    [self](join_atom, const std::string& id, const std::string& address) {
      return on_join(self, id, address);
    },
    [self](member_atom, const std::string& id, const std::string& address) {
      auto& st = self->state;
      if (address != st.address && st.peers.count(address) == 0) {
        st.peers[address].id = id;
      }
    },
    [self](heartbeat_atom, const std::string&) -> caf::result<std::string, bool, std::string> {
      return {self->state.cfg.id, coordinating(self->state), self->state.view->http()};
    },
    [self](lead_atom, const caf::actor& job) { self->state.leaders.push_back(job); },
    [self](leave_atom, const std::string& member) -> caf::result<std::string> {
      return leave(self, member);
    },
    [self](host_atom, const std::string& member) { return host_of(self, member); },
    [self](assignment_atom, uint32_t row, const std::string& primary, const std::string& standby) {
      return reassign(self, row, primary, standby);
    },
    [self](assignment_atom, const std::string& text) { return on_table(self, text); },
  };
}

} // namespace

const char* to_string(member_state s) noexcept {
  switch (s) {
    case member_state::up:
      return "up";
    case member_state::unreachable:
      return "unreachable";
    case member_state::down:
      return "down";
  }
  return "?";
}

caf::actor spawn_node_actor(caf::actor_system& sys, membership_config cfg, caf::actor inspector,
                            std::shared_ptr<cluster_view> view) {
  return sys.spawn(node_actor, std::move(cfg), std::move(inspector), std::move(view));
}

} // namespace eddy::detail
