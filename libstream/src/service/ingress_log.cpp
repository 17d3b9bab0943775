#include "eddy/service/ingress_log.hpp"

#include <algorithm>

#include <sqlite3.h>

#include "eddy/core/error.hpp"

namespace eddy::service {

caf::expected<ingress_log> ingress_log::open(const std::filesystem::path& file, durability level) {
  std::error_code ec;
  std::filesystem::create_directories(file.parent_path(), ec);
  ingress_log log;
  log.file_ = file;
  if (sqlite3_open_v2(file.c_str(), &log.db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                      nullptr) != SQLITE_OK) {
    return log.fail("cannot open");
  }
  std::string setup = "PRAGMA journal_mode=WAL; PRAGMA synchronous=";
  setup += level == durability::machine ? "FULL;" : "NORMAL;";
  setup += "CREATE TABLE IF NOT EXISTS ingress(seq INTEGER PRIMARY KEY, body TEXT NOT NULL);"
           "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);";
  if (sqlite3_exec(log.db_, setup.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(log.db_, "INSERT INTO ingress(seq, body) VALUES(?, ?)", -1, &log.insert_,
                         nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(log.db_,
                         "SELECT seq, body FROM ingress WHERE seq > ? ORDER BY seq LIMIT ?", -1,
                         &log.select_, nullptr) != SQLITE_OK) {
    return log.fail("cannot set up");
  }
  // The highest number ever given, also when the entries up to it were truncated.
  if (sqlite3_prepare_v2(log.db_,
                         "SELECT max(coalesce((SELECT max(seq) FROM ingress), 0),"
                         " coalesce((SELECT v FROM meta WHERE k = 'truncated'), 0))",
                         -1, &log.last_stmt_, nullptr) != SQLITE_OK) {
    return log.fail("cannot read");
  }
  if (auto err = log.refresh_last()) {
    return err;
  }
  return log;
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
  auto code = db_ ? sqlite3_extended_errcode(db_) : SQLITE_CANTOPEN;
  auto kind = (code & 0xff) == SQLITE_FULL ? errc::disk_full : errc::io_failure;
  return make_error(kind, "ingress log " + file_.string() + ": " + what + ": " +
                            (db_ ? sqlite3_errmsg(db_) : "out of memory"));
}

caf::error ingress_log::refresh_last() {
  sqlite3_reset(last_stmt_);
  if (sqlite3_step(last_stmt_) != SQLITE_ROW) {
    return fail("cannot read");
  }
  last_ = std::max(last_, static_cast<uint64_t>(sqlite3_column_int64(last_stmt_, 0)));
  sqlite3_reset(last_stmt_);
  return {};
}

caf::error ingress_log::insert(uint64_t seq, std::string_view body) {
  sqlite3_reset(insert_);
  sqlite3_bind_int64(insert_, 1, static_cast<sqlite3_int64>(seq));
  sqlite3_bind_text(insert_, 2, body.data(), static_cast<int>(body.size()), SQLITE_TRANSIENT);
  if (sqlite3_step(insert_) != SQLITE_DONE) {
    return fail("cannot append");
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
  sqlite3_reset(select_);
  sqlite3_bind_int64(select_, 1, static_cast<sqlite3_int64>(seq));
  sqlite3_bind_int64(select_, 2, static_cast<sqlite3_int64>(max));
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(select_)) == SQLITE_ROW) {
    auto text = reinterpret_cast<const char*>(sqlite3_column_text(select_, 1));
    rows.emplace_back(static_cast<uint64_t>(sqlite3_column_int64(select_, 0)),
                      std::string{text ? text : ""});
  }
  if (rc != SQLITE_DONE) {
    return fail("cannot read");
  }
  return rows;
}

caf::error ingress_log::truncate_through(uint64_t seq) {
  auto sql = "BEGIN; DELETE FROM ingress WHERE seq <= " + std::to_string(seq) +
             "; INSERT INTO meta(k, v) VALUES('truncated', " + std::to_string(seq) +
             ") ON CONFLICT(k) DO UPDATE SET v = max(v, excluded.v); COMMIT;";
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return fail("cannot truncate");
  }
  return {};
}

} // namespace eddy::service
