#pragma once

#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeinfo>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "eddy/codec/binary.hpp"
#include "eddy/codec/framing.hpp"
#include "eddy/core/error.hpp"
#include "eddy/flow/record.hpp"
#include "eddy/state/journal_store.hpp"

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

private:
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

private:
  std::vector<T> items_;
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

/// The version of a keyed function's state encoding and the functions that upgrade rows
/// written by older versions, applied when a row is read.
struct state_schema {
  using upgrade_fn = std::function<std::string(std::string_view name, std::string_view bytes)>;

  uint32_t version = 1;
  /// upgrades[v] turns the bytes of a state written by version v into version v + 1.
  std::map<uint32_t, upgrade_fn> upgrades;

  /// The bytes of `row` in the current version. Throws std::runtime_error naming the state,
  /// the key and both versions when the row is newer or no upgrade path exists.
  [[nodiscard]] std::string bring_up_to_date(stored_state row, std::string_view name,
                                             std::string_view key) const;
};

/// All state cells of one key, indexed by state id, with what the durable store tracks.
struct key_slot {
  std::vector<std::unique_ptr<state_cell>> cells;
  /// Per cell: a hash of the encoding last committed (0: none), to skip unchanged cells.
  std::vector<uint64_t> committed_hash;
  /// Per cell: accessed since the last commit, so possibly changed.
  std::vector<uint8_t> touched;
  /// The key is in the store's list of touched keys.
  bool listed = false;
  /// The journal holds nothing for this key (new since a clear): nothing to load.
  bool fresh = false;
  /// Accessed since the last eviction sweep (CLOCK).
  bool referenced = false;
  /// Changed since the last compaction: the journal's state rows do not have it yet, so
  /// the key stays in memory.
  bool pinned = false;
  /// Approximate memory held, for the cache budget.
  size_t bytes = 0;

  [[nodiscard]] bool empty() const noexcept;
};

/// The time of a fired timer, with its tag.
struct timer_fired {
  time_ms at = 0;
  std::string tag;
};

/// Processing-time timers of one partition. In memory: all of them. Durable: only the
/// changes since the last commit; the journal holds the rest.
class timer_book {
public:
  void add(std::string key, time_ms at, std::string tag, bool durable);
  void remove(std::string key, time_ms at, std::string tag, bool durable);
  /// Moves the pending changes into `batch`.
  void collect(commit_batch& batch);
  /// In memory only: the due timers, earliest first, removed from the book.
  std::vector<timer_entry> take_due(time_ms now, size_t limit);
  /// In memory: the earliest timer; durable: the earliest added and not yet committed.
  [[nodiscard]] std::optional<time_ms> earliest() const;

private:
  /// A timer by (time, encoded key, tag), ordered by time.
  using timer_id = std::tuple<time_ms, std::string, std::string>;

  std::set<timer_id> memory_;
  std::set<timer_id> added_;
  std::set<timer_id> removed_;
};

/// The state of every key of one partition. In memory, or durable: attached to the
/// partition's journal, keys are read lazily, changes are collected per commit, coalesced
/// per key and state, and committed as deferred changes (one log entry per commit). Keys
/// changed since the last compaction stay pinned in memory, since the journal's state
/// rows get their changes only when the compaction folds the log; other keys are evicted
/// beyond the cache budget. Owned by one partition actor; not thread-safe.
template <class K>
class keyed_store {
public:
  /// Makes the store durable: state is read from and collected for `journal`.
  void attach(journal_store* journal, const state_schema* schema, size_t cache_bytes) {
    journal_ = journal;
    schema_ = schema;
    cache_bytes_ = cache_bytes;
  }
  [[nodiscard]] bool durable() const noexcept {
    return journal_ != nullptr;
  }

  key_slot& slot(const K& key) {
    auto [i, added] = keys_.try_emplace(key);
    if (added && durable()) {
      i->second.fresh = cleared_.count(key) > 0 || tombstones_.count(key) > 0;
      bytes_ += slot_overhead;
    }
    i->second.referenced = true;
    return i->second;
  }
  [[nodiscard]] const key_slot* find(const K& key) const {
    auto i = keys_.find(key);
    return i == keys_.end() ? nullptr : &i->second;
  }
  /// Keys held in memory (durable: the cached ones).
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

  /// Cell `id` of `key` for a keyed function: created on first use, read from the journal
  /// if the store is durable, and marked as possibly changed.
  template <class Cell>
  Cell& cell(const K& key, key_slot& slot, size_t id) {
    auto& cells = slot.cells;
    if (cells.size() <= id) {
      cells.resize(id + 1);
      slot.committed_hash.resize(id + 1);
      slot.touched.resize(id + 1);
    }
    if (!cells[id]) {
      cells[id] = std::make_unique<Cell>();
      if (durable() && !slot.fresh) {
        load(key, slot, id);
      }
    }
    if (durable()) {
      slot.touched[id] = 1;
      if (!slot.listed) {
        slot.listed = true;
        touched_.push_back(key);
      }
    }
    return static_cast<Cell&>(*cells[id]);
  }

  /// Called after the keyed function ran for `key`: drops the key if it was cleared or
  /// holds nothing. Durable: a clear deletes every state of the key at the next commit.
  void done_with(const K& key, key_slot& slot, bool cleared) {
    if (cleared && durable()) {
      cleared_.insert(key);
    }
    // Durable: a touched key stays until the commit writes its (possibly empty) state, and
    // a pinned one until the compaction folds that into the journal's rows.
    if (cleared || (slot.empty() && !slot.listed && !slot.pinned)) {
      erase(key, slot);
    }
  }

  /// Durable: appends the changes since the last call (one per touched key and state, the
  /// clears first), then evicts clean keys beyond the cache budget.
  void collect(std::vector<state_change>& out) {
    for (const auto& key : cleared_) {
      out.push_back(state_change{encode_key(key), std::string{}, std::nullopt});
      tombstones_.insert(key);
    }
    cleared_.clear();
    std::string bytes;
    for (const auto& key : touched_) {
      auto i = keys_.find(key);
      if (i == keys_.end()) {
        continue;
      }
      auto& slot = i->second;
      slot.listed = false;
      slot.fresh = tombstones_.count(key) > 0;
      auto encoded_key = encode_key(key);
      size_t held = slot_overhead + encoded_key.size();
      for (size_t id = 0; id < slot.cells.size(); ++id) {
        auto* c = slot.cells[id].get();
        if (c == nullptr) {
          continue;
        }
        if (slot.touched[id] != 0) {
          slot.touched[id] = 0;
          uint64_t h = 0;
          if (!c->empty()) {
            c->encode(bytes);
            h = hash_of(bytes);
          }
          if (h != slot.committed_hash[id]) {
            slot.committed_hash[id] = h;
            slot.pinned = true;
            out.push_back(state_change{encoded_key, registry_.name(id),
                                       h == 0 ? std::nullopt : std::optional<std::string>{bytes}});
          }
          held += c->empty() ? 0 : bytes.size();
        } else {
          held += slot.bytes / slot.cells.size();
        }
      }
      bytes_ += held;
      bytes_ -= std::min(bytes_, slot.bytes);
      slot.bytes = held;
      if (slot.empty() && !slot.pinned) {
        erase(key, slot);
      }
    }
    touched_.clear();
    evict();
  }

  /// The journal folded its log into its state rows: unpins every key, drops the empty
  /// ones and evicts beyond the budget.
  void compacted() {
    tombstones_.clear();
    for (auto i = keys_.begin(); i != keys_.end();) {
      auto& slot = i->second;
      slot.pinned = false;
      if (slot.empty() && !slot.listed) {
        bytes_ -= std::min(bytes_, slot.bytes + slot_overhead);
        i = keys_.erase(i);
      } else {
        ++i;
      }
    }
    evict();
  }

  /// True when pinned keys alone exceed the cache budget: time to compact.
  [[nodiscard]] bool over_budget() const noexcept {
    return durable() && bytes_ > cache_bytes_;
  }

  /// Approximate memory held by cached keys.
  [[nodiscard]] size_t cached_bytes() const noexcept {
    return bytes_;
  }

private:
  static constexpr size_t slot_overhead = 96;

  static uint64_t hash_of(const std::string& bytes) noexcept {
    // FNV-1a; 0 is reserved for "empty".
    uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : bytes) {
      h = (h ^ c) * 1099511628211ULL;
    }
    return h == 0 ? 1 : h;
  }

  void load(const K& key, key_slot& slot, size_t id) {
    auto encoded_key = encode_key(key);
    const auto& name = registry_.name(id);
    auto row = journal_->read(encoded_key, name);
    if (!row) {
      throw state_error(row.error().category() == caf::atom("eddy")
                          ? static_cast<errc>(row.error().code())
                          : errc::io_failure,
                        describe(row.error()));
    }
    if (!*row) {
      return;
    }
    auto bytes = schema_->bring_up_to_date(std::move(**row), name, encoded_key);
    slot.cells[id]->decode(bytes);
    slot.committed_hash[id] = (*row)->version == schema_->version ? hash_of(bytes) : 0;
    slot.bytes += bytes.size();
    bytes_ += bytes.size();
  }

  void erase(const K& key, key_slot& slot) {
    bytes_ -= std::min(bytes_, slot.bytes + slot_overhead);
    keys_.erase(key);
  }

  /// Drops clean keys not referenced since the last sweep until the cache fits its budget
  /// (a CLOCK approximation of least-recently-used).
  void evict() {
    if (bytes_ <= cache_bytes_) {
      return;
    }
    for (int round = 0; round < 2 && bytes_ > cache_bytes_; ++round) {
      for (auto i = keys_.begin(); i != keys_.end() && bytes_ > cache_bytes_;) {
        auto& slot = i->second;
        if (slot.referenced || slot.pinned || slot.listed) {
          slot.referenced = false;
          ++i;
          continue;
        }
        bytes_ -= std::min(bytes_, slot.bytes + slot_overhead);
        i = keys_.erase(i);
      }
    }
  }

  std::unordered_map<K, key_slot> keys_;
  state_registry registry_;
  journal_store* journal_ = nullptr;
  const state_schema* schema_ = nullptr;
  size_t cache_bytes_ = 0;
  size_t bytes_ = 0;
  /// Keys touched since the last collect, in order of first touch.
  std::vector<K> touched_;
  /// Keys cleared since the last collect.
  std::set<K> cleared_;
  /// Keys cleared since the last compaction: nothing to read for them.
  std::set<K> tombstones_;
};

/// What a keyed function sees of the current record's key: its id, its state and its
/// timers. Lives on the stack of one call.
template <class K>
class keyed_context {
public:
  keyed_context(const K& key, keyed_store<K>& store, timer_book& timers, time_ms time)
    : key_(&key)
    , store_(&store)
    , slot_(&store.slot(key))
    , timers_(&timers)
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

  template <class T>
  list_state<T>& list(std::string_view name) {
    return cell<list_state<T>>(name);
  }

  /// Drops every state of this key once the function returns.
  void clear() noexcept {
    cleared_ = true;
  }
  [[nodiscard]] bool cleared() const noexcept {
    return cleared_;
  }

  /// Calls the partition's timer function for this key at processing time `at_ms` (wall
  /// clock, ms since the epoch), once; again after a restart if it fell due meanwhile.
  /// A timer is identified by (key, time, tag): registering it twice keeps one.
  void register_timer(time_ms at_ms, std::string tag = {}) {
    timers_->add(encode_key(*key_), at_ms, std::move(tag), store_->durable());
  }
  void delete_timer(time_ms at_ms, std::string tag = {}) {
    timers_->remove(encode_key(*key_), at_ms, std::move(tag), store_->durable());
  }

  /// @private Used by the runtime once the function returned.
  key_slot& slot() noexcept {
    return *slot_;
  }

private:
  template <class Cell>
  Cell& cell(std::string_view name) {
    auto id = store_->registry().id_of(name, typeid(Cell));
    return store_->template cell<Cell>(*key_, *slot_, id);
  }

  const K* key_;
  keyed_store<K>* store_;
  key_slot* slot_;
  timer_book* timers_;
  time_ms time_;
  bool cleared_ = false;
};

} // namespace eddy
