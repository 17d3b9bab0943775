// The log of deferred commits and the compaction that folds it into the state rows (see
// journal_store::compact).

#include <algorithm>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
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

/// What a compaction writes for the keys of one log, table by table in key order.
struct journal_store::fold_plan {
  using change = const logged_change_row*;
  /// Keys cleared as a whole somewhere in the log: their state rows go first.
  std::vector<std::string_view> cleared;
  /// The newest change of each (key, state) after the key's last clear.
  std::vector<change> newest;
  /// Keys that lost a state or all of it: they may be gone after the fold.
  std::vector<std::string_view> shrunk;
  /// Per key, the changes of the log the journal keeps (the newest keep_per_key).
  struct kept_changes {
    std::string_view key;
    std::span<const logged_change_row> changes;
  };
  std::vector<kept_changes> kept;
};

caf::error journal_store::fold_log(size_t keep_per_key, bool& folded) {
  std::vector<logged_change_row> rows;
  if (auto err = read_log(rows)) {
    return err;
  }
  folded = !rows.empty();
  if (rows.empty()) {
    return {};
  }
  // Key by key, each key's changes in log order: the state rows and the journal of changes
  // are then written in the order of their primary keys, page after page.
  std::stable_sort(rows.begin(), rows.end(),
                   [](const auto& a, const auto& b) { return a.key < b.key; });
  fold_plan plan;
  std::span<const logged_change_row> all{rows};
  for (size_t first = 0; first < all.size();) {
    auto end = first + 1;
    while (end < all.size() && all[end].key == all[first].key) {
      ++end;
    }
    plan_key(all.subspan(first, end - first), keep_per_key, plan);
    first = end;
  }
  if (auto err = write_state_rows(plan)) {
    return err;
  }
  if (auto err = write_history(plan, keep_per_key)) {
    return err;
  }
  return file_of(*this).run(stmt(s_clear_log), "compact");
}

void journal_store::plan_key(std::span<const logged_change_row> changes, size_t keep_per_key,
                             fold_plan& plan) {
  std::string_view key = changes.front().key;
  // A clear drops what came before it.
  size_t live_from = 0;
  bool shrunk = false;
  for (size_t i = 0; i < changes.size(); ++i) {
    shrunk |= changes[i].name.empty() || !changes[i].value;
    if (changes[i].name.empty()) {
      live_from = i + 1;
    }
  }
  if (live_from > 0) {
    plan.cleared.push_back(key);
  }
  if (shrunk) {
    plan.shrunk.push_back(key);
  }
  // The newest change of each state (a key has a few), by name.
  auto first = plan.newest.size();
  for (const auto& c : changes.subspan(live_from)) {
    auto same = std::find_if(plan.newest.begin() + static_cast<ptrdiff_t>(first), plan.newest.end(),
                             [&](auto* n) { return n->name == c.name; });
    if (same == plan.newest.end()) {
      plan.newest.push_back(&c);
    } else {
      *same = &c;
    }
  }
  std::sort(plan.newest.begin() + static_cast<ptrdiff_t>(first), plan.newest.end(),
            [](auto* a, auto* b) { return a->name < b->name; });
  // The journal of changes keeps the newest keep_per_key of each key: older ones of this
  // log would be trimmed right after, so they are not written at all.
  plan.kept.push_back(
    {key, changes.subspan(changes.size() > keep_per_key ? changes.size() - keep_per_key : 0)});
}

caf::error journal_store::write_state_rows(const fold_plan& plan) {
  auto f = file_of(*this);
  for (auto key : plan.cleared) {
    if (auto err = f.run(stmt(s_delete_key), "compact", blob{key})) {
      return err;
    }
  }
  std::vector<fold_plan::change> set;
  for (const auto* c : plan.newest) {
    if (c->value) {
      set.push_back(c);
    } else if (auto err = f.run(stmt(s_delete_state), "compact", blob{c->key}, text{c->name})) {
      return err;
    }
  }
  auto version = int64_t{meta_.state_version};
  auto rows = sqlite::rows_of(std::span<const fold_plan::change>{set}, [&](fold_plan::change c) {
    return std::tuple{blob{c->key}, text{c->name}, blob{*c->value}, version, to_int64(c->seq)};
  });
  return f.run(stmt(s_fold_upsert_state), "compact", sqlite::rows{&rows});
}

caf::error journal_store::write_history(const fold_plan& plan, size_t keep_per_key) {
  auto f = file_of(*this);
  // A key whose state is gone takes its history with it: short-lived keys (a window's,
  // a session's) would otherwise leave their last changes in the journal for ever, and
  // writing them cost more than the rest of the compaction.
  std::vector<std::string_view> gone;
  for (auto key : plan.shrunk) {
    bool exists = false;
    auto on_row = [&](row) {
      exists = true;
    };
    if (auto err = f.query(stmt(s_key_exists), "compact", on_row, blob{key})) {
      return err;
    }
    if (!exists) {
      gone.push_back(key);
      if (auto err = f.run(stmt(s_forget_history), "compact", blob{key})) {
        return err;
      }
    }
  }
  std::vector<const logged_change_row*> written;
  // The keys whose history may now hold more than its share.
  std::vector<std::string_view> touched;
  for (const auto& [key, kept] : plan.kept) {
    if (std::binary_search(gone.begin(), gone.end(), key)) {
      continue;
    }
    if (kept.empty()) {
      // Nothing kept (keep_per_key 0): the key's history goes whole.
      if (auto err = f.run(stmt(s_forget_history), "compact", blob{key})) {
        return err;
      }
      continue;
    }
    for (const auto& c : kept) {
      written.push_back(&c);
    }
    touched.push_back(key);
  }
  auto changes = sqlite::rows_of(
    std::span<const logged_change_row* const>{written}, [](const logged_change_row* c) {
      return std::tuple{to_int64(c->seq), blob{c->key},
                        text{c->name},    sqlite::maybe_blob{&c->value},
                        text{c->origin},  c->at_ms};
    });
  if (auto err = f.run(stmt(s_fold_insert_changes), "compact", sqlite::rows{&changes})) {
    return err;
  }
  // One statement trims them all: a key holding at most its share (a key written once, or
  // given all its share by this log and nothing before) costs one look at its newest rows.
  auto keys = sqlite::rows_of(std::span<const std::string_view>{touched},
                              [](std::string_view key) { return std::tuple{blob{key}}; });
  return f.run(stmt(s_fold_trim), "compact", sqlite::rows{&keys}, limit_param(keep_per_key));
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
  auto del = "DELETE FROM changes WHERE (key, seq) IN (SELECT key, seq FROM (SELECT key, seq,"
             " row_number() OVER (PARTITION BY key ORDER BY seq DESC) AS n FROM changes)"
             " WHERE n > ?1)";
  return file_of(*this).run_once("compact", del, limit_param(keep_per_key));
}

caf::error journal_store::save_last_seq() {
  // The newest entry may be gone after a compaction; last_seq must survive a reopen.
  return file_of(*this).run(stmt(s_save_last_seq), "compact", text{std::to_string(last_seq_)});
}

} // namespace eddy
