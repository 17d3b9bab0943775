#include <exception>

#include "eddy/core/log.hpp"
#include "limits.hpp"
#include "stage/stage.hpp"

namespace eddy::detail {

namespace {

/// Batches read per `pull` message before yielding to credit and control messages.
using limits::pulls_per_message_max;

void request_pull(stage_actor::stateful_pointer<source_state> self) {
  auto& st = self->state;
  if (st.started && !st.exhausted && !st.pull_pending && !st.out->blocked() && !st.ctl.paused) {
    st.pull_pending = true;
    self->send(self, pull_atom::value);
  }
}

void finish_if_done(stage_actor::stateful_pointer<source_state> self) {
  auto& st = self->state;
  if (st.exhausted && st.out->finished()) {
    st.init->metrics->status = actor_status::finished;
    self->quit();
  }
}

void end_input(stage_actor::stateful_pointer<source_state> self) {
  auto& st = self->state;
  st.exhausted = true;
  std::shared_ptr<const frontier> ends;
  if (auto position = st.logic ? st.logic->read_position() : 0;
      position > 0 && st.init->ctx.producer != 0) {
    ends = std::make_shared<const frontier>(frontier{{st.init->ctx.producer, position}});
  }
  st.out->close(std::move(ends));
  st.out->send_ready(self);
  finish_if_done(self);
}

/// With --runtime.source-rate: how many records the source may read now (0: it comes back
/// when it may read again). Without: `room`.
size_t rate_allows(stage_actor::stateful_pointer<source_state> self, size_t room) {
  auto& st = self->state;
  auto rate = st.init->opts.source_rate;
  if (rate == 0) {
    return room;
  }
  using namespace std::chrono;
  auto now = steady_clock::now();
  if (st.rate_read == 0) {
    st.rate_since = now;
  }
  auto elapsed_us = duration_cast<microseconds>(now - st.rate_since).count();
  auto allowed =
    static_cast<uint64_t>(static_cast<double>(elapsed_us) * 1e-6 * static_cast<double>(rate)) + 1;
  if (allowed > st.rate_read) {
    return std::min<uint64_t>(room, allowed - st.rate_read);
  }
  auto wait = microseconds(static_cast<int64_t>(1e6 / static_cast<double>(rate)) + 1);
  st.pull_pending = true;
  self->delayed_send(self, std::max<microseconds>(wait, milliseconds(1)), pull_atom::value);
  return 0;
}

/// Event time: stamps the records read (from `before` on) and moves the watermark; a
/// source that read nothing for the strategy's idle time is idle.
void advance_event_time(stage_actor::stateful_pointer<source_state> self, record_buffer& buf,
                        size_t before, size_t got) {
  auto& st = self->state;
  const auto& spec = st.init->graph->node(st.init->node);
  if (!spec.watermarks) {
    return;
  }
  auto now = std::chrono::steady_clock::now();
  if (got > 0) {
    st.max_ts = std::max(st.max_ts, spec.stamp_times(buf, before));
    st.last_read = now;
  }
  bool idle = got == 0 && spec.watermarks->idle_ms > 0 &&
              now - st.last_read >= std::chrono::milliseconds(spec.watermarks->idle_ms);
  auto watermark = idle ? idle_watermark : spec.watermarks->watermark_after(st.max_ts);
  st.out->set_watermark(watermark);
  st.init->metrics->watermark.store(watermark, std::memory_order_relaxed);
}

void pull(stage_actor::stateful_pointer<source_state> self) {
  auto& st = self->state;
  auto batch_max = st.init->opts.batch_events_max;
  for (int i = 0; i < pulls_per_message_max && !st.exhausted && !st.out->blocked(); ++i) {
    auto& buf = st.out->buffer();
    auto before = buf.size();
    auto room = rate_allows(self, batch_max > before ? batch_max - before : 1);
    if (room == 0) {
      st.out->seal_partial();
      st.out->send_ready(self);
      return;
    }
    bool more = st.logic->poll(buf, room);
    auto got = buf.size() - before;
    advance_event_time(self, buf, before, got);
    if (got > 0 && st.ctl.tap) {
      tap_records(st.ctl, st.init->who(), buf, before,
                  st.init->graph->node(st.init->node).describe_output, nullptr);
    }
    st.init->metrics->events_in.fetch_add(got, std::memory_order_relaxed);
    st.rate_read += got;
    st.out->commit();
    if (!more) {
      end_input(self);
      return;
    }
    if (st.logic->blocking() && got < room) {
      // The next poll may block this thread until more input comes, and the linger tick
      // with it: what arrived goes out now.
      st.out->seal_partial();
      break;
    }
  }
  st.out->send_ready(self);
  schedule_linger(self, st);
  request_pull(self);
}

/// `send`: the console injects a record, parsed from JSON, into the source's output. It has
/// no replay position: a restart does not send it again.
std::optional<admin_reply> send_record(stage_actor::stateful_pointer<source_state> self,
                                       const admin_request& r) {
  if (r.command != admin_command::send) {
    return std::nullopt;
  }
  auto& st = self->state;
  const auto& spec = st.init->graph->node(st.init->node);
  if (st.exhausted) {
    return admin_fail_of(st.init->who(), "has finished its input; send needs a running source");
  }
  if (spec.parse_output == nullptr) {
    return admin_fail("the records of '" + spec.name +
                      "' have no JSON codec; send cannot make one");
  }
  auto& buf = st.out->buffer(1);
  // The record is decoded by the source's codec: user code, which reports with exceptions.
  try {
    spec.parse_output(r.values, buf);
  } catch (const std::exception& e) {
    return admin_fail(std::string{"not a record of '"} + spec.name + "': " + e.what());
  }
  st.init->metrics->events_in.fetch_add(1, std::memory_order_relaxed);
  st.out->commit();
  st.out->seal_partial();
  st.out->send_ready(self);
  log(log_level::warn, "source", st.init->who() + ": a record was sent from the console");
  return admin_ok(R"({"sent":1,"actor":")" + st.init->who() + "\"}");
}

} // namespace

stage_actor::behavior_type source_stage(stage_actor::stateful_pointer<source_state> self,
                                        std::shared_ptr<stage_init> init) {
  self->state.init = init;
  install_exception_handler(self, *init);
  self->state.logic = std::move(init->source);
  self->state.out = std::make_unique<emitter>(*init);
  return {
    [](const batch&) {
      // Sources have no inputs.
    },
    [](const remote_batch&) {},
    [self](credit_atom, channel_id channel, uint32_t batches, recycled_buffer& recycled) {
      auto& st = self->state;
      st.out->grant(channel, batches, std::move(recycled.buffer));
      st.out->send_ready(self);
      finish_if_done(self);
      request_pull(self);
    },
    [self](start_atom) {
      auto& st = self->state;
      if (st.init->failed()) {
        // A failed source reads nothing more: its stream ends here.
        end_input(self);
        return;
      }
      if (st.init->resume_after > 0 && st.logic->seek(st.init->resume_after)) {
        st.init->metrics->resumed_after = st.init->resume_after;
        log(log_level::info, "source",
            st.init->who() + " resumes after position " + std::to_string(st.init->resume_after));
      }
      st.started = true;
      request_pull(self);
    },
    [self](stop_atom) {
      if (!self->state.exhausted) {
        end_input(self);
      }
    },
    [self](tick_atom) {
      auto& st = self->state;
      st.tick_pending = false;
      if (!st.exhausted) {
        st.out->seal_partial();
        st.out->send_ready(self);
      }
    },
    [self](pull_atom) {
      self->state.pull_pending = false;
      if (!self->state.exhausted) {
        pull(self);
      }
    },
    [](ack_atom, channel_id, uint64_t) {
      // Sources re-read their input instead of keeping their output.
    },
    [](sync_atom) {},
    [](timer_atom) {},
    [self](admin_atom, const admin_request& request, const caf::actor& tap) {
      auto reply = stage_admin(self, request, tap,
                               [self](const admin_request& r) { return send_record(self, r); });
      request_pull(self);
      return reply;
    },
    [self](cut_atom, uint64_t cut,
           bool stop) -> caf::result<uint64_t, int64_t, uint64_t, std::string> {
      // Every record read so far is before the cut: sealed, then the marker behind it. An
      // exhausted source's channels have ended, which counts as aligned downstream.
      auto& st = self->state;
      uint64_t position = st.logic ? st.logic->read_position() : 0;
      uint64_t offset = st.logic ? st.logic->input_offset() : 0;
      auto input = st.logic ? st.logic->input() : std::string{};
      if (!st.exhausted) {
        st.out->mark(cut);
        st.out->send_ready(self);
        if (stop) {
          end_input(self);
        }
      }
      return {position, st.max_ts, offset, std::move(input)};
    },
    [self](standby_atom, const caf::actor&) -> caf::result<std::string> {
      return no_standby(*self->state.init);
    },
    [](pin_atom, uint64_t) {},
  };
}

} // namespace eddy::detail
