#pragma once

// The state a keyed function reads and writes, per key: value_state, map_state and
// list_state, and how their values are encoded in the journal. This is the part of keyed
// state a job author uses (through keyed_context, keyed_context.hpp).

#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeinfo>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <caf/deep_to_string.hpp>

#include "eddy/codec/binary.hpp"
#include "eddy/codec/framing.hpp"
#include "eddy/core/error.hpp"
#include "eddy/flow/record.hpp"

namespace eddy {

namespace detail {

[[noreturn]] void throw_not_codable(const std::type_info& type);

template <class T>
void encode_state(const T& value, std::string& out) {
  if constexpr (state_codable<T>) {
    encode_value(value, out);
  } else {
    (void) value;
    (void) out;
    throw_not_codable(typeid(T));
  }
}

template <class T>
void decode_state(std::string_view bytes, T& value) {
  if constexpr (state_codable<T>) {
    std::string reason;
    if (!decode_value(bytes, value, reason)) {
      throw state_error(errc::state_mismatch, "cannot decode a stored state value: " + reason);
    }
  } else {
    (void) bytes;
    (void) value;
    throw_not_codable(typeid(T));
  }
}

/// `j` as compact JSON text; invalid UTF-8 in strings is replaced, not thrown about.
inline std::string json_text(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// A readable name of `type` ("value_state<std::string>"), for messages.
std::string type_name(const std::type_info& type);

/// Throws std::invalid_argument: a value of `type` cannot be read from JSON.
[[noreturn]] void throw_no_json_codec(const std::type_info& type);

/// Throws std::invalid_argument naming what was `expected` and what `got` is.
[[noreturn]] void throw_wrong_json(const std::string& expected, const nlohmann::json& got,
                                   const std::string& reason = {});

/// `value` as JSON: through its JSON codec, else as a JSON string rendered through the
/// type's CAF `inspect` (caf::deep_to_string).
template <class T>
nlohmann::json value_to_json(const T& value) {
  if constexpr (json_codable<T>) {
    return nlohmann::json(value);
  } else {
    return caf::deep_to_string(value);
  }
}

/// Checks that `j` is an integer that fits in T (nlohmann would truncate 1.5 to 1 and wrap
/// -1 around to an unsigned maximum).
template <class T>
void check_integer(const nlohmann::json& j) {
  bool fits = j.is_number_integer();
  if (fits && j.is_number_unsigned()) {
    fits = j.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max());
  } else if (fits) {
    auto v = j.get<int64_t>();
    fits =
      v >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
      (v < 0 || static_cast<uint64_t>(v) <= static_cast<uint64_t>(std::numeric_limits<T>::max()));
  }
  if (!fits) {
    throw_wrong_json("an integer of type " + type_name(typeid(T)), j);
  }
}

/// The T that `j` holds; throws std::invalid_argument naming the expected type and what `j`
/// is when it holds none, or when T has no JSON codec.
template <class T>
T value_from_json(const nlohmann::json& j) {
  if constexpr (json_codable<T> && std::is_default_constructible_v<T>) {
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      check_integer<T>(j);
    }
    T value{};
    try {
      j.get_to(value);
    } catch (const nlohmann::json::exception& e) {
      throw_wrong_json(type_name(typeid(T)), j, e.what());
    }
    return value;
  } else {
    (void) j;
    throw_no_json_codec(typeid(T));
  }
}

} // namespace detail

/// One named piece of state of one key. Cells live in a partition's `keyed_store` and are
/// only touched by the partition's actor; not thread-safe. Durable partitions encode them
/// into the journal with the type's CAF `inspect` (or JSON hooks).
class state_cell {
public:
  virtual ~state_cell() = default;
  [[nodiscard]] virtual bool empty() const noexcept = 0;
  /// Writes the content into `out` (replacing it); called only when not empty.
  virtual void encode(std::string& out) const = 0;
  /// Replaces the content with what `encode` wrote; throws std::runtime_error on bad bytes.
  virtual void decode(std::string_view bytes) = 0;
  /// The content as JSON, for people (`eddy console`): values through their JSON codec, or
  /// as strings rendered through their CAF `inspect`.
  [[nodiscard]] virtual nlohmann::json to_json() const = 0;
  /// Replaces the content with `value` in the shape `to_json` gives (null clears it). Throws
  /// std::invalid_argument naming the expected and the given shape, or the type without a
  /// JSON codec; the content is unchanged then.
  virtual void from_json(const nlohmann::json& value) = 0;
};

/// Creates an empty cell of one state type.
using cell_factory = std::unique_ptr<state_cell> (*)();

/// The `cell_factory` of `Cell`.
template <class Cell>
std::unique_ptr<state_cell> make_cell() {
  return std::make_unique<Cell>();
}

/// A single value per key, absent until first set (Flink's ValueState).
template <class T>
class value_state final : public state_cell {
public:
  [[nodiscard]] bool exists() const noexcept {
    return value_.has_value();
  }
  /// The value; throws std::logic_error when absent (a bug in the keyed function).
  [[nodiscard]] const T& get() const {
    if (!value_) {
      throw std::logic_error("value_state::get() on a key without a value");
    }
    return *value_;
  }
  [[nodiscard]] T get_or(T fallback) const {
    return value_ ? *value_ : std::move(fallback);
  }
  void set(T value) {
    value_ = std::move(value);
  }
  void clear() noexcept {
    value_.reset();
  }
  bool empty() const noexcept override {
    return !value_;
  }
  void encode(std::string& out) const override {
    detail::encode_state(*value_, out);
  }
  void decode(std::string_view bytes) override {
    if constexpr (std::is_default_constructible_v<T>) {
      T v{};
      detail::decode_state(bytes, v);
      value_ = std::move(v);
    } else {
      (void) bytes;
      detail::throw_not_codable(typeid(T));
    }
  }
  /// The value, null when absent.
  nlohmann::json to_json() const override {
    return value_ ? detail::value_to_json(*value_) : nlohmann::json{};
  }
  void from_json(const nlohmann::json& value) override {
    if (value.is_null()) {
      value_.reset();
    } else {
      value_ = detail::value_from_json<T>(value);
    }
  }

private:
  std::optional<T> value_;
};

/// A sorted map per key (Flink's MapState); iteration is in key order.
template <class MK, class MV>
class map_state final : public state_cell {
public:
  using container = std::map<MK, MV, std::less<>>;

  [[nodiscard]] bool contains(const MK& k) const {
    return entries_.count(k) > 0;
  }
  [[nodiscard]] const MV* find(const MK& k) const {
    auto i = entries_.find(k);
    return i == entries_.end() ? nullptr : &i->second;
  }
  void put(MK k, MV v) {
    entries_.insert_or_assign(std::move(k), std::move(v));
  }
  bool remove(const MK& k) {
    return entries_.erase(k) > 0;
  }
  void clear() noexcept {
    entries_.clear();
  }
  [[nodiscard]] size_t size() const noexcept {
    return entries_.size();
  }
  [[nodiscard]] const container& entries() const noexcept {
    return entries_;
  }
  bool empty() const noexcept override {
    return entries_.empty();
  }
  void encode(std::string& out) const override {
    out.clear();
    std::string field;
    for (const auto& [k, v] : entries_) {
      detail::encode_state(k, field);
      append_field(out, field);
      detail::encode_state(v, field);
      append_field(out, field);
    }
  }
  void decode(std::string_view bytes) override {
    entries_.clear();
    for (size_t pos = 0; pos < bytes.size();) {
      MK k{};
      MV v{};
      detail::decode_state(next_field(bytes, pos), k);
      detail::decode_state(next_field(bytes, pos), v);
      entries_.insert_or_assign(std::move(k), std::move(v));
    }
  }
  /// An object {"key": value, ...} when the keys are strings, else an array of [key, value]
  /// pairs; in key order.
  nlohmann::json to_json() const override {
    if constexpr (string_keys) {
      auto result = nlohmann::json::object();
      for (const auto& [k, v] : entries_) {
        result[std::string{std::string_view{k}}] = detail::value_to_json(v);
      }
      return result;
    } else {
      auto result = nlohmann::json::array();
      for (const auto& [k, v] : entries_) {
        result.push_back(
          nlohmann::json::array({detail::value_to_json(k), detail::value_to_json(v)}));
      }
      return result;
    }
  }
  void from_json(const nlohmann::json& value) override {
    if (value.is_null()) {
      entries_.clear();
      return;
    }
    container fresh;
    if constexpr (string_keys) {
      if (!value.is_object()) {
        detail::throw_wrong_json("an object {\"key\": value, ...}", value);
      }
      for (const auto& [k, v] : value.items()) {
        fresh.insert_or_assign(MK(k), detail::value_from_json<MV>(v));
      }
    } else {
      if (!value.is_array()) {
        detail::throw_wrong_json("an array of [key, value] pairs", value);
      }
      for (const auto& pair : value) {
        if (!pair.is_array() || pair.size() != 2) {
          detail::throw_wrong_json("a [key, value] pair", pair);
        }
        fresh.insert_or_assign(detail::value_from_json<MK>(pair[0]),
                               detail::value_from_json<MV>(pair[1]));
      }
    }
    entries_ = std::move(fresh);
  }

private:
  static constexpr bool string_keys =
    std::is_convertible_v<const MK&, std::string_view> && std::is_constructible_v<MK, std::string>;

  container entries_;
};

/// An ordered list per key (Flink's ListState): append, read, replace.
template <class T>
class list_state final : public state_cell {
public:
  void add(T value) {
    items_.push_back(std::move(value));
  }
  [[nodiscard]] const std::vector<T>& get() const noexcept {
    return items_;
  }
  /// Replaces the whole list.
  void update(std::vector<T> items) {
    items_ = std::move(items);
  }
  void clear() noexcept {
    items_.clear();
  }
  [[nodiscard]] size_t size() const noexcept {
    return items_.size();
  }
  bool empty() const noexcept override {
    return items_.empty();
  }
  void encode(std::string& out) const override {
    out.clear();
    std::string field;
    for (const auto& x : items_) {
      detail::encode_state(x, field);
      append_field(out, field);
    }
  }
  void decode(std::string_view bytes) override {
    items_.clear();
    for (size_t pos = 0; pos < bytes.size();) {
      T x{};
      detail::decode_state(next_field(bytes, pos), x);
      items_.push_back(std::move(x));
    }
  }
  /// An array of the items, in order.
  nlohmann::json to_json() const override {
    auto result = nlohmann::json::array();
    for (const auto& x : items_) {
      result.push_back(detail::value_to_json(x));
    }
    return result;
  }
  void from_json(const nlohmann::json& value) override {
    if (value.is_null()) {
      items_.clear();
      return;
    }
    if (!value.is_array()) {
      detail::throw_wrong_json("an array", value);
    }
    std::vector<T> fresh;
    for (const auto& x : value) {
      fresh.push_back(detail::value_from_json<T>(x));
    }
    items_ = std::move(fresh);
  }

private:
  std::vector<T> items_;
};

} // namespace eddy
