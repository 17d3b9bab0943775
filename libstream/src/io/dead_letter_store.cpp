#include "eddy/io/dead_letter_store.hpp"

#include <algorithm>
#include <array>
#include <mutex>
#include <string_view>
#include <system_error>
#include <utility>

#include "core/sqlite_file.hpp"
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
  "INSERT INTO dead_letters(at_ms, job, op, partition, origin, key, record, payload, error,"
  " attempts) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING",
  "SELECT id, at_ms, job, op, partition, origin, key, record, payload, error, attempts, replayed"
  " FROM dead_letters WHERE (?1 = '' OR job = ?1) AND (?2 = '' OR op = ?2)"
  " AND (?3 = 0 OR replayed = 0) ORDER BY id LIMIT ?4",
  "SELECT count(*) FROM (SELECT id FROM dead_letters WHERE (?1 = '' OR job = ?1)"
  " AND (?2 = '' OR op = ?2) AND (?3 = 0 OR replayed = 0) ORDER BY id LIMIT ?4)",
  "UPDATE dead_letters SET replayed = 1 WHERE id = ?1",
};

using sqlite::blob;
using sqlite::limit_param;
using sqlite::row;
using sqlite::text;

/// The dead-letter journal, as the SQLite layer opens it and names it in errors.
const sqlite::file_kind& kind() {
  static const sqlite::file_kind dead_letters{
    .name = "dead-letter journal",
    .busy_timeout_ms = dead_letter_busy_timeout_ms,
    // The store serializes every use of the connection with its own mutex.
    .serialized_by_owner = true,
    .busy_hint = sqlite::lock_wait_hint("process", dead_letter_busy_timeout_ms),
    .access_hint = sqlite::writable_hint("journal"),
    .corrupt_hint = "restore it, move it away or use another --data-dir",
  };
  return dead_letters;
}

/// Origins use all 64 bits; SQLite integers are signed. The cast is a bijection (C++20).
int64_t origin_param(uint64_t origin) {
  return static_cast<int64_t>(origin);
}

/// What the header and the catalog of an SQLite file say about it.
struct file_header {
  int64_t application_id = 0;
  int64_t user_version = 0;
  int64_t tables = 0;

  [[nodiscard]] bool fresh() const noexcept {
    return application_id == 0 && user_version == 0 && tables == 0;
  }
};

caf::expected<file_header> inspect(sqlite::file_ref f) {
  file_header h;
  auto int_of = [](int64_t& into) {
    return [&into](row r) {
      into = r.int64_at(0);
    };
  };
  if (auto err = f.query_once("read", "PRAGMA application_id", int_of(h.application_id))) {
    return err;
  }
  if (auto err = f.query_once("read", "PRAGMA user_version", int_of(h.user_version))) {
    return err;
  }
  if (auto err = f.query_once("read", "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                              int_of(h.tables))) {
    return err;
  }
  return h;
}

/// Refuses anything but a dead-letter journal this Eddy can read.
caf::error check_kind(const file_header& h, sqlite::file_ref f) {
  if (h.application_id != dead_letter_application_id) {
    return f.corrupt("it is an SQLite database of another application (application_id " +
                     std::to_string(h.application_id) + ", " + std::to_string(h.tables) +
                     " tables)");
  }
  if (h.user_version < 1) {
    return f.corrupt("it has no format version");
  }
  if (h.user_version > dead_letter_format_version) {
    return make_error(
      errc::state_mismatch,
      "dead-letter journal " + f.path().string() + " was written by a newer Eddy (format " +
        std::to_string(h.user_version) + ", this Eddy reads up to format " +
        std::to_string(dead_letter_format_version) + "); upgrade Eddy or use another --data-dir");
  }
  return {};
}

caf::error create_schema(sqlite::file_ref f) {
  auto pragmas = "PRAGMA application_id = " + std::to_string(dead_letter_application_id) +
                 "; PRAGMA user_version = " + std::to_string(dead_letter_format_version) + ";";
  auto err = f.exec("create", schema_sql);
  return err ? err : f.exec("create", pragmas.c_str());
}

/// Creates the schema in a fresh file, or checks the kind of an existing one. Another
/// process may create the same file at the same time: the check is repeated under the
/// write lock, so exactly one of them creates the schema.
caf::error prepare_file(sqlite::file_ref f) {
  auto header = inspect(f);
  if (!header) {
    return header.error();
  }
  if (!header->fresh()) {
    return check_kind(*header, f);
  }
  return f.in_transaction("create", [&] {
    header = inspect(f);
    if (!header) {
      return header.error();
    }
    return header->fresh() ? create_schema(f) : check_kind(*header, f);
  });
}

failed_record read_row(row from) {
  failed_record r;
  r.id = from.int64_at(0);
  r.at_ms = from.int64_at(1);
  r.job = from.string_at(2);
  r.op = from.string_at(3);
  r.partition = static_cast<uint32_t>(from.int64_at(4));
  r.origin = static_cast<uint64_t>(from.int64_at(5));
  r.key = from.string_at(6);
  r.record = from.string_at(7);
  r.payload = from.string_at(8);
  r.error = from.string_at(9);
  r.attempts = static_cast<uint32_t>(from.int64_at(10));
  r.replayed = from.int64_at(11) != 0;
  return r;
}

} // namespace

struct dead_letter_store::impl {
  fs::path file;
  // Serializes every use of the connection and its statements.
  std::mutex mtx;
  // Declared before the statements so that they are finalized before it closes.
  sqlite::connection db;
  std::vector<sqlite::statement> stmts;

  [[nodiscard]] sqlite::file_ref sql() const noexcept {
    return {db.get(), file, kind()};
  }

  [[nodiscard]] sqlite3_stmt* stmt(stmt_id id) const noexcept {
    return stmts[id].get();
  }

  caf::error prepare_all() {
    stmts.reserve(s_stmt_count);
    for (const char* statement_sql : stmt_sql) {
      // A file with our application_id but not our tables or columns is refused as corrupt.
      auto prepared = sql().prepare(statement_sql);
      if (!prepared) {
        return prepared.error();
      }
      stmts.push_back(std::move(*prepared));
    }
    return {};
  }

  /// Runs `body` in a write transaction, rolled back when it fails.
  template <class F>
  caf::error in_transaction(F&& body) {
    return sql().in_transaction("write to", std::forward<F>(body), {stmt(s_begin), stmt(s_commit)});
  }

  template <class F>
  caf::error select(stmt_id id, const failed_record_query& q, F&& on_row) {
    return sql().query(stmt(id), "read", std::forward<F>(on_row), text{q.job}, text{q.op},
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
  if (auto err = sqlite::create_parent(file, kind())) {
    return err;
  }
  std::error_code ec;
  bool existed = fs::exists(file, ec);
  auto db = sqlite::open(file, kind());
  if (!db) {
    return db.error();
  }
  sqlite::file_ref f{db->get(), file, kind()};
  // Check an existing file before changing anything in it (even its journal mode).
  if (auto err = prepare_file(f)) {
    return err;
  }
  // Dead letters are rare, and each one is a record nobody may lose: always power-loss safe.
  if (auto err = f.use_wal(sqlite::sync_mode_of(durability::machine))) {
    return err;
  }
  if (!existed) {
    if (auto err = sqlite::sync_parent(file, kind())) {
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
    auto inserted =
      self.sql().run(self.stmt(s_insert), "write to", r.at_ms, text{r.job}, text{r.op},
                     int64_t{r.partition}, origin_param(r.origin), text{r.key}, text{r.record},
                     blob{r.payload}, text{r.error}, int64_t{r.attempts});
    // ON CONFLICT DO NOTHING changes no row for an origin dead-lettered before.
    added = !inserted && self.sql().changes() == 1;
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
  auto on_row = [&](row r) {
    result.push_back(read_row(r));
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
  auto on_row = [&](row r) {
    result = static_cast<uint64_t>(r.int64_at(0));
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
      if (auto err = self.sql().run(self.stmt(s_mark), "write to", id)) {
        return err;
      }
    }
    return caf::error{};
  });
}

} // namespace eddy
