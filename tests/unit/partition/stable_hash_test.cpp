#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "eddy/partition/stable_hash.hpp"

using eddy::key_hash;
using eddy::mix64;
using eddy::partition_of;
using eddy::stable_hash;

namespace {

struct point {
  int32_t x;
  int32_t y;
};

// A user key type hashed through the ADL hook of key_by.
uint64_t eddy_stable_hash(const point& p) noexcept {
  return stable_hash(int64_t{p.x} * 1'000'003 + p.y);
}

// The hash is usable at compile time.
static_assert(stable_hash(std::string_view{"abc"}) == 0x33ebaf9927cbc5bdULL);
static_assert(stable_hash(int64_t{42}) == 0x2d1c8760f8047fc7ULL);
static_assert(eddy::stable_hashable<std::string>);
static_assert(eddy::stable_hashable<int32_t>);
static_assert(eddy::stable_hashable<point>);
static_assert(!eddy::stable_hashable<double>);
static_assert(!eddy::stable_hashable<std::vector<int>>);

} // namespace

// The values below were computed once (and checked against an independent FNV-1a +
// murmur3-fmix64 implementation). Partition ids derived from them are stored on disk, so
// these values must never change.
TEST_CASE("stable_hash of strings has pinned values") {
  CHECK(stable_hash(std::string_view{""}) == 0xefd01f60ba992926ULL);
  CHECK(stable_hash(std::string_view{"a"}) == 0x82a2a958a9bece5bULL);
  CHECK(stable_hash(std::string_view{"abc"}) == 0x33ebaf9927cbc5bdULL);
  CHECK(stable_hash(std::string_view{"user-42"}) == 0xa39532c7ab051e8dULL);
  CHECK(stable_hash(std::string_view{"hello world"}) == 0x7c6d8c019b6ee5d5ULL);
}

TEST_CASE("stable_hash of integers has pinned values") {
  CHECK(stable_hash(int64_t{0}) == 0x9ca066f1a4ab2eeaULL);
  CHECK(stable_hash(int64_t{1}) == 0x25b775faeca8f520ULL);
  CHECK(stable_hash(int64_t{-1}) == 0x3cd617bbbcc39640ULL);
  CHECK(stable_hash(int64_t{42}) == 0x2d1c8760f8047fc7ULL);
  CHECK(stable_hash(int64_t{1000000007}) == 0xbb35032753b997b0ULL);
  CHECK(stable_hash(std::numeric_limits<int64_t>::min()) == 0x11c0b7745eb88d61ULL);
  CHECK(stable_hash(std::numeric_limits<int64_t>::max()) == 0xf2a9e4c522cf7451ULL);
}

TEST_CASE("partition_of pins the partition of known keys over 128 partitions") {
  CHECK(partition_of(stable_hash(""), 128) == 38);
  CHECK(partition_of(stable_hash("a"), 128) == 91);
  CHECK(partition_of(stable_hash("abc"), 128) == 61);
  CHECK(partition_of(stable_hash("user-42"), 128) == 13);
  CHECK(partition_of(stable_hash("hello world"), 128) == 85);
}

TEST_CASE("mix64 keeps zero and changes every other small input") {
  CHECK(mix64(0) == 0);
  for (uint64_t x = 1; x < 1000; ++x) {
    CHECK(mix64(x) != x);
  }
}

TEST_CASE("integers of different widths hash equal when their values are equal") {
  for (int64_t v :
       {int64_t{0}, int64_t{1}, int64_t{-1}, int64_t{42}, int64_t{-100}, int64_t{127}}) {
    CAPTURE(v);
    CHECK(stable_hash(static_cast<int8_t>(v)) == stable_hash(v));
    CHECK(stable_hash(static_cast<int16_t>(v)) == stable_hash(v));
    CHECK(stable_hash(static_cast<int32_t>(v)) == stable_hash(v));
  }
  CHECK(stable_hash(int32_t{123456789}) == stable_hash(int64_t{123456789}));
  CHECK(stable_hash(uint32_t{123456789}) == stable_hash(int64_t{123456789}));
  CHECK(stable_hash(uint8_t{200}) == stable_hash(int64_t{200}));
  CHECK(stable_hash(uint16_t{65535}) == stable_hash(int64_t{65535}));
  CHECK(stable_hash(std::numeric_limits<int32_t>::min()) ==
        stable_hash(int64_t{std::numeric_limits<int32_t>::min()}));
}

TEST_CASE("unsigned integers hash by value, not by bit pattern of a narrower signed type") {
  // uint32 0xffffffff is 4294967295, not -1.
  CHECK(stable_hash(std::numeric_limits<uint32_t>::max()) == stable_hash(int64_t{4294967295LL}));
  CHECK(stable_hash(std::numeric_limits<uint32_t>::max()) != stable_hash(int32_t{-1}));
}

TEST_CASE("std::string, const char* and string_view of the same text hash equal") {
  for (const char* text : {"", "a", "user-42", "with space", "ünïcödé", "line\nbreak"}) {
    CAPTURE(text);
    std::string s{text};
    std::string_view sv{s};
    CHECK(stable_hash(s) == stable_hash(sv));
    CHECK(stable_hash(text) == stable_hash(sv));
    CHECK(key_hash(s) == stable_hash(sv));
    CHECK(key_hash(sv) == stable_hash(sv));
  }
}

TEST_CASE("stable_hash covers every byte of a string, embedded NUL bytes included") {
  using namespace std::string_literals;
  auto with_nul = "ab\0cd"s;
  REQUIRE(with_nul.size() == 5);
  CHECK(stable_hash(with_nul) != stable_hash("ab"));
  CHECK(stable_hash(with_nul) != stable_hash("ab\0ce"s));
  CHECK(stable_hash(std::string_view{"ab"}) != stable_hash(std::string_view{"ba"}));
  CHECK(stable_hash(std::string_view{"a"}) != stable_hash(std::string_view{"a "}));
  // A one-byte string and the integer of that byte are different keys.
  CHECK(stable_hash(std::string_view{"\x01"}) != stable_hash(int64_t{1}));
}

TEST_CASE("key_hash uses an ADL eddy_stable_hash for user key types") {
  point p{3, 4};
  CHECK(key_hash(p) == stable_hash(int64_t{3} * 1'000'003 + 4));
  CHECK(key_hash(point{3, 5}) != key_hash(p));
  CHECK(key_hash(int32_t{7}) == stable_hash(int64_t{7}));
}

TEST_CASE("partition_of always returns a partition below the partition count") {
  std::vector<uint64_t> hashes = {0,
                                  1,
                                  127,
                                  128,
                                  std::numeric_limits<uint64_t>::max(),
                                  std::numeric_limits<uint64_t>::max() - 1,
                                  stable_hash("abc"),
                                  stable_hash(int64_t{-1})};
  for (uint32_t p : {1u, 2u, 3u, 7u, 128u, 4096u, std::numeric_limits<uint32_t>::max()}) {
    for (auto h : hashes) {
      CAPTURE(p);
      CAPTURE(h);
      CHECK(partition_of(h, p) < p);
    }
  }
  CHECK(partition_of(std::numeric_limits<uint64_t>::max(), 1) == 0);
  CHECK(partition_of(129, 128) == 1);
}

namespace {

template <class MakeKey>
std::vector<size_t> spread(MakeKey make_key, size_t keys, uint32_t partitions) {
  std::vector<size_t> counts(partitions, 0);
  for (size_t i = 0; i < keys; ++i) {
    auto p = partition_of(key_hash(make_key(i)), partitions);
    REQUIRE(p < partitions);
    ++counts[p];
  }
  return counts;
}

void check_even(const std::vector<size_t>& counts, size_t keys) {
  double mean = static_cast<double>(keys) / static_cast<double>(counts.size());
  auto [lo, hi] = std::minmax_element(counts.begin(), counts.end());
  CAPTURE(mean);
  CAPTURE(*lo);
  CAPTURE(*hi);
  CHECK(static_cast<double>(*lo) >= 0.75 * mean);
  CHECK(static_cast<double>(*hi) <= 1.25 * mean);
}

} // namespace

TEST_CASE("partition_of spreads 100k string keys evenly over 128 partitions") {
  constexpr size_t keys = 100'000;
  auto counts = spread([](size_t i) { return "key-" + std::to_string(i); }, keys, 128);
  check_even(counts, keys);
}

TEST_CASE("partition_of spreads 100k sequential integer keys evenly over 128 partitions") {
  constexpr size_t keys = 100'000;
  auto counts = spread([](size_t i) { return static_cast<int64_t>(i); }, keys, 128);
  check_even(counts, keys);
}

TEST_CASE("partition_of spreads 100k integer keys with a common stride evenly over 128 "
          "partitions") {
  // Multiples of 128 all share their low bits: only the mixing makes them spread.
  constexpr size_t keys = 100'000;
  auto counts = spread([](size_t i) { return static_cast<int64_t>(i * 128); }, keys, 128);
  check_even(counts, keys);
}
