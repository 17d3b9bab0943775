#include <chrono>

#include "eddy/core/log.hpp"
#include "eddy/flow/replay_filter.hpp"
#include "stage/standby.hpp"
#include "stage/transform_stage.hpp"

namespace eddy::detail {

namespace {

/// Journal key of a transactional sink's committed output length.
constexpr uint64_t length_key = 0;

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

/// Transactional sinks: after writing a batch, make it durable, then commit the input
/// positions with the output length, then tell the producers (partitions) what they may
/// drop from their outboxes. A crash between the write and the commit leaves lines past
/// the committed length; the restart cuts them off and the replay writes them again.
caf::error commit_sink(stage_actor::stateful_pointer<sink_state> self) {
  auto& st = self->state;
  if (!st.logic) {
    // A failed sink writes nothing: it commits the positions of what it dead-lettered.
  } else if (st.init->opts.state.level == durability::machine) {
    st.logic->sync();
  } else {
    st.logic->flush();
  }
  commit_batch cb;
  cb.positions = st.filter.take_changes();
  auto length = st.logic ? st.logic->length() : st.committed_length;
  if (cb.positions.empty() && length == st.committed_length) {
    return {};
  }
  cb.positions.emplace_back(length_key, length);
  st.committed_length = length;
  cb.at_ms = now_ms();
  if (auto err = st.init->journal->commit(cb)) {
    return err;
  }
  // In a cluster the member that would take the job over keeps a copy: the producers drop
  // what they keep for a replay only once it holds the commit.
  if (st.init->standby) {
    if (auto err = to_standby(self->system(), *st.init, replicate_atom::value, cb)) {
      return err;
    }
  }
  auto& producers = *st.init->producers;
  for (auto& [key, position] : cb.positions) {
    auto producer = replay_filter::producer_of(key);
    if (key != length_key && producer < producers.size() && producers[producer]) {
      self->send(producers[producer], ack_atom::value, static_cast<channel_id>(key >> 16),
                 position);
    }
  }
  return {};
}

/// In a cluster, before the first commit: claims the journal for the incarnation's epoch
/// and brings the standby's copy up to date (from a consistent snapshot of the journal).
caf::error start_standby(stage_actor::stateful_pointer<sink_state> self) {
  auto& st = self->state;
  auto& journal = *st.init->journal;
  if (st.init->owner_epoch > 0) {
    if (auto err = claim_journal(*st.init, journal)) {
      return err;
    }
  }
  if (!st.init->standby) {
    return {};
  }
  auto copy = journal.file();
  copy += ".standby";
  if (auto err = journal.copy_to(copy)) {
    return err;
  }
  auto err = ship_journal(self->system(), *st.init, journal, copy);
  std::error_code ec;
  std::filesystem::remove(copy, ec);
  return err;
}

/// A sink's part of a cut: its committed output and, when transactional, its journal pinned
/// at its last commit (every batch before the markers is committed by then).
bool cut_sink(sink_state& st, cut_report& r) {
  if (st.logic && st.logic->target() != "-") {
    r.sink_file = st.logic->target();
    r.sink_length = st.init->journal ? st.committed_length : st.logic->length();
  }
  if (st.init->journal) {
    pin_journal(*st.init->journal, r);
  }
  return true;
}

void on_sink_batch(stage_actor::stateful_pointer<sink_state> self, batch& b) {
  auto& st = self->state;
  if (!st.standby_started && st.init->journal) {
    st.standby_started = true;
    if (auto err = start_standby(self)) {
      log(log_level::error, "sink", describe(err));
      self->quit(err);
      return;
    }
  }
  if (park_if_paused(st.ctl, b) || st.align.parks(b)) {
    return;
  }
  auto cut = b.cut;
  auto channel = b.channel;
  auto* ch = st.in->admit(self, b, *st.init->metrics);
  if (ch == nullptr) {
    return;
  }
  if (b.size() > 0 && st.init->journal) {
    auto dropped = st.filter.admit(b.channel, *b.records);
    st.init->metrics->duplicates_dropped.fetch_add(dropped, std::memory_order_relaxed);
  }
  if (b.size() > 0 && st.init->failed()) {
    if (auto err = dead_letter_input(*st.init, *b.records, nullptr)) {
      self->quit(err);
      return;
    }
  } else if (b.size() > 0) {
    if (st.ctl.tap) {
      tap_records(st.ctl, st.init->who(), *b.records, 0, input_describer(*st.init), nullptr);
    }
    st.logic->write(*b.records);
  }
  if (b.last && b.ends && st.init->journal) {
    st.filter.advance(b.channel, *b.ends);
  }
  if (st.init->journal) {
    if (auto err = commit_sink(self)) {
      self->quit(err);
      return;
    }
  }
  st.in->consumed(self, b.channel, *ch, false, std::move(b.records));
  if (b.last) {
    st.in->mark_finished(b);
    if (st.in->all_finished()) {
      if (st.logic) {
        st.logic->flush();
      }
      st.init->metrics->status = actor_status::finished;
      self->quit();
      return;
    }
  }
  align_cut(
    self, cut, channel, [self](cut_report& r) { return cut_sink(self->state, r); },
    [](auto* s, batch& parked) { on_sink_batch(s, parked); });
}

} // namespace

stage_actor::behavior_type sink_stage(stage_actor::stateful_pointer<sink_state> self,
                                      std::shared_ptr<stage_init> init) {
  auto& st = self->state;
  st.init = init;
  install_exception_handler(self, *init);
  st.logic = std::move(init->sink);
  st.in = std::make_unique<inputs>(init->input_count);
  if (init->journal) {
    st.filter.load(init->positions);
    if (auto i = init->positions.find(length_key); i != init->positions.end()) {
      st.committed_length = i->second;
    }
  }
  return {
    [self](batch& b) { on_sink_batch(self, b); },
    [self](remote_batch& rb) {
      auto b = from_remote(*self->state.init, rb);
      on_sink_batch(self, b);
    },
    [](credit_atom, channel_id, uint32_t, recycled_buffer&) {},
    [](start_atom) {},
    [](stop_atom) {},
    [](tick_atom) {},
    [](pull_atom) {},
    [](ack_atom, channel_id, uint64_t) {},
    [](sync_atom) {},
    [](timer_atom) {},
    [self](admin_atom, const admin_request& request, const caf::actor& tap) {
      return input_stage_admin(self, request, tap, no_own_requests,
                               [](auto* s, batch& b) { on_sink_batch(s, b); });
    },
    [self](cut_atom, uint64_t, bool) -> caf::result<uint64_t, int64_t, uint64_t, std::string> {
      return not_a_source(*self->state.init);
    },
    [self](standby_atom, const caf::actor&) -> caf::result<std::string> {
      return no_standby(*self->state.init);
    },
    [self](pin_atom, uint64_t) {
      if (auto& journal = self->state.init->journal) {
        static_cast<void>(journal->prepare_pin());
      }
    },
  };
}

} // namespace eddy::detail
