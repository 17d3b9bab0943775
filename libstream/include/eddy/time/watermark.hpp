#pragma once

// Event time (see "Event time" in the README): a source's timestamps and watermarks, and
// how a stage combines the watermarks of its inputs. A watermark W says that no later
// record of that input is older than W + 1: event-time timers and windows at or before W
// may fire.

#include <cstdint>
#include <limits>
#include <map>

#include "eddy/flow/record.hpp"

namespace eddy {

/// The watermark of an idle input: left out of the minimum over a stage's inputs, so that
/// an input without records does not hold event time back.
inline constexpr time_ms idle_watermark = std::numeric_limits<time_ms>::max() - 1;
/// The watermark of an input that ended: every one of its records has arrived.
inline constexpr time_ms end_watermark = std::numeric_limits<time_ms>::max();

/// How a source derives watermarks from its records' timestamps (Flink's
/// WatermarkStrategy): after a record of timestamp t, the watermark is the highest t seen
/// minus `bound` minus 1.
struct watermark_strategy {
  /// How much later than a newer record a record may arrive, in ms of event time (0:
  /// timestamps never go back).
  time_ms bound = 0;
  /// A source instance that reads nothing for this long is idle until it reads again
  /// (0: never).
  uint32_t idle_ms = 0;

  /// The watermark after the highest timestamp `max_ts` (no_time: none seen).
  [[nodiscard]] time_ms watermark_after(time_ms max_ts) const noexcept {
    return max_ts == no_time ? no_time : max_ts - bound - 1;
  }
};

/// Records arrive at most `bound_ms` later than a newer record.
inline watermark_strategy bounded_out_of_orderness(time_ms bound_ms, uint32_t idle_ms = 0) {
  return watermark_strategy{bound_ms, idle_ms};
}
/// Timestamps never go back.
inline watermark_strategy monotonous_timestamps(uint32_t idle_ms = 0) {
  return watermark_strategy{0, idle_ms};
}

/// The watermark of a stage: the minimum over its inputs that are not idle (an input that
/// reported nothing yet holds it at no_time), the end when all ended. Never goes back.
/// While every input is idle the stage keeps its watermark and tells its consumers it is
/// idle (`forward`).
class watermark_tracker {
public:
  explicit watermark_tracker(size_t inputs = 0)
    : inputs_(inputs) {}

  /// Input `input` reports `watermark`; returns the stage's watermark.
  time_ms update(uint64_t input, time_ms watermark) {
    auto& w = by_input_.try_emplace(input, no_time).first->second;
    // An idle input may come back with a watermark below the others'; an active one never
    // goes back.
    w = (w == idle_watermark || watermark == idle_watermark) ? watermark : std::max(w, watermark);
    time_ms combined = by_input_.size() < inputs_ ? no_time : end_watermark;
    idle_ = by_input_.size() >= inputs_;
    for (const auto& [_, v] : by_input_) {
      if (v != idle_watermark) {
        idle_ = false;
        combined = std::min(combined, v);
      }
    }
    if (!idle_) {
      current_ = std::max(current_, combined);
    }
    return current_;
  }
  /// The stage's watermark (no_time until every input reported one).
  [[nodiscard]] time_ms current() const noexcept {
    return current_;
  }
  /// What the stage's output batches carry: its watermark, or `idle_watermark` while every
  /// input is idle.
  [[nodiscard]] time_ms forward() const noexcept {
    return idle_ ? idle_watermark : current_;
  }

private:
  size_t inputs_;
  std::map<uint64_t, time_ms> by_input_;
  time_ms current_ = no_time;
  bool idle_ = false;
};

} // namespace eddy
