#pragma once

// Private to libstream: a consistent copy of a live SQLite file, taken beside its owner. `pin`
// opens a second connection and holds a read transaction on it: from then on that connection
// sees the file as it was when `pin` returned, whatever the owner commits (WAL keeps the
// pinned pages until the pin is released). `copy_step` writes that snapshot into a new file
// with SQLite's online backup, a bounded number of pages per step, so that a copier can
// interleave the steps with other work and the owner is never blocked. The base of
// savepoints (docs/design.md, "Savepoints").

#include <filesystem>
#include <memory>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "core/sqlite_file.hpp"

namespace eddy::sqlite {

/// A pinned snapshot of one file and, once `copy_step` began, its copy in progress. Owned by
/// one copier at a time; not thread-safe; movable.
class snapshot {
public:
  /// Pins `file` (an existing file of `kind`, in WAL mode) as it is now.
  [[nodiscard]] static caf::expected<snapshot> pin(const std::filesystem::path& file,
                                                   const file_kind& kind);
  /// The same on `db`, a connection to `file` opened ahead (see `open_warm`): only the read
  /// transaction begins now, which takes microseconds instead of an open's milliseconds.
  [[nodiscard]] static caf::expected<snapshot> pin(connection db, const std::filesystem::path& file,
                                                   const file_kind& kind);
  /// A connection to `file` with its schema read, for a later `pin`.
  [[nodiscard]] static caf::expected<connection> open_warm(const std::filesystem::path& file,
                                                           const file_kind& kind);

  snapshot(snapshot&&) noexcept;
  snapshot& operator=(snapshot&&) noexcept;
  ~snapshot();

  /// Copies up to `pages` more pages of the snapshot into `target` (created, or replaced when
  /// the copy starts). True once the copy is complete and `target` is closed; the snapshot
  /// stays pinned until destroyed. A failed step removes the partial target.
  /// Without `synced` the complete copy is not synced: the caller syncs it later.
  [[nodiscard]] caf::expected<bool> copy_step(const std::filesystem::path& target, int pages,
                                              bool synced = true);

  /// Copies the whole snapshot into `target`, `pages` per step.
  [[nodiscard]] caf::error copy_to(const std::filesystem::path& target, int pages = 256);

  /// Pages the snapshot holds and pages still to copy (both 0 before the first step).
  [[nodiscard]] int page_count() const noexcept;
  [[nodiscard]] int remaining() const noexcept;

private:
  struct state;
  explicit snapshot(std::unique_ptr<state> s) noexcept;
  std::unique_ptr<state> s_;
};

} // namespace eddy::sqlite
