#pragma once

// What the subcommands of `eddy` share: exit codes, the one-line errors, times as text.

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <string>
#include <string_view>

namespace eddy::cli {

inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;
inline constexpr int exit_usage = 2;

/// Prints "eddy: error: <message> (see <help>)" and returns the usage exit code.
inline int usage_error(const std::string& message, std::string_view help) {
  std::cerr << "eddy: error: " << message << " (see " << help << ")\n";
  return exit_usage;
}

inline int failure(const std::string& message) {
  std::cerr << "eddy: error: " << message << "\n";
  return exit_failure;
}

/// `at_ms` (ms since the epoch) as UTC ISO-8601 with milliseconds: 2024-05-01T12:00:00.000Z.
inline std::string iso_utc(int64_t at_ms) {
  // Floor division, so that times before 1970 keep a millisecond part in 0..999.
  int64_t secs = at_ms / 1000;
  int64_t ms = at_ms % 1000;
  if (ms < 0) {
    secs -= 1;
    ms += 1000;
  }
  auto t = static_cast<std::time_t>(secs);
  std::tm tm{};
  if (::gmtime_r(&t, &tm) == nullptr) {
    return std::to_string(at_ms) + " ms";
  }
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  char result[48];
  std::snprintf(result, sizeof result, "%s.%03dZ", date, static_cast<int>(ms));
  return result;
}

} // namespace eddy::cli
