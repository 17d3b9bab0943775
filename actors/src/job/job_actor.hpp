#pragma once

// Private to the runtime: the job actor's state and the functions its files share.
// job_actor.cpp builds incarnations and rebuilds them (see "Supervision" in
// docs/design.md), failure_policy.cpp decides what a failure leads to, job_admin.cpp
// answers the console, and cluster_job.cpp is what the job actor does in a cluster: wait
// for a settled assignment table, place partitions on their hosts, watch the members,
// leave gracefully (see "Cluster" in docs/design.md, cluster/host.hpp and
// cluster/relocation.hpp).

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "eddy/cluster/assignment.hpp"
#include "limits.hpp"
#include "plan/job_plan.hpp"
#include "savepoint/session.hpp"
#include "stage/stage.hpp"

namespace eddy::detail {

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

  // Cluster (env.cluster set, see host.hpp).

  /// Counts incarnations, so that answers meant for an earlier one are recognized.
  uint64_t incarnation = 0;
  /// This node coordinates and runs the job / hosts partitions for the coordinator.
  bool leading = false;
  bool following = false;
  /// The members are watched (`watch_members`) and the node actor knows this job actor
  /// leads (from the first time it led on).
  bool watching = false;
  /// An incarnation whose remote partitions are being prepared and spawned.
  std::vector<instance_plan> building;
  /// The host actor of every member, by id.
  std::map<std::string, caf::actor> hosts;
  /// The table the incarnation under way was placed by.
  assignment table;
  clock_type::time_point waiting_since = clock_type::now();
  bool started_once = false;
  /// Moves partitions between members (relocation.hpp); spawned when this node leads.
  caf::actor relocation;
  /// The restart under way switches moved partitions to their new primaries: answered
  /// once the next incarnation started.
  std::vector<caf::typed_response_promise<bool>> switches;

  // Savepoints (job_savepoint.cpp).

  /// The savepoint under way, the console requests waiting for it, and the cuts so far.
  std::shared_ptr<savepoint_session> savepoint;
  std::vector<caf::typed_response_promise<std::string>> savepoint_waiting;
  uint64_t cuts_taken = 0;
  /// The job ended while its savepoint was being copied: it finishes once that is done.
  bool finish_after_savepoint = false;
};

using job_ptr = caf::stateful_actor<job_state>*;

using limits::host_timeout;

// job/job_actor.cpp

/// Spawns an incarnation and starts it.
void spawn_incarnation(job_ptr self, std::vector<instance_plan> plan);
/// An incarnation could not be built (a host did not answer): the job tries again.
void build_failed(job_ptr self, uint64_t incarnation, const std::string& what,
                  const caf::error& err);
/// Backoff before the restart that makes `n` restarts in the window.
clock_type::duration backoff(const supervision_options& opts, size_t n);
/// Stops every stage of the incarnation; the next one is built `delay` from now, once all
/// of them are down. A restart that is not a failure's (the switch of a move) is not
/// `counted` among the job's restarts.
void restart_after(job_ptr self, clock_type::duration delay, bool counted = true);
/// The last stage of the incarnation under way is down: the next one is built at
/// `restart_at`.
void rebuild_when_due(job_ptr self);
/// The job ended: its handle learns it, and the job actor quits.
void finish_job(job_ptr self);

/// Actor `k`'s name ("count/3").
std::string name_of(const job_state& st, size_t k);
/// Marks actor `k` failed with `cause`: the next incarnations run a stand-in that
/// dead-letters its input.
void mark_failed(job_state& st, size_t k, std::string cause);
/// Stops a stage of the current incarnation; the exit jumps the queue of its mailbox.
void stop_stage(job_ptr self, const stage_actor& stage);
/// Stops the whole job with `reason`.
void escalate(job_ptr self, caf::error reason);

// job/failure_policy.cpp

/// Decides what the failure of actor `k` with `reason` leads to (`report`: the record its
/// user code failed on, if any).
void on_failure(job_ptr self, size_t k, const caf::error& reason,
                const detail::failure_report* report);
/// The failure policy of every node of `g`: the one set in code, overridden by
/// `--supervision.policy`.
caf::expected<std::vector<failure_policy>> policies_of(const job_graph& g,
                                                       const supervision_options& opts);

// job/job_admin.cpp

/// Runs a console request on the stages `target` names ("count/3", every instance of
/// "count", or "*"); their replies are gathered in the job's order.
caf::result<std::vector<admin_answer>> route_admin(job_ptr self, const std::string& target,
                                                   const admin_request& request);
/// Console `move`, `leave` and `rebalance`, passed on to the relocation actor.
caf::result<std::string> move_partition(job_ptr self, uint32_t row, const std::string& to);
caf::result<std::string> drain_member(job_ptr self, const std::string& member);
caf::result<std::string> rebalance_job(job_ptr self, const std::string& mode);
/// Console `kill`: the actor exits abnormally and supervision does the rest.
void kill_from_console(job_ptr self, const std::string& actor);
/// Resumes every stage (a stage paused from the console would keep the job from draining).
void resume_stages(job_ptr self);

/// Spawns the job actor, which runs `plan` (the first incarnation) and supervises the job.
caf::actor spawn_job_actor(caf::actor_system& sys, std::shared_ptr<job_handle::shared> shared,
                           job_env env, std::vector<instance_plan> plan);

// job/job_savepoint.cpp

/// --savepoint.dir, or <data-dir>/savepoints.
std::filesystem::path savepoint_root(const job_env& env);
/// Console `savepoint [--stop]`: answered with a JSON text of the savepoint once complete.
caf::result<std::string> take_savepoint(job_ptr self, bool stop);
/// The session of cut `cut` completed (empty `error`) or failed.
void savepoint_done(job_ptr self, uint64_t cut, const std::string& error,
                    const std::string& summary);
/// The alignment of cut `cut` is due: if some stage has not reported, the savepoint is
/// given up.
void check_alignment(job_ptr self, uint64_t cut);
/// Gives up the savepoint under way, if any.
void abort_savepoint(job_ptr self, const std::string& why);
/// The last stage is down: true if the job finishes only once its savepoint is written
/// (`savepoint --stop`); a savepoint that can no longer complete is aborted.
bool savepoint_holds_finish(job_ptr self);
/// Console `savepoints`: the one under way and those in the savepoint directory (JSON text).
std::string savepoints_json(job_ptr self);

// job/cluster_job.cpp

/// In a cluster: true when this node leads the job and the assignment table places every
/// partition on members that are up (kept in `st.table`). Otherwise looks again soon,
/// unless this node hosts partitions for another leader.
bool cluster_ready(job_ptr self);
/// Finds the host actor of every member the table names, then prepares the partitions
/// placed on other members and spawns the incarnation.
void place_and_spawn(job_ptr self, std::vector<instance_plan> plan);
/// Gives up the partitions of members that became unreachable (see cluster_job.cpp).
void watch_members(job_ptr self);
/// Why this node cannot move the job's partitions.
std::string not_leading(const job_state& st);
/// Stop of a node that only hosts partitions: it leaves once drained.
void leave_cluster(job_ptr self);

} // namespace eddy::detail
