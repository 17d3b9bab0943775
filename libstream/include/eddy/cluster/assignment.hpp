#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

namespace eddy {

/// The nodes that own one key partition: the primary runs it, the standby keeps a copy
/// (empty: none).
struct partition_owner {
  std::string primary;
  std::string standby;

  bool operator==(const partition_owner&) const = default;
};

/// The coordinator's assignment table: partition -> (primary, standby), versioned by an
/// epoch that grows with every change (see "Cluster" in docs/design.md).
struct assignment {
  uint64_t epoch = 0;
  /// The node that made this version.
  std::string coordinator;
  /// Indexed by partition.
  std::vector<partition_owner> partitions;

  /// One line of JSON.
  [[nodiscard]] std::string to_json() const;
  /// Parses what `to_json` wrote; nullopt with `reason` set when it is not a table.
  static std::optional<assignment> from_json(std::string_view text, std::string& reason);

  /// Writes the table to `file` so that a crash leaves the old or the new one (a temporary
  /// file, fsync, rename).
  [[nodiscard]] caf::error save(const std::filesystem::path& file) const;
  /// Reads a saved table; nullopt when `file` does not exist; an error when it is damaged.
  [[nodiscard]] static caf::expected<std::optional<assignment>>
  load(const std::filesystem::path& file);
};

/// The next table for `partitions` partitions over `members` (the ids of the nodes that are
/// up), made by `coordinator` from `previous`, moving as little as possible:
///   - a partition whose primary is gone is taken over by its standby (failover);
///   - partitions without a primary go to the member with the fewest primaries;
///   - primaries are balanced to within one per member, moving a partition preferably to
///     its standby (the warm copy);
///   - with two members or more every partition gets a standby on another member, the one
///     with the fewest standbys.
/// The epoch is previous.epoch + 1 when anything changed (or the previous table was
/// empty), else the same. `reasons`, when given, receives one line per change. With
/// `balance` false the primaries of members that are up stay where they are: the cluster's
/// coordinator makes its tables so, and balancing is a rebalance (`rebalance_plan`) whose
/// moves first copy the state to the target (see "Cluster" in docs/design.md).
assignment next_assignment(const assignment& previous, std::vector<std::string> members,
                           uint32_t partitions, const std::string& coordinator,
                           std::vector<std::string>* reasons = nullptr, bool balance = true);

/// One move of a rebalance: partition `partition`'s primary goes from `from` to `to`.
struct partition_move {
  uint32_t partition = 0;
  std::string from;
  std::string to;
  /// Why, for the plan a user reads ("n1 has 3 primaries, n4 has 0").
  std::string reason;
  /// Only the standby copy moves (`from` and `to` are standbys); the primary stays.
  bool standby_only = false;
};

/// The moves that balance the primaries of `current` over `members` (the ids of the nodes
/// that are up) to within one per member, moving as few partitions as that takes and
/// preferably onto their standby. Empty when the table is balanced.
std::vector<partition_move> rebalance_plan(const assignment& current,
                                           std::vector<std::string> members);

/// The moves that empty member `leaving` of `current` before it leaves the cluster: each
/// of its primaries goes to the partition's standby when that is one of `members` (the ids
/// of the other nodes that are up), else to the member with the fewest primaries; each of
/// its standby copies goes to the member with the fewest standbys other than the primary.
/// Empty when it holds nothing, or when no other member is up.
std::vector<partition_move> drain_plan(const assignment& current, std::vector<std::string> members,
                                       const std::string& leaving);

} // namespace eddy
