#pragma once

#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeinfo>
#include <unordered_map>
#include <vector>

#include "eddy/flow/record.hpp"

namespace eddy {

/// One named piece of state of one key. Cells live in a partition's `keyed_store` and are
/// only touched by the partition's actor; not thread-safe.
class state_cell {
public:
  virtual ~state_cell() = default;
  [[nodiscard]] virtual bool empty() const noexcept = 0;
};

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

private:
  container entries_;
};

/// Names of the states a partition's keyed function uses, numbered in order of first use,
/// with the cell type each name was first used with.
class state_registry {
public:
  /// The id of `name`; registers it on first use. Using one name with two different state
  /// types is a bug in the job and throws std::logic_error naming the state.
  size_t id_of(std::string_view name, const std::type_info& cell_type);
  [[nodiscard]] size_t size() const noexcept {
    return entries_.size();
  }
  [[nodiscard]] const std::string& name(size_t id) const {
    return entries_[id].name;
  }

private:
  struct entry {
    std::string name;
    const std::type_info* type;
  };
  std::vector<entry> entries_;
};

/// All state cells of one key, indexed by state id.
struct key_slot {
  std::vector<std::unique_ptr<state_cell>> cells;

  [[nodiscard]] bool empty() const noexcept;
};

/// The state of every key of one partition, in memory (the durable-state work puts a
/// SQLite journal and a bounded cache behind this interface). Owned by one partition
/// actor; not thread-safe.
template <class K>
class keyed_store {
public:
  key_slot& slot(const K& key) {
    return keys_[key];
  }
  void erase(const K& key) {
    keys_.erase(key);
  }
  [[nodiscard]] const key_slot* find(const K& key) const {
    auto i = keys_.find(key);
    return i == keys_.end() ? nullptr : &i->second;
  }
  [[nodiscard]] size_t key_count() const noexcept {
    return keys_.size();
  }
  state_registry& registry() noexcept {
    return registry_;
  }
  template <class F>
  void for_each(F&& f) const {
    for (auto& [k, s] : keys_) {
      f(k, s);
    }
  }

private:
  std::unordered_map<K, key_slot> keys_;
  state_registry registry_;
};

/// What a keyed function sees of the current record's key: its id and its state.
/// Lives on the stack of one call.
template <class K>
class keyed_context {
public:
  keyed_context(const K& key, key_slot& slot, state_registry& registry, time_ms time) noexcept
    : key_(&key)
    , slot_(&slot)
    , registry_(&registry)
    , time_(time) {}

  [[nodiscard]] const K& key() const noexcept {
    return *key_;
  }
  /// Event time of the record being processed (no_time if it has none).
  [[nodiscard]] time_ms time() const noexcept {
    return time_;
  }

  template <class T>
  value_state<T>& value(std::string_view name) {
    return cell<value_state<T>>(name);
  }

  template <class MK, class MV>
  map_state<MK, MV>& map(std::string_view name) {
    return cell<map_state<MK, MV>>(name);
  }

  /// Drops every state of this key once the function returns.
  void clear() noexcept {
    cleared_ = true;
  }
  [[nodiscard]] bool cleared() const noexcept {
    return cleared_;
  }

private:
  template <class Cell>
  Cell& cell(std::string_view name) {
    auto id = registry_->id_of(name, typeid(Cell));
    auto& cells = slot_->cells;
    if (cells.size() <= id) {
      cells.resize(id + 1);
    }
    if (!cells[id]) {
      cells[id] = std::make_unique<Cell>();
    }
    return static_cast<Cell&>(*cells[id]);
  }

  const K* key_;
  key_slot* slot_;
  state_registry* registry_;
  time_ms time_;
  bool cleared_ = false;
};

} // namespace eddy
