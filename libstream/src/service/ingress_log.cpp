#include "eddy/service/ingress_log.hpp"

#include <algorithm>
#include <string>

#include "core/sqlite_file.hpp"
#include "core/sqlite_snapshot.hpp"
#include "eddy/core/error.hpp"

namespace fs = std::filesystem;

namespace eddy::service {

namespace {

/// How long a call waits for the lock of another connection to the same file (a host keeps
/// a copy where this node's ingress writes once it leads) before it fails.
/// Default: 250
constexpr int ingress_busy_timeout_ms = 250;

/// An ingress log, as the SQLite layer opens it and names it in errors.
const sqlite::file_kind& kind() {
  static const sqlite::file_kind ingress{
    .name = "ingress log",
    .busy_timeout_ms = ingress_busy_timeout_ms,
    // The log is not thread-safe, but its owners call it from changing threads (the HTTP
    // server's, under the ingress's mutex), so SQLite keeps its own mutex as before.
    .serialized_by_owner = false,
    .busy_hint = sqlite::lock_wait_hint("connection", ingress_busy_timeout_ms),
    .access_hint = sqlite::writable_hint("log"),
    .corrupt_hint = "restore it or use another --data-dir",
  };
  return ingress;
}

constexpr const char* schema_sql =
  "CREATE TABLE IF NOT EXISTS ingress(seq INTEGER PRIMARY KEY, body TEXT NOT NULL);"
  "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);";

constexpr const char* insert_sql = "INSERT INTO ingress(seq, body) VALUES(?, ?)";

constexpr const char* select_sql =
  "SELECT seq, body FROM ingress WHERE seq > ? ORDER BY seq LIMIT ?";

// The highest number ever given, also when the entries up to it were truncated.
constexpr const char* last_sql = "SELECT max(coalesce((SELECT max(seq) FROM ingress), 0),"
                                 " coalesce((SELECT v FROM meta WHERE k = 'truncated'), 0))";

sqlite::file_ref ref_of(sqlite3* db, const fs::path& file) {
  return {db, file, kind()};
}

/// Sequence numbers as SQLite integers (signed); the cast is a bijection (C++20).
int64_t seq_param(uint64_t seq) {
  return static_cast<int64_t>(seq);
}

} // namespace

caf::expected<ingress_log> ingress_log::open(const fs::path& file, durability level) {
  if (auto err = sqlite::create_parent(file, kind())) {
    return err;
  }
  auto db = sqlite::open(file, kind());
  if (!db) {
    return db.error();
  }
  ingress_log log;
  log.file_ = file;
  log.db_ = db->release();
  auto f = ref_of(log.db_, log.file_);
  if (auto err = f.use_wal(sqlite::sync_mode_of(level))) {
    return err;
  }
  if (auto err = f.exec("open", schema_sql)) {
    return err;
  }
  for (auto [stmt, sql] : {std::pair{&log.insert_, insert_sql}, std::pair{&log.select_, select_sql},
                           std::pair{&log.last_stmt_, last_sql}}) {
    auto prepared = f.prepare(sql);
    if (!prepared) {
      return prepared.error();
    }
    *stmt = prepared->release();
  }
  if (auto err = log.refresh_last()) {
    return err;
  }
  return log;
}

caf::error ingress_log::copy_live(const fs::path& file, const fs::path& target) {
  auto pinned = sqlite::snapshot::pin(file, kind());
  if (!pinned) {
    return pinned.error();
  }
  return pinned->copy_to(target);
}

ingress_log::ingress_log(ingress_log&& other) noexcept {
  *this = std::move(other);
}

ingress_log& ingress_log::operator=(ingress_log&& other) noexcept {
  if (this != &other) {
    close();
    db_ = std::exchange(other.db_, nullptr);
    insert_ = std::exchange(other.insert_, nullptr);
    select_ = std::exchange(other.select_, nullptr);
    last_stmt_ = std::exchange(other.last_stmt_, nullptr);
    last_ = other.last_;
    file_ = std::move(other.file_);
  }
  return *this;
}

ingress_log::~ingress_log() {
  close();
}

void ingress_log::close() noexcept {
  sqlite3_finalize(insert_);
  sqlite3_finalize(select_);
  sqlite3_finalize(last_stmt_);
  sqlite3_close(db_);
  insert_ = select_ = last_stmt_ = nullptr;
  db_ = nullptr;
}

caf::error ingress_log::fail(const std::string& what) const {
  return ref_of(db_, file_).error(sqlite3_extended_errcode(db_), what);
}

caf::error ingress_log::refresh_last() {
  uint64_t stored = 0;
  auto on_row = [&](sqlite::row r) {
    stored = static_cast<uint64_t>(r.int64_at(0));
  };
  if (auto err = ref_of(db_, file_).query(last_stmt_, "read", on_row)) {
    return err;
  }
  last_ = std::max(last_, stored);
  return {};
}

caf::error ingress_log::insert(uint64_t seq, std::string_view body) {
  if (auto err = ref_of(db_, file_).run(insert_, "append to", seq_param(seq), sqlite::text{body})) {
    return err;
  }
  last_ = seq;
  return {};
}

caf::expected<uint64_t> ingress_log::append(std::string_view body) {
  if (auto err = refresh_last()) {
    return err;
  }
  auto seq = last_ + 1;
  if (auto err = insert(seq, body)) {
    return err;
  }
  return seq;
}

caf::expected<uint64_t> ingress_log::next_seq() {
  if (auto err = refresh_last()) {
    return err;
  }
  return last_ + 1;
}

caf::expected<uint64_t> ingress_log::keep(uint64_t seq, std::string_view body) {
  if (seq == last_ + 1) {
    if (auto err = insert(seq, body)) {
      return err;
    }
  }
  return last_;
}

caf::expected<std::vector<std::pair<uint64_t, std::string>>> ingress_log::read_after(uint64_t seq,
                                                                                     size_t max) {
  std::vector<std::pair<uint64_t, std::string>> rows;
  auto on_row = [&](sqlite::row r) {
    rows.emplace_back(static_cast<uint64_t>(r.int64_at(0)), r.string_at(1));
  };
  if (auto err = ref_of(db_, file_)
                   .query(select_, "read", on_row, seq_param(seq), sqlite::limit_param(max))) {
    return err;
  }
  return rows;
}

caf::error ingress_log::truncate_through(uint64_t seq) {
  auto sql = "BEGIN; DELETE FROM ingress WHERE seq <= " + std::to_string(seq) +
             "; INSERT INTO meta(k, v) VALUES('truncated', " + std::to_string(seq) +
             ") ON CONFLICT(k) DO UPDATE SET v = max(v, excluded.v); COMMIT;";
  auto f = ref_of(db_, file_);
  auto err = f.exec("truncate", sql.c_str());
  if (err) {
    f.rollback();
  }
  return err;
}

} // namespace eddy::service
