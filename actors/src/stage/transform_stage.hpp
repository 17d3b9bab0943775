#pragma once

// One-input stages. Operators use `transform_behavior` whole: consume a batch, run the
// logic, route the output, return credit. Partitions (partition.hpp lists their files) share its
// setup, credit and linger handlers and add their journal, commits, outbox and timers.

#include "stage/stage.hpp"

namespace eddy::detail {

/// State of a one-input stage. Lifecycle: spawned by the job actor, processes batches until
/// every input channel sent its last batch, then finishes the logic, sends its own last
/// batches and quits once they are all out.
struct transform_state {
  std::shared_ptr<stage_init> init;
  std::unique_ptr<transform_logic> logic;
  std::unique_ptr<emitter> out;
  std::unique_ptr<inputs> in;
  bool closing = false;
  bool tick_pending = false;
  stage_controls ctl;
  cut_alignment align;
};

/// One instance of a stateless operator (map, filter, flat_map).
struct operator_state : transform_state {
  static constexpr const char* name = "operator";
};

/// A copy of a partition's journal on its way to a new standby while the partition runs
/// (a `standby` request, see standby_copy.cpp).
struct standby_copy {
  caf::actor host;
  /// Where progress goes: the job actor that asked.
  caf::actor leader;
  std::filesystem::path file;
  std::ifstream in;
  uint64_t size = 0;
  uint64_t sent = 0;
  /// Commits made since the snapshot, sent once the snapshot is in place.
  std::vector<commit_batch> pending;
  caf::typed_response_promise<std::string> promise;
};

/// One key partition of a keyed operator: owns the state of the keys that hash to it, in
/// memory or durable in its journal (see partition.hpp).
struct partition_state : transform_state {
  static constexpr const char* name = "partition";
  std::unique_ptr<journal_store> journal;
  replay_filter filter;
  /// Output of the current step, then output waiting for the next commit.
  std::unique_ptr<record_buffer> scratch;
  std::unique_ptr<record_buffer> held;
  /// Acknowledged output position per input channel of the durable consumers.
  std::map<channel_id, uint64_t> acked;
  /// Last output position assigned, committed, and dropped from the outbox.
  uint64_t out_position = 0;
  uint64_t committed_out_position = 0;
  uint64_t outbox_trimmed = 0;
  /// The last dead letter re-processed, and committed.
  uint64_t replayed_upto = 0;
  uint64_t committed_replayed_upto = 0;
  uint64_t commits = 0;
  /// Value of `commits` at the last compaction.
  uint64_t compacted_at = 0;
  /// State changes were logged since the last compaction (see `journal_store::compact`).
  bool logged = false;
  /// The journal's log was folded (see `ensure_recovered`).
  bool recovered = false;
  /// A commit is scheduled: at once, for the group of batches waiting in the mailbox, or
  /// after the commit interval (`--state.commit-interval-ms`).
  bool sync_pending = false;
  /// When the scheduled timer message is due.
  std::optional<time_ms> timer_at;
  /// A copy to a new standby under way.
  std::shared_ptr<standby_copy> copy;
  /// Event time: the watermark up to which event-time timers fired.
  time_ms timers_fired_upto = no_time;
  /// The input watermark last seen; it never moves back (asserted in partition_commit.cpp).
  time_ms watermark_seen = no_time;

  [[nodiscard]] const node_spec& graph_node() const {
    return init->graph->node(init->node);
  }
  /// Commits wait for the commit interval rather than for the mailbox to drain (not in
  /// the supervision window after a failure, see `stage_init::eager_commits_until`).
  [[nodiscard]] bool commits_on_interval() const noexcept {
    return journal && init->opts.state.commit_interval_ms > 0 &&
           (init->eager_commits_until == std::chrono::steady_clock::time_point{} ||
            std::chrono::steady_clock::now() >= init->eager_commits_until);
  }
  /// Input credit waits for the scheduled commit: a group commit covers the batches that
  /// arrived before it and no more. With a commit interval credit flows on, and the held
  /// output and the state changes bound the epoch instead.
  [[nodiscard]] bool holds_credit() const noexcept {
    return sync_pending && !commits_on_interval();
  }
};

template <class State>
void finish_transform_if_done(stage_actor::stateful_pointer<State> self) {
  auto& st = self->state;
  if (st.closing && st.out->finished()) {
    st.init->metrics->status = actor_status::finished;
    self->quit();
  }
}

/// Drops poison records; in a failed actor sends the input to the dead-letter journal and
/// empties it. Returns false when the actor quit because that failed.
template <class State>
bool consume_input(stage_actor::stateful_pointer<State> self, record_buffer& in) {
  auto& st = self->state;
  drop_poison(*st.init, in);
  if (st.init->failed()) {
    if (auto err = dead_letter_input(*st.init, in, st.logic.get())) {
      self->quit(err);
      return false;
    }
    in.clear();
  }
  return true;
}

/// A paused stage parks the batch (its credit stays owed, so upstream stops too) and
/// returns true.
inline bool park_if_paused(stage_controls& ctl, batch& b) {
  if (ctl.paused) {
    ctl.parked.push_back(std::move(b));
    return true;
  }
  return false;
}

/// Answers a console request to a stage that takes input (`stage_admin`, with `own` for
/// the stage kind's own requests), then, if the stage is no longer paused, processes the
/// batches parked meanwhile, in order, with `on_batch`.
template <class Self, class Own, class OnBatch>
admin_reply input_stage_admin(Self* self, const admin_request& request, const caf::actor& tap,
                              Own own, OnBatch on_batch) {
  auto reply = stage_admin(self, request, tap, own);
  auto& ctl = self->state.ctl;
  if (!ctl.paused && !ctl.parked.empty()) {
    auto parked = std::move(ctl.parked);
    ctl.parked.clear();
    for (auto& b : parked) {
      on_batch(self, b);
    }
  }
  return reply;
}

/// For stage kinds without requests of their own.
inline std::optional<admin_reply> no_own_requests(const admin_request&) {
  return std::nullopt;
}

/// The answer of a stage that is not a source to a `cut` request.
inline caf::error not_a_source(const stage_init& init) {
  return make_error(errc::invalid_config, init.who() + " is not a source: a cut starts at sources");
}

/// After a batch on `channel` (`cut`: its marker's cut, or 0): once every input is aligned,
/// `own(report)` does the stage kind's part of the cut (false: the stage quit), the markers
/// go out (a sink has no outputs), the report goes to the job's registry and `on_batch` takes
/// up the parked batches. Every stage with inputs aligns this way.
template <class State, class Own, class OnBatch>
void align_cut(stage_actor::stateful_pointer<State> self, uint64_t cut, channel_id channel, Own own,
               OnBatch on_batch) {
  auto& st = self->state;
  auto report =
    st.align.step(cut, channel, st.in->finished_count(), st.in->expected(), st.init->who());
  if (!report) {
    return;
  }
  auto& r = *report;
  if (!own(r)) {
    return;
  }
  if constexpr (requires { st.out; }) {
    st.out->mark(r.cut);
    st.out->send_ready(self);
  }
  if (st.init->cuts) {
    st.init->cuts->deliver(std::move(r));
  }
  for (auto& parked : st.align.finish()) {
    on_batch(self, parked);
  }
}

template <class State>
void on_transform_batch(stage_actor::stateful_pointer<State> self, batch& b) {
  auto& st = self->state;
  auto& m = *st.init->metrics;
  if (park_if_paused(st.ctl, b) || st.align.parks(b)) {
    return;
  }
  auto cut = b.cut;
  auto channel = b.channel;
  auto* ch = st.in->admit(self, b, m);
  if (ch == nullptr) {
    return;
  }
  if (b.size() > 0 && !consume_input(self, *b.records)) {
    return;
  }
  if (b.size() > 0 && st.ctl.tap) {
    tap_records(st.ctl, st.init->who(), *b.records, 0, input_describer(*st.init), st.logic.get());
  }
  // Event time: the output of this batch goes out with the watermark it came with (a
  // receiver takes a batch's records before its watermark).
  m.watermark.store(st.in->observe_watermark(b), std::memory_order_relaxed);
  st.out->set_watermark(st.in->watermarks().forward());
  if (b.size() > 0) {
    process_reporting(*st.init, *st.logic, *b.records, st.out->buffer(b.records->size()));
    st.out->commit();
    m.keys.store(st.logic->key_count(), std::memory_order_relaxed);
  }
  if (b.last) {
    st.in->mark_finished(b);
  }
  if (st.in->all_finished()) {
    if (!st.init->failed()) {
      st.logic->finish(st.out->buffer());
    }
    st.out->commit();
    // A stateless operator forwards the records of its producers: what its inputs sent.
    st.out->close(std::make_shared<const frontier>(st.in->ends()));
    st.closing = true;
  }
  st.out->send_ready(self);
  st.in->consumed(self, b.channel, *ch, st.out->blocked(), std::move(b.records));
  schedule_linger(self, st);
  finish_transform_if_done(self);
  align_cut(
    self, cut, channel, [](cut_report&) { return true; },
    [](auto* s, batch& parked) { on_transform_batch(s, parked); });
}

/// The setup shared by operators and partitions: the logic, the output and input sides.
template <class State>
void init_transform(stage_actor::stateful_pointer<State> self, std::shared_ptr<stage_init> init) {
  auto& st = self->state;
  st.init = init;
  install_exception_handler(self, *init);
  st.logic = std::move(init->transform);
  st.out = std::make_unique<emitter>(*init);
  st.in = std::make_unique<inputs>(init->input_count);
}

/// Credit from downstream: send what it allows, and pay the credit owed upstream once the
/// stage is no longer blocked (and `may_pay`: a partition holds credit until its commit).
template <class State>
void on_transform_credit(stage_actor::stateful_pointer<State> self, channel_id channel,
                         uint32_t batches, recycled_buffer& recycled, bool may_pay = true) {
  auto& st = self->state;
  st.out->grant(channel, batches, std::move(recycled.buffer));
  st.out->send_ready(self);
  if (may_pay && !st.out->blocked()) {
    st.in->pay_owed(self);
  }
  finish_transform_if_done(self);
}

/// The linger time is over: partly filled batches go out.
template <class State>
void on_transform_tick(stage_actor::stateful_pointer<State> self) {
  auto& st = self->state;
  st.tick_pending = false;
  if (!st.closing) {
    st.out->seal_partial();
    st.out->send_ready(self);
  }
}

template <class State>
stage_actor::behavior_type transform_behavior(stage_actor::stateful_pointer<State> self,
                                              std::shared_ptr<stage_init> init) {
  init_transform(self, std::move(init));
  return {
    [self](batch& b) { on_transform_batch(self, b); },
    [self](remote_batch& rb) {
      auto b = from_remote(*self->state.init, rb);
      on_transform_batch(self, b);
    },
    [self](credit_atom, channel_id channel, uint32_t batches, recycled_buffer& recycled) {
      on_transform_credit(self, channel, batches, recycled);
    },
    [](start_atom) {},
    [](stop_atom) {},
    [self](tick_atom) { on_transform_tick(self); },
    [](pull_atom) {},
    [](ack_atom, channel_id, uint64_t) {},
    [](sync_atom) {},
    [](timer_atom) {},
    [self](admin_atom, const admin_request& request, const caf::actor& tap) {
      return input_stage_admin(self, request, tap, no_own_requests,
                               [](auto* s, batch& b) { on_transform_batch(s, b); });
    },
    [self](cut_atom, uint64_t, bool) -> caf::result<uint64_t, int64_t, uint64_t, std::string> {
      return not_a_source(*self->state.init);
    },
    [self](standby_atom, const caf::actor&) -> caf::result<std::string> {
      return no_standby(*self->state.init);
    },
    [](pin_atom, uint64_t) {},
  };
}

} // namespace eddy::detail
