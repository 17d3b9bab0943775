#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "eddy/flow/record.hpp"

namespace eddy {

/// Identifies one edge between a sender instance and a receiver instance, unique per job.
using channel_id = uint32_t;

/// What a sender has forwarded when its channel ends: for each replayable producer, the
/// position up to which every record it received from that producer has been sent. Last
/// batches carry it so that durable consumers record positions for producers whose records
/// never reached them, and a completed job is not replayed when it runs again.
using frontier = std::vector<std::pair<uint32_t, uint64_t>>;

/// Merges `from` into `into`, keeping the largest position per producer.
inline void merge_frontier(frontier& into, const frontier& from) {
  for (const auto& [producer, position] : from) {
    bool found = false;
    for (auto& [p, pos] : into) {
      if (p == producer) {
        pos = position > pos ? position : pos;
        found = true;
      }
    }
    if (!found) {
      into.emplace_back(producer, position);
    }
  }
}

/// The unit of transfer on every edge: records of one channel with a sequence number.
/// Sequence numbers start at 1 and grow by one per batch on a channel; receivers use them
/// to drop duplicates after replay and to assert FIFO order. The last batch of a channel
/// carries `last = true` (it may hold records too).
struct batch {
  channel_id channel = 0;
  uint64_t seq = 0;
  /// The sender's watermark when the batch was sealed: no later record of the channel is
  /// older (no_time: none yet; `idle_watermark`: the sender is idle, see time/watermark.hpp).
  time_ms watermark = no_time;
  bool last = false;
  /// Shared so that CAF can copy the message cheaply; only the receiver touches it.
  std::shared_ptr<record_buffer> records;
  /// Set on last batches (see `frontier`); in process only, like the records.
  std::shared_ptr<const frontier> ends;
  /// Non-zero on a savepoint's marker: a batch without records that says "every record
  /// before me on this channel is before cut `cut`" (docs/design.md, "Savepoints").
  uint64_t cut = 0;

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
  return f(x.channel, x.seq, x.watermark, x.last, x.cut, records);
}

} // namespace eddy
