// The SQLite baseline of eddy-bench (see sqlite_baseline.hpp).

#include "sqlite_baseline.hpp"

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

#include <sqlite3.h>

namespace bench {

using eddy::durability;

namespace {

/// Rows per transaction of the SQLite baseline.
constexpr uint64_t sqlite_rows_per_transaction = 1000;

struct sqlite_free {
  void operator()(sqlite3* db) const noexcept {
    sqlite3_close(db);
  }
  void operator()(sqlite3_stmt* stmt) const noexcept {
    sqlite3_finalize(stmt);
  }
};
using sqlite_db = std::unique_ptr<sqlite3, sqlite_free>;
using sqlite_stmt = std::unique_ptr<sqlite3_stmt, sqlite_free>;

/// Throws std::runtime_error naming `what` and SQLite's message unless `rc` is `expected`.
void sqlite_check(sqlite3* db, int rc, const char* what, int expected = SQLITE_OK) {
  if (rc != expected) {
    throw std::runtime_error(std::string{"sqlite: "} + what + ": " + sqlite3_errmsg(db));
  }
}

sqlite_db sqlite_open(const std::filesystem::path& file) {
  sqlite3* raw = nullptr;
  auto rc = sqlite3_open(file.c_str(), &raw);
  sqlite_db db{raw};
  sqlite_check(db.get(), rc, "open");
  return db;
}

void sqlite_exec(sqlite3* db, const char* sql) {
  sqlite_check(db, sqlite3_exec(db, sql, nullptr, nullptr, nullptr), sql);
}

sqlite_stmt sqlite_prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  auto rc = sqlite3_prepare_v2(db, sql, -1, &raw, nullptr);
  sqlite_stmt stmt{raw};
  sqlite_check(db, rc, sql);
  return stmt;
}

} // namespace

run_result run_sqlite_baseline(uint64_t events, durability level,
                               const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  auto file = dir / "baseline.sqlite";
  run_result r;
  auto begin = std::chrono::steady_clock::now();
  {
    auto db = sqlite_open(file);
    sqlite_exec(db.get(), "PRAGMA journal_mode=WAL");
    sqlite_exec(db.get(), level == durability::machine ? "PRAGMA synchronous=FULL"
                                                       : "PRAGMA synchronous=NORMAL");
    sqlite_exec(db.get(), "CREATE TABLE counts (key INTEGER PRIMARY KEY, n INTEGER NOT NULL)");
    auto upsert = sqlite_prepare(db.get(), "INSERT INTO counts (key, n) VALUES (?1, 1) "
                                           "ON CONFLICT(key) DO UPDATE SET n = n + 1");
    for (uint64_t i = 0; i < events; ++i) {
      if (i % sqlite_rows_per_transaction == 0) {
        sqlite_exec(db.get(), "BEGIN");
      }
      sqlite3_bind_int64(upsert.get(), 1, keyed_value(i));
      sqlite_check(db.get(), sqlite3_step(upsert.get()), "upsert", SQLITE_DONE);
      sqlite3_reset(upsert.get());
      if ((i + 1) % sqlite_rows_per_transaction == 0 || i + 1 == events) {
        sqlite_exec(db.get(), "COMMIT");
      }
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  r.events = events;
  auto db = sqlite_open(file);
  auto count = sqlite_prepare(db.get(), "SELECT count(*) FROM counts");
  sqlite_check(db.get(), sqlite3_step(count.get()), "count", SQLITE_ROW);
  r.keys = static_cast<uint64_t>(sqlite3_column_int64(count.get(), 0));
  return r;
}

} // namespace bench
