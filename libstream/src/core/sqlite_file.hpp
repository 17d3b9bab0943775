#pragma once

// Private to libstream: the one SQLite layer of Eddy, in namespace eddy::sqlite. Every SQLite
// file Eddy keeps (the partition journals in state/, the dead-letter journal in io/, the
// ingress logs in service/) opens its connection, sets its durability, prepares and steps its
// statements and maps SQLite result codes to Eddy errors here. What differs between the
// files is data: a `file_kind` (busy timeout, threading flag, the words of the messages).
//
// The layer owns nothing beyond what it hands out: a `connection` and the `statement`s
// belong to the store that opened and prepared them, which serializes every use of them.
// `file_ref` is a view the store makes on the spot for each call.

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sqlite3.h>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "eddy/core/assert.hpp"
#include "eddy/core/durability.hpp"

namespace eddy::sqlite {

// -- parameters ----------------------------------------------------------------------------

/// A parameter bound as a BLOB (arbitrary bytes).
struct blob {
  std::string_view bytes;
};

/// A parameter bound as TEXT.
struct text {
  std::string_view chars;
};

// Binding uses SQLITE_STATIC: the caller's data outlives the step, and every statement is
// reset before the call that bound it returns. An empty string_view may have a null data(),
// which SQLite would store as NULL, so empty values are bound from "".

inline int bind_one(sqlite3_stmt* s, int i, int64_t x) {
  return sqlite3_bind_int64(s, i, x);
}

inline int bind_one(sqlite3_stmt* s, int i, blob x) {
  return sqlite3_bind_blob64(s, i, x.bytes.empty() ? "" : x.bytes.data(), x.bytes.size(),
                             SQLITE_STATIC);
}

inline int bind_one(sqlite3_stmt* s, int i, text x) {
  return sqlite3_bind_text64(s, i, x.chars.empty() ? "" : x.chars.data(), x.chars.size(),
                             SQLITE_STATIC, SQLITE_UTF8);
}

/// An absent value is bound as NULL, a present one as a BLOB.
inline int bind_one(sqlite3_stmt* s, int i, const std::optional<std::string>& x) {
  return x ? bind_one(s, i, blob{*x}) : sqlite3_bind_null(s, i);
}

/// Binds `xs` to parameters `first`, `first` + 1, ... of `s` (numbered from 1); SQLITE_OK
/// or the first failing result code.
template <class... Ts>
int bind_from([[maybe_unused]] sqlite3_stmt* s, int first, const Ts&... xs) {
  [[maybe_unused]] int i = first;
  int rc = SQLITE_OK;
  ((rc = rc == SQLITE_OK ? bind_one(s, i++, xs) : rc), ...);
  return rc;
}

/// Binds `xs` to ?1, ?2, ... of `s`; SQLITE_OK or the first failing result code.
template <class... Ts>
int bind_all(sqlite3_stmt* s, const Ts&... xs) {
  return bind_from(s, 1, xs...);
}

/// An unsigned number that Eddy keeps below 2^63 (sequence numbers, positions).
inline int64_t to_int64(uint64_t x) {
  EDDY_ASSERT(x <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
  return static_cast<int64_t>(x);
}

/// A LIMIT parameter: SIZE_MAX and anything past int64 mean "no limit".
inline int64_t limit_param(size_t limit) {
  return static_cast<int64_t>(
    std::min<uint64_t>(limit, static_cast<uint64_t>(std::numeric_limits<int64_t>::max())));
}

// -- rows and statements -------------------------------------------------------------------

/// The current row of a statement being stepped, read by column index (from 0). A view: valid
/// until the statement steps again or is reset; as thread-safe as the statement's owner.
class row {
public:
  explicit row(sqlite3_stmt* s) noexcept
    : s_(s) {}

  [[nodiscard]] int64_t int64_at(int i) const noexcept {
    return sqlite3_column_int64(s_, i);
  }
  /// The bytes of a TEXT or BLOB column, all of them (also past a NUL); empty for NULL.
  [[nodiscard]] std::string string_at(int i) const;
  /// Like `string_at`, nullopt for NULL.
  [[nodiscard]] std::optional<std::string> optional_at(int i) const;
  [[nodiscard]] bool is_null(int i) const noexcept {
    return sqlite3_column_type(s_, i) == SQLITE_NULL;
  }

private:
  sqlite3_stmt* s_;
};

/// Closes connections and finalizes statements (the deleter of `connection`, `statement`).
struct closer {
  void operator()(sqlite3* db) const noexcept;
  void operator()(sqlite3_stmt* s) const noexcept;
};

/// An open connection; closed (sqlite3_close_v2) when destroyed. Owned by one store.
using connection = std::unique_ptr<sqlite3, closer>;

/// Binds `xs` to `s`, steps it to its end calling `on_row(row)` for each row, and resets it
/// however that ends. SQLITE_OK or the failing result code; the connection's error message
/// still describes it.
template <class F, class... Ts>
int step_all(sqlite3_stmt* s, F&& on_row, const Ts&... xs) {
  struct reset_guard {
    sqlite3_stmt* stmt;
    ~reset_guard() {
      sqlite3_reset(stmt);
    }
  } guard{s};
  if (int rc = bind_all(s, xs...); rc != SQLITE_OK) {
    return rc;
  }
  for (;;) {
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
      return SQLITE_OK;
    }
    if (rc != SQLITE_ROW) {
      return rc;
    }
    on_row(row{s});
  }
}

/// One prepared statement, finalized when destroyed. Made by `file_ref::prepare` (or from a
/// handle), owned by the store that prepared it and used under that store's serialization;
/// not thread-safe; movable, not copyable. Its calls return SQLite result codes, which
/// `file_ref::query` and `file_ref::run` turn into Eddy errors.
class statement {
public:
  statement() noexcept = default;
  explicit statement(sqlite3_stmt* handle) noexcept
    : handle_(handle) {}

  [[nodiscard]] sqlite3_stmt* get() const noexcept {
    return handle_.get();
  }
  /// Hands the handle to a caller that finalizes it (a store whose members are raw handles).
  [[nodiscard]] sqlite3_stmt* release() noexcept {
    return handle_.release();
  }
  /// Binds `xs` to ?1, ?2, ...; SQLITE_OK or the first failing result code.
  template <class... Ts>
  [[nodiscard]] int bind(const Ts&... xs) {
    return bind_all(get(), xs...);
  }
  /// SQLITE_ROW (read it with `current`), SQLITE_DONE or an error code.
  [[nodiscard]] int step() noexcept {
    return sqlite3_step(get());
  }
  /// Makes the statement ready to step again from its start; keeps the bindings.
  void reset() noexcept {
    sqlite3_reset(get());
  }
  /// The row the last `step` returned SQLITE_ROW for.
  [[nodiscard]] row current() const noexcept {
    return row{get()};
  }

private:
  std::unique_ptr<sqlite3_stmt, closer> handle_;
};

// -- files ---------------------------------------------------------------------------------

/// What sets one kind of SQLite file apart: how its connections are opened and how its
/// errors read. One constant per kind, owned by the module of that kind.
struct file_kind {
  /// What messages call a file of this kind: "journal", "dead-letter journal".
  std::string_view name;
  /// How long a statement waits for the lock of another connection before it fails.
  int busy_timeout_ms = 0;
  /// The owner serializes every use of a connection, so SQLite's own mutex is left out
  /// (SQLITE_OPEN_NOMUTEX).
  bool serialized_by_owner = false;
  /// Follows the message of a lock that was not released in time (SQLITE_BUSY, _LOCKED).
  std::string busy_hint;
  /// Follows the message of a file or directory that is not writable (SQLITE_READONLY,
  /// _CANTOPEN, _PERM); may be empty.
  std::string access_hint;
  /// Ends the message of a damaged file or one of another kind: what its user can do.
  std::string_view corrupt_hint;
};

/// A busy hint: " (another `holder` held its lock for more than `timeout_ms` ms)".
[[nodiscard]] std::string lock_wait_hint(std::string_view holder, int timeout_ms);

/// An access hint: " (the `file` and its directory must be writable: SQLite keeps -wal and
/// -shm files beside it)".
[[nodiscard]] std::string writable_hint(std::string_view file);

/// The values of PRAGMA synchronous that Eddy uses.
enum class sync_mode : uint8_t {
  /// No fsync at all: only for a file that is synced as a whole before it is used.
  off = 0,
  /// fsync at checkpoints: survives a crash of the process (kill -9), not a power loss.
  normal = 1,
  /// fsync at every commit: survives a power loss.
  full = 2,
};

/// The setting for a durability level: machine -> full; process (and none) -> normal.
[[nodiscard]] constexpr sync_mode sync_mode_of(durability level) noexcept {
  return level == durability::machine ? sync_mode::full : sync_mode::normal;
}

/// Creates the missing directories of `file`; an io_failure naming both otherwise.
[[nodiscard]] caf::error create_parent(const std::filesystem::path& file, const file_kind& kind);

/// fsyncs `file` (closed), so that its contents survive a power loss.
[[nodiscard]] caf::error sync_file(const std::filesystem::path& file, const file_kind& kind);

/// fsyncs the directory of `file`, so that a file just created or renamed there survives a
/// power loss.
[[nodiscard]] caf::error sync_parent(const std::filesystem::path& file, const file_kind& kind);
/// `sync_parent` of each of `files`, once per directory (many files in few directories).
[[nodiscard]] caf::error sync_parents(const std::vector<std::filesystem::path>& files,
                                      const file_kind& kind);

/// Opens `file` read-write, creating an empty one if missing, with extended result codes and
/// the busy timeout of `kind`. Refuses a file that SQLite could open read-only only (its
/// first read would leave read-only -wal/-shm files behind that keep it unwritable after a
/// fix). Changes nothing in the file, so that a store can check a file it may refuse before
/// `file_ref::use_wal` writes its header.
[[nodiscard]] caf::expected<connection> open(const std::filesystem::path& file,
                                             const file_kind& kind);

/// Statements that begin ("BEGIN IMMEDIATE") and commit ("COMMIT") a write transaction,
/// prepared once by a store that writes often; null: run as SQL each time. (At namespace
/// scope: clang cannot use a nested struct's member initializers in a default argument of
/// its enclosing class.)
struct transaction_statements {
  sqlite3_stmt* begin = nullptr;
  sqlite3_stmt* commit = nullptr;
};

/// An open SQLite file as the layer's calls see it: the connection, the file's path and its
/// kind, which every error message names. A view that the store owning the connection makes
/// for a call (the store may move, so nothing keeps one); as thread-safe as the store's use
/// of the connection.
class file_ref {
public:
  file_ref(sqlite3* db, const std::filesystem::path& path, const file_kind& kind) noexcept
    : db_(db)
    , path_(&path)
    , kind_(&kind) {}

  [[nodiscard]] sqlite3* db() const noexcept {
    return db_;
  }
  [[nodiscard]] const std::filesystem::path& path() const noexcept {
    return *path_;
  }

  /// The one mapping of SQLite result codes to Eddy errors: SQLITE_FULL -> disk_full,
  /// SQLITE_CORRUPT and _NOTADB -> corrupt_journal, anything else -> io_failure. The message
  /// names the file and the operation `what`, a verb ("read", "write to").
  [[nodiscard]] caf::error error(int rc, std::string_view what) const;
  /// A corrupt_journal error: the file is damaged or not of this kind, as `detail` says.
  [[nodiscard]] caf::error corrupt(std::string_view detail) const;

  /// Runs the statements of `sql` (a script), dropping any rows.
  [[nodiscard]] caf::error exec(std::string_view what, const char* sql) const;

  /// Prepares a statement to keep for the connection's lifetime. Its SQL is the store's own,
  /// so SQLITE_ERROR means the file lacks the store's tables or columns (corrupt_journal).
  [[nodiscard]] caf::expected<statement> prepare(const char* sql) const;

  /// Binds `xs` to `s`, steps it to its end calling `on_row(row)` for each row, resets it.
  /// A null `s` (a statement that could not be prepared) gives the connection's last error.
  template <class F, class... Ts>
  [[nodiscard]] caf::error query(sqlite3_stmt* s, std::string_view what, F&& on_row,
                                 const Ts&... xs) const {
    if (s == nullptr) {
      // A statement that could not be prepared: the connection still holds why.
      return error(sqlite3_errcode(db_), what);
    }
    int rc = step_all(s, std::forward<F>(on_row), xs...);
    return rc == SQLITE_OK ? caf::error{} : error(rc, what);
  }

  /// `query` for a statement that returns no rows (or whose rows do not matter).
  template <class... Ts>
  [[nodiscard]] caf::error run(sqlite3_stmt* s, std::string_view what, const Ts&... xs) const {
    return query(s, what, ignore_row, xs...);
  }

  /// `query` for a statement used once: prepares and finalizes it.
  template <class F, class... Ts>
  [[nodiscard]] caf::error query_once(std::string_view what, const char* sql, F&& on_row,
                                      const Ts&... xs) const {
    auto s = prepare_once(what, sql);
    if (!s) {
      return s.error();
    }
    return query(s->get(), what, std::forward<F>(on_row), xs...);
  }

  /// `run` for a statement used once.
  template <class... Ts>
  [[nodiscard]] caf::error run_once(std::string_view what, const char* sql, const Ts&... xs) const {
    return query_once(what, sql, ignore_row, xs...);
  }

  /// Sets journal_mode=WAL (refusing a file system without it), then synchronous=`mode`.
  [[nodiscard]] caf::error use_wal(sync_mode mode) const;
  /// Sets synchronous=`mode` alone.
  [[nodiscard]] caf::error set_sync(sync_mode mode) const;

  /// Runs `body` (returning caf::error) in a write transaction, rolled back when `body` or
  /// the commit fails.
  template <class F>
  [[nodiscard]] caf::error in_transaction(std::string_view what, F&& body,
                                          transaction_statements stmts = {}) const {
    if (auto err = begin_transaction(what, stmts.begin)) {
      return err;
    }
    return end_transaction(what, stmts.commit, body());
  }

  /// Rolls back the open transaction, if any: some errors (a full disk, for one) end it
  /// already.
  void rollback() const noexcept;

  /// The number of rows the last statement changed.
  [[nodiscard]] int64_t changes() const noexcept {
    return sqlite3_changes64(db_);
  }

private:
  static void ignore_row(row) noexcept {}

  [[nodiscard]] caf::expected<statement> prepare_once(std::string_view what, const char* sql) const;
  [[nodiscard]] caf::error begin_transaction(std::string_view what, sqlite3_stmt* stmt) const;
  /// Commits when `err` is none; rolls back when it or the commit fails.
  [[nodiscard]] caf::error end_transaction(std::string_view what, sqlite3_stmt* stmt,
                                           caf::error err) const;

  sqlite3* db_;
  const std::filesystem::path* path_;
  const file_kind* kind_;
};

} // namespace eddy::sqlite
