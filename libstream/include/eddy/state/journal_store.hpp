#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "eddy/core/durability.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace eddy {

/// Changes kept per key by a compaction when nobody says otherwise.
inline constexpr size_t journal_default_keep = 4;

/// Version of the journal's file layout; a file written by a newer layout is refused, one
/// written by an older layout is upgraded when it is opened.
inline constexpr uint32_t journal_format_version = 2;

/// How long an operation waits for a lock held by another connection (an inspection tool,
/// or by mistake a second Eddy on the same --data-dir) before it fails.
/// Default: 250
inline constexpr int journal_busy_timeout_ms = 250;

/// Who a journal belongs to; stored in the file and checked on every open.
struct journal_meta {
  std::string job;
  /// Name of the operator whose state this is.
  std::string op;
  uint32_t partition = 0;
  /// Partition count P of the operator; keys map to partitions through it.
  uint32_t partitions = 1;
  /// Version of the encoding of state values; recorded with every state row.
  uint32_t state_version = 1;
  /// The instance counts of the job's nodes ("lines:1,split:2,count:128"): positions are
  /// kept per channel, so a job whose shape changed cannot use them.
  std::string topology;
};

/// A new value of one named state of one key.
struct state_change {
  /// The encoded key.
  std::string key;
  /// Name of the state (see `state_registry`); empty with no value clears every state of
  /// the key.
  std::string name;
  /// The encoded value; nullopt clears the state.
  std::optional<std::string> value;
};

/// A state row as stored: its encoded value, the state version that encoded it and the
/// sequence number of the change that wrote it.
struct stored_state {
  std::string value;
  uint32_t version = 0;
  uint64_t seq = 0;
};

/// Output records of a partition kept until every durable consumer downstream committed
/// them: the encoded records with positions first..last of the partition's output.
struct outbox_entry {
  uint64_t first = 0;
  uint64_t last = 0;
  std::string payload;
};

/// A timer of one key.
struct timer_entry {
  /// 0 = processing time, 1 = event time.
  int kind = 0;
  int64_t at_ms = 0;
  std::string key;
  std::string tag;

  bool operator==(const timer_entry&) const = default;
};

/// Everything one processed batch changes; committed atomically.
struct commit_batch {
  std::vector<state_change> changes;
  /// New positions (input key, last applied position); never smaller than the stored
  /// position of the key. Partitions key positions by (channel, producer), see
  /// `replay_filter`; sinks also keep their output file's length under key 0.
  std::vector<std::pair<uint64_t, uint64_t>> positions;
  /// Output to keep until downstream committed it.
  std::vector<outbox_entry> outbox_added;
  /// Drops the outbox entries whose last position is at or below this (0: none).
  uint64_t outbox_acked = 0;
  std::vector<timer_entry> timers_added;
  std::vector<timer_entry> timers_removed;
  /// Timers fired from the journal, one entry per kind: every timer of the kind at or
  /// before this one in (at_ms, key, tag) order goes, in one statement (`due_timers` gave
  /// the earliest ones, and nothing was committed since). Applied before the removals and
  /// additions, so a fired timer registered again stays.
  std::vector<timer_entry> timers_fired;
  /// Where the changes come from, kept in the journal for inspection.
  std::string origin = "batch";
  /// Writes the changes as one log entry instead of one state row and one journal row
  /// each; `compact` folds the log into the rows. A commit then costs one row whatever
  /// the number of changes, but `get` and `read` see the changes only after the next
  /// `compact`, so the caller keeps them in memory until then (a partition pins its changed
  /// keys). `history` sees them at once.
  bool deferred = false;
  /// Wall-clock time of the commit, kept in the journal for inspection.
  int64_t at_ms = 0;
};

/// One journaled change of a key.
struct journal_entry {
  uint64_t seq = 0;
  std::string name;
  /// nullopt when the change cleared the state.
  std::optional<std::string> value;
  std::string origin;
  int64_t at_ms = 0;
  /// Still in the log of deferred commits: not folded by a compaction, so never trimmed.
  bool logged = false;
};

/// Closes SQLite handles; used by `journal_store`'s smart pointers.
struct sqlite_closer {
  void operator()(sqlite3* db) const noexcept;
  void operator()(sqlite3_stmt* stmt) const noexcept;
};

class journal_store;

/// A journal pinned as it was at its last commit, to be copied later, on another thread (a
/// savepoint's copier), while its partition keeps committing: a read transaction on a second
/// connection holds that snapshot (see docs/design.md, "Savepoints"). Owned by one thread at
/// a time; movable.
class journal_pin {
public:
  journal_pin(journal_pin&&) noexcept;
  journal_pin& operator=(journal_pin&&) noexcept;
  journal_pin(const journal_pin&) = delete;
  journal_pin& operator=(const journal_pin&) = delete;
  ~journal_pin();

  /// Copies up to `pages` more pages into `target` (created; replaced when the copy starts).
  /// True once the copy is complete (and synced, when `synced`: else the caller syncs it); a
  /// failed step removes the partial target.
  [[nodiscard]] caf::expected<bool> copy_step(const std::filesystem::path& target, int pages,
                                              bool synced = true);
  /// Pages still to copy (0 before the first step and once complete) and in all.
  [[nodiscard]] int remaining() const noexcept;
  [[nodiscard]] int page_count() const noexcept;
  [[nodiscard]] const journal_meta& meta() const noexcept;
  [[nodiscard]] const std::filesystem::path& file() const noexcept;

private:
  friend class journal_store;
  struct impl;
  explicit journal_pin(std::unique_ptr<impl> p) noexcept;
  std::unique_ptr<impl> p_;
};

/// What a copied journal holds once its log is folded (see `normalize_journal_copy`).
struct journal_copy_facts {
  uint64_t keys = 0;
  uint64_t last_seq = 0;
};

/// Opens the copy `file` of a journal of `meta` alone, folds its log of deferred commits into
/// its state rows and closes it, so that the copy is one self-contained file; answers its
/// key count and newest sequence number. Nothing is synced: the caller syncs the file.
[[nodiscard]] caf::expected<journal_copy_facts>
normalize_journal_copy(const std::filesystem::path& file, const journal_meta& meta,
                       size_t keep_per_key);

/// The durable state of one partition: one SQLite file (WAL mode) holding the state rows
/// (the snapshot), the journal of changes, the input positions, the timers and the
/// metadata naming the owner. Opened by the partition's actor when it starts and closed
/// (RAII) when it stops; owned by that actor alone. Not thread-safe; movable, not
/// copyable.
class journal_store {
public:
  /// Opens `file`, creating it and its parent directories if missing. A new file records
  /// `meta`; an existing one must have been written for the same job, operator, partition
  /// and partition count by an Eddy whose format is not newer (else `errc::state_mismatch`).
  /// Existing state is never reset or overwritten.
  /// Changes logged by deferred commits before a crash are folded into the state rows
  /// (see `compact`), keeping `keep_per_key` changes of each key in the journal; with
  /// `recover` false that is left to `recover`, which must come before any read of state.
  [[nodiscard]] static caf::expected<journal_store> open(const std::filesystem::path& file,
                                                         const journal_meta& meta, durability d,
                                                         size_t keep_per_key = journal_default_keep,
                                                         bool recover = true);

  /// Folds the changes logged by deferred commits into the state rows, if there are any
  /// (what `open` does unless told not to).
  [[nodiscard]] caf::error recover(size_t keep_per_key);

  journal_store(journal_store&&) noexcept;
  journal_store& operator=(journal_store&&) noexcept;
  journal_store(const journal_store&) = delete;
  journal_store& operator=(const journal_store&) = delete;
  ~journal_store();

  /// Applies `batch` in one transaction: the state rows, one journal entry per change,
  /// the positions and the timers commit together or not at all.
  [[nodiscard]] caf::error commit(const commit_batch& batch);

  /// The value of state `name` of `key`, nullopt if it has none.
  [[nodiscard]] caf::expected<std::optional<std::string>> get(std::string_view key,
                                                              std::string_view name);
  /// The value and version of state `name` of `key`, nullopt if it has none.
  [[nodiscard]] caf::expected<std::optional<stored_state>> read(std::string_view key,
                                                                std::string_view name);
  /// Every state row of `key` as (state name, row), by name. Like `read`, sees the changes
  /// of deferred commits only after the next `compact`.
  [[nodiscard]] caf::expected<std::vector<std::pair<std::string, stored_state>>>
  states_of(std::string_view key);
  /// The last applied position of every input key that has one.
  [[nodiscard]] caf::expected<std::map<uint64_t, uint64_t>> positions();
  /// The outbox entries ending after `position`, in order.
  [[nodiscard]] caf::expected<std::vector<outbox_entry>> outbox_after(uint64_t position);
  /// The newest `limit` journaled changes of `key`, newest first.
  [[nodiscard]] caf::expected<std::vector<journal_entry>> history(std::string_view key,
                                                                  size_t limit);
  /// The sequence number of the newest journal entry (0 for a new journal); survives
  /// compaction.
  [[nodiscard]] uint64_t last_seq() const noexcept {
    return last_seq_;
  }
  /// Up to `limit` timers of `kind` due at or before `up_to_ms`, in (at_ms, key, tag) order;
  /// with `after`, only those that come after it in that order.
  [[nodiscard]] caf::expected<std::vector<timer_entry>>
  due_timers(int kind, int64_t up_to_ms, size_t limit, const timer_entry* after = nullptr);
  /// The committed timers of `key` (an encoded key), by kind and time.
  [[nodiscard]] caf::expected<std::vector<timer_entry>> timers_of(std::string_view key);
  /// Number of keys that have at least one state.
  [[nodiscard]] caf::expected<uint64_t> key_count();
  /// True when some key has a state row or the log of deferred commits holds changes: false
  /// means that no key has any state (a new partition, or one whose keys were all cleared).
  [[nodiscard]] caf::expected<bool> has_state();
  /// Number of journal entries currently kept.
  [[nodiscard]] caf::expected<uint64_t> journal_length();

  /// Folds the log of deferred commits into the state rows and the journal of changes,
  /// drops journal entries so that at most the `keep_per_key` newest of each key remain
  /// (one transaction: a crash leaves the log or its result), then truncates the WAL. The
  /// state rows are the snapshot, so recovery time depends on the live state and the log
  /// since the last compaction, not on the history.
  [[nodiscard]] caf::error compact(size_t keep_per_key);

  /// Writes a consistent copy of the journal as of its last commit to `target` (replaced
  /// if it exists), compacted, while the journal stays open for commits: the copy a
  /// partition ships to a new standby while it keeps running.
  [[nodiscard]] caf::error copy_to(const std::filesystem::path& target);

  /// Pins the journal as of its last commit for a copy made later, elsewhere (a savepoint);
  /// the journal goes on committing meanwhile. Uses the connection `prepare_pin` opened, if
  /// any (then it takes microseconds, else an open's milliseconds).
  [[nodiscard]] caf::expected<journal_pin> pin();
  /// Opens the connection of the next `pin` ahead of it (a savepoint is coming: the pin is
  /// on the partition's path at the cut, the open is not).
  [[nodiscard]] caf::error prepare_pin();

  /// The epoch of the assignment table under which the partition's current owner runs, as
  /// recorded in the journal (0: never recorded, not in a cluster). A cluster fences with
  /// it: a copy refuses the commits of an owner with an older epoch (see "Cluster" in
  /// docs/design.md).
  [[nodiscard]] caf::expected<uint64_t> owner_epoch();
  /// Records `epoch` as the owner epoch, and makes this connection its owner: from now on
  /// a commit finds out in its transaction whether another connection recorded a newer
  /// owner since, and is then refused with `errc::fenced` (a stale incarnation on the same
  /// node cannot write over the partition that took its place).
  [[nodiscard]] caf::error set_owner_epoch(uint64_t epoch);
  /// Refuses with `errc::fenced` when another connection recorded another owner since this
  /// one's `set_owner_epoch` (nothing to check without one).
  [[nodiscard]] caf::error check_owner_epoch();

  [[nodiscard]] const journal_meta& meta() const noexcept {
    return meta_;
  }
  [[nodiscard]] const std::filesystem::path& file() const noexcept {
    return file_;
  }
  /// The SQLite connection, for tests and diagnostics; writing through it bypasses the
  /// journal's invariants.
  [[nodiscard]] sqlite3* native_handle() const noexcept {
    return db_.get();
  }

private:
  using db_ptr = std::unique_ptr<sqlite3, sqlite_closer>;
  using stmt_ptr = std::unique_ptr<sqlite3_stmt, sqlite_closer>;

  journal_store(std::filesystem::path file, journal_meta meta, db_ptr db);

  [[nodiscard]] caf::error prepare_all();
  [[nodiscard]] caf::error load_last_seq();
  [[nodiscard]] caf::error apply(const commit_batch& batch, uint64_t& seq);
  [[nodiscard]] caf::error apply_change(const state_change& change, const commit_batch& batch,
                                        uint64_t seq);
  [[nodiscard]] caf::error apply_position(uint64_t channel, uint64_t seq);
  [[nodiscard]] caf::error delete_old_changes(size_t keep_per_key);
  [[nodiscard]] caf::error save_last_seq();
  void rollback() noexcept;
  struct logged_change_row {
    uint64_t seq = 0;
    std::string key;
    std::string name;
    std::optional<std::string> value;
    std::string origin;
    int64_t at_ms = 0;
  };
  [[nodiscard]] caf::error read_log(std::vector<logged_change_row>& out);
  [[nodiscard]] caf::error fold_log(size_t keep_per_key, bool& folded);
  struct fold_plan;
  static void plan_key(std::span<const logged_change_row> changes, size_t keep_per_key,
                       fold_plan& plan);
  [[nodiscard]] caf::error write_state_rows(const fold_plan& plan);
  [[nodiscard]] caf::error write_history(const fold_plan& plan, size_t keep_per_key);
  [[nodiscard]] caf::error truncate_wal();
  static void encode_change(const state_change& change, uint64_t seq, std::string& out);
  /// Statement `id` of journal_sql.hpp, prepared on first use; nullptr if that failed.
  [[nodiscard]] sqlite3_stmt* stmt(size_t id) const noexcept;

  std::filesystem::path file_;
  journal_meta meta_;
  uint64_t last_seq_ = 0;
  /// The owner epoch this connection recorded (0: none, no fencing).
  uint64_t owner_epoch_ = 0;
  // Declared before the statements so that they are finalized before it closes.
  db_ptr db_;
  mutable std::vector<stmt_ptr> stmts_;
  /// The connection of the next pin, opened ahead by `prepare_pin` (closed before `db_`).
  db_ptr spare_;
};

} // namespace eddy
