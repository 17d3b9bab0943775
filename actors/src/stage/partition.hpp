#pragma once

// Private to the partition stage: the functions its four files share. A partition is one
// actor; every function here runs on it (`self`) and none is thread-safe.
//   partition_actor.cpp   the handlers, batches in, the end of input
//   partition_commit.cpp  the commit protocol: output held in the outbox until the
//                         transaction that covers it, timers and watermarks after commits,
//                         recovery at the first message
//   partition_admin.cpp   the console's requests (state, history, set, snapshot, ...) and
//                         re-processing dead letters
//   standby_copy.cpp      a copy of the journal sent to a new standby while it runs

#include <cstdint>
#include <optional>
#include <string>

#include "eddy/core/log.hpp"
#include "limits.hpp"
#include "stage/standby.hpp"
#include "stage/transform_stage.hpp"

namespace eddy::detail::partition_ops {

using self_ptr = stage_actor::stateful_pointer<partition_state>;

/// Journal key of the last output position a partition assigned.
constexpr uint64_t out_position_key = 0;
/// Journal key of the last dead letter a partition re-processed (see `replay_dead_letters`).
constexpr uint64_t replayed_key = INT64_MAX;
using limits::timers_per_message_max;

int64_t now_ms();
std::string who(const partition_state& st);

// partition_commit.cpp

/// Schedules a timer message for the earliest timer, unless one comes earlier already.
void schedule_timer(self_ptr self);
/// Schedules the next commit: for the group of batches already in the mailbox (they are
/// processed before this message), or after the commit interval.
void schedule_commit(self_ptr self);
/// Stamps the new output with this partition's output positions and keeps it for the
/// next commit.
void take_output(partition_state& st);
/// Folds the journal's log into its state rows and trims its history.
bool compact(self_ptr self);
/// Sends a consistent copy of the journal file to the standby.
bool ship_copy(self_ptr self);
/// Commits everything since the last commit in one transaction. A journal failure stops
/// the partition with the journal's error.
bool commit_journal(self_ptr self, const std::string& origin);
/// Commits everything since the last commit (with a journal) and releases the output.
/// `origin` says in the journal where the changes come from.
bool commit_now(self_ptr self, const std::string& origin = "batch");
/// Fires the event-time timers the watermark passed, then forwards the watermark.
bool advance_watermark(self_ptr self);
/// Before the records of a batch, the watermark that came with the batches before it.
bool catch_up_watermark(self_ptr self);
/// After a group commit or a timer: sends what credit allows, pays held credit, finishes.
void release(self_ptr self);
/// Recovers the journal at the first message; false if the partition quit.
bool ensure_recovered(self_ptr self);
/// Re-sends the outbox entries that a durable consumer may not have committed.
bool replay_outbox(self_ptr self);

// partition_admin.cpp

/// Re-processes this partition's pending dead letters (see the definition).
bool replay_dead_letters(self_ptr self, bool forced = false, size_t* replayed = nullptr);
/// The console requests only partitions answer; nullopt for the others.
std::optional<admin_reply> partition_admin(self_ptr self, const admin_request& r);

// standby_copy.cpp

/// A `standby` request: makes `host` the standby while the partition keeps running.
caf::result<std::string> start_copy(self_ptr self, caf::actor host);
/// The standby copy could not be made: the partition runs on without a standby.
void copy_failed(self_ptr self, const caf::error& err);

/// Sends `xs` to the standby's host (see standby.hpp). A standby that cannot take it stops
/// the partition: the job restarts with a standby that can (see "Cluster" in
/// docs/design.md).
template <class Atom, class... Ts>
inline bool to_standby(self_ptr self, Atom atom, const Ts&... xs) {
  if (auto err = detail::to_standby(self->system(), *self->state.init, atom, xs...)) {
    log(log_level::error, "partition", describe(err));
    self->quit(err);
    return false;
  }
  return true;
}

} // namespace eddy::detail::partition_ops
