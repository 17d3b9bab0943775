#pragma once

// Every fixed timeout, bound and pacing interval of the runtime, in one place, with the
// relations between them checked at compile time. What users configure (--node.timeout-ms,
// --supervision.*, --state.*) is in eddy/config/options.hpp; these are the values behind
// it. Names put the qualifier last: `<what>_timeout`, `<what>_max`, `<what>_interval`.
// Included from every folder of actors/src (it depends on nothing of the runtime).

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace eddy::detail::limits {

using namespace std::chrono_literals;

// -- Console requests ------------------------------------------------------------------

/// How long the job actor waits for a stage to answer a console request.
constexpr auto stage_admin_timeout = std::chrono::milliseconds{3s};
/// How long the inspector waits for a job actor to gather its stages' answers.
constexpr auto inspector_ask_timeout = std::chrono::milliseconds{5s};
/// How long the inspector waits for a job actor to pass `move`, `leave` or `rebalance` on
/// to the relocation actor and get its answer.
constexpr auto inspector_move_timeout = std::chrono::milliseconds{15s};
/// How long the inspector waits for a savepoint to complete (the console's own --timeout-ms
/// may give up sooner; the savepoint goes on and `savepoints` shows it).
constexpr auto inspector_savepoint_timeout = std::chrono::milliseconds{std::chrono::minutes{30}};
/// A `tail` keeps at most this many records waiting for the console to fetch them.
constexpr size_t tap_buffer_max = 2000;
/// A `tail` the console stopped fetching ends after this long.
constexpr auto tap_idle_timeout = std::chrono::milliseconds{10s};
/// Records one stage reports to a `tail` tap per batch.
constexpr size_t tap_records_per_batch_max = 32;

// -- Job and hosts ---------------------------------------------------------------------

/// How long the job actor waits for a host (its own node's or another member's).
constexpr auto host_timeout = std::chrono::milliseconds{10s};
/// How long the node actor waits for another member's node actor to name its host.
constexpr auto host_lookup_timeout = std::chrono::milliseconds{5s};
/// How often the job actor looks again for a settled table while waiting for the cluster.
constexpr auto cluster_wait_interval = std::chrono::milliseconds{100};
/// How often a job that runs on another coordinator looks again whether this node should
/// take it over.
constexpr auto follower_wait_interval = std::chrono::milliseconds{200};

// -- Relocation ------------------------------------------------------------------------

/// How long a console `move` or `rebalance` waits for the relocation actor to accept it.
constexpr auto relocation_ask_timeout = std::chrono::milliseconds{10s};
/// How long the relocation actor waits for a node actor, a host or the job actor.
constexpr auto relocation_peer_timeout = std::chrono::milliseconds{10s};
/// How long draining a member (`leave`) may take before the request fails.
constexpr auto drain_timeout = std::chrono::milliseconds{10min};
/// How long the copy of one partition's journal to its target may take.
constexpr auto copy_timeout = std::chrono::milliseconds{30min};
/// How long the switch to the new placement (a restart of the job) may take.
constexpr auto switch_timeout = std::chrono::milliseconds{2min};
/// How often the relocation actor looks at the moves under way.
constexpr auto relocation_tick_interval = std::chrono::milliseconds{500};
/// Attempts of a move before it fails (a restart of the job interrupts a copy).
constexpr size_t move_attempts_max = 5;
/// Finished moves kept for `rebalance --status`.
constexpr size_t move_history_max = 64;

// -- Standby copies --------------------------------------------------------------------

/// Bytes of journal per chunk of a standby copy.
constexpr size_t copy_chunk_bytes = size_t{1} << 20;
/// How long a partition waits for a standby's host to take one chunk.
constexpr auto copy_chunk_timeout = std::chrono::milliseconds{60s};
/// Commits a partition keeps while its journal travels to a new standby, sent once the
/// copy is in place. Beyond it the copy is abandoned (the partition runs on without a
/// standby, as when a copy fails), so that a slow standby cannot grow the partition's
/// memory without bound.
constexpr size_t copy_pending_commits_max = 4096;

// -- Partitions and sources -------------------------------------------------------------

/// Timers a partition fires per message before it yields to batches.
constexpr size_t timers_per_message_max = 256;
/// With a commit interval: batches of output (of `--runtime.batch-events-max` records) a
/// partition holds for its next commit before it commits early, so that a long interval
/// on a busy stream does not grow its memory without bound.
constexpr size_t held_output_batches_max = 16;
/// Threads that open a job's partitions and their journals when it starts (at most one per
/// core).
constexpr size_t plan_threads_max = 4;
/// Polls a source makes per message before it yields to other messages.
constexpr int pulls_per_message_max = 4;

// -- Relations -------------------------------------------------------------------------

static_assert(inspector_ask_timeout > stage_admin_timeout,
              "the inspector must wait longer than the job actor waits for its stages, or a "
              "slow stage turns a whole answer into a timeout");
static_assert(inspector_move_timeout > relocation_ask_timeout,
              "the job actor passes a move on to the relocation actor and waits for it");
static_assert(drain_timeout > relocation_ask_timeout);
static_assert(copy_timeout > copy_chunk_timeout, "a whole copy takes at least one chunk");
static_assert(switch_timeout > host_timeout, "a switch restarts the job, which asks hosts");
static_assert(cluster_wait_interval < host_timeout);
static_assert(tap_records_per_batch_max <= tap_buffer_max);
static_assert(copy_pending_commits_max > 0 && timers_per_message_max > 0);
static_assert(held_output_batches_max > 0);

} // namespace eddy::detail::limits
