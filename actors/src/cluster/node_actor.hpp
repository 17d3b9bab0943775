#pragma once

// Private to the runtime: cluster membership (see "Cluster" in docs/design.md). Every
// node publishes one node actor on --node.host:--node.port. It answers the console (by
// handing `inspect` requests to the inspector) and keeps the membership: it joins through
// the seeds, learns the other members from them, monitors every member it is connected to
// (CAF reports a lost connection as a down message) and sends heartbeats, so that a peer
// that is connected but hung shows as unreachable after --node.timeout-ms. The coordinator
// (the first seed that is up) keeps the assignment table: it makes a new version from the
// members that are up whenever they change, saves it and sends it to every member, which
// keeps the newest version it has seen (a new coordinator starts from it).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "eddy/cluster/assignment.hpp"

namespace eddy::detail {

/// How a member looks from this node.
enum class member_state : uint8_t {
  /// Answers heartbeats.
  up,
  /// Connected, but no heartbeat answer within the timeout (hung, overloaded, cut off).
  unreachable,
  /// The connection was lost, or never made.
  down,
};

/// "up", "unreachable", "down".
const char* to_string(member_state s) noexcept;

/// One member of the cluster as this node knows it.
struct member_info {
  std::string id;
  /// host:port its node actor is published on.
  std::string address;
  member_state state = member_state::down;
  bool self = false;
  /// Milliseconds since it last answered a heartbeat (0 for this node; -1: never).
  int64_t silent_ms = -1;
  /// host:port of its service's HTTP ingress (empty: none, or not known yet).
  std::string http;
};

/// The membership as last seen by the node actor; read by the inspector. Thread-safe.
class cluster_view {
public:
  void set(std::vector<member_info> members, std::string coordinator, std::string successor) {
    std::lock_guard guard{mtx_};
    members_ = std::move(members);
    coordinator_ = std::move(coordinator);
    successor_ = std::move(successor);
  }
  [[nodiscard]] std::vector<member_info> members() const {
    std::lock_guard guard{mtx_};
    return members_;
  }
  void set_self(std::string id, size_t seeds) {
    std::lock_guard guard{mtx_};
    self_ = std::move(id);
    seeds_ = seeds;
  }
  /// This node's id (empty until the node actor started).
  [[nodiscard]] std::string self_id() const {
    std::lock_guard guard{mtx_};
    return self_;
  }
  /// How many seeds are configured.
  [[nodiscard]] size_t seed_count() const {
    std::lock_guard guard{mtx_};
    return seeds_;
  }
  /// The id of the coordinator (see `elect` in cluster/node_actor.cpp): empty when this node sees
  /// no majority of the seeds up.
  [[nodiscard]] std::string coordinator() const {
    std::lock_guard guard{mtx_};
    return coordinator_;
  }
  /// The member that would coordinate if the coordinator went: the first other seed, in
  /// configured order, that is up (empty: none).
  [[nodiscard]] std::string successor() const {
    std::lock_guard guard{mtx_};
    return successor_;
  }
  /// This node's HTTP address (a service's ingress), told to the others in heartbeats.
  void set_http(std::string address) {
    std::lock_guard guard{mtx_};
    http_ = std::move(address);
  }
  [[nodiscard]] std::string http() const {
    std::lock_guard guard{mtx_};
    return http_;
  }
  void set_table(assignment table) {
    std::lock_guard guard{mtx_};
    table_ = std::move(table);
  }
  /// The newest assignment table this node knows.
  [[nodiscard]] assignment table() const {
    std::lock_guard guard{mtx_};
    return table_;
  }
  void set_settled(bool settled) {
    std::lock_guard guard{mtx_};
    settled_ = settled;
  }
  /// On the coordinator: every member that is up acknowledged the current table (a leader
  /// places partitions by no older one).
  [[nodiscard]] bool settled() const {
    std::lock_guard guard{mtx_};
    return settled_;
  }

private:
  mutable std::mutex mtx_;
  std::vector<member_info> members_;
  std::string coordinator_;
  std::string successor_;
  std::string http_;
  assignment table_;
  std::string self_;
  size_t seeds_ = 0;
  bool settled_ = false;
};

/// Drops the handles of actors that are gone from `actors` (local ones; a remote actor's
/// handle says nothing about it and stays).
inline void drop_terminated(std::vector<caf::actor>& actors) {
  std::erase_if(actors, [](const caf::actor& a) {
    return !a || a->getf(caf::abstract_actor::is_terminated_flag);
  });
}

/// What a node actor starts with.
struct membership_config {
  std::string id;
  std::string host;
  uint16_t port = 0;
  /// host:port of the seeds, in configured order (may include this node).
  std::vector<std::string> seeds;
  uint32_t heartbeat_ms = 500;
  uint32_t timeout_ms = 3000;
  /// Key partitions of the node's jobs: the rows of the assignment table.
  uint32_t partitions = 1;
  /// Where the assignment table is kept (<data-dir>/cluster/assignment.json).
  std::filesystem::path table_file;
  /// This node's host actor (host.hpp), which `host` requests of other nodes reach.
  caf::actor host_actor;
};

/// Spawns the node actor; `inspector` answers the console's `inspect` requests.
caf::actor spawn_node_actor(caf::actor_system& sys, membership_config cfg, caf::actor inspector,
                            std::shared_ptr<cluster_view> view);

} // namespace eddy::detail
