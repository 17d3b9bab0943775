// The SQLite layer (libstream/src/core/sqlite_file): what every SQLite file of Eddy relies
// on. A connection is opened with the settings of its durability, errors are Eddy errors that
// name the file and the operation, statements bind and return values byte for byte, and a
// failed transaction leaves nothing behind.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <sqlite3.h>

#include "core/sqlite_file.hpp"
#include "core/sqlite_rows.hpp"
#include "eddy/core/error.hpp"
#include "support/journal_support.hpp"
#include "support/sqlite_support.hpp"
#include "support/temp_dir.hpp"

using namespace eddy;
namespace fs = std::filesystem;
using eddy::test::code_of;
using eddy::test::connect_ok;
using eddy::test::failure_of;
using eddy::test::int_of;
using eddy::test::mentions;
using eddy::test::read_bytes;
using eddy::test::temp_dir;
using eddy::test::test_kind;
using eddy::test::text_of;
using eddy::test::write_bytes;

namespace {

void create_table(sqlite::file_ref f) {
  auto err = f.exec("create", "CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)");
  REQUIRE_MESSAGE(!err, describe(err));
}

/// A new file a.db in a temporary directory, open, and its view for the layer's calls.
struct open_file {
  temp_dir dir;
  fs::path file = dir / "a.db";
  sqlite::connection db = connect_ok(file);
  sqlite::file_ref sql{db.get(), file, test_kind()};
};

} // namespace

TEST_SUITE_BEGIN("sqlite_file");

TEST_CASE("each durability opens a file in WAL mode with its synchronous setting") {
  // PRAGMA synchronous reads back 1 for NORMAL, 2 for FULL.
  for (auto setting : {std::pair{durability::process, 1}, {durability::machine, 2}}) {
    // Named copies: clang cannot capture a structured binding (CAPTURE is a lambda).
    auto level = setting.first;
    auto synchronous = setting.second;
    CAPTURE(to_string(level));
    temp_dir dir;
    auto file = dir / "a.db";
    auto db = connect_ok(file);
    sqlite::file_ref f{db.get(), file, test_kind()};
    auto err = f.use_wal(sqlite::sync_mode_of(level));
    REQUIRE_MESSAGE(!err, describe(err));
    CHECK(text_of(f, "PRAGMA journal_mode") == "wal");
    CHECK(int_of(f, "PRAGMA synchronous") == synchronous);
  }
}

TEST_CASE("durability none keeps synchronous NORMAL and only sync_mode off turns syncing off") {
  CHECK(sqlite::sync_mode_of(durability::none) == sqlite::sync_mode::normal);
  temp_dir dir;
  auto file = dir / "a.db";
  auto db = connect_ok(file);
  sqlite::file_ref f{db.get(), file, test_kind()};
  auto err = f.use_wal(sqlite::sync_mode::off);
  REQUIRE_MESSAGE(!err, describe(err));
  CHECK(int_of(f, "PRAGMA synchronous") == 0);
}

TEST_CASE("opening changes nothing in an existing file until use_wal") {
  temp_dir dir;
  auto file = dir / "a.db";
  {
    auto db = connect_ok(file);
    create_table({db.get(), file, test_kind()});
  }
  auto before = read_bytes(file);
  auto db = connect_ok(file);
  sqlite::file_ref f{db.get(), file, test_kind()};
  CHECK(text_of(f, "PRAGMA journal_mode") == "delete");
  CHECK(read_bytes(file) == before);
  CHECK(int_of(f, "PRAGMA busy_timeout") == test_kind().busy_timeout_ms);
}

TEST_CASE("opening in a directory that does not exist fails with io_failure naming the file") {
  temp_dir dir;
  auto file = dir / "missing" / "a.db";
  auto db = sqlite::open(file, test_kind());
  REQUIRE(!db);
  CHECK(code_of(db.error()) == errc::io_failure);
  CHECK(mentions(db.error(), "cannot open test file " + file.string()));
  CHECK(mentions(db.error(), "(access hint)"));
  CHECK(!fs::exists(dir / "missing"));
}

TEST_CASE("create_parent makes the missing directories and names the file when it cannot") {
  temp_dir dir;
  auto file = dir / "x" / "y" / "a.db";
  auto err = sqlite::create_parent(file, test_kind());
  REQUIRE_MESSAGE(!err, describe(err));
  CHECK(fs::is_directory(dir / "x" / "y"));
  write_bytes(dir / "blocker", "a regular file");
  auto blocked = dir / "blocker" / "sub" / "a.db";
  err = sqlite::create_parent(blocked, test_kind());
  REQUIRE(err);
  CHECK(code_of(err) == errc::io_failure);
  CHECK(mentions(err, "for test file " + blocked.string()));
}

TEST_CASE_FIXTURE(open_file,
                  "a bad SQL statement fails with io_failure naming the file and the operation") {
  auto err = sql.exec("read", "SELEC 1");
  REQUIRE(err);
  CHECK(code_of(err) == errc::io_failure);
  CHECK(mentions(err, "cannot read test file " + file.string()));
  CHECK(mentions(err, "syntax error"));
  err = sql.run_once("write to", "INSERT INTO nowhere VALUES(1)");
  REQUIRE(err);
  CHECK(mentions(err, "cannot write to test file " + file.string()));
  CHECK(mentions(err, "no such table"));
}

TEST_CASE_FIXTURE(
  open_file, "a statement kept for a file's lifetime on a missing table is refused as corrupt") {
  auto s = sql.prepare("SELECT v FROM t");
  REQUIRE(!s);
  CHECK(code_of(s.error()) == errc::corrupt_journal);
  CHECK(mentions(s.error(), file.string() + " is not a valid Eddy test file"));
  CHECK(mentions(s.error(), "no such table"));
  CHECK(mentions(s.error(), "; use another file"));
}

TEST_CASE("a file that is not SQLite fails with corrupt_journal naming it and is left as it is") {
  temp_dir dir;
  auto file = dir / "a.db";
  std::string garbage(8192, 'x');
  write_bytes(file, garbage);
  auto db = connect_ok(file);
  sqlite::file_ref f{db.get(), file, test_kind()};
  auto err = f.use_wal(sqlite::sync_mode::full);
  REQUIRE(err);
  CHECK(code_of(err) == errc::corrupt_journal);
  CHECK(mentions(err, file.string() + " is not a valid Eddy test file"));
  db.reset();
  CHECK(read_bytes(file) == garbage);
}

TEST_CASE_FIXTURE(open_file, "a statement bound and stepped returns every value byte for byte") {
  auto s = sql.prepare("SELECT ?1, ?2, ?3, ?4, ?5, ?6");
  REQUIRE_MESSAGE(s, failure_of(s));
  std::string bytes{"a\0b\xff", 4};
  std::optional<std::string> none;
  std::optional<std::string> some{"x"};
  REQUIRE(s->bind(int64_t{-7}, sqlite::blob{bytes}, sqlite::text{"text"}, sqlite::text{}, none,
                  some) == SQLITE_OK);
  REQUIRE(s->step() == SQLITE_ROW);
  auto r = s->current();
  CHECK(r.int64_at(0) == -7);
  CHECK(r.string_at(1) == bytes);
  CHECK(r.string_at(2) == "text");
  // An empty value is empty, not NULL.
  CHECK(!r.is_null(3));
  CHECK(r.string_at(3).empty());
  CHECK(r.is_null(4));
  CHECK(r.optional_at(4) == std::nullopt);
  CHECK(r.optional_at(5) == std::optional<std::string>{"x"});
  CHECK(s->step() == SQLITE_DONE);
  s->reset();
  // Reset keeps the bindings: the statement runs again from its start.
  REQUIRE(s->step() == SQLITE_ROW);
  CHECK(s->current().int64_at(0) == -7);
}

TEST_CASE_FIXTURE(open_file,
                  "query visits every row in order and leaves the statement ready to run again") {
  create_table(sql);
  auto insert = sql.prepare("INSERT INTO t(k, v) VALUES(?1, ?2)");
  REQUIRE_MESSAGE(insert, failure_of(insert));
  for (int64_t k = 3; k >= 1; --k) {
    auto err = sql.run(insert->get(), "write to", k, sqlite::blob{std::to_string(k * 10)});
    REQUIRE_MESSAGE(!err, describe(err));
    CHECK(sql.changes() == 1);
  }
  auto select = sql.prepare("SELECT k, v FROM t WHERE k >= ?1 ORDER BY k");
  REQUIRE_MESSAGE(select, failure_of(select));
  for (int pass = 0; pass < 2; ++pass) {
    std::string seen;
    auto err = sql.query(
      select->get(), "read",
      [&](sqlite::row r) { seen += std::to_string(r.int64_at(0)) + "=" + r.string_at(1) + " "; },
      int64_t{2});
    REQUIRE_MESSAGE(!err, describe(err));
    CHECK(seen == "2=20 3=30 ");
  }
}

TEST_CASE_FIXTURE(open_file,
                  "a transaction whose body fails is rolled back and its error returned") {
  create_table(sql);
  auto err = sql.in_transaction("write to", [&] {
    auto inserted = sql.run_once("write to", "INSERT INTO t(k, v) VALUES(1, 'x')");
    return inserted ? inserted : make_error(errc::io_failure, "injected failure");
  });
  REQUIRE(err);
  CHECK(mentions(err, "injected failure"));
  CHECK(sqlite3_get_autocommit(db.get()) != 0);
  CHECK(int_of(sql, "SELECT count(*) FROM t") == 0);
  err = sql.in_transaction("write to",
                           [&] { return sql.run_once("write to", "INSERT INTO t(k) VALUES(2)"); });
  REQUIRE_MESSAGE(!err, describe(err));
  CHECK(int_of(sql, "SELECT count(*) FROM t") == 1);
}

TEST_CASE_FIXTURE(
  open_file, "a lock another connection holds fails after the busy timeout with the kind's hint") {
  REQUIRE(!sql.use_wal(sqlite::sync_mode::normal));
  create_table(sql);
  auto other = connect_ok(file);
  sqlite::file_ref g{other.get(), file, test_kind()};
  REQUIRE(!g.exec("write to", "BEGIN IMMEDIATE"));
  auto err = sql.run_once("write to", "INSERT INTO t(k) VALUES(1)");
  REQUIRE(err);
  CHECK(code_of(err) == errc::io_failure);
  CHECK(mentions(err, "cannot write to test file " + file.string()));
  CHECK(mentions(err, "(busy hint)"));
  g.rollback();
  CHECK(!sql.run_once("write to", "INSERT INTO t(k) VALUES(1)"));
}

TEST_CASE_FIXTURE(open_file, "eddy_rows writes a bound source's rows in order, values intact") {
  REQUIRE(!sql.exec("create", "CREATE TABLE r(n INTEGER, k BLOB, t TEXT, v BLOB)"));
  struct item {
    int64_t n;
    std::string k;
    std::string t;
    std::optional<std::string> v;
  };
  std::vector<item> items{{3, std::string{"a\0b", 3}, "x", std::string{"\xff\x00", 2}},
                          {1, "", "", std::nullopt},
                          {2, "c", "y", std::string{}}};
  auto rows = sqlite::rows_of(std::span<const item>{items}, [](const item& i) {
    return std::tuple{i.n, sqlite::blob{i.k}, sqlite::text{i.t}, sqlite::maybe_blob{&i.v}};
  });
  auto insert = sql.prepare("INSERT INTO r SELECT c0, c1, c2, c3 FROM eddy_rows(?1)");
  REQUIRE_MESSAGE(insert, failure_of(insert));
  REQUIRE(!sql.run(insert->get(), "write to", sqlite::rows{&rows}));
  // Twice with the same statement: the source is read again from its first row.
  REQUIRE(!sql.run(insert->get(), "write to", sqlite::rows{&rows}));
  std::vector<std::tuple<int64_t, std::string, std::string, std::optional<std::string>>> read;
  auto err = sql.query_once("read", "SELECT n, k, t, v FROM r ORDER BY rowid", [&](sqlite::row r) {
    read.emplace_back(r.int64_at(0), r.string_at(1), r.string_at(2), r.optional_at(3));
  });
  REQUIRE_MESSAGE(!err, describe(err));
  REQUIRE(read.size() == 6);
  for (size_t i = 0; i < read.size(); ++i) {
    const auto& want = items[i % items.size()];
    CAPTURE(i);
    CHECK(std::get<0>(read[i]) == want.n);
    CHECK(std::get<1>(read[i]) == want.k);
    CHECK(std::get<2>(read[i]) == want.t);
    CHECK(std::get<3>(read[i]) == want.v);
  }
  // Typed as written: a blob stays a blob, an empty one is not NULL.
  CHECK(int_of(sql, "SELECT count(*) FROM r WHERE typeof(k) = 'blob' AND typeof(t) = 'text'") == 6);
  CHECK(int_of(sql, "SELECT count(*) FROM r WHERE v IS NULL") == 2);
  // Columns past a row's last are NULL.
  auto wide =
    sqlite::rows_of(std::span<const item>{items}, [](const item& i) { return std::tuple{i.n}; });
  int64_t nulls = -1;
  err = sql.query(
    sql.prepare("SELECT count(*) FROM eddy_rows(?1) WHERE c1 IS NULL AND c7 IS NULL")->get(),
    "read", [&](sqlite::row r) { nulls = r.int64_at(0); }, sqlite::rows{&wide});
  REQUIRE_MESSAGE(!err, describe(err));
  CHECK(nulls == 3);
}

TEST_CASE_FIXTURE(open_file, "eddy_rows without a bound source is empty, and cannot be created") {
  CHECK(int_of(sql, "SELECT count(*) FROM eddy_rows(NULL)") == 0);
  // Without its argument no plan exists: the statement is refused, not run over nothing.
  CHECK(sql.run_once("read", "SELECT * FROM eddy_rows"));
  CHECK(sql.exec("create", "CREATE VIRTUAL TABLE v USING eddy_rows"));
}

TEST_SUITE_END();
