#include "eddy/io/dead_letter_store.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <mutex>
#include <string_view>
#include <system_error>
#include <utility>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/sqlite_call.hpp"
#include "eddy/core/assert.hpp"
#include "eddy/core/error.hpp"

namespace fs = std::filesystem;

namespace eddy {

namespace {

// One table; the partial unique index makes a record replayed after a crash (same origin at
// the same operator instance) a no-op, while records of unknown origin are always kept.
// AUTOINCREMENT: ids are never reused, so "replayed up to id N" stays meaningful.
constexpr const char* schema_sql =
  "CREATE TABLE dead_letters(id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL,"
  " job TEXT NOT NULL, op TEXT NOT NULL, partition INTEGER NOT NULL, origin INTEGER NOT NULL,"
  " key TEXT NOT NULL, record TEXT NOT NULL, payload BLOB NOT NULL, error TEXT NOT NULL,"
  " attempts INTEGER NOT NULL, replayed INTEGER NOT NULL DEFAULT 0);"
  "CREATE UNIQUE INDEX dead_letters_once ON dead_letters(job, op, partition, origin)"
  " WHERE origin != 0;";

// The statements a store prepares once in open() and reuses for its lifetime.
enum stmt_id : size_t {
  s_begin,
  s_commit,
  s_rollback,
  s_insert,
  s_list,
  s_count,
  s_mark,
  s_stmt_count,
};

// In s_list and s_count, an empty job (?1) or op (?2) matches every job or operator and
// ?3 = 1 keeps pending entries only. Dead letters are few, so a scan is fine.
constexpr std::array<const char*, s_stmt_count> stmt_sql = {
  "BEGIN IMMEDIATE",
  "COMMIT",
  "ROLLBACK",
  "INSERT INTO dead_letters(at_ms, job, op, partition, origin, key, record, payload, error,"
  " attempts) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING",
  "SELECT id, at_ms, job, op, partition, origin, key, record, payload, error, attempts, replayed"
  " FROM dead_letters WHERE (?1 = '' OR job = ?1) AND (?2 = '' OR op = ?2)"
  " AND (?3 = 0 OR replayed = 0) ORDER BY id LIMIT ?4",
  "SELECT count(*) FROM (SELECT id FROM dead_letters WHERE (?1 = '' OR job = ?1)"
  " AND (?2 = '' OR op = ?2) AND (?3 = 0 OR replayed = 0) ORDER BY id LIMIT ?4)",
  "UPDATE dead_letters SET replayed = 1 WHERE id = ?1",
};

struct sqlite_closer {
  void operator()(sqlite3* db) const noexcept {
    sqlite3_close_v2(db);
  }
  void operator()(sqlite3_stmt* s) const noexcept {
    sqlite3_finalize(s);
  }
};

using db_ptr = std::unique_ptr<sqlite3, sqlite_closer>;
using stmt_ptr = std::unique_ptr<sqlite3_stmt, sqlite_closer>;

caf::error corrupt_error(const fs::path& file, std::string_view detail) {
  return make_error(errc::corrupt_journal,
                    file.string() +
                      " is not a valid Eddy dead-letter journal (corrupted or not SQLite): " +
                      std::string{detail} + "; restore it, move it away or use another --data-dir");
}

/// The one place that maps SQLite result codes to Eddy errors; `what` is a verb ("read").
caf::error sqlite_error(int rc, sqlite3* db, const fs::path& file, std::string_view what) {
  std::string detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return make_error(errc::disk_full, "disk full writing " + file.string() + ": " + detail);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return corrupt_error(file, detail);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      detail += " (another process held its lock for more than " +
                std::to_string(dead_letter_busy_timeout_ms) + " ms)";
      break;
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
      detail += " (the journal and its directory must be writable: SQLite keeps -wal and -shm "
                "files beside it)";
      break;
    default:
      // SQLITE_IOERR and anything unexpected.
      break;
  }
  return make_error(errc::io_failure, "cannot " + std::string{what} + " dead-letter journal " +
                                        file.string() + ": " + detail);
}

using sqlite::blob;
using sqlite::column_string;
using sqlite::limit_param;
using sqlite::text;

/// Binds `xs` to `s`, steps it to completion calling `on_row(s)` for each row, resets it.
template <class F, class... Ts>
caf::error query(sqlite3_stmt* s, const fs::path& file, std::string_view what, F&& on_row,
                 const Ts&... xs) {
  int rc = sqlite::step_all(s, std::forward<F>(on_row), xs...);
  return rc == SQLITE_OK ? caf::error{} : sqlite_error(rc, sqlite3_db_handle(s), file, what);
}

template <class... Ts>
caf::error run(sqlite3_stmt* s, const fs::path& file, std::string_view what, const Ts&... xs) {
  return query(
    s, file, what, [](sqlite3_stmt*) {}, xs...);
}

/// Like query() for a statement used once: prepares and finalizes it.
template <class F>
caf::error query_once(sqlite3* db, const fs::path& file, std::string_view what, const char* sql,
                      F&& on_row) {
  int rc = sqlite::step_once(db, sql, std::forward<F>(on_row));
  return rc == SQLITE_OK ? caf::error{} : sqlite_error(rc, db, file, what);
}

caf::error exec(sqlite3* db, const fs::path& file, std::string_view what, const char* sql) {
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? caf::error{} : sqlite_error(rc, db, file, what);
}

void rollback(sqlite3* db) noexcept {
  // Some errors (a full disk, for one) end the transaction already.
  if (sqlite3_get_autocommit(db) == 0) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

/// Origins use all 64 bits; SQLite integers are signed. The cast is a bijection (C++20).
int64_t origin_param(uint64_t origin) {
  return static_cast<int64_t>(origin);
}

caf::error create_parent(const fs::path& file) {
  auto dir = file.parent_path();
  if (dir.empty()) {
    return {};
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return make_error(errc::io_failure, "cannot create directory " + dir.string() +
                                          " for dead-letter journal " + file.string() + ": " +
                                          ec.message());
  }
  return {};
}

/// fsyncs the directory of a file just created, so that the file survives a power loss.
caf::error sync_parent(const fs::path& file) {
  auto dir = file.parent_path().empty() ? fs::path{"."} : file.parent_path();
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    auto err = make_error(errc::io_failure, "cannot sync directory " + dir.string() +
                                              " of dead-letter journal " + file.string() + ": " +
                                              std::strerror(errno));
    if (fd >= 0) {
      ::close(fd);
    }
    return err;
  }
  ::close(fd);
  return {};
}

caf::expected<db_ptr> open_db(const fs::path& file) {
  sqlite3* raw = nullptr;
  // NOMUTEX: the store serializes every use of the connection with its own mutex.
  int rc = sqlite3_open_v2(
    file.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  // SQLite allocates a handle even when opening fails; it carries the message.
  db_ptr db{raw};
  if (rc != SQLITE_OK) {
    return sqlite_error(rc, db.get(), file, "open");
  }
  // SQLite silently opens an unwritable file read-only; its first read would then leave
  // read-only -wal/-shm files behind that keep the journal unwritable after a fix.
  if (sqlite3_db_readonly(db.get(), "main") == 1) {
    return make_error(errc::io_failure,
                      "dead-letter journal " + file.string() +
                        " is readonly (its file or file system is not writable); fix its "
                        "permissions or use another --data-dir");
  }
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), dead_letter_busy_timeout_ms);
  return db;
}

/// What the header and the catalog of an SQLite file say about it.
struct file_kind {
  int64_t application_id = 0;
  int64_t user_version = 0;
  int64_t tables = 0;

  [[nodiscard]] bool fresh() const noexcept {
    return application_id == 0 && user_version == 0 && tables == 0;
  }
};

caf::expected<file_kind> inspect(sqlite3* db, const fs::path& file) {
  file_kind k;
  auto int_of = [](int64_t& into) {
    return [&into](sqlite3_stmt* s) {
      into = sqlite3_column_int64(s, 0);
    };
  };
  if (auto err = query_once(db, file, "read", "PRAGMA application_id", int_of(k.application_id))) {
    return err;
  }
  if (auto err = query_once(db, file, "read", "PRAGMA user_version", int_of(k.user_version))) {
    return err;
  }
  if (auto err =
        query_once(db, file, "read", "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                   int_of(k.tables))) {
    return err;
  }
  return k;
}

/// Refuses anything but a dead-letter journal this Eddy can read.
caf::error check_kind(const file_kind& k, const fs::path& file) {
  if (k.application_id != dead_letter_application_id) {
    return corrupt_error(file, "it is an SQLite database of another application (application_id " +
                                 std::to_string(k.application_id) + ", " +
                                 std::to_string(k.tables) + " tables)");
  }
  if (k.user_version < 1) {
    return corrupt_error(file, "it has no format version");
  }
  if (k.user_version > dead_letter_format_version) {
    return make_error(
      errc::state_mismatch,
      "dead-letter journal " + file.string() + " was written by a newer Eddy (format " +
        std::to_string(k.user_version) + ", this Eddy reads up to format " +
        std::to_string(dead_letter_format_version) + "); upgrade Eddy or use another --data-dir");
  }
  return {};
}

caf::error create_schema(sqlite3* db, const fs::path& file) {
  auto pragmas = "PRAGMA application_id = " + std::to_string(dead_letter_application_id) +
                 "; PRAGMA user_version = " + std::to_string(dead_letter_format_version) + ";";
  auto err = exec(db, file, "create", schema_sql);
  if (!err) {
    err = exec(db, file, "create", pragmas.c_str());
  }
  return err;
}

/// Creates the schema in a fresh file, or checks the kind of an existing one. Another
/// process may create the same file at the same time: the check is repeated under the
/// write lock, so exactly one of them creates the schema.
caf::error prepare_file(sqlite3* db, const fs::path& file) {
  auto kind = inspect(db, file);
  if (!kind) {
    return kind.error();
  }
  if (!kind->fresh()) {
    return check_kind(*kind, file);
  }
  if (auto err = exec(db, file, "create", "BEGIN IMMEDIATE")) {
    return err;
  }
  kind = inspect(db, file);
  caf::error err = kind ? caf::error{} : kind.error();
  if (!err) {
    err = kind->fresh() ? create_schema(db, file) : check_kind(*kind, file);
  }
  if (!err) {
    err = exec(db, file, "create", "COMMIT");
  }
  if (err) {
    rollback(db);
  }
  return err;
}

caf::error configure(sqlite3* db, const fs::path& file) {
  std::string mode;
  auto on_mode = [&](sqlite3_stmt* s) {
    mode = column_string(s, 0);
  };
  if (auto err = query_once(db, file, "open", "PRAGMA journal_mode=WAL", on_mode)) {
    return err;
  }
  if (mode != "wal") {
    return make_error(errc::io_failure, "cannot open dead-letter journal " + file.string() +
                                          ": the file system does not support WAL mode");
  }
  return exec(db, file, "open", "PRAGMA synchronous=FULL");
}

failed_record read_row(sqlite3_stmt* s) {
  failed_record r;
  r.id = sqlite3_column_int64(s, 0);
  r.at_ms = sqlite3_column_int64(s, 1);
  r.job = column_string(s, 2);
  r.op = column_string(s, 3);
  r.partition = static_cast<uint32_t>(sqlite3_column_int64(s, 4));
  r.origin = static_cast<uint64_t>(sqlite3_column_int64(s, 5));
  r.key = column_string(s, 6);
  r.record = column_string(s, 7);
  r.payload = column_string(s, 8);
  r.error = column_string(s, 9);
  r.attempts = static_cast<uint32_t>(sqlite3_column_int64(s, 10));
  r.replayed = sqlite3_column_int64(s, 11) != 0;
  return r;
}

} // namespace

struct dead_letter_store::impl {
  fs::path file;
  // Serializes every use of the connection and its statements.
  std::mutex mtx;
  // Declared before the statements so that they are finalized before it closes.
  db_ptr db;
  std::vector<stmt_ptr> stmts;

  [[nodiscard]] sqlite3_stmt* stmt(stmt_id id) const noexcept {
    return stmts[id].get();
  }

  caf::error prepare_all() {
    stmts.reserve(s_stmt_count);
    for (const char* sql : stmt_sql) {
      sqlite3_stmt* raw = nullptr;
      int rc = sqlite3_prepare_v3(db.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
      stmts.emplace_back(raw);
      if ((rc & 0xff) == SQLITE_ERROR) {
        // The file has our application_id but not our tables or columns.
        return corrupt_error(file, sqlite3_errmsg(db.get()));
      }
      if (rc != SQLITE_OK) {
        return sqlite_error(rc, db.get(), file, "open");
      }
    }
    return {};
  }

  /// Runs `body` in a write transaction, rolled back when it fails.
  template <class F>
  caf::error in_transaction(F&& body) {
    if (auto err = run(stmt(s_begin), file, "write to")) {
      return err;
    }
    auto err = body();
    if (!err) {
      err = run(stmt(s_commit), file, "write to");
    }
    if (err) {
      rollback(db.get());
    }
    return err;
  }

  template <class F>
  caf::error select(stmt_id id, const failed_record_query& q, F&& on_row) {
    return query(stmt(id), file, "read", std::forward<F>(on_row), text{q.job}, text{q.op},
                 int64_t{q.pending_only ? 1 : 0}, limit_param(q.limit));
  }
};

dead_letter_store::dead_letter_store(std::unique_ptr<impl> self)
  : impl_(std::move(self)) {}

dead_letter_store::~dead_letter_store() = default;

fs::path dead_letter_store::path_in(const fs::path& data_dir) {
  return data_dir / "deadletters.db";
}

const fs::path& dead_letter_store::path() const noexcept {
  return impl_->file;
}

caf::expected<std::unique_ptr<dead_letter_store>> dead_letter_store::open(const fs::path& file) {
  if (auto err = create_parent(file)) {
    return err;
  }
  std::error_code ec;
  bool existed = fs::exists(file, ec);
  auto db = open_db(file);
  if (!db) {
    return db.error();
  }
  // Check an existing file before changing anything in it (even its journal mode).
  if (auto err = prepare_file(db->get(), file)) {
    return err;
  }
  if (auto err = configure(db->get(), file)) {
    return err;
  }
  if (!existed) {
    if (auto err = sync_parent(file)) {
      return err;
    }
  }
  auto self = std::make_unique<impl>();
  self->file = file;
  self->db = std::move(*db);
  if (auto err = self->prepare_all()) {
    return err;
  }
  return std::unique_ptr<dead_letter_store>{new dead_letter_store(std::move(self))};
}

caf::expected<bool> dead_letter_store::add(const failed_record& r) {
  auto& self = *impl_;
  std::lock_guard guard{self.mtx};
  bool added = false;
  auto err = self.in_transaction([&] {
    auto inserted = run(self.stmt(s_insert), self.file, "write to", r.at_ms, text{r.job},
                        text{r.op}, int64_t{r.partition}, origin_param(r.origin), text{r.key},
                        text{r.record}, blob{r.payload}, text{r.error}, int64_t{r.attempts});
    // ON CONFLICT DO NOTHING changes no row for an origin dead-lettered before.
    added = !inserted && sqlite3_changes(self.db.get()) == 1;
    return inserted;
  });
  if (err) {
    return err;
  }
  return added;
}

caf::expected<std::vector<failed_record>>
dead_letter_store::list(const failed_record_query& q) const {
  auto& self = *impl_;
  std::lock_guard guard{self.mtx};
  std::vector<failed_record> result;
  auto on_row = [&](sqlite3_stmt* s) {
    result.push_back(read_row(s));
  };
  if (auto err = self.select(s_list, q, on_row)) {
    return err;
  }
  // Paired with the AUTOINCREMENT ids: replay relies on this order.
  EDDY_ASSERT(std::is_sorted(result.begin(), result.end(),
                             [](const auto& a, const auto& b) { return a.id < b.id; }));
  return result;
}

caf::expected<uint64_t> dead_letter_store::count(const failed_record_query& q) const {
  auto& self = *impl_;
  std::lock_guard guard{self.mtx};
  uint64_t result = 0;
  auto on_row = [&](sqlite3_stmt* s) {
    result = static_cast<uint64_t>(sqlite3_column_int64(s, 0));
  };
  if (auto err = self.select(s_count, q, on_row)) {
    return err;
  }
  return result;
}

caf::error dead_letter_store::mark_replayed(const std::vector<int64_t>& ids) {
  if (ids.empty()) {
    return {};
  }
  auto& self = *impl_;
  std::lock_guard guard{self.mtx};
  return self.in_transaction([&] {
    for (auto id : ids) {
      if (auto err = run(self.stmt(s_mark), self.file, "write to", id)) {
        return err;
      }
    }
    return caf::error{};
  });
}

} // namespace eddy
