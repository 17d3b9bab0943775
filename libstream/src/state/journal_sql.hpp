#pragma once

// Private to journal_store: its prepared statements and the thin layer over the SQLite C API
// that binds parameters, steps statements and maps result codes to Eddy errors. Shared by
// journal_store.cpp (opening, commits, reads) and journal_log.cpp (the log, compaction).

#include <array>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <sqlite3.h>

#include "core/sqlite_call.hpp"
#include "eddy/core/assert.hpp"
#include "eddy/core/error.hpp"
#include "eddy/state/journal_store.hpp"

namespace eddy::journal_sql {

namespace fs = std::filesystem;

// The statements a store prepares once in open() and reuses for its lifetime.
enum stmt_id : size_t {
  s_begin,
  s_commit,
  s_rollback,
  s_get_state,
  s_upsert_state,
  s_delete_state,
  s_insert_change,
  s_get_position,
  s_upsert_position,
  s_insert_timer,
  s_delete_timer,
  s_positions,
  s_history,
  s_due_timers,
  s_key_count,
  s_journal_length,
  s_delete_key,
  s_insert_outbox,
  s_trim_outbox,
  s_outbox_after,
  s_next_timer,
  s_insert_log,
  s_read_log,
  s_clear_log,
  s_trim_key,
  s_states_of,
  s_timers_of,
  s_key_exists,
  s_forget_history,
  s_delete_fired_timers,
  s_count,
};

inline constexpr std::array<const char*, s_count> stmt_sql = {
  "BEGIN IMMEDIATE",
  "COMMIT",
  "ROLLBACK",
  "SELECT value, version, seq FROM state WHERE key = ?1 AND name = ?2",
  "INSERT INTO state(key, name, value, version, seq) VALUES(?1, ?2, ?3, ?4, ?5) "
  "ON CONFLICT(key, name) DO UPDATE SET value = excluded.value, version = excluded.version, "
  "seq = excluded.seq",
  "DELETE FROM state WHERE key = ?1 AND name = ?2",
  "INSERT INTO changes(seq, key, name, value, origin, at_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
  "SELECT seq FROM positions WHERE channel = ?1",
  "INSERT INTO positions(channel, seq) VALUES(?1, ?2) "
  "ON CONFLICT(channel) DO UPDATE SET seq = excluded.seq",
  "INSERT OR IGNORE INTO timers(kind, at_ms, key, tag) VALUES(?1, ?2, ?3, ?4)",
  "DELETE FROM timers WHERE kind = ?1 AND at_ms = ?2 AND key = ?3 AND tag = ?4",
  "SELECT channel, seq FROM positions ORDER BY channel",
  "SELECT seq, name, value, origin, at_ms FROM changes WHERE key = ?1 ORDER BY seq DESC "
  "LIMIT ?2",
  "SELECT kind, at_ms, key, tag FROM timers WHERE kind = ?1 AND at_ms <= ?2 "
  "ORDER BY at_ms, key, tag LIMIT ?3",
  "SELECT count(DISTINCT key) FROM state",
  "SELECT count(*) FROM changes",
  "DELETE FROM state WHERE key = ?1",
  "INSERT INTO outbox(first, last, payload) VALUES(?1, ?2, ?3)",
  "DELETE FROM outbox WHERE last <= ?1",
  "SELECT first, last, payload FROM outbox WHERE last > ?1 ORDER BY first",
  "SELECT min(at_ms) FROM timers WHERE kind = ?1",
  "INSERT INTO log(seq, origin, at_ms, payload) VALUES(?1, ?2, ?3, ?4)",
  "SELECT seq, origin, at_ms, payload FROM log ORDER BY seq",
  "DELETE FROM log",
  "DELETE FROM changes WHERE key = ?1 AND seq <= "
  "(SELECT seq FROM changes WHERE key = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
  "SELECT name, value, version, seq FROM state WHERE key = ?1 ORDER BY name",
  "SELECT kind, at_ms, key, tag FROM timers WHERE key = ?1 ORDER BY kind, at_ms, tag",
  "SELECT 1 FROM state WHERE key = ?1 LIMIT 1",
  "DELETE FROM changes WHERE key = ?1",
  "DELETE FROM timers WHERE kind = ?1 AND (at_ms, key, tag) <= (?2, ?3, ?4)",
};

using sqlite::blob;
using sqlite::column_optional;
using sqlite::column_string;
using sqlite::limit_param;
using sqlite::text;
using sqlite::to_int64;

inline caf::error corrupt_error(const fs::path& file, std::string_view detail) {
  return make_error(errc::corrupt_journal,
                    file.string() + " is not a valid Eddy journal (corrupted or not SQLite): " +
                      std::string{detail} + "; restore it or use another --data-dir");
}

/// The one place that maps SQLite result codes to Eddy errors; `what` is a verb ("read").
inline caf::error sqlite_error(int rc, sqlite3* db, const fs::path& file, std::string_view what) {
  std::string detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return make_error(errc::disk_full, "disk full writing " + file.string() + ": " + detail);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return corrupt_error(file, detail);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      detail += " (another connection holds its lock; is a second Eddy using this --data-dir?)";
      break;
    default:
      // SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_IOERR and anything unexpected.
      break;
  }
  return make_error(errc::io_failure,
                    "cannot " + std::string{what} + " journal " + file.string() + ": " + detail);
}

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
template <class F, class... Ts>
caf::error query_once(sqlite3* db, const fs::path& file, std::string_view what, const char* sql,
                      F&& on_row, const Ts&... xs) {
  int rc = sqlite::step_once(db, sql, std::forward<F>(on_row), xs...);
  return rc == SQLITE_OK ? caf::error{} : sqlite_error(rc, db, file, what);
}

inline caf::error exec(sqlite3* db, const fs::path& file, std::string_view what, const char* sql) {
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? caf::error{} : sqlite_error(rc, db, file, what);
}

} // namespace eddy::journal_sql
