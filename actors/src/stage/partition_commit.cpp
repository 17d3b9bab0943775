// A key partition. Without durable state it is a transform stage like any other. With a
// journal it is the exactly-once unit of the job:
//   - the replay filter drops the records it applied before a crash;
//   - one transaction commits the state changes (coalesced per key and state), the input
//     positions, the timer changes and the output (the outbox) of a batch, or of all the
//     batches that were waiting in the mailbox (group commit: a commit rewrites every page
//     it touches, so small transactions cost far more than their rows);
//   - output is released downstream only after that commit, and stays in the outbox until
//     every durable consumer downstream acknowledged it, so a restart re-sends exactly
//     what may have been lost;
//   - output and credit of a group are held until its commit is done; at durability
//     machine the commit is one fsync for the whole group.

#include <chrono>

#include "eddy/core/assert.hpp"
#include "stage/partition.hpp"

namespace eddy::detail::partition_ops {

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string who(const partition_state& st) {
  return st.init->who();
}

/// Schedules a timer message for the earliest timer, unless one comes earlier already.
void schedule_timer(self_ptr self) {
  auto& st = self->state;
  if (st.init->failed()) {
    // A failed partition runs no user code; its timers stay in its journal.
    return;
  }
  auto next = st.logic->next_timer();
  if (!next || (st.timer_at && *st.timer_at <= *next)) {
    return;
  }
  st.timer_at = *next;
  auto delay = std::max<int64_t>(0, *next - now_ms());
  self->delayed_send(self, std::chrono::milliseconds(delay), timer_atom::value);
}

void schedule_commit(self_ptr self) {
  auto& st = self->state;
  st.sync_pending = true;
  if (st.commits_on_interval()) {
    self->delayed_send(self, std::chrono::milliseconds(st.init->opts.state.commit_interval_ms),
                       sync_atom::value);
  } else {
    self->send(self, sync_atom::value);
  }
}

/// Stamps the new output with this partition's output positions and keeps it for the
/// next commit.
void take_output(partition_state& st) {
  if (st.scratch->empty()) {
    return;
  }
  if (!st.init->ack_channels.empty()) {
    auto before = st.out_position;
    st.scratch->stamp_origins(st.init->ctx.producer, st.out_position);
    EDDY_ASSERT(st.out_position == before + st.scratch->size());
  }
  st.scratch->move_into(*st.held);
}

/// Folds the journal's log into its state rows and trims its history.
bool compact(self_ptr self) {
  auto& st = self->state;
  if (auto err = st.journal->compact(st.init->opts.state.keep_changes)) {
    log(log_level::error, "partition", who(st) + ": " + describe(err));
    self->quit(err);
    return false;
  }
  st.compacted_at = st.commits;
  st.logged = false;
  st.logic->compacted();
  return true;
}

/// Sends a consistent copy of the journal file to the standby: the journal is compacted
/// first, so the file holds everything and no write-ahead log is needed.
bool ship_copy(self_ptr self) {
  auto& st = self->state;
  if (!compact(self)) {
    return false;
  }
  if (auto err = ship_journal(self->system(), *st.init, *st.journal, st.journal->file())) {
    log(log_level::error, "partition", describe(err));
    self->quit(err);
    return false;
  }
  return true;
}

/// Commits everything since the last commit in one transaction. A journal failure stops
/// the partition with the journal's error.
bool commit_journal(self_ptr self, const std::string& origin) {
  auto& st = self->state;
  // The commit protocol: what was committed never runs ahead of what was assigned.
  EDDY_ASSERT(st.committed_out_position <= st.out_position);
  EDDY_ASSERT(st.committed_replayed_upto <= st.replayed_upto);
  commit_batch cb;
  cb.origin = origin;
  st.logic->collect(cb);
  cb.positions = st.filter.take_changes();
  bool outbox = !st.init->ack_channels.empty();
  if (outbox && !st.held->empty()) {
    outbox_entry entry;
    entry.first = st.committed_out_position + 1;
    entry.last = st.out_position;
    st.graph_node().encode_output(*st.held, entry.payload);
    cb.outbox_added.push_back(std::move(entry));
    cb.positions.emplace_back(out_position_key, st.out_position);
  }
  if (st.replayed_upto > st.committed_replayed_upto) {
    cb.positions.emplace_back(replayed_key, st.replayed_upto);
  }
  if (outbox) {
    uint64_t acked = UINT64_MAX;
    for (auto& [channel, position] : st.acked) {
      acked = std::min(acked, position);
    }
    if (acked != UINT64_MAX && acked > st.outbox_trimmed) {
      cb.outbox_acked = acked;
    }
  }
  bool empty = cb.changes.empty() && cb.positions.empty() && cb.timers_added.empty() &&
               cb.timers_removed.empty() && cb.timers_fired.empty() && cb.outbox_acked == 0;
  if (!empty) {
    cb.at_ms = now_ms();
    auto started = std::chrono::steady_clock::now();
    if (auto err = st.journal->commit(cb)) {
      log(log_level::error, "partition", who(st) + ": " + describe(err));
      self->quit(err);
      return false;
    }
    // The output of the commit goes out after this: with a waiting standby, only what
    // both copies hold is ever seen downstream.
    if (st.copy && st.copy->pending.size() >= limits::copy_pending_commits_max) {
      // The copy is slower than the stream: give it up rather than grow without bound.
      copy_failed(self, make_error(errc::io_failure,
                                   "more than " + std::to_string(limits::copy_pending_commits_max) +
                                     " commits were made while it travelled"));
    } else if (st.copy) {
      st.copy->pending.push_back(cb);
    } else if (st.init->standby && !to_standby(self, replicate_atom::value, cb)) {
      return false;
    }
    st.init->metrics->commit_latency.record(
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::steady_clock::now() - started)
                              .count()));
    st.committed_out_position = st.out_position;
    st.committed_replayed_upto = st.replayed_upto;
    // Consumers acknowledge only output they received, which was committed first.
    EDDY_ASSERT(cb.outbox_acked <= st.committed_out_position);
    if (cb.outbox_acked > 0) {
      st.outbox_trimmed = cb.outbox_acked;
    }
    ++st.commits;
    st.logged |= !cb.changes.empty();
    if (st.logged && (st.commits - st.compacted_at >= st.init->opts.state.compact_every ||
                      st.logic->wants_compaction())) {
      if (!compact(self)) {
        return false;
      }
    }
  }
  if (!cb.timers_added.empty()) {
    schedule_timer(self);
  }
  return true;
}

/// Commits everything since the last commit (with a journal) and releases the output.
/// `origin` says in the journal where the changes come from.
bool commit_now(self_ptr self, const std::string& origin) {
  auto& st = self->state;
  if (st.journal && !commit_journal(self, origin)) {
    return false;
  }
  if (!st.held->empty()) {
    st.held->move_into(st.out->buffer(st.held->size()));
    st.out->commit();
  }
  if (!st.journal) {
    // In memory the next timer is a look at a sorted set; durable commits reschedule when
    // they add timers.
    schedule_timer(self);
  }
  return true;
}

/// Lets the input watermark go downstream, unless output held for the next commit may be
/// older than it: then it waits for that commit, whose `advance_watermark` sends it, lest
/// it overtake that output.
void forward_watermark(partition_state& st, time_ms watermark) {
  if (st.held->empty()) {
    st.out->set_watermark(st.in->watermarks().forward());
  }
  st.init->metrics->watermark.store(watermark, std::memory_order_relaxed);
}

/// Event time, after a commit: fires the event-time timers the partition's watermark
/// passed (earliest first, committing their output and state), then lets the watermark go
/// downstream behind their output. Returns false if the partition quit.
bool advance_watermark(self_ptr self) {
  auto& st = self->state;
  const auto& marks = st.in->watermarks();
  auto watermark = marks.current();
  EDDY_ASSERT(watermark >= st.watermark_seen);
  st.watermark_seen = watermark;
  if (watermark != no_time && watermark > st.timers_fired_upto && !st.init->failed()) {
    while (st.logic->fire_event_timers(watermark, *st.scratch, timers_per_message_max) > 0) {
      take_output(st);
      if (st.commits_on_interval()) {
        // Their changes and output join the epoch, whose commit comes on time.
        if (!st.sync_pending) {
          schedule_commit(self);
        }
      } else if (!commit_now(self, "event timer")) {
        return false;
      }
    }
    st.timers_fired_upto = watermark;
  }
  forward_watermark(st, watermark);
  return true;
}

/// Event time with group commits: before the records of a batch, the watermark that came
/// with the batches before it. When a timer is due at it, the timers fire first (after
/// committing the group, without a commit interval), as they would after every batch
/// without groups, so that records are judged against the same watermark whatever the
/// grouping; otherwise the records just see it.
bool catch_up_watermark(self_ptr self) {
  auto& st = self->state;
  auto watermark = st.in->watermarks().current();
  EDDY_ASSERT(watermark >= st.watermark_seen);
  st.watermark_seen = watermark;
  if (watermark == no_time || watermark <= st.timers_fired_upto || st.init->failed()) {
    return true;
  }
  auto next = st.logic->next_event_timer();
  if (next && *next <= watermark) {
    take_output(st);
    // A commit per group fires on committed timers; an epoch fires them as they are.
    return (st.commits_on_interval() || commit_now(self)) && advance_watermark(self);
  }
  st.logic->set_watermark(watermark);
  st.timers_fired_upto = watermark;
  forward_watermark(st, watermark);
  return true;
}

/// After a group commit or a timer: sends what credit allows, pays held credit, finishes.
void release(self_ptr self) {
  auto& st = self->state;
  st.out->send_ready(self);
  if (!st.out->blocked()) {
    st.in->pay_owed(self);
  }
  schedule_linger(self, st);
  finish_transform_if_done(self);
}

/// Folds the journal's log before the first read of state (see `open_journal` in the
/// engine). Returns false if the partition quit.
/// In a cluster: records the incarnation's epoch in the journal, unless the journal belongs
/// to a newer one already (this incarnation is stale: it may neither commit nor emit).
bool take_ownership(self_ptr self) {
  auto& st = self->state;
  if (auto err = claim_journal(*st.init, *st.journal)) {
    log(log_level::error, "partition", describe(err));
    self->quit(err);
    return false;
  }
  return true;
}

bool ensure_recovered(self_ptr self) {
  auto& st = self->state;
  if (st.recovered) {
    return true;
  }
  st.recovered = true;
  if (st.journal) {
    if (auto err = st.journal->recover(st.init->opts.state.keep_changes)) {
      log(log_level::error, "partition", who(st) + ": " + describe(err));
      self->quit(err);
      return false;
    }
    if (st.init->owner_epoch > 0 && !take_ownership(self)) {
      return false;
    }
    if (st.init->standby && !ship_copy(self)) {
      return false;
    }
  }
  return true;
}

/// Re-sends the outbox entries that a durable consumer may not have committed.
bool replay_outbox(self_ptr self) {
  auto& st = self->state;
  auto entries = st.journal->outbox_after(st.init->resume_after);
  if (!entries) {
    self->quit(entries.error());
    return false;
  }
  size_t records = 0;
  for (auto& e : *entries) {
    st.graph_node().decode_output(e.payload, *st.scratch);
    records += st.scratch->size();
    st.scratch->move_into(st.out->buffer(st.scratch->size()));
    st.out->commit();
  }
  if (records > 0) {
    log(log_level::info, "partition",
        who(st) + " re-sends " + std::to_string(records) + " records from its outbox");
  }
  st.outbox_trimmed = st.init->resume_after;
  return true;
}

} // namespace eddy::detail::partition_ops
