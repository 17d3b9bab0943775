#pragma once

// Durations in options: "30min", "90s", "1500ms", "2h", "1d".

#include <cstdint>
#include <optional>
#include <string>

namespace eddy::apps {

/// Milliseconds of `text` (a positive integer and a unit: ms, s, min, h, d); nullopt when
/// it is not one.
inline std::optional<int64_t> parse_duration_ms(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
    ++digits;
  }
  if (digits == 0 || digits > 12) {
    return std::nullopt;
  }
  auto n = std::stoll(text.substr(0, digits));
  auto unit = text.substr(digits);
  int64_t scale = unit == "ms"    ? 1
                  : unit == "s"   ? 1000
                  : unit == "min" ? 60'000
                  : unit == "h"   ? 3'600'000
                  : unit == "d"   ? 86'400'000
                                  : 0;
  if (scale == 0 || n <= 0) {
    return std::nullopt;
  }
  return n * scale;
}

} // namespace eddy::apps
