#pragma once

// Two generated, out-of-order streams for the join tests (event_time_test.cpp,
// window_join_test.cpp): orders and payments of 5 keys, seeded and reproducible.

#include <compare>
#include <cstdint>

#include <nlohmann/json.hpp>

namespace eddy::test {

inline uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

struct order {
  int64_t key = 0;
  int64_t ts = 0;
  int64_t id = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(order, key, ts, id)

struct payment {
  int64_t key = 0;
  int64_t ts = 0;
  int64_t id = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(payment, key, ts, id)

/// A joined pair, by ids.
struct matched {
  int64_t order = 0;
  int64_t payment = 0;
  friend auto operator<=>(const matched&, const matched&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(matched, order, payment)

/// Record i of one side: `spacing` ms apart, delayed by up to `max_delay` ms, one of 5 keys.
template <class T>
T make_side(uint64_t i, uint64_t seed, int64_t spacing, int64_t max_delay) {
  auto h = mix(i * 131 + seed);
  return T{static_cast<int64_t>(h % 5),
           static_cast<int64_t>(i) * spacing - static_cast<int64_t>((h >> 8) % (max_delay + 1)),
           static_cast<int64_t>(i)};
}

} // namespace eddy::test
