#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

namespace eddy {

/// Version of the dead-letter journal's file layout (its SQLite `user_version`); a file
/// written by a newer layout is refused.
inline constexpr uint32_t dead_letter_format_version = 1;

/// The SQLite `application_id` of a dead-letter journal ("EDDL"): tells our file from any
/// other SQLite database.
inline constexpr int32_t dead_letter_application_id = 0x4544444C;

/// How long an operation waits for the lock of another connection (the running job, the
/// `eddy deadletters` tool, another job on the same --data-dir) before it fails.
/// Default: 5000
inline constexpr int dead_letter_busy_timeout_ms = 5000;

/// One record whose processing failed, as kept in the dead-letter journal.
struct failed_record {
  int64_t id = 0;    // assigned by the store (rowid), 0 before `add`
  int64_t at_ms = 0; // wall clock (ms since epoch) when it was dead-lettered
  std::string job;
  std::string op;         // operator (graph node) name
  uint32_t partition = 0; // instance index / partition id
  uint64_t origin = 0;    // the record's origin (producer << 48 | position); 0 = unknown
  std::string key;        // rendered key, empty when not keyed
  std::string record;     // human-readable rendering of the record (JSON text when possible)
  std::string payload;    // encoded bytes to decode the record again for replay; may be empty
  std::string error;      // the error text (what() of the exception, or why the actor failed)
  uint32_t attempts = 0;  // how many times processing was tried
  bool replayed = false;
};

/// Which dead letters `dead_letter_store::list` and `count` return.
struct failed_record_query {
  std::string job;          // empty: every job
  std::string op;           // empty: every operator
  bool pending_only = true; // false: include replayed ones
  size_t limit = SIZE_MAX;
};

/// The dead-letter journal of one data directory: <data-dir>/deadletters.db, one SQLite file
/// (WAL mode) shared by every job of the directory and by the `eddy deadletters` tool.
/// Opened by the engine when a durable job starts and shared by its actors until the job
/// ends; closed (RAII) with the last owner. Thread-safe (a mutex; dead letters are rare).
/// Writes are durable (synchronous=FULL, WAL): an `add` that returned is on disk.
class dead_letter_store {
public:
  /// Opens or creates the file (creating its directory). Errors name the path: io_failure
  /// (cannot create/open/write, read-only), corrupt_journal (not an SQLite file, or an
  /// SQLite file without our schema/application_id), state_mismatch (newer format version).
  /// A file that is refused is left as it is.
  [[nodiscard]] static caf::expected<std::unique_ptr<dead_letter_store>>
  open(const std::filesystem::path& file);

  /// `<data_dir>/deadletters.db`
  [[nodiscard]] static std::filesystem::path path_in(const std::filesystem::path& data_dir);

  ~dead_letter_store();
  dead_letter_store(const dead_letter_store&) = delete;
  dead_letter_store& operator=(const dead_letter_store&) = delete;

  /// Adds `r`; returns false (and changes nothing) when a record with the same
  /// (job, op, partition, origin) is there already and origin != 0 — a record replayed
  /// after a crash is dead-lettered once. Records with origin 0 are always added.
  /// `r.id` and `r.replayed` are ignored: the store assigns the id, a new entry is pending.
  [[nodiscard]] caf::expected<bool> add(const failed_record& r);

  /// Oldest first (by id).
  [[nodiscard]] caf::expected<std::vector<failed_record>> list(const failed_record_query& q) const;

  /// The number of entries `list(q)` returns.
  [[nodiscard]] caf::expected<uint64_t> count(const failed_record_query& q) const;

  /// Marks these ids replayed (unknown ids are ignored), in one transaction.
  [[nodiscard]] caf::error mark_replayed(const std::vector<int64_t>& ids);

  [[nodiscard]] const std::filesystem::path& path() const noexcept;

private:
  struct impl;

  explicit dead_letter_store(std::unique_ptr<impl> self);

  std::unique_ptr<impl> impl_;
};

} // namespace eddy
