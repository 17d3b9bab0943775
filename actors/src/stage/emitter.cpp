#include <algorithm>

#include "eddy/core/assert.hpp"
#include "stage/stage.hpp"

namespace eddy::detail {

emitter::emitter(const stage_init& init)
  : spec_(&init.graph->node(init.node))
  , targets_(init.outputs)
  , batch_events_max_(init.opts.batch_events_max)
  , credit_batches_max_(init.opts.credit_batches_max)
  , metrics_(init.metrics) {
  const auto& self_node = init.graph->node(init.node);
  if (targets_.empty()) {
    return;
  }
  const auto& consumer = init.graph->node(self_node.consumers.at(0));
  for (size_t i = 0; i < targets_.size(); ++i) {
    channels_.emplace_back(targets_[i].channel, init.opts.credit_batches_max,
                           self_node.make_output_buffer(batch_events_max_), batch_events_max_);
    index_of_.emplace(targets_[i].channel, i);
  }
  if (consumer.kind == node_kind::keyed) {
    router_ = consumer.make_router();
  } else if (channels_.size() > 1 && init.ctx.durable) {
    router_ = self_node.make_origin_router();
  }
  if (router_) {
    scratch_ = self_node.make_output_buffer(batch_events_max_);
  }
}

void emitter::commit() {
  if (channels_.empty()) {
    if (scratch_) {
      scratch_->clear();
    }
    return;
  }
  if (router_) {
    router_->route(*scratch_, channels_);
    scratch_->clear();
    for (auto& ch : channels_) {
      ch.seal_if_full();
    }
    return;
  }
  // Without a key, batches go round-robin over the channels (one channel when the
  // downstream has as many or fewer instances: a forward edge).
  if (channels_[current_].seal_if_full()) {
    current_ = (current_ + 1) % channels_.size();
  }
}

void emitter::seal_partial() {
  for (auto& ch : channels_) {
    ch.seal();
    ch.seal_watermark();
  }
}

void emitter::mark(uint64_t cut) {
  for (auto& ch : channels_) {
    ch.seal_marker(cut);
  }
}

void emitter::close(std::shared_ptr<const frontier> ends) {
  for (auto& ch : channels_) {
    ch.seal();
    ch.seal_last(ends);
  }
}

void emitter::grant(channel_id channel, uint32_t batches, std::shared_ptr<record_buffer> recycled) {
  auto i = index_of_.find(channel);
  if (i != index_of_.end()) {
    auto& ch = channels_[i->second];
    // A receiver returns one credit per batch it consumed: the credit never exceeds what the
    // channel started with, so the batches in flight are never fewer than zero.
    EDDY_ASSERT(uint64_t{ch.credit()} + batches <= credit_batches_max_);
    ch.grant(batches, std::move(recycled));
  }
}

bool emitter::blocked() const noexcept {
  return std::any_of(channels_.begin(), channels_.end(),
                     [](const output_channel& ch) { return ch.queued_batches() > 0; });
}

bool emitter::has_partial() const noexcept {
  return std::any_of(channels_.begin(), channels_.end(), [](const output_channel& ch) {
    return !ch.closed() && (ch.builder_events() > 0 || ch.watermark_pending());
  });
}

bool emitter::finished() const noexcept {
  return std::all_of(channels_.begin(), channels_.end(),
                     [](const output_channel& ch) { return ch.finished(); });
}

namespace {

/// The fields a batch and its remote form share.
template <class From, class To>
void copy_header(const From& from, To& to) {
  to.channel = from.channel;
  to.seq = from.seq;
  to.watermark = from.watermark;
  to.last = from.last;
  to.cut = from.cut;
}

} // namespace

remote_batch emitter::to_remote(batch& b) {
  remote_batch rb;
  copy_header(b, rb);
  if (b.ends) {
    rb.has_ends = true;
    rb.ends = *b.ends;
  }
  if (b.size() > 0) {
    spec_->encode_output(*b.records, rb.records);
  }
  return rb;
}

batch from_remote(const stage_init& init, remote_batch& rb) {
  const auto& input = init.graph->node(*init.graph->node(init.node).input);
  batch b;
  copy_header(rb, b);
  if (rb.has_ends) {
    b.ends = std::make_shared<const frontier>(std::move(rb.ends));
  }
  b.records = std::shared_ptr<record_buffer>{input.make_output_buffer(init.opts.batch_events_max)};
  if (!rb.records.empty()) {
    input.decode_output(rb.records, *b.records);
  }
  return b;
}

void emitter::update_metrics() {
  uint64_t queued = 0;
  uint64_t buffered = 0;
  uint64_t credit = 0;
  for (const auto& ch : channels_) {
    credit += ch.credit();
    queued += ch.queued_batches();
    buffered += ch.builder_events() + ch.queued_batches() * batch_events_max_;
  }
  metrics_->queued_batches.store(queued, std::memory_order_relaxed);
  metrics_->credit.store(credit, std::memory_order_relaxed);
  if (queued > metrics_->queued_batches_peak.load(std::memory_order_relaxed)) {
    metrics_->queued_batches_peak.store(queued, std::memory_order_relaxed);
  }
  if (buffered > metrics_->buffered_events_peak.load(std::memory_order_relaxed)) {
    metrics_->buffered_events_peak.store(buffered, std::memory_order_relaxed);
  }
}

} // namespace eddy::detail
