#pragma once

// What the window test suites (windows_assign_test.cpp, windows_reference_test.cpp) share.

#include <cstdint>

#include "eddy/time/window_aggregate.hpp"

namespace eddy::test {

/// The aggregate of most cases: the sum of the values.
inline const sum_aggregate<int64_t> sum{};

/// splitmix64: the same numbers on every platform and standard library.
class rng {
public:
  explicit rng(uint64_t seed)
    : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  /// Uniform in [lo, hi].
  int64_t between(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo + 1));
  }

private:
  uint64_t state_;
};

} // namespace eddy::test
