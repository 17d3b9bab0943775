#pragma once

#include <charconv>
#include <concepts>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/detail/type_traits.hpp>

#include "eddy/codec/json.hpp"

namespace eddy {

/// Types CAF serializes: builtins, standard containers of them, and user types with an
/// `inspect` overload.
template <class T>
concept caf_serializable = caf::detail::is_serializable<T>::value;

/// Types the journal can store: CAF-serializable ones (preferred, compact binary through
/// `inspect`), else JSON-codable ones (nlohmann-json's hooks).
template <class T>
concept state_codable = caf_serializable<T> || json_codable<T>;

/// Encodes `value` into `out` (replacing its content): CAF's binary format when the type is
/// CAF-serializable, else one line of JSON. Throws std::runtime_error if CAF refuses it.
template <state_codable T>
void encode_value(const T& value, std::string& out) {
  if constexpr (caf_serializable<T>) {
    std::vector<char> buf;
    caf::binary_serializer sink{nullptr, buf};
    if (auto err = sink(const_cast<T&>(value))) {
      throw std::runtime_error("cannot encode a value of type " + std::string{typeid(T).name()} +
                               ": " + to_string(err));
    }
    out.assign(buf.data(), buf.size());
  } else {
    out = to_json_line(value);
  }
}

template <state_codable T>
std::string encode_value(const T& value) {
  std::string out;
  encode_value(value, out);
  return out;
}

/// Decodes what `encode_value` wrote. Returns false and sets `reason` when the bytes do not
/// hold exactly one T.
template <state_codable T>
bool decode_value(std::string_view bytes, T& value, std::string& reason) {
  if constexpr (caf_serializable<T>) {
    caf::binary_deserializer source{nullptr, bytes.data(), bytes.size()};
    if (auto err = source(value)) {
      reason = to_string(err);
      return false;
    }
    if (source.remaining() != 0) {
      reason = std::to_string(source.remaining()) + " bytes left over";
      return false;
    }
    return true;
  } else {
    auto parsed = parse_json<T>(bytes, reason);
    if (!parsed) {
      return false;
    }
    value = std::move(*parsed);
    return true;
  }
}

/// The journal's spelling of a key: strings as their bytes and integers in decimal, so that
/// people can name keys in inspection tools; other types as `encode_value`.
template <class K>
std::string encode_key(const K& key) {
  if constexpr (std::is_convertible_v<const K&, std::string_view>) {
    return std::string{std::string_view{key}};
  } else if constexpr (std::is_integral_v<K>) {
    return std::to_string(key);
  } else {
    return encode_value(key);
  }
}

/// The key that `encode_key` spelled as `bytes`; throws std::runtime_error when the bytes
/// do not spell a K.
template <class K>
K decode_key(std::string_view bytes) {
  if constexpr (std::is_constructible_v<K, std::string_view> &&
                std::is_convertible_v<const K&, std::string_view>) {
    return K{bytes};
  } else if constexpr (std::is_integral_v<K>) {
    K key{};
    auto [end, ec] = std::from_chars(bytes.data(), bytes.data() + bytes.size(), key);
    if (ec != std::errc{} || end != bytes.data() + bytes.size()) {
      throw std::runtime_error("stored key '" + std::string{bytes} + "' is not an integer");
    }
    return key;
  } else {
    K key{};
    std::string reason;
    if (!decode_value(bytes, key, reason)) {
      throw std::runtime_error("cannot decode a stored key: " + reason);
    }
    return key;
  }
}

} // namespace eddy
