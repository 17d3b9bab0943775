// A pinned snapshot of a live SQLite file (libstream/src/core/sqlite_snapshot): its copy holds
// the file as it was when pinned, however the owner commits while the copy is written step by
// step, and a copy that does not complete leaves no file behind.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include <sqlite3.h>

#include "core/sqlite_file.hpp"
#include "core/sqlite_snapshot.hpp"
#include "eddy/core/error.hpp"
#include "support/journal_support.hpp"
#include "support/sqlite_support.hpp"
#include "support/temp_dir.hpp"

using namespace eddy;
namespace fs = std::filesystem;
using eddy::test::connect_ok;
using eddy::test::int_of;
using eddy::test::mentions;
using eddy::test::temp_dir;
using eddy::test::test_kind;
using eddy::test::text_of;

namespace {

void exec_ok(sqlite::file_ref f, const std::string& sql) {
  auto err = f.exec("write to", sql.c_str());
  REQUIRE_MESSAGE(!err, describe(err));
}

/// A WAL file with table t of `rows` rows (k, v: 200 bytes each), about rows / 18 pages.
struct live_file {
  temp_dir dir;
  fs::path file = dir / "live.db";
  sqlite::connection db = connect_ok(file);
  sqlite::file_ref sql{db.get(), file, test_kind()};

  explicit live_file(int rows = 4000) {
    REQUIRE(!sql.use_wal(sqlite::sync_mode::normal));
    exec_ok(sql, "CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)");
    exec_ok(sql, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " +
                   std::to_string(rows) + ") INSERT INTO t SELECT i, randomblob(200) FROM n");
  }
};

} // namespace

TEST_SUITE_BEGIN("sqlite_snapshot");

TEST_CASE("a snapshot's copy holds the file as pinned while the owner commits between steps") {
  live_file live;
  auto before_sum = int_of(live.sql, "SELECT sum(k) FROM t");
  auto before_hash = text_of(live.sql, "SELECT hex(v) FROM t WHERE k = 1234");
  auto pinned = sqlite::snapshot::pin(live.file, test_kind());
  REQUIRE_MESSAGE(pinned, describe(pinned.error()));
  auto target = live.dir / "copy.db";
  int steps = 0;
  for (bool done = false; !done; ++steps) {
    auto step = pinned->copy_step(target, 4);
    REQUIRE_MESSAGE(step, describe(step.error()));
    done = *step;
    // Each step is followed by a commit of the owner that rewrites part of the table.
    exec_ok(live.sql,
            "UPDATE t SET v = randomblob(200) WHERE k % 50 = " + std::to_string(steps % 50));
    exec_ok(live.sql, "DELETE FROM t WHERE k = " + std::to_string(4000 - steps));
    exec_ok(live.sql,
            "INSERT INTO t(k, v) VALUES(" + std::to_string(10000 + steps) + ", randomblob(300))");
  }
  CHECK(steps > 10);
  CHECK(pinned->remaining() == 0);
  CHECK(pinned->page_count() > 40);
  // The owner moved on...
  CHECK(int_of(live.sql, "SELECT count(*) FROM t WHERE k >= 10000") == steps);
  // ...and the copy is the file at the pin, whole and consistent.
  auto copy = connect_ok(target);
  sqlite::file_ref c{copy.get(), target, test_kind()};
  CHECK(text_of(c, "PRAGMA integrity_check") == "ok");
  CHECK(int_of(c, "SELECT count(*) FROM t") == 4000);
  CHECK(int_of(c, "SELECT sum(k) FROM t") == before_sum);
  CHECK(text_of(c, "SELECT hex(v) FROM t WHERE k = 1234") == before_hash);
}

TEST_CASE("a snapshot pins only a file that exists, and creates none") {
  temp_dir dir;
  auto missing = dir / "missing.db";
  auto pinned = sqlite::snapshot::pin(missing, test_kind());
  REQUIRE(!pinned);
  CHECK(mentions(pinned.error(), "cannot pin test file " + missing.string()));
  CHECK(mentions(pinned.error(), "does not exist"));
  CHECK(!fs::exists(missing));
}

TEST_CASE("a copy that does not complete leaves no file") {
  live_file live;
  auto target = live.dir / "copy.db";
  {
    auto pinned = sqlite::snapshot::pin(live.file, test_kind());
    REQUIRE(pinned);
    auto step = pinned->copy_step(target, 2);
    REQUIRE(step);
    CHECK(!*step);
    CHECK(fs::exists(target));
    // Dropped in the middle of the copy.
  }
  CHECK(!fs::exists(target));
  // A target that cannot be created fails the first step, naming it.
  auto pinned = sqlite::snapshot::pin(live.file, test_kind());
  REQUIRE(pinned);
  auto bad = live.dir / "no-such-dir" / "copy.db";
  auto step = pinned->copy_step(bad, 2);
  REQUIRE(!step);
  CHECK(mentions(step.error(), bad.string()));
  // The pin still holds, and a good target completes.
  auto err = pinned->copy_to(target);
  REQUIRE_MESSAGE(!err, describe(err));
  auto copy = connect_ok(target);
  CHECK(int_of(sqlite::file_ref{copy.get(), target, test_kind()}, "SELECT count(*) FROM t") ==
        4000);
}

TEST_SUITE_END();
