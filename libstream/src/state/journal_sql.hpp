#pragma once

// Private to journal_store: its prepared statements and its kind of SQLite file (see
// core/sqlite_file.hpp for the layer). Shared by journal_store.cpp (opening, commits, reads)
// and journal_log.cpp (the log, compaction).

#include <array>
#include <filesystem>
#include <string_view>

#include "core/sqlite_file.hpp"
#include "core/sqlite_rows.hpp"
#include "eddy/state/journal_store.hpp"

namespace eddy::journal_sql {

// The statements a store prepares once in open() and reuses for its lifetime.
enum stmt_id : size_t {
  s_begin,
  s_commit,
  s_get_state,
  s_upsert_state,
  s_delete_state,
  s_insert_change,
  s_get_position,
  s_upsert_position,
  s_positions,
  s_history,
  s_due_timers,
  s_key_count,
  s_journal_length,
  s_delete_key,
  s_insert_outbox,
  s_trim_outbox,
  s_outbox_after,
  s_insert_log,
  s_read_log,
  s_clear_log,
  s_states_of,
  s_timers_of,
  s_key_exists,
  s_forget_history,
  s_delete_fired_timers,
  s_has_state,
  s_due_timers_after,
  s_save_last_seq,
  s_fold_upsert_state,
  s_fold_insert_changes,
  s_fold_trim,
  s_insert_timers,
  s_delete_timer,
  s_count,
};

inline constexpr std::array<const char*, s_count> stmt_sql = {
  "BEGIN IMMEDIATE",
  "COMMIT",
  "SELECT value, version, seq FROM state WHERE key = ?1 AND name = ?2",
  "INSERT INTO state(key, name, value, version, seq) VALUES(?1, ?2, ?3, ?4, ?5) "
  "ON CONFLICT(key, name) DO UPDATE SET value = excluded.value, version = excluded.version, "
  "seq = excluded.seq",
  "DELETE FROM state WHERE key = ?1 AND name = ?2",
  "INSERT INTO changes(seq, key, name, value, origin, at_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
  "SELECT seq FROM positions WHERE channel = ?1",
  "INSERT INTO positions(channel, seq) VALUES(?1, ?2) "
  "ON CONFLICT(channel) DO UPDATE SET seq = excluded.seq",
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
  "INSERT INTO log(seq, origin, at_ms, payload) VALUES(?1, ?2, ?3, ?4)",
  "SELECT seq, origin, at_ms, payload FROM log ORDER BY seq",
  "DELETE FROM log",
  "SELECT name, value, version, seq FROM state WHERE key = ?1 ORDER BY name",
  "SELECT kind, at_ms, key, tag FROM timers WHERE key = ?1 ORDER BY kind, at_ms, tag",
  "SELECT 1 FROM state WHERE key = ?1 LIMIT 1",
  "DELETE FROM changes WHERE key = ?1",
  "DELETE FROM timers WHERE kind = ?1 AND (at_ms, key, tag) <= (?2, ?3, ?4)",
  "SELECT EXISTS(SELECT 1 FROM state) OR EXISTS(SELECT 1 FROM log)",
  "SELECT kind, at_ms, key, tag FROM timers WHERE kind = ?1 AND (at_ms, key, tag) > (?2, ?3, ?4) "
  "AND at_ms <= ?5 ORDER BY at_ms, key, tag LIMIT ?6",
  "INSERT INTO meta(k, v) VALUES('last_seq', ?1) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
  // A compaction's writes, each over all the rows of one table it writes (eddy_rows, see
  // core/sqlite_rows.hpp): state rows (key, name, value, version, seq); changes (seq, key,
  // name, value, origin, at_ms); the keys whose changes are trimmed to their newest ?2 (key).
  "INSERT INTO state(key, name, value, version, seq) SELECT c0, c1, c2, c3, c4 "
  "FROM eddy_rows(?1) WHERE true ON CONFLICT(key, name) DO UPDATE SET value = excluded.value, "
  "version = excluded.version, seq = excluded.seq",
  "INSERT INTO changes(seq, key, name, value, origin, at_ms) "
  "SELECT c0, c1, c2, c3, c4, c5 FROM eddy_rows(?1)",
  "DELETE FROM changes WHERE (key, seq) IN (SELECT c.key, c.seq FROM eddy_rows(?1) r "
  "JOIN changes c ON c.key = r.c0 AND c.seq <= (SELECT d.seq FROM changes d WHERE d.key = r.c0 "
  "ORDER BY d.seq DESC LIMIT 1 OFFSET ?2))",
  // A commit's timers: added (kind, at_ms, key, tag), removed.
  "INSERT OR IGNORE INTO timers(kind, at_ms, key, tag) SELECT c0, c1, c2, c3 FROM eddy_rows(?1)",
  // One statement per removed timer: a DELETE over eddy_rows would materialize its IN list
  // (twice), which costs ten times more than the point delete for the one or two timers a
  // commit of a service removes.
  "DELETE FROM timers WHERE kind = ?1 AND at_ms = ?2 AND key = ?3 AND tag = ?4",
};

/// Prepared when a journal opens, to check that the file has every table and column the
/// store uses (one statement writing each table's every column); the others are prepared on
/// first use.
inline constexpr std::array<stmt_id, 7> checked_at_open = {
  s_get_state,     s_upsert_state,  s_insert_change, s_upsert_position,
  s_insert_timers, s_insert_outbox, s_insert_log,
};

using sqlite::blob;
using sqlite::limit_param;
using sqlite::row;
using sqlite::text;
using sqlite::to_int64;

/// A partition's journal, as the SQLite layer opens it and names it in errors.
inline const sqlite::file_kind& kind() {
  static const sqlite::file_kind journal{
    .name = "journal",
    .busy_timeout_ms = journal_busy_timeout_ms,
    // A store is used by one actor at a time (never concurrently), so SQLite's per-call
    // connection mutex is pure overhead.
    .serialized_by_owner = true,
    .busy_hint = " (another connection holds its lock; is a second Eddy using this --data-dir?)",
    .access_hint = "",
    .corrupt_hint = "restore it or use another --data-dir",
  };
  return journal;
}

/// The SQLite file of `store`, for the layer's calls.
inline sqlite::file_ref file_of(const journal_store& store) {
  return {store.native_handle(), store.file(), kind()};
}

inline caf::error corrupt_error(const std::filesystem::path& file, std::string_view detail) {
  return sqlite::file_ref{nullptr, file, kind()}.corrupt(detail);
}

} // namespace eddy::journal_sql
