#pragma once

#include <cstdint>
#include <map>
#include <unordered_map>
#include <utility>
#include <vector>

#include "eddy/flow/batch.hpp"

namespace eddy {

/// The exactly-once gate of a durable consumer (a key partition, a transactional sink).
/// It remembers, for every input channel and every producer whose records arrive on it, the
/// position of the last record applied. Records arrive on a channel in their producer's
/// order (every path from a producer to a consumer is FIFO and replay takes the same path),
/// so a record at or below that position was applied before the crash: a replay, dropped.
/// Records of one input record (flat_map) share an origin and travel in one batch, so the
/// comparison is against the positions before the batch. Owned by one actor.
class replay_filter {
public:
  /// The journal key of (channel, producer).
  static constexpr uint64_t key_of(channel_id channel, uint32_t producer) noexcept {
    return (uint64_t{channel} << 16) | producer;
  }
  static constexpr uint32_t producer_of(uint64_t key) noexcept {
    return static_cast<uint32_t>(key & 0xffff);
  }

  /// Restores the positions committed in the journal.
  void load(const std::map<uint64_t, uint64_t>& positions) {
    for (auto& [k, pos] : positions) {
      applied_[k] = pos;
    }
  }

  /// Removes the replayed records of `buf`, received on `channel`, and advances the
  /// positions past the rest. Returns how many were removed.
  size_t admit(channel_id channel, record_buffer& buf) {
    batch_max_.clear();
    auto removed = buf.remove_unless([&](origin_t o) {
      if (o == 0) {
        return true;
      }
      auto k = key_of(channel, origin_producer(o));
      auto pos = origin_position(o);
      auto i = applied_.find(k);
      if (i != applied_.end() && pos <= i->second) {
        return false;
      }
      note(k, pos);
      return true;
    });
    for (auto& [k, pos] : batch_max_) {
      auto& slot = applied_[k];
      if (pos > slot) {
        slot = pos;
        changed_[k] = pos;
      }
    }
    return removed;
  }

  /// Records that every record of `producer` up to `position` arriving on `channel` has
  /// arrived (the channel's last batch said so).
  void advance(channel_id channel, uint32_t producer, uint64_t position) {
    auto k = key_of(channel, producer);
    auto& slot = applied_[k];
    if (position > slot) {
      slot = position;
      changed_[k] = position;
    }
  }
  void advance(channel_id channel, const frontier& ends) {
    for (const auto& [producer, position] : ends) {
      advance(channel, producer, position);
    }
  }

  /// Positions advanced since the last call, for the next commit.
  std::vector<std::pair<uint64_t, uint64_t>> take_changes() {
    std::vector<std::pair<uint64_t, uint64_t>> result(changed_.begin(), changed_.end());
    changed_.clear();
    return result;
  }

  /// The applied position of every (channel, producer) key.
  [[nodiscard]] const std::unordered_map<uint64_t, uint64_t>& positions() const noexcept {
    return applied_;
  }

private:
  void note(uint64_t k, uint64_t pos) {
    for (auto& [key, max] : batch_max_) {
      if (key == k) {
        max = pos > max ? pos : max;
        return;
      }
    }
    batch_max_.emplace_back(k, pos);
  }

  std::unordered_map<uint64_t, uint64_t> applied_;
  std::map<uint64_t, uint64_t> changed_;
  /// Largest position per key seen in the current batch (few keys per channel).
  std::vector<std::pair<uint64_t, uint64_t>> batch_max_;
};

} // namespace eddy
