#pragma once

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

/// The state types of one keyed operator, by state name: what `eddy console` needs to turn
/// stored bytes into JSON and back. Created by `keyed_stream::process`, shared by every
/// partition of the operator and every incarnation of the job; filled by
/// `keyed_stream::declare_state` and by each partition on a name's first use. Thread-safe.
class state_catalog {
public:
  /// The type of one state.
  struct entry {
    const std::type_info* type = nullptr;
    /// Readable, for messages ("value_state<long>").
    std::string type_name;
    cell_factory make = nullptr;
  };

  /// Records that state `name` has cell type `type`. Throws std::logic_error naming the
  /// state and both types when the name is known with another type.
  void add(std::string_view name, const std::type_info& type, cell_factory make);
  template <class Cell>
  void add(std::string_view name) {
    add(name, typeid(Cell), &make_cell<Cell>);
  }
  /// The type of state `name`, nullopt when it is unknown.
  [[nodiscard]] std::optional<entry> find(std::string_view name) const;
  /// The known state names, sorted.
  [[nodiscard]] std::vector<std::string> names() const;
  /// The value of state `name` encoded as `bytes`, as JSON; {"undecoded_bytes": N, "why":
  /// ...} when the type of the state is unknown or the bytes do not decode.
  [[nodiscard]] nlohmann::json render(std::string_view name, std::string_view bytes) const;

private:
  mutable std::mutex mtx_;
  std::map<std::string, entry, std::less<>> entries_;
};

/// Names of the states a partition's keyed function uses, numbered in order of first use,
/// with the cell type each name was first used with. A name's first use is also recorded in
/// the operator's `state_catalog`, if any.
class state_registry {
public:
  /// The id of `name`; registers it on first use (recording `make` in the catalog when
  /// given). Using one name with two different state types is a bug in the job and throws
  /// std::logic_error naming the state.
  size_t id_of(std::string_view name, const std::type_info& cell_type, cell_factory make = nullptr);
  [[nodiscard]] size_t size() const noexcept {
    return entries_.size();
  }
  [[nodiscard]] const std::string& name(size_t id) const {
    return entries_[id].name;
  }
  /// Records the names of first use in `catalog` from now on (null: nowhere).
  void set_catalog(state_catalog* catalog) noexcept {
    catalog_ = catalog;
  }

private:
  struct entry {
    std::string name;
    const std::type_info* type;
  };
  std::vector<entry> entries_;
  state_catalog* catalog_ = nullptr;
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

/// How `eddy console` shows a stored value it cannot decode: {"undecoded_bytes": size,
/// "why": why}.
nlohmann::json undecoded_state(size_t size, std::string why);

/// The state of one key as of journal sequence number `seq`, rebuilt from its journal:
/// for each state its newest change at or below `seq` in `entries` (the key's kept journal
/// entries, as `journal_store::history` lists them), where a clear of the whole key drops
/// what came before it; a state whose entries were all trimmed keeps its row from `rows`
/// (as `journal_store::states_of` lists them). Values taken from entries get the version
/// `entry_version` and the entry's sequence number.
///
/// Compaction keeps the newest `keep_per_key` entries of each key, over all its states, so
/// once a key has that many folded entries (entries still in the log are never trimmed), or
/// a row whose change is gone, older ones may be missing. The oldest sequence number it can
/// then rebuild is the newest of: its oldest kept entry, and the first point where every
/// state with kept entries has one at or below it (or the whole key was cleared); with no
/// entry kept, the journal's newest sequence number `last_seq`. Below it, throws
/// std::out_of_range naming it and --state.keep-changes. (Compactions are assumed to have
/// kept `keep_per_key` too.)
std::map<std::string, stored_state>
state_as_of(std::string_view key, const std::vector<journal_entry>& entries,
            std::vector<std::pair<std::string, stored_state>> rows, uint64_t seq,
            size_t keep_per_key, uint64_t last_seq, uint32_t entry_version);

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

/// The time of a fired timer, with its tag; `event_time` for an event-time timer (it fired
/// because the watermark passed `at`).
struct timer_fired {
  time_ms at = 0;
  std::string tag;
  bool event_time = false;
};

/// The timers of one kind (processing time, or event time: firing when the watermark
/// passes them) of one partition. In memory: all of them. Durable: only the changes since
/// the last commit; the journal holds the rest.
class timer_book {
public:
  /// 0 = processing time, 1 = event time (the journal's `timer_entry::kind`).
  explicit timer_book(int kind = 0)
    : kind_(kind) {}
  [[nodiscard]] int kind() const noexcept {
    return kind_;
  }
  void add(std::string key, time_ms at, std::string tag, bool durable);
  void remove(std::string key, time_ms at, std::string tag, bool durable);
  /// Durable: a timer read from the journal by `journal_store::due_timers` fired. The
  /// commit deletes it with every earlier one of the kind in one statement (the due timers
  /// come earliest first); registering it again keeps it.
  void fired(std::string key, time_ms at, std::string tag);
  /// Moves the pending changes into `batch`.
  void collect(commit_batch& batch);
  /// In memory only: the due timers, earliest first, removed from the book.
  std::vector<timer_entry> take_due(time_ms now, size_t limit);
  /// In memory: the earliest timer; durable: the earliest added and not yet committed.
  [[nodiscard]] std::optional<time_ms> earliest() const;
  /// The timers of `key` (encoded): `committed` (durable: the journal's) with the changes
  /// since the last commit applied; in memory the book's own.
  [[nodiscard]] std::vector<timer_entry> of_key(const std::string& key,
                                                std::vector<timer_entry> committed) const;

private:
  /// A timer by (time, encoded key, tag), ordered by time.
  using timer_id = std::tuple<time_ms, std::string, std::string>;

  int kind_;
  std::set<timer_id> memory_;
  std::set<timer_id> added_;
  std::set<timer_id> removed_;
  /// The latest timer fired from the journal since the last commit.
  std::optional<timer_id> fired_through_;
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
    return static_cast<Cell&>(cell(key, slot, id, &make_cell<Cell>));
  }

  /// The same for a cell type known at run time (`eddy console`): `make` creates an empty
  /// cell of the type registered for `id`.
  state_cell& cell(const K& key, key_slot& slot, size_t id, cell_factory make) {
    auto& cells = slot.cells;
    if (cells.size() <= id) {
      cells.resize(id + 1);
      slot.committed_hash.resize(id + 1);
      slot.touched.resize(id + 1);
    }
    if (!cells[id]) {
      cells[id] = make();
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
    return *cells[id];
  }

  /// The state of `key` as a JSON object {"state name": value, ...} for `eddy console`: the
  /// journal's rows (durable) overridden by the cells in memory, which are newer (changes of
  /// deferred commits reach the rows only at compaction). Changes nothing: no slot or cell is
  /// created, nothing is marked as used. Values that do not decode are rendered as
  /// {"undecoded_bytes", "why"}; throws state_error when the journal cannot be read.
  [[nodiscard]] nlohmann::json inspect(const K& key, const state_catalog& catalog) const {
    auto result = nlohmann::json::object();
    const key_slot* slot = find(key);
    // A key cleared since the last compaction has rows that the compaction deletes.
    bool rows_current = durable() && (slot == nullptr || !slot->fresh) &&
                        cleared_.count(key) == 0 && tombstones_.count(key) == 0;
    if (rows_current) {
      auto encoded_key = encode_key(key);
      auto rows = journal_->states_of(encoded_key);
      if (!rows) {
        throw_read_error(rows.error());
      }
      for (auto& [name, row] : *rows) {
        result[name] = render_row(catalog, std::move(row), name, encoded_key);
      }
    }
    if (slot == nullptr) {
      return result;
    }
    for (size_t id = 0; id < slot->cells.size(); ++id) {
      const auto* c = slot->cells[id].get();
      if (c == nullptr) {
        continue;
      }
      if (c->empty()) {
        result.erase(registry_.name(id));
      } else {
        result[registry_.name(id)] = c->to_json();
      }
    }
    return result;
  }

  /// A stored row of state `name` of `key` as JSON: upgraded to the current state version,
  /// decoded with the type `catalog` knows; {"undecoded_bytes", "why"} when that fails.
  [[nodiscard]] nlohmann::json render_row(const state_catalog& catalog, stored_state row,
                                          std::string_view name,
                                          std::string_view encoded_key) const {
    auto size = row.value.size();
    std::string bytes;
    try {
      bytes = schema_->bring_up_to_date(std::move(row), name, encoded_key);
    } catch (const std::exception& e) {
      return undecoded_state(size, e.what());
    }
    return catalog.render(name, bytes);
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

  [[noreturn]] static void throw_read_error(const caf::error& err) {
    throw state_error(err.category() == caf::atom("eddy") ? static_cast<errc>(err.code())
                                                          : errc::io_failure,
                      describe(err));
  }

  void load(const K& key, key_slot& slot, size_t id) {
    auto encoded_key = encode_key(key);
    const auto& name = registry_.name(id);
    auto row = journal_->read(encoded_key, name);
    if (!row) {
      throw_read_error(row.error());
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
  keyed_context(const K& key, keyed_store<K>& store, timer_book& timers, time_ms time,
                timer_book* event_timers = nullptr, time_ms watermark = no_time)
    : key_(&key)
    , store_(&store)
    , slot_(&store.slot(key))
    , timers_(&timers)
    , event_timers_(event_timers)
    , time_(time)
    , watermark_(watermark) {}

  [[nodiscard]] const K& key() const noexcept {
    return *key_;
  }
  /// Event time of the record being processed (no_time if it has none).
  [[nodiscard]] time_ms time() const noexcept {
    return time_;
  }
  /// The partition's current watermark: no event older than it is expected any more
  /// (no_time before the first one).
  [[nodiscard]] time_ms watermark() const noexcept {
    return watermark_;
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
  /// Calls the timer function for this key once the partition's watermark reaches `at_ms`
  /// (event time), once, in timestamp order with the key's other event-time timers; kept
  /// in the journal like the state. (key, time, tag) identifies it.
  void register_event_timer(time_ms at_ms, std::string tag = {}) {
    event_book().add(encode_key(*key_), at_ms, std::move(tag), store_->durable());
  }
  void delete_event_timer(time_ms at_ms, std::string tag = {}) {
    event_book().remove(encode_key(*key_), at_ms, std::move(tag), store_->durable());
  }

  /// @private Used by the runtime once the function returned.
  key_slot& slot() noexcept {
    return *slot_;
  }

private:
  template <class Cell>
  Cell& cell(std::string_view name) {
    auto id = store_->registry().id_of(name, typeid(Cell), &make_cell<Cell>);
    return store_->template cell<Cell>(*key_, *slot_, id);
  }

  timer_book& event_book() {
    if (event_timers_ == nullptr) {
      throw std::logic_error("event-time timers need a keyed operator with event time");
    }
    return *event_timers_;
  }

  const K* key_;
  keyed_store<K>* store_;
  key_slot* slot_;
  timer_book* timers_;
  timer_book* event_timers_;
  time_ms time_;
  time_ms watermark_;
  bool cleared_ = false;
};

} // namespace eddy
