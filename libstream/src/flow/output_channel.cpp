#include "eddy/flow/output_channel.hpp"

#include "eddy/core/assert.hpp"

namespace eddy {

output_channel::output_channel(channel_id id, uint32_t initial_credit,
                               std::unique_ptr<record_buffer> builder, size_t batch_events_max)
  : id_(id)
  , spares_max_(initial_credit)
  , credit_(initial_credit)
  , batch_events_max_(batch_events_max)
  , builder_(std::move(builder)) {
  EDDY_ASSERT(builder_ != nullptr);
  EDDY_ASSERT(batch_events_max_ > 0);
}

bool output_channel::seal_if_full() {
  if (builder_->size() < batch_events_max_) {
    return false;
  }
  push_batch(false);
  return true;
}

void output_channel::seal() {
  if (!builder_->empty()) {
    push_batch(false);
  }
}

void output_channel::seal_last(std::shared_ptr<const frontier> ends) {
  if (!closed_) {
    push_batch(true, std::move(ends));
    closed_ = true;
  }
}

void output_channel::seal_marker(uint64_t cut) {
  if (closed_) {
    return;
  }
  seal();
  push_batch(false, nullptr, cut);
}

bool output_channel::seal_watermark() {
  if (closed_ || watermark_ == sealed_watermark_) {
    return false;
  }
  push_batch(false);
  return true;
}

bool output_channel::make_room(size_t incoming) {
  if (builder_->empty() || builder_->size() + incoming <= batch_events_max_) {
    return false;
  }
  push_batch(false);
  return true;
}

void output_channel::grant(uint32_t batches, std::shared_ptr<record_buffer> recycled) {
  credit_ += batches;
  // At most as many spares as batches can be in flight; a buffer still shared elsewhere
  // (never the case today) is not ours to reuse.
  if (recycled && recycled.use_count() == 1 && spares_.size() < spares_max_) {
    recycled->clear();
    spares_.push_back(std::move(recycled));
  }
}

bool output_channel::pop_sendable(batch& out) {
  if (credit_ == 0 || queue_.empty()) {
    return false;
  }
  out = std::move(queue_.front());
  queue_.pop_front();
  --credit_;
  return true;
}

void output_channel::push_batch(bool last, std::shared_ptr<const frontier> ends, uint64_t cut) {
  EDDY_ASSERT(!closed_);
  std::shared_ptr<record_buffer> next;
  if (spares_.empty()) {
    next = builder_->make_empty(batch_events_max_);
  } else {
    next = std::move(spares_.back());
    spares_.pop_back();
  }
  batch b;
  b.channel = id_;
  b.seq = next_seq_++;
  b.last = last;
  b.watermark = watermark_;
  sealed_watermark_ = watermark_;
  b.records = std::move(builder_);
  b.ends = std::move(ends);
  b.cut = cut;
  queue_.push_back(std::move(b));
  builder_ = std::move(next);
}

input_channel::verdict input_channel::admit(uint64_t seq, bool last) {
  if (seq < next_seq_) {
    return verdict::duplicate;
  }
  // A gap means the sender skipped a batch: our bug, never an input condition.
  EDDY_ASSERT(seq == next_seq_);
  EDDY_ASSERT(!finished_);
  next_seq_ = seq + 1;
  finished_ = last;
  return verdict::accept;
}

} // namespace eddy
