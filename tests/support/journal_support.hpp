#pragma once

// Helpers shared by the journal_store and dead_letter_store test suites: a file's bytes, a
// raw second SQLite connection and wrappers that fail the test with the journal's message
// when a call does.

#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sqlite3.h>

#include "eddy/core/error.hpp"
#include "eddy/state/journal_store.hpp"

namespace eddy::test {

inline std::string read_bytes(const std::filesystem::path& file) {
  std::ifstream in{file, std::ios::binary};
  REQUIRE(in);
  return std::string{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

inline void write_bytes(const std::filesystem::path& file, const std::string& bytes) {
  std::ofstream out{file, std::ios::binary | std::ios::trunc};
  out << bytes;
  REQUIRE(out);
}

/// The first column of the first row of `sql` on `db`, as an integer.
inline int64_t scalar_of(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(s) == SQLITE_ROW);
  auto result = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  return result;
}

/// A second, raw SQLite connection to a journal, as an inspection tool (or an attacker)
/// would open it.
class raw_db {
public:
  explicit raw_db(const std::filesystem::path& file) {
    REQUIRE(sqlite3_open(file.c_str(), &db_) == SQLITE_OK);
    sqlite3_busy_timeout(db_, 0);
  }
  ~raw_db() {
    sqlite3_close_v2(db_);
  }
  raw_db(const raw_db&) = delete;
  raw_db& operator=(const raw_db&) = delete;

  int exec(const std::string& sql) {
    return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  }
  int64_t scalar(const std::string& sql) {
    return scalar_of(db_, sql);
  }

private:
  sqlite3* db_ = nullptr;
};

inline journal_meta test_meta() {
  return journal_meta{"wordcount", "counter", 2, 4, 1, ""};
}

inline journal_store open_ok(const std::filesystem::path& file,
                             const journal_meta& meta = test_meta(),
                             durability d = durability::process) {
  auto store = journal_store::open(file, meta, d);
  REQUIRE_MESSAGE(store, (store ? std::string{} : describe(store.error())));
  return std::move(*store);
}

inline errc code_of(const caf::error& err) {
  REQUIRE(err);
  REQUIRE(err.category() == caf::atom("eddy"));
  return static_cast<errc>(err.code());
}

inline bool mentions(const caf::error& err, const std::string& text) {
  return describe(err).find(text) != std::string::npos;
}

inline state_change set(std::string key, std::string name, std::string value) {
  return state_change{std::move(key), std::move(name), std::move(value)};
}

inline state_change clear(std::string key, std::string name) {
  return state_change{std::move(key), std::move(name), std::nullopt};
}

inline commit_batch changes_of(std::vector<state_change> changes, std::string origin = "batch") {
  commit_batch batch;
  batch.changes = std::move(changes);
  batch.origin = std::move(origin);
  return batch;
}

/// `changes_of` committed as one entry of the log of deferred commits.
inline commit_batch deferred_of(std::vector<state_change> changes) {
  auto batch = changes_of(std::move(changes));
  batch.deferred = true;
  return batch;
}

inline void commit_ok(journal_store& store, const commit_batch& batch) {
  auto err = store.commit(batch);
  REQUIRE_MESSAGE(!err, describe(err));
}

inline std::optional<std::string> get_ok(journal_store& store, std::string_view key,
                                         std::string_view name) {
  auto value = store.get(key, name);
  REQUIRE_MESSAGE(value, (value ? std::string{} : describe(value.error())));
  return *value;
}

inline std::vector<journal_entry> history_ok(journal_store& store, std::string_view key,
                                             size_t limit = 1000) {
  auto entries = store.history(key, limit);
  REQUIRE_MESSAGE(entries, (entries ? std::string{} : describe(entries.error())));
  return *entries;
}

inline std::map<uint64_t, uint64_t> positions_ok(journal_store& store) {
  auto result = store.positions();
  REQUIRE_MESSAGE(result, (result ? std::string{} : describe(result.error())));
  return *result;
}

inline std::vector<timer_entry> due_ok(journal_store& store, int kind, int64_t up_to_ms,
                                       size_t limit = 1000) {
  auto result = store.due_timers(kind, up_to_ms, limit);
  REQUIRE_MESSAGE(result, (result ? std::string{} : describe(result.error())));
  return *result;
}

inline uint64_t journal_length_ok(journal_store& store) {
  auto n = store.journal_length();
  REQUIRE_MESSAGE(n, (n ? std::string{} : describe(n.error())));
  return *n;
}

} // namespace eddy::test
