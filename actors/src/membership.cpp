#include "membership.hpp"

#include <algorithm>
#include <map>
#include <set>

#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <nlohmann/json.hpp>

#include "eddy/actors/messages.hpp"
#include "eddy/core/log.hpp"

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
};

struct node_state {
  static constexpr const char* name = "node";
  membership_config cfg;
  std::string address;
  caf::actor inspector;
  std::shared_ptr<cluster_view> view;
  std::map<std::string, peer> peers;
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

/// Publishes the membership for the inspector.
void publish_view(node_ptr self) {
  auto& st = self->state;
  auto now = clock_type::now();
  std::vector<member_info> members;
  members.push_back(member_info{st.cfg.id, st.address, member_state::up, true, 0});
  for (const auto& [address, p] : st.peers) {
    int64_t silent = -1;
    if (p.answered) {
      silent = std::chrono::duration_cast<std::chrono::milliseconds>(now - p.last_seen).count();
    }
    members.push_back(member_info{p.id.empty() ? address : p.id, address, p.state, false, silent});
  }
  std::string coordinator;
  for (const auto& seed : st.cfg.seeds) {
    if (seed == st.address) {
      coordinator = st.cfg.id;
      break;
    }
    if (auto i = st.peers.find(seed); i != st.peers.end() && i->second.state == member_state::up) {
      coordinator = i->second.id;
      break;
    }
  }
  if (st.cfg.seeds.empty()) {
    coordinator = st.cfg.id;
  }
  std::sort(members.begin() + 1, members.end(),
            [](const member_info& a, const member_info& b) { return a.id < b.id; });
  st.view->set(std::move(members), std::move(coordinator));
}

void set_state(node_ptr self, const std::string& address, member_state s) {
  auto& p = self->state.peers[address];
  if (p.state != s) {
    log(s == member_state::up ? log_level::info : log_level::warn, "cluster",
        "member " + (p.id.empty() ? address : p.id) + " (" + address + ") is " + to_string(s));
    p.state = s;
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
        auto& st = self->state;
        if (nid == self->node() || !ptr) {
          // One of the seeds is this node under another name.
          st.peers.erase(address);
          return;
        }
        auto node = caf::actor_cast<caf::actor>(ptr);
        self->request(node, timeout, join_atom::value, st.cfg.id, st.address)
          .then(
            [self, address, node](std::string& members) {
              auto& st = self->state;
              auto& p = st.peers[address];
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
        [self, address = address](std::string& id) {
          auto& p = self->state.peers[address];
          p.id = id;
          p.answered = true;
          p.last_seen = clock_type::now();
          if (p.node) {
            set_state(self, address, member_state::up);
          }
        },
        [](caf::error&) {});
    if (p.answered && now - p.last_seen > timeout) {
      set_state(self, address, member_state::unreachable);
    }
  }
  publish_view(self);
}

caf::behavior node_actor(node_ptr self, membership_config cfg, caf::actor inspector,
                         std::shared_ptr<cluster_view> view) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.inspector = std::move(inspector);
  st.view = std::move(view);
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    for (auto& [address, p] : st.peers) {
      if (p.node && p.node.address() == msg.source) {
        p.node = caf::actor{};
        set_state(self, address, member_state::down);
      }
    }
    publish_view(self);
  });
  return {
    [self](inspect_atom, const std::string& line) {
      return self->delegate(self->state.inspector, inspect_atom::value, line);
    },
    [self](start_atom, uint16_t port) {
      // The port is known once the middleman bound it.
      auto& st = self->state;
      st.cfg.port = port;
      st.address = st.cfg.host + ":" + std::to_string(port);
      if (st.cfg.id.empty()) {
        st.cfg.id = st.address;
      }
      for (const auto& seed : st.cfg.seeds) {
        if (seed != st.address) {
          st.peers.try_emplace(seed);
        }
      }
      round(self);
      self->send(self, tick_atom::value);
    },
    [self](tick_atom) {
      round(self);
      self->delayed_send(self, std::chrono::milliseconds(self->state.cfg.heartbeat_ms),
                         tick_atom::value);
    },
    [self](join_atom, const std::string& id, const std::string& address) -> std::string {
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
    },
    [self](member_atom, const std::string& id, const std::string& address) {
      auto& st = self->state;
      if (address != st.address && st.peers.count(address) == 0) {
        st.peers[address].id = id;
      }
    },
    [self](heartbeat_atom, const std::string&) { return self->state.cfg.id; },
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
