// The log of deferred commits and the compaction that folds it into the state rows (see
// journal_store::compact).

#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eddy/codec/framing.hpp"
#include "eddy/state/journal_store.hpp"
#include "journal_sql.hpp"

namespace eddy {

using namespace journal_sql;

namespace {

/// One change of a log entry, as decoded.
struct logged_change {
  uint64_t seq = 0;
  std::string key;
  std::string name;
  std::optional<std::string> value;
};

/// Decodes a log entry's payload (see `journal_store::encode_change`); false if it is
/// malformed.
bool decode_log(std::string_view in, std::vector<logged_change>& out) {
  try {
    for (size_t pos = 0; pos < in.size();) {
      logged_change c;
      c.seq = next_u64(in, pos);
      c.key = next_field(in, pos);
      c.name = next_field(in, pos);
      bool has_value = next_u64(in, pos) != 0;
      auto value = next_field(in, pos);
      if (has_value) {
        c.value = std::string{value};
      }
      out.push_back(std::move(c));
    }
  } catch (const std::runtime_error&) {
    return false;
  }
  return true;
}

} // namespace

void journal_store::encode_change(const state_change& change, uint64_t seq, std::string& out) {
  append_u64(out, seq);
  append_field(out, change.key);
  append_field(out, change.name);
  append_u64(out, change.value ? 1 : 0);
  append_field(out, change.value ? std::string_view{*change.value} : std::string_view{});
}

caf::error journal_store::read_log(std::vector<logged_change_row>& out) {
  caf::error bad;
  auto on_row = [&](row r) {
    std::vector<logged_change> changes;
    if (!decode_log(r.string_at(3), changes)) {
      bad = file_of(*this).corrupt("log entry " + std::to_string(r.int64_at(0)) + " is malformed");
      return;
    }
    auto origin = r.string_at(1);
    auto at = r.int64_at(2);
    for (auto& c : changes) {
      out.push_back(logged_change_row{c.seq, std::move(c.key), std::move(c.name),
                                      std::move(c.value), origin, at});
    }
  };
  if (auto err = file_of(*this).query(stmt(s_read_log), "read", on_row)) {
    return err;
  }
  return bad;
}

caf::error journal_store::compact(size_t keep_per_key) {
  auto body = [&] {
    bool folded = false;
    auto err = fold_log(keep_per_key, folded);
    // Folding trims the keys it touched; a journal written without a log is trimmed whole.
    if (!err && !folded) {
      err = delete_old_changes(keep_per_key);
    }
    return err ? err : save_last_seq();
  };
  if (auto err = file_of(*this).in_transaction("compact", body, {stmt(s_begin), stmt(s_commit)})) {
    return err;
  }
  return truncate_wal();
}

caf::error journal_store::fold_log(size_t keep_per_key, bool& folded) {
  auto f = file_of(*this);
  std::vector<logged_change_row> rows;
  if (auto err = read_log(rows)) {
    return err;
  }
  folded = !rows.empty();
  if (rows.empty()) {
    return {};
  }
  // The newest value of every (key, name) and the keys cleared as a whole, in log order:
  // a clear drops what came before it for that key.
  std::map<std::pair<std::string, std::string>, const logged_change_row*> latest;
  std::map<std::string, size_t, std::less<>> kept_per_key;
  std::vector<std::string> cleared;
  // Keys that lost a state or all of it in this log: they may be gone after the fold.
  std::set<std::string_view> shrunk;
  for (const auto& r : rows) {
    if (r.name.empty() || !r.value) {
      shrunk.insert(r.key);
    }
    if (r.name.empty()) {
      cleared.push_back(r.key);
      auto i = latest.lower_bound({r.key, std::string{}});
      while (i != latest.end() && i->first.first == r.key) {
        i = latest.erase(i);
      }
    } else {
      latest[{r.key, r.name}] = &r;
    }
  }
  for (const auto& key : cleared) {
    if (auto err = f.run(stmt(s_delete_key), "compact", blob{key})) {
      return err;
    }
  }
  for (const auto& [id, r] : latest) {
    auto s = to_int64(r->seq);
    auto err = r->value ? f.run(stmt(s_upsert_state), "compact", blob{r->key}, text{r->name},
                                blob{*r->value}, int64_t{meta_.state_version}, s)
                        : f.run(stmt(s_delete_state), "compact", blob{r->key}, text{r->name});
    if (err) {
      return err;
    }
  }
  // A key whose state is gone takes its history with it: short-lived keys (a window's,
  // a session's) would otherwise leave their last changes in the journal for ever, and
  // writing them cost more than the rest of the compaction.
  std::set<std::string_view> gone;
  for (auto key : shrunk) {
    bool exists = false;
    auto on_row = [&](row) {
      exists = true;
    };
    if (auto err = f.query(stmt(s_key_exists), "compact", on_row, blob{key})) {
      return err;
    }
    if (!exists) {
      gone.insert(key);
      if (auto err = f.run(stmt(s_forget_history), "compact", blob{key})) {
        return err;
      }
    }
  }
  // The journal of changes keeps the newest keep_per_key of each key: older ones of this
  // log would be dropped by the compaction right after, so they are not written at all.
  for (auto r = rows.rbegin(); r != rows.rend(); ++r) {
    if (gone.count(r->key) > 0 || kept_per_key[r->key]++ >= keep_per_key) {
      continue;
    }
    if (auto err = f.run(stmt(s_insert_change), "compact", to_int64(r->seq), blob{r->key},
                         text{r->name}, r->value, text{r->origin}, r->at_ms)) {
      return err;
    }
  }
  // Only the keys of this log got new journal rows: trimming them (through the key index)
  // costs what the log holds, not what the journal holds.
  for (const auto& [key, n] : kept_per_key) {
    if (auto err = f.run(stmt(s_trim_key), "compact", blob{key}, limit_param(keep_per_key))) {
      return err;
    }
  }
  return f.run(stmt(s_clear_log), "compact");
}

caf::error journal_store::truncate_wal() {
  int rc =
    sqlite3_wal_checkpoint_v2(db_.get(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
  // SQLITE_BUSY: a reader keeps the WAL alive; the next compaction truncates it.
  if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
    return file_of(*this).error(rc, "compact");
  }
  return {};
}

caf::error journal_store::delete_old_changes(size_t keep_per_key) {
  auto del = "DELETE FROM changes WHERE seq IN (SELECT seq FROM (SELECT seq, row_number() OVER"
             " (PARTITION BY key ORDER BY seq DESC) AS n FROM changes) WHERE n > ?1)";
  return file_of(*this).run_once("compact", del, limit_param(keep_per_key));
}

caf::error journal_store::save_last_seq() {
  // The newest entry may be gone after a compaction; last_seq must survive a reopen.
  auto keep = "INSERT INTO meta(k, v) VALUES('last_seq', ?1) "
              "ON CONFLICT(k) DO UPDATE SET v = excluded.v";
  auto seq = std::to_string(last_seq_);
  return file_of(*this).run_once("compact", keep, text{seq});
}

} // namespace eddy
