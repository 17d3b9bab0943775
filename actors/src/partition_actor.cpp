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
#include <fstream>

#include <caf/scoped_actor.hpp>

#include <nlohmann/json.hpp>

#include "eddy/core/log.hpp"
#include "standby.hpp"
#include "transform_stage.hpp"

namespace eddy::detail {

namespace {

using self_ptr = stage_actor::stateful_pointer<partition_state>;

/// Journal key of the last output position a partition assigned.
constexpr uint64_t out_position_key = 0;
/// Journal key of the last dead letter a partition re-processed (see `replay_dead_letters`).
constexpr uint64_t replayed_key = INT64_MAX;
/// Timers fired per message before yielding to batches.
constexpr size_t timers_per_message = 256;

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

/// Stamps the new output with this partition's output positions and keeps it for the
/// next commit.
void take_output(partition_state& st) {
  if (st.scratch->empty()) {
    return;
  }
  if (!st.init->ack_channels.empty()) {
    st.scratch->stamp_origins(st.init->ctx.producer, st.out_position);
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

/// Sends `xs` to the standby's host (see standby.hpp). A standby that cannot take it stops
/// the partition: the job restarts with a standby that can (see "Cluster" in the design
/// notes).
template <class Atom, class... Ts>
bool to_standby(self_ptr self, Atom atom, const Ts&... xs) {
  if (auto err = detail::to_standby(self->system(), *self->state.init, atom, xs...)) {
    log(log_level::error, "partition", describe(err));
    self->quit(err);
    return false;
  }
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
    if (st.copy) {
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
bool commit_now(self_ptr self, const std::string& origin = "batch") {
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

/// Event time, after a commit: fires the event-time timers the partition's watermark
/// passed (earliest first, committing their output and state), then lets the watermark go
/// downstream behind their output. Returns false if the partition quit.
bool advance_watermark(self_ptr self) {
  auto& st = self->state;
  const auto& marks = st.in->watermarks();
  auto watermark = marks.current();
  if (watermark != no_time && watermark > st.timers_fired_upto && !st.init->failed()) {
    while (st.logic->fire_event_timers(watermark, *st.scratch, timers_per_message) > 0) {
      take_output(st);
      if (!commit_now(self, "event timer")) {
        return false;
      }
    }
    st.timers_fired_upto = watermark;
  }
  st.out->set_watermark(marks.forward());
  st.init->metrics->watermark.store(watermark, std::memory_order_relaxed);
  return true;
}

/// Event time with group commits: before the records of a batch, the watermark that came
/// with the batches before it. When a timer is due at it, the group commits and the timers
/// fire first (as they would after every batch without groups), so that records are judged
/// against the same watermark whatever the grouping; otherwise the records just see it.
bool catch_up_watermark(self_ptr self) {
  auto& st = self->state;
  auto watermark = st.in->watermarks().current();
  if (watermark == no_time || watermark <= st.timers_fired_upto || st.init->failed()) {
    return true;
  }
  auto next = st.logic->next_event_timer();
  if (next && *next <= watermark) {
    take_output(st);
    return commit_now(self) && advance_watermark(self);
  }
  st.logic->set_watermark(watermark);
  st.timers_fired_upto = watermark;
  st.out->set_watermark(st.in->watermarks().forward());
  st.init->metrics->watermark.store(watermark, std::memory_order_relaxed);
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

void finish_input(self_ptr self) {
  auto& st = self->state;
  // Timers read from the journal: commit pending timer changes first.
  take_output(st);
  if (!commit_now(self)) {
    return;
  }
  // Every input ended: the watermark is at the end, every event-time timer fires.
  if (!advance_watermark(self)) {
    return;
  }
  // Timers already due fire before the partition ends; later ones stay in the journal.
  while (!st.init->failed() &&
         st.logic->fire_timers(now_ms(), *st.scratch, timers_per_message) > 0) {
    take_output(st);
    if (!commit_now(self)) {
      return;
    }
  }
  take_output(st);
  if (!commit_now(self)) {
    return;
  }
  // With an outbox this partition is the producer of its output; without one nothing
  // downstream keeps positions.
  std::shared_ptr<const frontier> ends;
  if (!st.init->ack_channels.empty()) {
    ends = std::make_shared<const frontier>(frontier{{st.init->ctx.producer, st.out_position}});
  }
  st.out->close(std::move(ends));
  st.out->send_ready(self);
  // The output is on its way; now a clean journal for the next start.
  if (st.journal && st.logged && !compact(self)) {
    return;
  }
  st.closing = true;
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

void on_batch(self_ptr self, batch& b) {
  auto& st = self->state;
  if (!ensure_recovered(self)) {
    return;
  }
  auto& m = *st.init->metrics;
  if (park_if_paused(st.ctl, b)) {
    return;
  }
  auto* ch = st.in->admit(self, b, m);
  if (ch == nullptr) {
    return;
  }
  // Before this batch counts as taken in: a commit here holds only the batches before it.
  if (b.size() > 0 && st.journal && !catch_up_watermark(self)) {
    return;
  }
  if (b.size() > 0 && st.journal) {
    m.duplicates_dropped.fetch_add(st.filter.admit(b.channel, *b.records),
                                   std::memory_order_relaxed);
  }
  if (b.size() > 0 && !consume_input(self, *b.records)) {
    return;
  }
  if (b.size() > 0 && st.ctl.tap) {
    tap_records(st.ctl, who(st), *b.records, 0, input_describer(*st.init), st.logic.get());
  }
  if (b.size() > 0) {
    process_reporting(*st.init, *st.logic, *b.records, *st.scratch);
    take_output(st);
  }
  if (b.last) {
    st.in->mark_finished(b);
    if (st.journal && b.ends) {
      st.filter.advance(b.channel, *b.ends);
    }
  }
  st.in->observe_watermark(b);
  bool group = st.journal != nullptr;
  if (st.in->all_finished()) {
    finish_input(self);
  } else if (!group) {
    if (!commit_now(self) || !advance_watermark(self)) {
      return;
    }
  } else if (!st.sync_pending) {
    // Batches already in the mailbox are processed before this message: they join the
    // group.
    st.sync_pending = true;
    self->send(self, sync_atom::value);
  }
  m.keys.store(st.logic->key_count(), std::memory_order_relaxed);
  bool hold = group && st.sync_pending && !st.closing;
  st.out->send_ready(self);
  st.in->consumed(self, b.channel, *ch, hold || st.out->blocked(), std::move(b.records));
  schedule_linger(self, st);
  finish_transform_if_done(self);
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

/// With `--supervision.replay-dead-letters`: processes this partition's pending dead
/// letters before any input, commits, and marks them replayed. Exactly once: the id of the
/// last one goes into the same commit as the state changes they made, and a restart skips
/// what that id covers. A dead letter that fails again is handled like any poison record
/// and stays pending. Returns false if the partition quit. `forced`: asked from the console,
/// whatever the option says; `replayed` counts the re-processed records.
bool replay_dead_letters(self_ptr self, bool forced = false, size_t* replayed = nullptr) {
  auto& st = self->state;
  auto& init = *st.init;
  if ((!forced && !init.opts.supervision.replay_dead_letters) || !init.dead_letters ||
      !st.journal || init.failed()) {
    return true;
  }
  failed_record_query q;
  q.job = init.ctx.job;
  q.op = init.ctx.node;
  auto letters = init.dead_letters->list(q);
  if (!letters) {
    self->quit(letters.error());
    return false;
  }
  const auto& spec = st.graph_node();
  const auto& input = init.graph->node(*spec.input);
  auto records = input.make_output_buffer(letters->size());
  auto one = input.make_output_buffer(1);
  std::vector<int64_t> done;
  int64_t last = 0;
  for (const auto& l : *letters) {
    if (l.partition != init.ctx.index) {
      continue;
    }
    if (static_cast<uint64_t>(l.id) <= st.committed_replayed_upto) {
      // Re-processed and committed before a crash; only the mark was lost.
      done.push_back(l.id);
      continue;
    }
    if (l.payload.empty()) {
      log(log_level::warn, "partition",
          who(st) + ": dead letter " + std::to_string(l.id) + " has no payload to replay");
      continue;
    }
    one->clear();
    input.decode_output(l.payload, *one);
    // Replayed records carry their dead letter's id, so that one failing again is known.
    uint64_t position = static_cast<uint64_t>(l.id) - 1;
    one->stamp_origins(dead_letter_producer, position);
    if (drop_poison(init, *one) > 0) {
      continue;
    }
    one->move_into(*records);
    done.push_back(l.id);
    last = l.id;
  }
  if (records->size() > 0) {
    process_reporting(init, *st.logic, *records, *st.scratch);
    take_output(st);
    st.replayed_upto = static_cast<uint64_t>(last);
    if (!commit_now(self)) {
      return false;
    }
    log(log_level::info, "partition",
        who(st) + " re-processed " + std::to_string(records->size()) + " dead letters");
    if (replayed != nullptr) {
      *replayed = records->size();
    }
  }
  if (!done.empty()) {
    if (auto err = init.dead_letters->mark_replayed(done)) {
      log(log_level::warn, "partition", who(st) + ": " + describe(err));
    }
  }
  return true;
}

/// `set`: an audited edit of a key's state, applied as the keyed function would apply it
/// and committed through the journal as one change whose origin says who, why and what the
/// old values were; `history` shows it. All the named states change or none.
std::string admin_set(self_ptr self, const admin_request& r) {
  auto& st = self->state;
  if (st.init->failed()) {
    return admin_fail_of(who(st), "has failed; its state can be read but not changed");
  }
  auto values = nlohmann::json::parse(r.values, nullptr, false);
  if (values.is_discarded() || !values.is_object() || values.empty()) {
    return admin_fail("set takes the new states as a JSON object, e.g. {\"count\": 42} (state "
                      "shows the current ones)");
  }
  // Changes made by batches since the last commit go in their own commit first.
  if (!commit_now(self)) {
    return admin_fail_of(who(st), "could not commit its pending changes");
  }
  nlohmann::json old = nlohmann::json::object();
  std::vector<std::pair<std::string, std::string>> undo;
  try {
    for (auto& [name, value] : values.items()) {
      auto before = st.logic->admin_set(*r.key, name, value.dump());
      undo.emplace_back(name, before);
      old[name] = nlohmann::json::parse(before);
    }
  } catch (const std::exception& e) {
    for (auto i = undo.rbegin(); i != undo.rend(); ++i) {
      (void) st.logic->admin_set(*r.key, i->first, i->second);
    }
    return admin_fail(e.what());
  }
  nlohmann::json origin{{"admin", "set"}, {"by", r.by}, {"why", r.why}, {"old", old}};
  if (!commit_now(self, origin.dump())) {
    return admin_fail_of(who(st), "could not commit the edit to its journal");
  }
  release(self);
  log(log_level::warn, "partition",
      who(st) + ": key '" + *r.key + "' set from the console by " + r.by + ": " + values.dump());
  nlohmann::json data{{"actor", who(st)}, {"key", *r.key}, {"old", old}, {"new", values}};
  if (st.journal) {
    data["seq"] = st.journal->last_seq();
  } else {
    data["seq"] = nullptr;
    data["note"] = "in-memory state: the edit is not journaled and history cannot show it";
  }
  return admin_ok(data.dump());
}

/// `partitions`: what the journal holds (stored keys, kept changes, last sequence number)
/// and the input positions applied, per producer ("lines/0@120").
nlohmann::json partition_info(partition_state& st) {
  nlohmann::json info{{"durable", st.journal != nullptr}};
  if (!st.journal) {
    return info;
  }
  auto keys = st.journal->key_count();
  auto entries = st.journal->journal_length();
  info["seq"] = st.journal->last_seq();
  info["keys_stored"] = keys ? *keys : 0;
  info["journal_entries"] = entries ? *entries : 0;
  std::map<uint32_t, uint64_t> by_producer;
  for (auto& [key, position] : st.filter.positions()) {
    auto& p = by_producer[replay_filter::producer_of(key)];
    p = std::max(p, position);
  }
  std::string positions;
  for (auto& [producer, position] : by_producer) {
    if (!positions.empty()) {
      positions += ' ';
    }
    positions.append(producer_name(*st.init->graph, producer))
      .append("@")
      .append(std::to_string(position));
  }
  info["input_positions"] = positions;
  return info;
}

/// The console requests only partitions answer; nullopt for the others.
std::optional<std::string> partition_admin(self_ptr self, const admin_request& r) {
  auto& st = self->state;
  bool keyed_cmd = r.cmd == "state" || r.cmd == "history" || r.cmd == "set" || r.cmd == "replay" ||
                   r.cmd == "timers";
  if (!keyed_cmd && r.cmd != "snapshot" && r.cmd != "replay-deadletters" && r.cmd != "info") {
    return std::nullopt;
  }
  if (keyed_cmd && !r.key) {
    return admin_fail(r.cmd + " needs a key");
  }
  if (!ensure_recovered(self)) {
    return admin_fail_of(who(st), "could not read its journal");
  }
  try {
    if (r.cmd == "state") {
      return admin_ok(st.logic->inspect_state(*r.key));
    }
    if (r.cmd == "history") {
      return admin_ok(st.logic->inspect_history(*r.key, r.limit));
    }
    if (r.cmd == "timers") {
      return admin_ok(st.logic->inspect_timers(*r.key));
    }
    if (r.cmd == "replay") {
      return admin_ok(st.logic->replay_state(*r.key, r.seq, st.init->opts.state.keep_changes));
    }
    if (r.cmd == "set") {
      return admin_set(self, r);
    }
    if (r.cmd == "info") {
      return admin_ok(partition_info(st).dump());
    }
    if (!st.journal) {
      return admin_fail(r.cmd + " needs durable state (--state.durability process or machine)");
    }
    if (r.cmd == "snapshot") {
      if (!commit_now(self) || !compact(self)) {
        return admin_fail_of(who(st), "could not commit and compact its journal");
      }
      release(self);
      auto keys = st.journal->key_count();
      auto entries = st.journal->journal_length();
      nlohmann::json data{{"actor", who(st)},
                          {"seq", st.journal->last_seq()},
                          {"keys", keys ? *keys : 0},
                          {"journal_entries", entries ? *entries : 0},
                          {"file", st.journal->file().string()}};
      return admin_ok(data.dump());
    }
    size_t replayed = 0;
    if (!replay_dead_letters(self, true, &replayed)) {
      return admin_fail_of(who(st), "failed while re-processing its dead letters");
    }
    release(self);
    return admin_ok(nlohmann::json{{"actor", who(st)}, {"replayed", replayed}}.dump());
  } catch (const std::exception& e) {
    return admin_fail(e.what());
  }
}

void end_copy(self_ptr self) {
  auto& st = self->state;
  std::error_code ec;
  std::filesystem::remove(st.copy->file, ec);
  st.copy.reset();
}

/// The standby copy could not be made: the partition runs on without a standby.
void copy_failed(self_ptr self, const caf::error& err) {
  auto& st = self->state;
  auto c = st.copy;
  end_copy(self);
  auto what = who(st) + ": the copy to the new standby failed (" + to_string(err) + ")";
  log(log_level::warn, "partition", what);
  c->promise.deliver(make_error(errc::io_failure, what));
}

/// The snapshot is in place on the new standby: the commits made meanwhile follow, and from
/// now on every commit goes there (`to_standby`).
void copy_done(self_ptr self) {
  auto& st = self->state;
  auto c = st.copy;
  end_copy(self);
  st.init->standby = c->host;
  if (!c->pending.empty() && !to_standby(self, replicate_atom::value, c->pending)) {
    c->promise.deliver(make_error(errc::io_failure, who(st) + ": its new standby failed"));
    return;
  }
  log(log_level::info, "partition",
      who(st) + ": standby copy current (" + std::to_string(c->size) + " bytes, then " +
        std::to_string(c->pending.size()) + " commits)");
  c->promise.deliver(nlohmann::json{{"bytes", c->size}, {"entries", c->pending.size()}}.dump());
}

/// Sends the next chunk of the snapshot; the partition goes on with its input meanwhile.
void send_chunk(self_ptr self) {
  auto& st = self->state;
  auto c = st.copy;
  std::string bytes(copy_chunk, '\0');
  c->in.read(bytes.data(), static_cast<std::streamsize>(copy_chunk));
  bytes.resize(static_cast<size_t>(c->in.gcount()));
  auto offset = c->sent;
  bool last = offset + bytes.size() >= c->size;
  auto n = bytes.size();
  const auto& ctx = st.init->ctx;
  self
    ->request(c->host, std::chrono::seconds(60), replica_atom::value, ctx.job,
              static_cast<uint32_t>(st.init->node), ctx.index, st.init->owner_epoch, offset,
              std::move(bytes), last)
    .then(
      [self, c, n, last](uint64_t) {
        auto& st = self->state;
        if (st.copy != c) {
          return;
        }
        c->sent += n;
        caf::anon_send(c->leader, progress_atom::value, who(st), c->sent, c->size,
                       static_cast<uint64_t>(c->pending.size()));
        if (last) {
          copy_done(self);
        } else {
          send_chunk(self);
        }
      },
      [self, c](caf::error& err) {
        if (self->state.copy == c) {
          copy_failed(self, err);
        }
      });
}

/// A `standby` request: makes `host` the standby while the partition keeps running (the
/// warm copy of a move). The snapshot is a compacted copy of the journal as of its last
/// commit; the commits made while it travels are kept and sent after it.
caf::result<std::string> start_copy(self_ptr self, caf::actor host) {
  auto& st = self->state;
  if (!st.journal) {
    return make_error(errc::invalid_config,
                      who(st) + " keeps no journal (durable state is off): nothing to copy");
  }
  if (st.copy) {
    return make_error(errc::invalid_config, who(st) + ": a copy to a standby is under way");
  }
  if (!host) {
    return make_error(errc::invalid_config, who(st) + ": no host to copy to");
  }
  if (!ensure_recovered(self)) {
    return make_error(errc::io_failure, who(st) + " cannot open its journal");
  }
  auto c = std::make_shared<standby_copy>();
  c->file = st.journal->file().string() + ".copy";
  if (auto err = st.journal->copy_to(c->file)) {
    return err;
  }
  std::error_code ec;
  c->size = std::filesystem::file_size(c->file, ec);
  c->in.open(c->file, std::ios::binary);
  if (ec || !c->in) {
    return make_error(errc::io_failure, "cannot read the journal copy " + c->file.string());
  }
  c->host = std::move(host);
  c->leader = caf::actor_cast<caf::actor>(self->current_sender());
  c->promise = self->make_response_promise<std::string>();
  // The old standby, if any, is not kept current any more: the new one replaces it.
  st.init->standby = caf::actor{};
  st.copy = c;
  log(log_level::info, "partition",
      who(st) + ": copying " + std::to_string(c->size) + " bytes of journal to a new standby");
  send_chunk(self);
  return c->promise;
}

stage_actor::behavior_type partition_handlers(self_ptr self) {
  return {
    [self](batch& b) { on_batch(self, b); },
    [self](remote_batch& rb) {
      auto b = from_remote(*self->state.init, rb);
      on_batch(self, b);
    },
    [self](credit_atom, channel_id channel, uint32_t batches, recycled_buffer& recycled) {
      on_transform_credit(self, channel, batches, recycled, !self->state.sync_pending);
    },
    [self](start_atom) {
      if (!ensure_recovered(self)) {
        return;
      }
      if (!self->state.init->ack_channels.empty() && !replay_outbox(self)) {
        return;
      }
      if (!replay_dead_letters(self)) {
        return;
      }
      schedule_timer(self);
      release(self);
    },
    [](stop_atom) {},
    [self](tick_atom) { on_transform_tick(self); },
    [](pull_atom) {},
    [self](ack_atom, channel_id channel, uint64_t position) {
      auto& st = self->state;
      if (auto i = st.acked.find(channel); i != st.acked.end() && position > i->second) {
        i->second = position;
      }
    },
    [self](sync_atom) {
      auto& st = self->state;
      st.sync_pending = false;
      if (!st.closing && (!commit_now(self) || !advance_watermark(self))) {
        return;
      }
      release(self);
    },
    [self](timer_atom) {
      auto& st = self->state;
      st.timer_at.reset();
      if (!ensure_recovered(self)) {
        return;
      }
      if (st.closing || st.init->failed()) {
        return;
      }
      // Timers are read from the journal: commit pending timer changes of a group first.
      if (!commit_now(self)) {
        return;
      }
      auto fired = st.logic->fire_timers(now_ms(), *st.scratch, timers_per_message);
      take_output(st);
      if (fired > 0 && !commit_now(self)) {
        return;
      }
      schedule_timer(self);
      release(self);
    },
    [self](admin_atom, const std::string& request, const caf::actor& tap) {
      return input_stage_admin(
        self, request, tap, [self](const admin_request& r) { return partition_admin(self, r); },
        [](self_ptr s, batch& b) { on_batch(s, b); });
    },
    [self](standby_atom, caf::actor& host) { return start_copy(self, std::move(host)); },
  };
}

} // namespace

stage_actor::behavior_type partition_stage(self_ptr self, std::shared_ptr<stage_init> init) {
  init_transform(self, init);
  auto& st = self->state;
  st.journal = std::move(init->journal);
  st.scratch = st.graph_node().make_output_buffer(init->opts.batch_events_max);
  st.held = st.graph_node().make_output_buffer(init->opts.batch_events_max);
  st.acked = init->acked;
  if (st.journal) {
    st.logic->attach(*st.journal, size_t{init->opts.state.cache_mb} << 20);
    st.filter.load(init->positions);
    if (auto i = init->positions.find(out_position_key); i != init->positions.end()) {
      st.out_position = i->second;
      st.committed_out_position = i->second;
    }
    if (auto i = init->positions.find(replayed_key); i != init->positions.end()) {
      st.replayed_upto = i->second;
      st.committed_replayed_upto = i->second;
    }
  }
  return partition_handlers(self);
}

} // namespace eddy::detail
