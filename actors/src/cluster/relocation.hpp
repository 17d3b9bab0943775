#pragma once

// Private to the runtime: the relocation actor of a job that runs on this node, its leader
// in a cluster (see "Cluster" in docs/design.md). It moves key partitions between
// members while the job runs, with a warm handoff:
//   1. the target becomes the partition's standby: the coordinator's table says so, and
//      the running partition copies a snapshot of its journal there in chunks while it
//      keeps processing, then the commits it made meanwhile (`standby` request);
//   2. once the copy is current, the table makes the target the primary and the old
//      primary its standby, and the job actor switches: it stops the incarnation and
//      builds the next one from the journals, the moved partition from its copy on the
//      target (exactly-once across the move as across any restart). Moves whose copies
//      are current switch together, so a rebalance pauses the job once per round.
// The pause is the switch, not the copy: it does not grow with the state's size.
// Moves come from the console (`move`), from a rebalance (its plan, with a reason for
// every move, `--dry-run` to only print it) and from a member that joins (a rebalance of
// its own). At most `moves_max` copies run at once; `rebalance --abort` drops the moves
// that have not started.

#include <cstdint>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "plan/job_plan.hpp"

namespace eddy::detail {

struct relocation_config {
  std::string job;
  /// The job actor: answers `move, partition` with the partition's running instances and
  /// the standby it runs with, and `move, "switch"` once the next incarnation started.
  caf::actor job_actor;
  std::shared_ptr<const cluster_env> cluster;
  /// Rows of the assignment table the job uses (its partitions).
  uint32_t partitions = 1;
  uint32_t moves_max = 1;
  /// Rebalance when a member joins.
  bool rebalance_on_join = true;
};

/// Spawns the relocation actor. It answers `move, partition, member` and
/// `rebalance, mode` (mode "run", "dry-run", "abort" or "status") with JSON text, and
/// takes the `progress` reports of partitions copying their journals.
caf::actor spawn_relocation(caf::actor_system& sys, relocation_config cfg);

} // namespace eddy::detail
