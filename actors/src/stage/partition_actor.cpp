// A key partition (the commit protocol is described in partition_commit.cpp; the files
// of the partition stage are listed in partition.hpp).

#include "stage/partition.hpp"

namespace eddy::detail::partition_ops {

namespace {

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
         st.logic->fire_timers(now_ms(), *st.scratch, timers_per_message_max) > 0) {
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

/// With a commit interval: the output held for the next commit, or the changed state, has
/// reached its bound, so the commit comes early.
bool epoch_full(const partition_state& st) {
  auto held_max = limits::held_output_batches_max * st.init->opts.batch_events_max;
  return st.held->size() >= held_max || st.logic->wants_compaction();
}

void on_batch(self_ptr self, batch& b);

/// A partition's part of a cut: it commits what it processed before the cut and pins its
/// journal at that commit (the copy is made off this actor, see savepoint/session.hpp).
bool cut_partition(self_ptr self, cut_report& r) {
  auto& st = self->state;
  take_output(st);
  if (!commit_now(self)) {
    return false;
  }
  r.state_version = st.logic->state_version();
  r.key_type = st.logic->key_type();
  r.states = st.logic->state_types();
  if (st.journal) {
    pin_journal(*st.journal, r);
  }
  return true;
}

void on_batch(self_ptr self, batch& b) {
  auto& st = self->state;
  if (!ensure_recovered(self)) {
    return;
  }
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
  } else if (st.commits_on_interval() && epoch_full(st)) {
    if (!commit_now(self) || !advance_watermark(self)) {
      return;
    }
  } else if (!st.sync_pending) {
    schedule_commit(self);
  }
  m.keys.store(st.logic->key_count(), std::memory_order_relaxed);
  bool hold = st.holds_credit() && !st.closing;
  st.out->send_ready(self);
  st.in->consumed(self, b.channel, *ch, hold || st.out->blocked(), std::move(b.records));
  schedule_linger(self, st);
  finish_transform_if_done(self);
  align_cut(
    self, cut, channel, [self](cut_report& r) { return cut_partition(self, r); },
    [](self_ptr s, batch& parked) { on_batch(s, parked); });
}

stage_actor::behavior_type partition_handlers(self_ptr self) {
  return {
    [self](batch& b) { on_batch(self, b); },
    [self](remote_batch& rb) {
      auto b = from_remote(*self->state.init, rb);
      on_batch(self, b);
    },
    [self](credit_atom, channel_id channel, uint32_t batches, recycled_buffer& recycled) {
      on_transform_credit(self, channel, batches, recycled, !self->state.holds_credit());
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
      // A commit per group fires on committed timers; an epoch fires them as they are, and
      // what they change and emit joins it.
      bool epoch = st.commits_on_interval();
      if (!epoch && !commit_now(self)) {
        return;
      }
      auto fired = st.logic->fire_timers(now_ms(), *st.scratch, timers_per_message_max);
      take_output(st);
      if (fired > 0 && epoch && !st.sync_pending) {
        schedule_commit(self);
      } else if (fired > 0 && !epoch && !commit_now(self)) {
        return;
      }
      schedule_timer(self);
      release(self);
    },
    [self](admin_atom, const admin_request& request, const caf::actor& tap) {
      return input_stage_admin(
        self, request, tap, [self](const admin_request& r) { return partition_admin(self, r); },
        [](self_ptr s, batch& b) { on_batch(s, b); });
    },
    [self](cut_atom, uint64_t, bool) -> caf::result<uint64_t, int64_t, uint64_t, std::string> {
      return not_a_source(*self->state.init);
    },
    [self](standby_atom, caf::actor& host) { return start_copy(self, std::move(host)); },
    [self](pin_atom, uint64_t) {
      // A cut is coming: its pin then only begins a read transaction. A failure here is
      // the pin's to report.
      if (auto& journal = self->state.journal; journal && self->state.recovered) {
        static_cast<void>(journal->prepare_pin());
      }
    },
  };
}

} // namespace

} // namespace eddy::detail::partition_ops

namespace eddy::detail {

using namespace partition_ops;

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
