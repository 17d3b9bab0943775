#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <sqlite3.h>
#include <unistd.h>

#include "eddy/core/error.hpp"
#include "eddy/state/journal_store.hpp"
#include "eddy/state/keyed_state.hpp"
#include "support/journal_support.hpp"
#include "support/temp_dir.hpp"

using namespace eddy;
namespace fs = std::filesystem;
using namespace eddy::test;

namespace {

/// Commits a batch that sets `key`.`name` to `value` and moves channel 0 to `position`.
void set_at(journal_store& store, const std::string& key, const std::string& value,
            uint64_t position) {
  auto batch = changes_of({set(key, "count", value)});
  batch.positions = {{0, position}};
  commit_ok(store, batch);
}

} // namespace

TEST_CASE("a committed batch is there after reopening: state, positions and timers") {
  temp_dir dir;
  auto file = dir / "nested/dirs/p2.db";
  {
    auto store = open_ok(file);
    CHECK(store.last_seq() == 0);
    commit_batch batch;
    batch.changes = {set("alice", "count", "3"), set("bob", "count", "1"),
                     set("alice", "last", std::string{"\0\x01\xff", 3})};
    batch.positions = {{0, 17}, {3, 5}};
    batch.timers_added = {{0, 1000, "alice", "flush"}, {1, 500, "bob", "window"}};
    commit_ok(store, batch);
    CHECK(store.last_seq() == 3);
  }
  REQUIRE(fs::exists(file));
  auto store = open_ok(file);
  CHECK(store.file() == file);
  CHECK(store.meta().job == "wordcount");
  CHECK(store.last_seq() == 3);
  CHECK(get_ok(store, "alice", "count") == "3");
  CHECK(get_ok(store, "bob", "count") == "1");
  CHECK(get_ok(store, "alice", "last") == std::string{"\0\x01\xff", 3});
  CHECK(get_ok(store, "carol", "count") == std::nullopt);
  CHECK(get_ok(store, "alice", "missing") == std::nullopt);
  CHECK(positions_ok(store) == std::map<uint64_t, uint64_t>{{0, 17}, {3, 5}});
  CHECK(due_ok(store, 0, 1000) == std::vector<timer_entry>{{0, 1000, "alice", "flush"}});
  CHECK(due_ok(store, 1, 1000) == std::vector<timer_entry>{{1, 500, "bob", "window"}});
  CHECK(*store.key_count() == 2);
  CHECK(journal_length_ok(store) == 3);
}

TEST_CASE("keys are bytes and an empty value is a value, not a clear") {
  temp_dir dir;
  auto store = open_ok(dir / "p.db");
  std::string binary_key{"k\0ey", 4};
  commit_ok(store, changes_of({set(binary_key, "v", ""), set("k", "v", "other")}));
  CHECK(get_ok(store, binary_key, "v") == std::string{});
  CHECK(get_ok(store, "k", "v") == "other");
  auto entries = history_ok(store, binary_key);
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].value == std::string{});
}

TEST_CASE("clearing a state removes it and journals a NULL change") {
  temp_dir dir;
  auto file = dir / "p.db";
  {
    auto store = open_ok(file);
    commit_ok(store, changes_of({set("alice", "count", "3"), set("alice", "seen", "yes")}));
    commit_ok(store, changes_of({clear("alice", "count")}, "ttl"));
    CHECK(get_ok(store, "alice", "count") == std::nullopt);
  }
  auto store = open_ok(file);
  CHECK(get_ok(store, "alice", "count") == std::nullopt);
  CHECK(get_ok(store, "alice", "seen") == "yes");
  auto entries = history_ok(store, "alice");
  REQUIRE(entries.size() == 3);
  CHECK(entries[0].seq == 3);
  CHECK(entries[0].name == "count");
  CHECK(entries[0].value == std::nullopt);
  CHECK(entries[0].origin == "ttl");
  raw_db raw{file};
  CHECK(raw.scalar("SELECT count(*) FROM changes WHERE value IS NULL") == 1);
  CHECK(raw.scalar("SELECT count(*) FROM state") == 1);
}

TEST_CASE("history lists a key's changes newest first with increasing seq and their origin") {
  temp_dir dir;
  auto store = open_ok(dir / "p.db");
  for (int i = 1; i <= 5; ++i) {
    auto batch = changes_of({set("alice", "count", std::to_string(i)), set("bob", "count", "x")},
                            "batch-" + std::to_string(i));
    batch.at_ms = 1000 * i;
    commit_ok(store, batch);
  }
  CHECK(store.last_seq() == 10);
  auto entries = history_ok(store, "alice");
  REQUIRE(entries.size() == 5);
  for (size_t i = 0; i < entries.size(); ++i) {
    auto n = static_cast<int>(5 - i);
    CHECK(entries[i].value == std::to_string(n));
    CHECK(entries[i].origin == "batch-" + std::to_string(n));
    CHECK(entries[i].at_ms == 1000 * n);
    CHECK(entries[i].seq == static_cast<uint64_t>(2 * n - 1));
    if (i > 0) {
      CHECK(entries[i].seq < entries[i - 1].seq);
    }
  }
  auto newest = history_ok(store, "alice", 2);
  REQUIRE(newest.size() == 2);
  CHECK(newest[0].value == "5");
  CHECK(newest[1].value == "4");
  CHECK(history_ok(store, "alice", 0).empty());
  CHECK(history_ok(store, "nobody").empty());
}

TEST_CASE("a commit that fails on another connection's lock leaves the previous state intact") {
  temp_dir dir;
  auto file = dir / "p.db";
  {
    auto store = open_ok(file);
    set_at(store, "alice", "1", 10);
    {
      raw_db other{file};
      REQUIRE(other.exec("BEGIN EXCLUSIVE") == SQLITE_OK);
      auto batch = changes_of({set("alice", "count", "2"), set("bob", "count", "7")});
      batch.positions = {{0, 11}};
      batch.timers_added = {{0, 5, "alice", "t"}};
      auto err = store.commit(batch);
      CHECK(code_of(err) == errc::io_failure);
      CHECK(describe(err).find(file.string()) != std::string::npos);
      CHECK(store.last_seq() == 1);
      CHECK(get_ok(store, "alice", "count") == "1");
      REQUIRE(other.exec("ROLLBACK") == SQLITE_OK);
    }
    // The store stays usable once the lock is gone.
    set_at(store, "carol", "5", 12);
    CHECK(store.last_seq() == 2);
  }
  auto store = open_ok(file);
  CHECK(get_ok(store, "alice", "count") == "1");
  CHECK(get_ok(store, "bob", "count") == std::nullopt);
  CHECK(get_ok(store, "carol", "count") == "5");
  CHECK(positions_ok(store) == std::map<uint64_t, uint64_t>{{0, 12}});
  CHECK(due_ok(store, 0, 100).empty());
  CHECK(journal_length_ok(store) == 2);
  CHECK(store.last_seq() == 2);
}

TEST_CASE("a commit that fails half-way rolls back the changes it already wrote") {
  temp_dir dir;
  auto file = dir / "p.db";
  {
    auto store = open_ok(file);
    set_at(store, "alice", "1", 10);
    {
      raw_db other{file};
      // Positions are written after the state and the journal: fail there.
      REQUIRE(other.exec("CREATE TRIGGER fail BEFORE INSERT ON positions WHEN NEW.channel = 9 "
                         "BEGIN SELECT RAISE(ABORT, 'injected failure'); END") == SQLITE_OK);
    }
    auto batch = changes_of({set("alice", "count", "2"), clear("alice", "count")});
    batch.positions = {{0, 11}, {9, 1}};
    batch.timers_removed = {{0, 1, "alice", "t"}};
    auto err = store.commit(batch);
    REQUIRE(err);
    CHECK(describe(err).find("injected failure") != std::string::npos);
    CHECK(describe(err).find(file.string()) != std::string::npos);
    CHECK(store.last_seq() == 1);
    CHECK(get_ok(store, "alice", "count") == "1");
    CHECK(positions_ok(store) == std::map<uint64_t, uint64_t>{{0, 10}});
  }
  auto store = open_ok(file);
  CHECK(get_ok(store, "alice", "count") == "1");
  CHECK(positions_ok(store) == std::map<uint64_t, uint64_t>{{0, 10}});
  CHECK(journal_length_ok(store) == 1);
  CHECK(history_ok(store, "alice").size() == 1);
}

TEST_CASE("reopening for another job, operator, partition or partition count names the field") {
  temp_dir dir;
  auto file = dir / "p.db";
  {
    auto store = open_ok(file);
    set_at(store, "alice", "1", 10);
  }
  struct variant {
    std::string field;
    journal_meta meta;
    std::string stored;
    std::string wanted;
  };
  auto base = test_meta();
  std::vector<variant> variants = {
    {"job", {"clicks", base.op, base.partition, base.partitions, 1, ""}, "'wordcount'", "'clicks'"},
    {"op", {base.job, "summer", base.partition, base.partitions, 1, ""}, "'counter'", "'summer'"},
    {"partition", {base.job, base.op, 3, base.partitions, 1, ""}, "'2'", "'3'"},
    {"partitions", {base.job, base.op, base.partition, 8, 1, ""}, "'4'", "'8'"},
    {"topology",
     {base.job, base.op, base.partition, base.partitions, 1, "src:2,counter:4"},
     "''",
     "'src:2,counter:4'"},
  };
  for (const auto& v : variants) {
    CAPTURE(v.field);
    auto store = journal_store::open(file, v.meta, durability::process);
    REQUIRE(!store);
    CHECK(code_of(store.error()) == errc::state_mismatch);
    auto msg = describe(store.error());
    CHECK(msg.find("by " + v.field + " " + v.stored) != std::string::npos);
    CHECK(msg.find("this is " + v.field + " " + v.wanted) != std::string::npos);
    CHECK(msg.find(file.string()) != std::string::npos);
    CHECK(msg.find("--data-dir") != std::string::npos);
  }
  // Nothing was reset: the rightful owner still finds its state.
  auto store = open_ok(file);
  CHECK(get_ok(store, "alice", "count") == "1");
}

TEST_CASE("a journal written by a newer format is refused and left as it is") {
  temp_dir dir;
  auto file = dir / "p.db";
  {
    auto store = open_ok(file);
    set_at(store, "alice", "1", 10);
  }
  auto newer = std::to_string(journal_format_version + 1);
  {
    raw_db raw{file};
    REQUIRE(raw.exec("UPDATE meta SET v = '" + newer + "' WHERE k = 'format_version'") ==
            SQLITE_OK);
  }
  auto store = journal_store::open(file, test_meta(), durability::process);
  REQUIRE(!store);
  CHECK(code_of(store.error()) == errc::state_mismatch);
  auto msg = describe(store.error());
  CHECK(msg.find("newer Eddy (format " + newer) != std::string::npos);
  CHECK(msg.find(file.string()) != std::string::npos);
  raw_db raw{file};
  CHECK(raw.scalar("SELECT count(*) FROM state") == 1);
}

TEST_CASE("a journal of format 1 is upgraded on open: state, history and last_seq kept") {
  temp_dir dir;
  auto file = dir / "p.db";
  {
    auto store = open_ok(file);
    for (uint64_t i = 1; i <= 3; ++i) {
      set_at(store, "alice", std::to_string(i), i);
    }
    set_at(store, "bob", "7", 4);
  }
  {
    // What format 1 wrote: a rowid table of changes with an index, last_seq derived from it.
    raw_db raw{file};
    REQUIRE(raw.exec("CREATE TABLE old(seq INTEGER PRIMARY KEY, key BLOB, name TEXT, value BLOB,"
                     " origin TEXT, at_ms INTEGER);"
                     "INSERT INTO old SELECT seq, key, name, value, origin, at_ms FROM changes;"
                     "DROP TABLE changes; ALTER TABLE old RENAME TO changes;"
                     "CREATE INDEX changes_by_key ON changes(key, seq);"
                     "DELETE FROM meta WHERE k = 'last_seq';"
                     "UPDATE meta SET v = '1' WHERE k = 'format_version'") == SQLITE_OK);
  }
  {
    auto store = open_ok(file);
    CHECK(store.last_seq() == 4);
    CHECK(get_ok(store, "alice", "count") == "3");
    auto entries = history_ok(store, "alice");
    REQUIRE(entries.size() == 3);
    CHECK(entries[0].seq == 3);
    CHECK(entries[2].value == std::optional<std::string>{"1"});
    set_at(store, "bob", "8", 5);
    CHECK(store.last_seq() == 5);
  }
  auto store = open_ok(file);
  CHECK(store.last_seq() == 5);
  CHECK(history_ok(store, "bob").front().value == std::optional<std::string>{"8"});
  raw_db raw{file};
  CHECK(raw.scalar("SELECT count(*) FROM meta WHERE k = 'format_version' AND v = '" +
                   std::to_string(journal_format_version) + "'") == 1);
  CHECK(raw.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'changes_by_key'") == 0);
}

TEST_CASE("a file of garbage bytes is a corrupt journal named in the error") {
  temp_dir dir;
  auto file = dir / "p.db";
  {
    std::ofstream out{file, std::ios::binary};
    std::mt19937 rng{42};
    for (int i = 0; i < 8192; ++i) {
      out.put(static_cast<char>(rng()));
    }
  }
  auto store = journal_store::open(file, test_meta(), durability::process);
  REQUIRE(!store);
  CHECK(code_of(store.error()) == errc::corrupt_journal);
  auto msg = describe(store.error());
  CHECK(msg.find(file.string() + " is not a valid Eddy journal") != std::string::npos);
  CHECK(msg.find("--data-dir") != std::string::npos);
  CHECK(fs::file_size(file) == 8192);
}

TEST_CASE("an SQLite file of another application is refused, not adopted") {
  temp_dir dir;
  auto file = dir / "p.db";
  {
    raw_db raw{file};
    REQUIRE(raw.exec("CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT)") == SQLITE_OK);
  }
  auto store = journal_store::open(file, test_meta(), durability::process);
  REQUIRE(!store);
  CHECK(code_of(store.error()) == errc::corrupt_journal);
  CHECK(describe(store.error()).find(file.string()) != std::string::npos);
  raw_db raw{file};
  CHECK(raw.scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table'") == 1);
}

TEST_CASE("a truncated journal gives a clear error, not a crash") {
  temp_dir dir;
  auto file = dir / "p.db";
  {
    auto store = open_ok(file);
    for (uint64_t i = 1; i <= 100; ++i) {
      set_at(store, "key-" + std::to_string(i), std::string(300, 'v'), i);
    }
  }
  REQUIRE(!fs::exists(file.string() + "-wal"));
  fs::resize_file(file, fs::file_size(file) / 2);
  // The first step that reads a missing page fails; which one depends on the page layout.
  caf::error err;
  auto store = journal_store::open(file, test_meta(), durability::process);
  if (!store) {
    err = store.error();
  } else if (auto n = store->key_count(); !n) {
    err = n.error();
  } else if (auto m = store->journal_length(); !m) {
    err = m.error();
  } else {
    err = store->commit(changes_of({set("key-1", "count", "new")}));
  }
  REQUIRE_MESSAGE(err, "a journal cut in half was read without an error");
  CHECK(code_of(err) == errc::corrupt_journal);
  CHECK(describe(err).find(file.string()) != std::string::npos);
}

TEST_CASE("a journal path whose directory cannot be created fails with io_failure") {
  temp_dir dir;
  auto blocker = dir / "regular-file";
  std::ofstream{blocker} << "not a directory";
  // A regular file where a directory should be stops root as well as anyone.
  auto file = blocker / "sub" / "p.db";
  auto store = journal_store::open(file, test_meta(), durability::process);
  REQUIRE(!store);
  CHECK(code_of(store.error()) == errc::io_failure);
  auto msg = describe(store.error());
  CHECK(msg.find((blocker / "sub").string()) != std::string::npos);
  CHECK(msg.find(file.string()) != std::string::npos);
}

TEST_CASE("a journal in a read-only directory fails with io_failure naming the file") {
  if (::geteuid() == 0) {
    MESSAGE("skipped: root ignores directory permissions (the regular-file case covers root)");
    return;
  }
  temp_dir dir;
  auto ro = dir / "read-only";
  fs::create_directories(ro);
  fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
  for (const auto& file : {ro / "p.db", ro / "sub" / "p.db"}) {
    CAPTURE(file);
    auto store = journal_store::open(file, test_meta(), durability::process);
    REQUIRE(!store);
    CHECK(code_of(store.error()) == errc::io_failure);
    CHECK(describe(store.error()).find(file.string()) != std::string::npos);
  }
  fs::permissions(ro, fs::perms::owner_all);
}

TEST_CASE("compaction keeps exactly the last N changes per key and leaves the state as it is") {
  temp_dir dir;
  auto file = dir / "p.db";
  auto store = open_ok(file);
  for (int i = 1; i <= 10; ++i) {
    std::vector<state_change> changes = {set("alice", "count", std::to_string(i)),
                                         set("alice", "sum", std::to_string(i * 10))};
    if (i <= 2) {
      changes.push_back(set("bob", "count", std::to_string(i)));
    }
    commit_ok(store, changes_of(std::move(changes)));
  }
  commit_ok(store, changes_of({clear("alice", "sum")}));
  auto last = store.last_seq();
  CHECK(last == 23);
  CHECK(journal_length_ok(store) == 23);

  auto err = store.compact(3);
  REQUIRE_MESSAGE(!err, describe(err));
  auto alice = history_ok(store, "alice");
  REQUIRE(alice.size() == 3);
  CHECK(alice[0].seq == 23);
  CHECK(alice[0].value == std::nullopt);
  CHECK(alice[1].value == "100");
  CHECK(alice[2].value == "10");
  CHECK(history_ok(store, "bob").size() == 2);
  CHECK(journal_length_ok(store) == 5);
  CHECK(get_ok(store, "alice", "count") == "10");
  CHECK(get_ok(store, "alice", "sum") == std::nullopt);
  CHECK(get_ok(store, "bob", "count") == "2");
  CHECK(*store.key_count() == 2);
  CHECK(fs::file_size(file.string() + "-wal") == 0);

  // Keeping nothing empties the journal, yet sequence numbers never restart.
  err = store.compact(0);
  REQUIRE_MESSAGE(!err, describe(err));
  CHECK(journal_length_ok(store) == 0);
  store = open_ok(file);
  CHECK(store.last_seq() == last);
  commit_ok(store, changes_of({set("carol", "count", "1")}));
  CHECK(history_ok(store, "carol").at(0).seq == last + 1);
  CHECK(get_ok(store, "alice", "count") == "10");
}

TEST_CASE("due timers come by kind in (at_ms, key) order up to a time and a limit") {
  temp_dir dir;
  auto store = open_ok(dir / "p.db");
  commit_batch batch;
  batch.timers_added = {{0, 300, "b", "x"}, {0, 100, "c", "x"}, {0, 300, "a", "x"},
                        {0, 900, "a", "x"}, {1, 50, "a", "x"},  {0, 100, "c", "x"}};
  commit_ok(store, batch);
  CHECK(due_ok(store, 0, 300) ==
        std::vector<timer_entry>{{0, 100, "c", "x"}, {0, 300, "a", "x"}, {0, 300, "b", "x"}});
  CHECK(due_ok(store, 0, 300, 2) ==
        std::vector<timer_entry>{{0, 100, "c", "x"}, {0, 300, "a", "x"}});
  CHECK(due_ok(store, 0, 99).empty());
  CHECK(due_ok(store, 1, 1000) == std::vector<timer_entry>{{1, 50, "a", "x"}});

  commit_batch fired;
  fired.timers_removed = {{0, 100, "c", "x"}, {0, 300, "a", "x"}, {0, 5, "nobody", "x"}};
  commit_ok(store, fired);
  CHECK(due_ok(store, 0, 1000) == std::vector<timer_entry>{{0, 300, "b", "x"}, {0, 900, "a", "x"}});
  CHECK(due_ok(store, 1, 1000).size() == 1);
  CHECK(store.last_seq() == 0);
}

TEST_CASE("fired timers go in one range: the due ones of their kind, not a re-registered one") {
  temp_dir dir;
  auto store = open_ok(dir / "p.db");
  commit_batch batch;
  batch.timers_added = {{1, 100, "a", "x"},
                        {1, 100, "b", "x"},
                        {1, 200, "a", "w"},
                        {1, 300, "a", "x"},
                        {0, 50, "a", "x"}};
  commit_ok(store, batch);
  // A partition fires the first two due timers (a limit of 2) through its timer book; the
  // function of "b" registers it again.
  auto due = due_ok(store, 1, 250, 2);
  REQUIRE(due == std::vector<timer_entry>{{1, 100, "a", "x"}, {1, 100, "b", "x"}});
  timer_book book{1};
  for (const auto& t : due) {
    book.fired(t.key, t.at_ms, t.tag);
  }
  book.add("b", 100, "x", true);
  commit_batch fired;
  book.collect(fired);
  REQUIRE(fired.timers_fired == std::vector<timer_entry>{{1, 100, "b", "x"}});
  commit_ok(store, fired);
  CHECK(due_ok(store, 1, 1000) ==
        std::vector<timer_entry>{{1, 100, "b", "x"}, {1, 200, "a", "w"}, {1, 300, "a", "x"}});
  // The other kind is left alone.
  CHECK(due_ok(store, 0, 1000) == std::vector<timer_entry>{{0, 50, "a", "x"}});
}

TEST_CASE("durability machine syncs FULL and process NORMAL, both in WAL mode") {
  temp_dir dir;
  auto machine = open_ok(dir / "m.db", test_meta(), durability::machine);
  auto process = open_ok(dir / "p.db", test_meta(), durability::process);
  CHECK(scalar_of(machine.native_handle(), "PRAGMA synchronous") == 2);
  CHECK(scalar_of(process.native_handle(), "PRAGMA synchronous") == 1);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(process.native_handle(), "PRAGMA journal_mode", -1, &s, nullptr) ==
          SQLITE_OK);
  REQUIRE(sqlite3_step(s) == SQLITE_ROW);
  CHECK(std::string{reinterpret_cast<const char*>(sqlite3_column_text(s, 0))} == "wal");
  sqlite3_finalize(s);
}

TEST_CASE("a moved store keeps its connection and a reopened one keeps its meta") {
  temp_dir dir;
  auto file = dir / "p.db";
  auto first = open_ok(file);
  set_at(first, "alice", "1", 1);
  journal_store second = std::move(first);
  set_at(second, "alice", "2", 2);
  CHECK(get_ok(second, "alice", "count") == "2");
  CHECK(second.last_seq() == 2);
  CHECK(second.meta().partition == 2);
  CHECK(second.meta().partitions == 4);
}

TEST_CASE("states_of lists every state row of one key by name, with its version and seq") {
  temp_dir dir;
  auto store = open_ok(dir / "p.db");
  commit_ok(store, changes_of({set("a", "n", "1"), set("a", "m", "x"), set("b", "n", "2")}));
  commit_ok(store, changes_of({set("a", "n", "3")}));
  // Deferred changes reach the rows (and states_of) at the next compaction.
  commit_ok(store, deferred_of({set("a", "z", "late"), clear("a", "m")}));
  auto rows = store.states_of("a");
  REQUIRE_MESSAGE(rows, (rows ? std::string{} : describe(rows.error())));
  REQUIRE(rows->size() == 2);
  CHECK((*rows)[0].first == "m");
  CHECK((*rows)[0].second.value == "x");
  CHECK((*rows)[0].second.seq == 2);
  CHECK((*rows)[1].first == "n");
  CHECK((*rows)[1].second.value == "3");
  CHECK((*rows)[1].second.version == test_meta().state_version);
  CHECK((*rows)[1].second.seq == 4);
  // History tells the changes still in the log (never trimmed) from the folded ones.
  auto before = history_ok(store, "a");
  REQUIRE(before.size() == 5);
  CHECK(before[0].logged);
  CHECK(before[1].logged);
  CHECK_FALSE(before[2].logged);
  REQUIRE(!store.compact(4));
  CHECK_FALSE(history_ok(store, "a")[0].logged);
  rows = store.states_of("a");
  REQUIRE(rows);
  REQUIRE(rows->size() == 2);
  CHECK((*rows)[0].first == "n");
  CHECK((*rows)[1].first == "z");
  CHECK((*rows)[1].second.value == "late");
  CHECK((*rows)[1].second.seq == 5);
  auto read = store.read("a", "z");
  REQUIRE(read);
  REQUIRE(*read);
  CHECK((*read)->seq == 5);
  auto none = store.states_of("nobody");
  REQUIRE(none);
  CHECK(none->empty());
}

TEST_CASE("a copy taken while the journal stays open holds its last commit, WAL included") {
  temp_dir dir;
  auto store = open_ok(dir / "p0.db");
  set_at(store, "alice", "1", 10);
  set_at(store, "bob", "2", 11);
  auto copy = dir / "it's a copy.db";
  REQUIRE_FALSE(store.copy_to(copy));
  // Commits after the copy reach the journal, not the copy.
  set_at(store, "alice", "3", 12);
  // A copy replaces what is at the target.
  REQUIRE_FALSE(store.copy_to(dir / "again.db"));
  REQUIRE_FALSE(store.copy_to(dir / "again.db"));
  auto copied = open_ok(copy);
  CHECK(copied.last_seq() == 2);
  CHECK(get_ok(copied, "alice", "count") == "1");
  CHECK(get_ok(copied, "bob", "count") == "2");
  auto positions = copied.positions();
  REQUIRE(positions);
  CHECK(*positions == std::map<uint64_t, uint64_t>{{0, 11}});
  // The copy is a journal of its own: commits to it leave the original alone.
  set_at(copied, "carol", "9", 13);
  CHECK(get_ok(store, "carol", "count") == std::nullopt);
  CHECK(get_ok(store, "alice", "count") == "3");
  CHECK(open_ok(dir / "again.db").last_seq() == 3);
}

TEST_CASE("an owner whose epoch another connection replaced may not commit any more") {
  temp_dir dir;
  auto file = dir / "p0.db";
  auto old_owner = open_ok(file);
  CHECK(old_owner.owner_epoch() == uint64_t{0});
  REQUIRE_FALSE(old_owner.set_owner_epoch(3));
  set_at(old_owner, "alice", "1", 10);
  // The partition moved back here under epoch 5 while the old incarnation still runs.
  auto new_owner = open_ok(file);
  CHECK(new_owner.owner_epoch() == uint64_t{3});
  REQUIRE_FALSE(new_owner.set_owner_epoch(5));
  auto batch = changes_of({set("alice", "count", "99")});
  auto err = old_owner.commit(batch);
  REQUIRE(err);
  CHECK(code_of(err) == errc::fenced);
  CHECK(describe(err).find("belongs to assignment epoch 5") != std::string::npos);
  CHECK(get_ok(new_owner, "alice", "count") == "1");
  set_at(new_owner, "alice", "2", 11);
  CHECK(get_ok(new_owner, "alice", "count") == "2");
  // A connection that never claimed the journal (a reader) is not fenced.
  auto reader = open_ok(file);
  set_at(reader, "bob", "1", 12);
}
