#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "eddy/flow/record.hpp"

namespace eddy {

/// Identifies one edge between a sender instance and a receiver instance, unique per job.
using channel_id = uint32_t;

/// The unit of transfer on every edge: records of one channel with a sequence number.
/// Sequence numbers start at 1 and grow by one per batch on a channel; receivers use them
/// to drop duplicates after replay and to assert FIFO order. The last batch of a channel
/// carries `last = true` (it may hold records too).
struct batch {
  channel_id channel = 0;
  uint64_t seq = 0;
  /// The sender's watermark when the batch was sealed (event-time issue); no_time for now.
  time_ms watermark = no_time;
  bool last = false;
  /// Shared so that CAF can copy the message cheaply; only the receiver touches it.
  std::shared_ptr<record_buffer> records;

  [[nodiscard]] size_t size() const noexcept {
    return records ? records->size() : 0;
  }
};

/// A consumed, emptied record buffer travelling back to its sender with the credit, so
/// that senders reuse buffers instead of allocating one per batch (like Flink's network
/// buffer pool). Null when the receiver has none to return.
struct recycled_buffer {
  std::shared_ptr<record_buffer> buffer;
};

/// Recycled buffers never leave the process: they inspect as nothing.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, recycled_buffer&) {
  return f();
}

/// CAF inspection of the batch header. Records stay in process: transporting them to
/// another node (an encoded payload decoded by the receiver, which knows its input type)
/// belongs to the cluster work, so a deserialized batch arrives without records.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, batch& x) {
  uint64_t records = x.size();
  return f(x.channel, x.seq, x.watermark, x.last, records);
}

} // namespace eddy
