#pragma once

// Engine-internal: the state of every key of one partition, with its cache and what a
// commit collects. A keyed function never sees it; it gets a keyed_context
// (keyed_context.hpp).

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

#include "eddy/codec/binary.hpp"
#include "eddy/state/cells.hpp"
#include "eddy/state/journal_store.hpp"
#include "eddy/state/state_catalog.hpp"

namespace eddy {

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
    if (!all_in_memory_) {
      auto has = journal_->has_state();
      if (!has) {
        throw_read_error(has.error());
      }
      all_in_memory_ = !*has;
    }
    if (*all_in_memory_) {
      // A key not in memory has no state: nothing to read (a partition filling a new
      // journal makes no read per new key).
      return;
    }
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
        all_in_memory_ = false;
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
  /// Every key that has state is in memory: the journal held none when the first key was
  /// looked up, and no key with state was evicted since. Unknown until that first lookup,
  /// which comes after the partition folded its journal's log.
  std::optional<bool> all_in_memory_;
};

} // namespace eddy
