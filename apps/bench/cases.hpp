#pragma once

// The cases eddy-bench measures and the variants each compares (see bench.cpp).

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "eddy/core/durability.hpp"

namespace bench {

/// The job a case runs on the engine (and the work its baselines do).
enum class work {
  /// generator -> map -> filter -> sink.
  stateless,
  /// generator of keyed_value(i) -> key_by -> count per key -> sink (nothing reaches it).
  keyed_count,
  /// generator of i mod N -> key_by -> count per key -> sink of the keys seen twice.
  restart,
  /// Event time: generator of (key, ts) out of order -> sliding window count per key.
  sliding_count,
  /// Event time: two generators of (key, ts) -> connect -> interval join per key.
  interval_join,
  /// generator at a fixed rate of (keyed_value(i), the time it was made) -> key_by -> count
  /// per key, each event passed on -> a transactional sink that notes each record's latency.
  keyed_latency,
};

/// How a variant runs in its child process.
enum class runner { engine, caf_baseline, sqlite_baseline };

struct variant_info {
  /// Name in reports and in `--run-one CASE VARIANT`.
  const char* name;
  runner how;
  /// The engine's --state.durability. For the SQLite baseline its synchronous mode, as in the
  /// journals: process = synchronous=NORMAL, machine = synchronous=FULL.
  eddy::durability level;
  /// keyed_count: the keyed function throws this many times, at evenly spaced calls, and
  /// supervision restarts the job from its journals each time (backoff 0: the restart itself
  /// is measured, not the waiting).
  uint32_t failures = 0;
  /// The job of this variant when it is not the case's.
  std::optional<work> job = std::nullopt;
};

/// A reported ratio of two variants' median throughputs.
struct ratio_info {
  /// Field name in the report, e.g. "baseline_ratio".
  const char* name;
  const char* numerator;
  const char* denominator;
  /// What the issue asks for at least (0: no target, the ratio is for information).
  double target;
};

struct case_info {
  const char* name;
  const char* description;
  uint64_t default_events;
  work job;
  /// The first variant is the case's main one: its fields have no prefix in the report.
  std::vector<variant_info> variants;
  std::vector<ratio_info> ratios;
};

/// Every case, in the order they run by default.
std::span<const case_info> all_cases();

/// The case named `name`, or nullptr.
const case_info* find_case(const std::string& name);

/// The variant of `c` named `name`, or nullptr.
const variant_info* find_variant(const case_info& c, const std::string& name);

/// The names of cases or of a case's variants, comma-separated.
template <class Range>
std::string names_of(const Range& items) {
  std::string result;
  for (const auto& x : items) {
    result += (result.empty() ? "" : ", ") + std::string{x.name};
  }
  return result;
}

} // namespace bench
