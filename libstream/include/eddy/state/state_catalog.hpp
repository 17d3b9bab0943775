#pragma once

// What the runtime knows of a keyed operator's states: their types by name (for the
// console), their ids in a partition, the schema version with its upgrades, and a key's
// state rebuilt from its journal.

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include <nlohmann/json.hpp>

#include "eddy/state/cells.hpp"
#include "eddy/state/journal_store.hpp"

namespace eddy {

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

} // namespace eddy
