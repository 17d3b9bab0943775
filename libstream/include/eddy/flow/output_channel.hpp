#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "eddy/flow/batch.hpp"
#include "eddy/time/watermark.hpp"

namespace eddy {

/// The sending end of one channel: the batch being filled, the sealed batches waiting for
/// credit, and the credit the receiver granted. Pure bookkeeping; the owning actor sends
/// what `pop_sendable` hands out. Credit is counted in batches: the receiver starts the
/// channel with `initial_credit` and returns one per batch it has consumed, so at most
/// `initial_credit` batches of a channel are ever in flight.
/// Owned by one actor; not thread-safe.
class output_channel {
public:
  output_channel(channel_id id, uint32_t initial_credit, std::unique_ptr<record_buffer> builder,
                 size_t batch_events_max);

  [[nodiscard]] channel_id id() const noexcept {
    return id_;
  }
  /// The buffer that routing appends to; seal it with `seal_if_full` or `seal`.
  [[nodiscard]] record_buffer& builder() noexcept {
    return *builder_;
  }

  /// Seals the builder into a queued batch if it holds `batch_events_max` records or more.
  /// Returns true if it sealed a batch.
  bool seal_if_full();
  /// Seals the builder early if `incoming` more records would take it past
  /// `batch_events_max`, so that one-to-one operators keep batches within the bound.
  /// Returns true if it sealed a batch.
  bool make_room(size_t incoming);
  /// Seals the builder if it holds any records.
  void seal();
  /// Sets the watermark the next batches carry (event time: it never goes back, except
  /// from and to `idle_watermark`, see time/watermark.hpp).
  void set_watermark(time_ms watermark) noexcept {
    bool idle_change = watermark == idle_watermark || watermark_ == idle_watermark;
    watermark_ = idle_change ? watermark : std::max(watermark_, watermark);
  }
  [[nodiscard]] time_ms watermark() const noexcept {
    return watermark_;
  }
  /// Seals an empty batch that only carries the watermark, if it advanced since the last
  /// batch (no record flows, but time does). Returns true if it sealed one.
  bool seal_watermark();
  /// True while the watermark differs from the last sealed batch's.
  [[nodiscard]] bool watermark_pending() const noexcept {
    return watermark_ != sealed_watermark_;
  }
  /// Seals the builder if it holds records, then a marker of savepoint cut `cut` (an empty
  /// batch), unless the channel is closed.
  void seal_marker(uint64_t cut);
  /// Seals the builder (possibly empty) as the channel's last batch. Idempotent.
  void seal_last(std::shared_ptr<const frontier> ends = nullptr);

  /// Adds credit granted by the receiver, with an emptied buffer to reuse (may be null).
  void grant(uint32_t batches, std::shared_ptr<record_buffer> recycled = nullptr);
  /// Moves the next batch out if there is credit for it; returns false otherwise.
  [[nodiscard]] bool pop_sendable(batch& out);

  [[nodiscard]] uint32_t credit() const noexcept {
    return credit_;
  }
  [[nodiscard]] size_t queued_batches() const noexcept {
    return queue_.size();
  }
  [[nodiscard]] size_t builder_events() const noexcept {
    return builder_->size();
  }
  [[nodiscard]] bool closed() const noexcept {
    return closed_;
  }
  /// True once the last batch has been handed out.
  [[nodiscard]] bool finished() const noexcept {
    return closed_ && queue_.empty();
  }
  [[nodiscard]] uint64_t batches_sealed() const noexcept {
    return next_seq_ - 1;
  }

private:
  void push_batch(bool last, std::shared_ptr<const frontier> ends = nullptr, uint64_t cut = 0);

  channel_id id_;
  /// As many buffers as can be in flight: every returned buffer has a place.
  uint32_t spares_max_;
  uint32_t credit_;
  size_t batch_events_max_;
  uint64_t next_seq_ = 1;
  bool closed_ = false;
  time_ms watermark_ = no_time;
  /// The watermark of the last sealed batch.
  time_ms sealed_watermark_ = no_time;
  std::shared_ptr<record_buffer> builder_;
  std::deque<batch> queue_;
  /// Emptied buffers returned by the receiver, reused for the next batches.
  std::vector<std::shared_ptr<record_buffer>> spares_;
};

/// The receiving end of one channel: the next expected sequence number and whether the
/// last batch arrived. Owned by one actor; not thread-safe.
class input_channel {
public:
  enum class verdict { accept, duplicate };

  /// Checks `seq` against the channel's position. Replayed batches (seq below the next
  /// expected one) are duplicates; a gap is a bug in the sender and aborts.
  [[nodiscard]] verdict admit(uint64_t seq, bool last);

  [[nodiscard]] uint64_t position() const noexcept {
    return next_seq_ - 1;
  }
  [[nodiscard]] bool finished() const noexcept {
    return finished_;
  }

private:
  uint64_t next_seq_ = 1;
  bool finished_ = false;
};

} // namespace eddy
