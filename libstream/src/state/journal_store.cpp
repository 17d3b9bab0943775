#include "eddy/state/journal_store.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <functional>
#include <limits>
#include <span>
#include <stdexcept>
#include <system_error>
#include <tuple>

#include "eddy/core/assert.hpp"
#include "eddy/core/error.hpp"
#include "journal_sql.hpp"

namespace fs = std::filesystem;

namespace eddy {

namespace {

constexpr const char* schema_sql =
  "CREATE TABLE meta(k TEXT PRIMARY KEY, v TEXT);"
  "CREATE TABLE state(key BLOB, name TEXT, value BLOB NOT NULL, version INTEGER, seq INTEGER,"
  " PRIMARY KEY(key, name)) WITHOUT ROWID;"
  // Format 2: the history of a key is one range of one tree, written in key order by a
  // compaction (format 1 had a rowid table and an index on (key, seq): two trees per row).
  "CREATE TABLE changes(key BLOB, seq INTEGER, name TEXT, value BLOB, origin TEXT,"
  " at_ms INTEGER, PRIMARY KEY(key, seq)) WITHOUT ROWID;"
  "CREATE TABLE positions(channel INTEGER PRIMARY KEY, seq INTEGER NOT NULL);"
  "CREATE TABLE timers(kind INTEGER, at_ms INTEGER, key BLOB, tag TEXT,"
  " PRIMARY KEY(kind, at_ms, key, tag)) WITHOUT ROWID;"
  "CREATE TABLE outbox(first INTEGER PRIMARY KEY, last INTEGER NOT NULL, payload BLOB);"
  "CREATE TABLE log(seq INTEGER PRIMARY KEY, origin TEXT, at_ms INTEGER, payload BLOB NOT NULL);";

using meta_map = std::map<std::string, std::string, std::less<>>;

using namespace journal_sql;

/// Counts the tables in `db` and tells whether one of them is `meta`.
caf::error inspect_tables(sqlite::file_ref f, int64_t& tables, bool& has_meta) {
  auto on_row = [&](row r) {
    tables = r.int64_at(0);
    has_meta = r.int64_at(1) > 0;
  };
  return f.query_once("read",
                      "SELECT count(*), coalesce(sum(name = 'meta'), 0) FROM sqlite_master "
                      "WHERE type = 'table'",
                      on_row);
}

caf::expected<meta_map> read_meta(sqlite::file_ref f) {
  meta_map result;
  auto on_row = [&](row r) {
    result[r.string_at(0)] = r.string_at(1);
  };
  if (auto err = f.query_once("read", "SELECT k, v FROM meta", on_row)) {
    return err;
  }
  return result;
}

caf::error write_meta(sqlite::file_ref f, const meta_map& values) {
  for (const auto& [k, v] : values) {
    if (auto err =
          f.run_once("create", "INSERT INTO meta(k, v) VALUES(?1, ?2)", text{k}, text{v})) {
      return err;
    }
  }
  return {};
}

/// The metadata a journal of `meta` stores (without the derived "last_seq").
meta_map meta_values(const journal_meta& meta) {
  return {{"job", meta.job},
          {"op", meta.op},
          {"partition", std::to_string(meta.partition)},
          {"partitions", std::to_string(meta.partitions)},
          {"state_version", std::to_string(meta.state_version)},
          {"topology", meta.topology},
          {"format_version", std::to_string(journal_format_version)}};
}

/// Reads the format of a stored journal into `format`; refuses one newer than this Eddy.
caf::error check_format(const meta_map& stored, const fs::path& file, uint32_t& format) {
  auto i = stored.find("format_version");
  if (i == stored.end()) {
    return corrupt_error(file, "its metadata has no format_version");
  }
  const auto& s = i->second;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), format);
  if (ec != std::errc{} || end != s.data() + s.size()) {
    return corrupt_error(file, "its format_version '" + s + "' is not a number");
  }
  if (format > journal_format_version) {
    return make_error(errc::state_mismatch,
                      "journal " + file.string() + " was written by a newer Eddy (format " + s +
                        ", this Eddy reads up to format " + std::to_string(journal_format_version) +
                        "); upgrade Eddy or use another --data-dir");
  }
  return {};
}

/// Refuses a journal written for another job, operator, partition or partition count.
caf::error check_owner(const meta_map& stored, const journal_meta& meta, const fs::path& file) {
  auto wanted = meta_values(meta);
  for (const char* field : {"job", "op", "partition", "partitions", "topology"}) {
    auto i = stored.find(field);
    if (i == stored.end()) {
      return corrupt_error(file, std::string{"its metadata has no "} + field);
    }
    const auto& want = wanted[field];
    if (i->second != want) {
      return make_error(errc::state_mismatch, "journal " + file.string() + " was written by " +
                                                field + " '" + i->second + "', this is " + field +
                                                " '" + want + "'; use another --data-dir");
    }
  }
  return {};
}

caf::error check_existing(sqlite::file_ref f, const journal_meta& meta, uint32_t& format) {
  auto stored = read_meta(f);
  if (!stored) {
    return stored.error();
  }
  if (auto err = check_format(*stored, f.path(), format)) {
    return err;
  }
  return check_owner(*stored, meta, f.path());
}

/// Brings a format 1 journal to format 2 in one transaction: its changes move to a table
/// keyed by (key, seq), and last_seq, which format 2 no longer derives from them, is
/// recorded.
caf::error upgrade_from_format_1(sqlite::file_ref f) {
  return f.in_transaction("upgrade", [&] {
    return f.exec(
      "upgrade",
      "CREATE TABLE changes_v2(key BLOB, seq INTEGER, name TEXT, value BLOB, origin TEXT,"
      " at_ms INTEGER, PRIMARY KEY(key, seq)) WITHOUT ROWID;"
      "INSERT INTO changes_v2 SELECT key, seq, name, value, origin, at_ms FROM changes;"
      "INSERT INTO meta(k, v) SELECT 'last_seq', CAST(max(coalesce((SELECT max(seq) FROM changes),"
      " 0), coalesce((SELECT CAST(v AS INTEGER) FROM meta WHERE k = 'last_seq'), 0)) AS TEXT)"
      " WHERE true ON CONFLICT(k) DO UPDATE SET v = excluded.v;"
      "DROP TABLE changes;"
      "ALTER TABLE changes_v2 RENAME TO changes;"
      "UPDATE meta SET v = '2' WHERE k = 'format_version';");
  });
}

caf::error create_schema(sqlite::file_ref f, const journal_meta& meta) {
  return f.in_transaction("create", [&] {
    auto err = f.exec("create", schema_sql);
    return err ? err : write_meta(f, meta_values(meta));
  });
}

/// Creates a new journal atomically: builds it under a temporary name without syncing each
/// step, then renames it into place, so that a crash leaves either no journal or a
/// complete empty one (and creating 128 partitions takes milliseconds, not seconds). At
/// durability machine the file and its directory are synced before and after the rename.
caf::error create_file(const fs::path& file, const journal_meta& meta, durability d) {
  auto tmp = file;
  tmp += ".new";
  std::error_code ec;
  fs::remove(tmp, ec);
  {
    auto db = sqlite::open(tmp, kind());
    if (!db) {
      return db.error();
    }
    sqlite::file_ref f{db->get(), tmp, kind()};
    // No syncs and no rollback journal while the schema is written: a crash leaves at most
    // this temporary file, which the next attempt replaces.
    auto err = f.set_sync(sqlite::sync_mode::off);
    if (!err) {
      err = f.exec("create", "PRAGMA journal_mode=OFF");
    }
    if (!err) {
      err = create_schema(f, meta);
    }
    // Marks the file as WAL (in its header) without a sync: the real open finds it so.
    if (!err) {
      err = f.use_wal(sqlite::sync_mode::off);
    }
    if (err) {
      db->reset();
      fs::remove(tmp, ec);
      return err;
    }
  }
  if (d == durability::machine) {
    if (auto err = sqlite::sync_file(tmp, kind())) {
      return err;
    }
  }
  fs::rename(tmp, file, ec);
  if (ec) {
    return make_error(errc::io_failure,
                      "cannot create journal " + file.string() + ": " + ec.message());
  }
  if (d == durability::machine) {
    return sqlite::sync_parent(file, kind());
  }
  return {};
}

} // namespace

void sqlite_closer::operator()(sqlite3* db) const noexcept {
  sqlite::closer{}(db);
}

void sqlite_closer::operator()(sqlite3_stmt* stmt) const noexcept {
  sqlite::closer{}(stmt);
}

journal_store::journal_store(fs::path file, journal_meta meta, db_ptr db)
  : file_(std::move(file))
  , meta_(std::move(meta))
  , db_(std::move(db)) {}

journal_store::journal_store(journal_store&&) noexcept = default;
journal_store& journal_store::operator=(journal_store&&) noexcept = default;
journal_store::~journal_store() = default;

caf::expected<journal_store> journal_store::open(const fs::path& file, const journal_meta& meta,
                                                 durability d, size_t keep_per_key, bool recover) {
  if (auto err = sqlite::create_parent(file, kind())) {
    return err;
  }
  if (std::error_code ec; !fs::exists(file, ec)) {
    if (auto err = create_file(file, meta, d)) {
      return err;
    }
  }
  auto db = sqlite::open(file, kind());
  if (!db) {
    return db.error();
  }
  sqlite::file_ref f{db->get(), file, kind()};
  // Check an existing file before changing anything in it (even its journal mode).
  int64_t tables = 0;
  bool has_meta = false;
  if (auto err = inspect_tables(f, tables, has_meta)) {
    return err;
  }
  if (tables > 0 && !has_meta) {
    return f.corrupt("it holds tables but no Eddy metadata");
  }
  uint32_t format = journal_format_version;
  if (tables > 0) {
    if (auto err = check_existing(f, meta, format)) {
      return err;
    }
  }
  if (auto err = f.use_wal(sqlite::sync_mode_of(d))) {
    return err;
  }
  if (format == 1) {
    if (auto err = upgrade_from_format_1(f)) {
      return err;
    }
  }
  if (tables == 0) {
    if (auto err = create_schema(f, meta)) {
      return err;
    }
  }
  journal_store store{file, meta, db_ptr{db->release()}};
  if (auto err = store.prepare_all()) {
    return err;
  }
  if (auto err = store.load_last_seq()) {
    return err;
  }
  if (recover) {
    if (auto err = store.recover(keep_per_key)) {
      return err;
    }
  }
  return store;
}

caf::error journal_store::recover(size_t keep_per_key) {
  // State changes logged since the last compaction become state rows, so that reads see
  // them; the restart costs at most one compaction interval. A journal without a log is
  // left as it is.
  int64_t logged = 0;
  auto on_row = [&](row r) {
    logged = r.int64_at(0);
  };
  if (auto err = file_of(*this).query_once("read", "SELECT count(*) FROM log", on_row)) {
    return err;
  }
  return logged > 0 ? compact(keep_per_key) : caf::error{};
}

caf::error journal_store::prepare_all() {
  stmts_.clear();
  stmts_.resize(s_count);
  for (auto id : checked_at_open) {
    // A file with our metadata but not our tables or columns is refused as corrupt.
    auto prepared = file_of(*this).prepare(stmt_sql[id]);
    if (!prepared) {
      return prepared.error();
    }
    stmts_[id].reset(prepared->release());
  }
  return {};
}

sqlite3_stmt* journal_store::stmt(size_t id) const noexcept {
  auto& s = stmts_[id];
  if (!s) {
    // On failure the connection keeps the error, which the call given nullptr reports.
    if (auto prepared = file_of(*this).prepare(stmt_sql[id])) {
      s.reset(prepared->release());
    }
  }
  return s.get();
}

caf::error journal_store::load_last_seq() {
  // Compaction may delete the newest entry of the journal, so it records last_seq in meta,
  // as does a commit that writes changes without the log.
  auto sql = "SELECT max(coalesce((SELECT max(seq) FROM log), 0),"
             " coalesce((SELECT CAST(v AS INTEGER) FROM meta WHERE k = 'last_seq'), 0))";
  int64_t seq = 0;
  auto on_row = [&](row r) {
    seq = r.int64_at(0);
  };
  auto f = file_of(*this);
  if (auto err = f.query_once("read", sql, on_row)) {
    return err;
  }
  if (seq < 0) {
    return f.corrupt("its journal has a negative sequence number");
  }
  last_seq_ = static_cast<uint64_t>(seq);
  return {};
}

caf::error journal_store::commit(const commit_batch& batch) {
  uint64_t seq = last_seq_;
  auto body = [&] {
    auto err = check_owner_epoch();
    return err ? err : apply(batch, seq);
  };
  if (auto err =
        file_of(*this).in_transaction("commit to", body, {stmt(s_begin), stmt(s_commit)})) {
    return err;
  }
  last_seq_ = seq;
  return {};
}

caf::error journal_store::apply(const commit_batch& batch, uint64_t& seq) {
  auto f = file_of(*this);
  if (batch.deferred && !batch.changes.empty()) {
    std::string payload;
    for (const auto& change : batch.changes) {
      encode_change(change, ++seq, payload);
    }
    if (auto err = f.run(stmt(s_insert_log), "commit to", to_int64(seq), text{batch.origin},
                         batch.at_ms, blob{payload})) {
      return err;
    }
  } else if (!batch.changes.empty()) {
    for (const auto& change : batch.changes) {
      if (auto err = apply_change(change, batch, ++seq)) {
        return err;
      }
    }
    if (auto err = f.run(stmt(s_save_last_seq), "commit to", text{std::to_string(seq)})) {
      return err;
    }
  }
  for (const auto& [channel, position] : batch.positions) {
    if (auto err = apply_position(channel, position)) {
      return err;
    }
  }
  for (const auto& entry : batch.outbox_added) {
    if (auto err = f.run(stmt(s_insert_outbox), "commit to", to_int64(entry.first),
                         to_int64(entry.last), blob{entry.payload})) {
      return err;
    }
  }
  if (batch.outbox_acked > 0) {
    if (auto err = f.run(stmt(s_trim_outbox), "commit to", to_int64(batch.outbox_acked))) {
      return err;
    }
  }
  // Removals first, so that a batch may reschedule a timer by removing and adding it.
  for (const auto& t : batch.timers_fired) {
    EDDY_ASSERT(t.kind == 0 || t.kind == 1);
    if (auto err = f.run(stmt(s_delete_fired_timers), "commit to", int64_t{t.kind}, t.at_ms,
                         blob{t.key}, text{t.tag})) {
      return err;
    }
  }
  for (const auto& t : batch.timers_removed) {
    EDDY_ASSERT(t.kind == 0 || t.kind == 1);
    if (auto err = f.run(stmt(s_delete_timer), "commit to", int64_t{t.kind}, t.at_ms, blob{t.key},
                         text{t.tag})) {
      return err;
    }
  }
  if (!batch.timers_added.empty()) {
    auto timer_fields = [](const timer_entry& t) {
      EDDY_ASSERT(t.kind == 0 || t.kind == 1);
      return std::tuple{int64_t{t.kind}, t.at_ms, blob{t.key}, text{t.tag}};
    };
    auto added = sqlite::rows_of(std::span<const timer_entry>{batch.timers_added}, timer_fields);
    if (auto err = f.run(stmt(s_insert_timers), "commit to", sqlite::rows{&added})) {
      return err;
    }
  }
  return {};
}

caf::error journal_store::apply_change(const state_change& change, const commit_batch& batch,
                                       uint64_t seq) {
  EDDY_ASSERT(seq > last_seq_);
  auto f = file_of(*this);
  auto s = to_int64(seq);
  caf::error err;
  if (change.value) {
    err = f.run(stmt(s_upsert_state), "commit to", blob{change.key}, text{change.name},
                blob{*change.value}, int64_t{meta_.state_version}, s);
  } else if (change.name.empty()) {
    err = f.run(stmt(s_delete_key), "commit to", blob{change.key});
  } else {
    err = f.run(stmt(s_delete_state), "commit to", blob{change.key}, text{change.name});
  }
  if (err) {
    return err;
  }
  return f.run(stmt(s_insert_change), "commit to", s, blob{change.key}, text{change.name},
               change.value, text{batch.origin}, batch.at_ms);
}

caf::error journal_store::apply_position(uint64_t channel, uint64_t seq) {
  auto f = file_of(*this);
  std::optional<int64_t> stored;
  auto on_row = [&](row r) {
    stored = r.int64_at(0);
  };
  if (auto err = f.query(stmt(s_get_position), "commit to", on_row, to_int64(channel))) {
    return err;
  }
  // Positions never move backwards: replay after a restore starts from the stored one.
  auto s = to_int64(seq);
  EDDY_ASSERT(!stored || s >= *stored);
  return f.run(stmt(s_upsert_position), "commit to", to_int64(channel), s);
}

void journal_store::rollback() noexcept {
  file_of(*this).rollback();
}

caf::expected<std::optional<std::string>> journal_store::get(std::string_view key,
                                                             std::string_view name) {
  auto row = read(key, name);
  if (!row) {
    return row.error();
  }
  if (!*row) {
    return std::optional<std::string>{};
  }
  return std::optional<std::string>{std::move((*row)->value)};
}

caf::expected<std::optional<stored_state>> journal_store::read(std::string_view key,
                                                               std::string_view name) {
  std::optional<stored_state> result;
  auto on_row = [&](row r) {
    result = stored_state{r.string_at(0), static_cast<uint32_t>(r.int64_at(1)),
                          static_cast<uint64_t>(r.int64_at(2))};
  };
  if (auto err = file_of(*this).query(stmt(s_get_state), "read", on_row, blob{key}, text{name})) {
    return err;
  }
  return result;
}

caf::expected<std::vector<std::pair<std::string, stored_state>>>
journal_store::states_of(std::string_view key) {
  std::vector<std::pair<std::string, stored_state>> result;
  auto on_row = [&](row r) {
    result.emplace_back(r.string_at(0),
                        stored_state{r.string_at(1), static_cast<uint32_t>(r.int64_at(2)),
                                     static_cast<uint64_t>(r.int64_at(3))});
  };
  if (auto err = file_of(*this).query(stmt(s_states_of), "read", on_row, blob{key})) {
    return err;
  }
  return result;
}

caf::expected<std::vector<outbox_entry>> journal_store::outbox_after(uint64_t position) {
  std::vector<outbox_entry> result;
  auto on_row = [&](row r) {
    result.push_back(outbox_entry{static_cast<uint64_t>(r.int64_at(0)),
                                  static_cast<uint64_t>(r.int64_at(1)), r.string_at(2)});
  };
  if (auto err = file_of(*this).query(stmt(s_outbox_after), "read", on_row, to_int64(position))) {
    return err;
  }
  return result;
}

caf::expected<std::map<uint64_t, uint64_t>> journal_store::positions() {
  std::map<uint64_t, uint64_t> result;
  auto on_row = [&](row r) {
    result[static_cast<uint64_t>(r.int64_at(0))] = static_cast<uint64_t>(r.int64_at(1));
  };
  if (auto err = file_of(*this).query(stmt(s_positions), "read", on_row)) {
    return err;
  }
  return result;
}

caf::expected<std::vector<journal_entry>> journal_store::history(std::string_view key,
                                                                 size_t limit) {
  std::vector<journal_entry> result;
  auto on_row = [&](row r) {
    result.push_back(journal_entry{static_cast<uint64_t>(r.int64_at(0)), r.string_at(1),
                                   r.optional_at(2), r.string_at(3), r.int64_at(4)});
  };
  if (auto err =
        file_of(*this).query(stmt(s_history), "read", on_row, blob{key}, limit_param(limit))) {
    return err;
  }
  // Changes of deferred commits not folded yet are newer than every folded one.
  std::vector<logged_change_row> logged;
  if (auto err = read_log(logged)) {
    return err;
  }
  std::vector<journal_entry> newer;
  for (auto r = logged.rbegin(); r != logged.rend() && newer.size() < limit; ++r) {
    if (r->key == key) {
      newer.push_back(journal_entry{r->seq, r->name, r->value, r->origin, r->at_ms, true});
    }
  }
  newer.insert(newer.end(), result.begin(), result.end());
  newer.resize(std::min(newer.size(), limit));
  return newer;
}

caf::expected<std::vector<timer_entry>>
journal_store::due_timers(int kind, int64_t up_to_ms, size_t limit, const timer_entry* after) {
  EDDY_ASSERT(kind == 0 || kind == 1);
  std::vector<timer_entry> result;
  auto on_row = [&](row r) {
    result.push_back(
      timer_entry{static_cast<int>(r.int64_at(0)), r.int64_at(1), r.string_at(2), r.string_at(3)});
  };
  auto f = file_of(*this);
  auto err =
    after == nullptr
      ? f.query(stmt(s_due_timers), "read", on_row, int64_t{kind}, up_to_ms, limit_param(limit))
      : f.query(stmt(s_due_timers_after), "read", on_row, int64_t{kind}, after->at_ms,
                blob{after->key}, text{after->tag}, up_to_ms, limit_param(limit));
  if (err) {
    return err;
  }
  return result;
}

caf::expected<std::vector<timer_entry>> journal_store::timers_of(std::string_view key) {
  std::vector<timer_entry> result;
  auto on_row = [&](row r) {
    result.push_back(
      timer_entry{static_cast<int>(r.int64_at(0)), r.int64_at(1), r.string_at(2), r.string_at(3)});
  };
  if (auto err = file_of(*this).query(stmt(s_timers_of), "read", on_row, blob{key})) {
    return err;
  }
  return result;
}

caf::expected<uint64_t> journal_store::key_count() {
  uint64_t result = 0;
  auto on_row = [&](row r) {
    result = static_cast<uint64_t>(r.int64_at(0));
  };
  if (auto err = file_of(*this).query(stmt(s_key_count), "read", on_row)) {
    return err;
  }
  return result;
}

caf::expected<bool> journal_store::has_state() {
  bool result = false;
  auto on_row = [&](row r) {
    result = r.int64_at(0) != 0;
  };
  if (auto err = file_of(*this).query(stmt(s_has_state), "read", on_row)) {
    return err;
  }
  return result;
}

caf::expected<uint64_t> journal_store::journal_length() {
  uint64_t result = 0;
  auto on_row = [&](row r) {
    result = static_cast<uint64_t>(r.int64_at(0));
  };
  if (auto err = file_of(*this).query(stmt(s_journal_length), "read", on_row)) {
    return err;
  }
  return result;
}

caf::error journal_store::copy_to(const fs::path& target) {
  std::error_code ec;
  fs::remove(target, ec);
  // VACUUM INTO reads one snapshot of the database (the WAL included) and writes it whole.
  std::string sql = "VACUUM INTO '";
  for (char c : target.string()) {
    sql += c;
    if (c == '\'') {
      sql += c;
    }
  }
  sql += "'";
  return file_of(*this).exec("copy", sql.c_str());
}

caf::expected<uint64_t> journal_store::owner_epoch() {
  uint64_t epoch = 0;
  auto on_row = [&epoch](row r) {
    auto v = r.string_at(0);
    std::from_chars(v.data(), v.data() + v.size(), epoch);
  };
  if (auto err =
        file_of(*this).query_once("read", "SELECT v FROM meta WHERE k = 'owner_epoch'", on_row)) {
    return err;
  }
  return epoch;
}

caf::error journal_store::set_owner_epoch(uint64_t epoch) {
  auto value = std::to_string(epoch);
  auto err = file_of(*this).run_once(
    "fence", "INSERT OR REPLACE INTO meta(k, v) VALUES('owner_epoch', ?1)", text{value});
  if (!err) {
    owner_epoch_ = epoch;
  }
  return err;
}

caf::error journal_store::check_owner_epoch() {
  if (owner_epoch_ == 0) {
    return {};
  }
  auto stored = owner_epoch();
  if (!stored) {
    return stored.error();
  }
  if (*stored != owner_epoch_) {
    return make_error(errc::fenced, "journal " + file_.string() + " belongs to assignment epoch " +
                                      std::to_string(*stored) + "; its owner of epoch " +
                                      std::to_string(owner_epoch_) + " may not write it any more");
  }
  return {};
}

} // namespace eddy
