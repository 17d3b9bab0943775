#pragma once

// The work every variant of eddy-bench does, and what a run reports.

#include <cstdint>

#include <nlohmann/json.hpp>

namespace bench {

/// Distinct keys of keyed_count.
constexpr int64_t keyed_distinct = 100'000;

/// Value i of the stateless case.
inline int64_t stateless_value(uint64_t i) noexcept {
  return static_cast<int64_t>(i);
}
inline int64_t stateless_map(int64_t x) noexcept {
  return x * 3 + 1;
}
/// Drops one value in four.
inline bool stateless_keep(int64_t x) noexcept {
  return (x & 3) != 0;
}
/// Key i of keyed_count: a pseudo-random key in 0..99999 (the splitmix64 finalizer of i), so
/// that keys arrive in no particular order; 20M draws hit every one of the 100k keys.
inline int64_t keyed_value(uint64_t i) noexcept {
  uint64_t z = i + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<int64_t>(z % static_cast<uint64_t>(keyed_distinct));
}

struct run_result {
  double seconds = 0;
  uint64_t events = 0;
  /// Records that reached the end of the pipeline: stateless, and restart (1 expected).
  uint64_t out = 0;
  /// Distinct keys held at the end (keyed_count).
  uint64_t keys = 0;
  /// Engine only: the sum over all actors of the records their output side held at most.
  uint64_t buffered_peak = 0;
  /// Engine only: seconds from engine start to the first record at the sink (-1: none).
  double first_out_seconds = -1;
  /// Latency case: from generating a record to its sink making it durable (with durable
  /// state: before the sink's commit; in memory: when it is written), median and 99th
  /// percentile in ms (-1: not measured).
  double latency_p50_ms = -1;
  double latency_p99_ms = -1;
};

/// Event time: a key of 1000 and a timestamp of about i / 100 ms, late by up to 20 ms.
struct timed_key {
  int64_t key = 0;
  int64_t ts = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(timed_key, key, ts)

/// The binary encoding of the outbox (a partition keeps its output there until a
/// transactional sink committed it).
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, timed_key& x) {
  return f(x.key, x.ts);
}

/// Records per second the generator of the latency case makes unless --runtime.source-rate
/// says otherwise: well below what every commit interval sustains, so that latency is the
/// commit's, not a queue's.
constexpr uint64_t latency_rate_default = 100'000;
/// The first records of a latency run (the job starting) are left out of its percentiles.
constexpr double latency_warmup_share = 0.1;

inline timed_key timed_event(uint64_t i) noexcept {
  auto h = (i * 0x9e3779b97f4a7c15ULL) >> 40;
  auto ts = static_cast<int64_t>(i / 100) - static_cast<int64_t>(h % 20);
  return timed_key{static_cast<int64_t>((i * 7919) % 1000), ts};
}

} // namespace bench
