// ingress_log: the durable log of a service's accepted requests. Each case checks what the
// HTTP ingress and a host keeping a copy rely on: entries are numbered 1, 2, ... in order,
// come back as they were appended, survive a reopen, a number is never given twice (also
// after a truncation), and a file that cannot be used gives an error naming it.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <sqlite3.h>

#include "eddy/core/error.hpp"
#include "eddy/service/ingress_log.hpp"
#include "support/journal_support.hpp"
#include "support/temp_dir.hpp"

using namespace eddy;
using eddy::service::ingress_log;
namespace fs = std::filesystem;
using eddy::test::code_of;
using eddy::test::mentions;
using eddy::test::read_bytes;
using eddy::test::temp_dir;
using eddy::test::write_bytes;

namespace {

using entries = std::vector<std::pair<uint64_t, std::string>>;

template <class T>
std::string failure_of(const caf::expected<T>& x) {
  return x ? std::string{} : describe(x.error());
}

ingress_log open_ok(const fs::path& file, durability level = durability::process) {
  auto log = ingress_log::open(file, level);
  REQUIRE_MESSAGE(log, failure_of(log));
  return std::move(*log);
}

uint64_t append_ok(ingress_log& log, std::string_view body) {
  auto seq = log.append(body);
  REQUIRE_MESSAGE(seq, failure_of(seq));
  return *seq;
}

uint64_t keep_ok(ingress_log& log, uint64_t seq, std::string_view body) {
  auto held = log.keep(seq, body);
  REQUIRE_MESSAGE(held, failure_of(held));
  return *held;
}

entries read_ok(ingress_log& log, uint64_t after, size_t max = SIZE_MAX) {
  auto read = log.read_after(after, max);
  REQUIRE_MESSAGE(read, failure_of(read));
  return *read;
}

uint64_t next_ok(ingress_log& log) {
  auto next = log.next_seq();
  REQUIRE_MESSAGE(next, failure_of(next));
  return *next;
}

void truncate_ok(ingress_log& log, uint64_t seq) {
  auto err = log.truncate_through(seq);
  REQUIRE_MESSAGE(!err, describe(err));
}

/// The journal mode of `file` as another connection sees it.
std::string journal_mode_of(const fs::path& file) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(s) == SQLITE_ROW);
  std::string mode = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  sqlite3_finalize(s);
  sqlite3_close_v2(db);
  return mode;
}

} // namespace

TEST_SUITE_BEGIN("ingress_log");

TEST_CASE("appended entries are numbered from 1 and read back in order") {
  temp_dir dir;
  auto log = open_ok(dir / "ingress.db");
  CHECK(log.last_seq() == 0);
  CHECK(next_ok(log) == 1);
  CHECK(append_ok(log, R"({"a":1})") == 1);
  CHECK(append_ok(log, R"({"b":2})") == 2);
  CHECK(append_ok(log, "") == 3);
  CHECK(log.last_seq() == 3);
  CHECK(next_ok(log) == 4);
  CHECK(read_ok(log, 0) == entries{{1, R"({"a":1})"}, {2, R"({"b":2})"}, {3, ""}});
}

TEST_CASE("read_after returns at most max entries after the position") {
  temp_dir dir;
  auto log = open_ok(dir / "ingress.db");
  for (int i = 1; i <= 5; ++i) {
    append_ok(log, "body " + std::to_string(i));
  }
  CHECK(read_ok(log, 1, 2) == entries{{2, "body 2"}, {3, "body 3"}});
  CHECK(read_ok(log, 4) == entries{{5, "body 5"}});
  CHECK(read_ok(log, 5).empty());
  CHECK(read_ok(log, 100).empty());
  CHECK(read_ok(log, 0, 0).empty());
}

TEST_CASE("a reopened log keeps its entries and continues their numbering") {
  temp_dir dir;
  auto file = dir / "data" / "cart" / "ingress.db";
  {
    auto log = open_ok(file, durability::process);
    append_ok(log, "one");
    append_ok(log, "two");
  }
  {
    auto log = open_ok(file, durability::machine);
    CHECK(log.last_seq() == 2);
    CHECK(append_ok(log, "three") == 3);
  }
  auto log = open_ok(file);
  CHECK(log.last_seq() == 3);
  CHECK(read_ok(log, 0) == entries{{1, "one"}, {2, "two"}, {3, "three"}});
  CHECK(journal_mode_of(file) == "wal");
}

TEST_CASE("truncated entries are gone and their numbers are never given again") {
  temp_dir dir;
  auto file = dir / "ingress.db";
  {
    auto log = open_ok(file);
    for (int i = 1; i <= 3; ++i) {
      append_ok(log, "body " + std::to_string(i));
    }
    truncate_ok(log, 2);
    CHECK(read_ok(log, 0) == entries{{3, "body 3"}});
    truncate_ok(log, 3);
    CHECK(read_ok(log, 0).empty());
    CHECK(log.last_seq() == 3);
  }
  auto log = open_ok(file);
  CHECK(log.last_seq() == 3);
  CHECK(append_ok(log, "body 4") == 4);
  // A truncation never moves back.
  truncate_ok(log, 1);
  CHECK(read_ok(log, 0) == entries{{4, "body 4"}});
}

TEST_CASE("truncating past the last entry keeps every number after it unused") {
  temp_dir dir;
  auto log = open_ok(dir / "ingress.db");
  append_ok(log, "one");
  truncate_ok(log, 10);
  CHECK(read_ok(log, 0).empty());
  CHECK(append_ok(log, "two") == 11);
}

TEST_CASE("keep appends the entry after the last one and tells the last held otherwise") {
  temp_dir dir;
  auto log = open_ok(dir / "ingress.db");
  CHECK(keep_ok(log, 1, "one") == 1);
  // Held already: ignored.
  CHECK(keep_ok(log, 1, "other") == 1);
  // A gap: ignored, and the answer tells the sender that 2 is missing.
  CHECK(keep_ok(log, 3, "three") == 1);
  CHECK(keep_ok(log, 2, "two") == 2);
  CHECK(keep_ok(log, 3, "three") == 3);
  CHECK(read_ok(log, 0) == entries{{1, "one"}, {2, "two"}, {3, "three"}});
}

TEST_CASE("append numbers after the entries another connection wrote to the same file") {
  temp_dir dir;
  auto file = dir / "ingress.db";
  auto leader = open_ok(file);
  auto copy = open_ok(file);
  CHECK(keep_ok(copy, 1, "kept") == 1);
  CHECK(append_ok(leader, "appended") == 2);
  CHECK(read_ok(copy, 0) == entries{{1, "kept"}, {2, "appended"}});
}

TEST_CASE("a moved log keeps its file and its numbering") {
  temp_dir dir;
  auto log = open_ok(dir / "ingress.db");
  append_ok(log, "one");
  ingress_log moved{std::move(log)};
  CHECK(moved.last_seq() == 1);
  CHECK(append_ok(moved, "two") == 2);
  auto other = open_ok(dir / "other.db");
  other = std::move(moved);
  CHECK(append_ok(other, "three") == 3);
  CHECK(read_ok(other, 0) == entries{{1, "one"}, {2, "two"}, {3, "three"}});
}

TEST_CASE("a log whose directory cannot be created fails with io_failure naming the file") {
  temp_dir dir;
  auto blocker = dir / "regular-file";
  write_bytes(blocker, "not a directory");
  auto file = blocker / "cart" / "ingress.db";
  auto log = ingress_log::open(file, durability::process);
  REQUIRE(!log);
  CHECK(code_of(log.error()) == errc::io_failure);
  CHECK(mentions(log.error(), file.string()));
  CHECK(read_bytes(blocker) == "not a directory");
}

TEST_CASE("a file that is not SQLite is refused naming it and left byte for byte as it is") {
  temp_dir dir;
  auto file = dir / "ingress.db";
  std::string garbage(8192, 'x');
  write_bytes(file, garbage);
  auto log = ingress_log::open(file, durability::machine);
  REQUIRE(!log);
  CHECK(code_of(log.error()) == errc::corrupt_journal);
  CHECK(mentions(log.error(), file.string() + " is not a valid Eddy ingress log"));
  CHECK(read_bytes(file) == garbage);
}

TEST_CASE("an SQLite file whose ingress table has other columns is refused as corrupt") {
  temp_dir dir;
  auto file = dir / "ingress.db";
  {
    eddy::test::raw_db other{file};
    REQUIRE(other.exec("CREATE TABLE ingress(id INTEGER PRIMARY KEY, payload BLOB)") == SQLITE_OK);
  }
  auto log = ingress_log::open(file, durability::process);
  REQUIRE(!log);
  CHECK(code_of(log.error()) == errc::corrupt_journal);
  CHECK(mentions(log.error(), file.string() + " is not a valid Eddy ingress log"));
}

TEST_CASE("a body with NUL bytes and an empty body come back whole") {
  temp_dir dir;
  auto log = open_ok(dir / "ingress.db");
  std::string with_nul{"a\0b", 3};
  CHECK(append_ok(log, with_nul) == 1);
  CHECK(append_ok(log, std::string_view{}) == 2);
  CHECK(keep_ok(log, 3, std::string_view{}) == 3);
  CHECK(read_ok(log, 0) == entries{{1, with_nul}, {2, ""}, {3, ""}});
}

TEST_CASE(
  "a lock another connection holds fails an append after the busy timeout, naming the file") {
  temp_dir dir;
  auto file = dir / "ingress.db";
  auto log = open_ok(file);
  append_ok(log, "one");
  eddy::test::raw_db other{file};
  REQUIRE(other.exec("BEGIN IMMEDIATE") == SQLITE_OK);
  auto seq = log.append("two");
  REQUIRE(!seq);
  CHECK(code_of(seq.error()) == errc::io_failure);
  CHECK(mentions(seq.error(), "cannot append to ingress log " + file.string()));
  CHECK(mentions(seq.error(), "held its lock for more than"));
  REQUIRE(other.exec("ROLLBACK") == SQLITE_OK);
  CHECK(append_ok(log, "two") == 2);
}

TEST_SUITE_END();
