#pragma once

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace eddy {

/// Partition ids are stored on disk by the durable-state work, so these functions are part
/// of the storage format: they may never change. Unit tests pin their values.

/// Murmur3's 64-bit finalizer: spreads every input bit over the whole result.
constexpr uint64_t mix64(uint64_t x) noexcept {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

/// FNV-1a over the bytes, then `mix64`, so that the low bits used by `mod P` are uniform.
constexpr uint64_t stable_hash(std::string_view bytes) noexcept {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : bytes) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ULL;
  }
  return mix64(h);
}

/// Integers hash by value (sign-extended to 64 bits), independent of their width.
template <std::integral T>
constexpr uint64_t stable_hash(T value) noexcept {
  if constexpr (std::is_same_v<T, char>) {
    // char's signedness differs between platforms; hash it as the byte it is.
    return stable_hash(static_cast<unsigned char>(value));
  } else {
    return mix64(static_cast<uint64_t>(static_cast<int64_t>(value)) ^ 0x9e3779b97f4a7c15ULL);
  }
}

inline uint64_t stable_hash(const std::string& s) noexcept {
  return stable_hash(std::string_view{s});
}
inline uint64_t stable_hash(const char* s) noexcept {
  return stable_hash(std::string_view{s});
}

/// Key types usable with `key_by`: strings and integers, or any type with an ADL-visible
/// `uint64_t eddy_stable_hash(const K&)` that is itself stable across versions.
template <class K>
concept stable_hashable = requires(const K& k) {
  { stable_hash(k) } -> std::same_as<uint64_t>;
}
|| requires(const K& k) {
  { eddy_stable_hash(k) } -> std::same_as<uint64_t>;
};

template <class K>
uint64_t key_hash(const K& key) noexcept {
  if constexpr (requires { stable_hash(key); }) {
    return stable_hash(key);
  } else {
    return eddy_stable_hash(key);
  }
}

/// The key partition (0 .. partitions-1) a hash belongs to.
constexpr uint32_t partition_of(uint64_t hash, uint32_t partitions) noexcept {
  return static_cast<uint32_t>(hash % partitions);
}

} // namespace eddy
