#pragma once

// Private to the runtime: the host actor of a cluster node (see "Cluster" in the design
// notes). The job actor of a job runs on one node, the leader; every node's host actor
// builds, journals and spawns the key partitions that the assignment table places on its
// node, and keeps the standby copies of partitions whose primary runs elsewhere:
//   - `prepare` opens a partition's journal (the node's own copy, which is the standby's
//     copy after a failover) and answers its positions, so that the leader can plan where
//     every producer resumes;
//   - `spawn` spawns the prepared partition with the channels the leader wired; the leader
//     monitors it like a local stage;
//   - `replica` receives a consistent copy of a partition's journal file in chunks, and
//     `replicate` applies every transaction its primary commits afterwards;
//   - `done` tells the node that the job ended on the leader.
// A partition waiting for its standby's answer holds a scheduler thread meanwhile; a node
// in a cluster gets one scheduler thread more per partition (see engine.cpp), so that the
// host always finds a thread to answer on. (A detached host would not need them, but CAF
// 0.17 then kept the process from exiting: the host's thread waited for handles to it
// that the middleman held on to.)

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "plan/job_plan.hpp"

namespace eddy::detail {

/// The jobs this node runs, as the host builds their partitions. Thread-safe.
class host_registry {
public:
  struct job {
    job_env env;
    std::shared_ptr<job_handle::shared> shared;
  };

  void add(const std::string& name, job j) {
    std::lock_guard guard{mtx_};
    jobs_[name] = std::move(j);
  }
  /// A copy of the job's entry; nullopt when this node does not run `name`.
  [[nodiscard]] std::optional<job> find(const std::string& name) const {
    std::lock_guard guard{mtx_};
    auto i = jobs_.find(name);
    return i == jobs_.end() ? std::nullopt : std::optional<job>{i->second};
  }

private:
  mutable std::mutex mtx_;
  std::map<std::string, job> jobs_;
};

/// Spawns the host actor of this node.
caf::actor spawn_host(caf::actor_system& sys, std::shared_ptr<host_registry> jobs);

/// Index of instance `index` of node `node` among all instances of `g` (the job's order).
size_t instance_slot(const job_graph& g, size_t node, uint32_t index);

} // namespace eddy::detail
