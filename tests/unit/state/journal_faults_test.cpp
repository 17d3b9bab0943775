// journal_store under faults: damaged files, missing permissions, a full disk, a crash and
// a second connection holding the lock. Each case checks what an operator relies on: a clear
// error that names the file and the cause, and that committed data is never lost or reset.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <sqlite3.h>
#include <unistd.h>

#include "eddy/core/error.hpp"
#include "eddy/state/journal_store.hpp"
#include "support/journal_support.hpp"
#include "support/temp_dir.hpp"

using namespace eddy;
namespace fs = std::filesystem;
using namespace eddy::test;

namespace {

std::string key_name(int i) {
  return "key-" + std::to_string(i);
}

/// The value batch `i` of fill() gives its key: large enough to spread the journal over many
/// pages (and overflow pages).
std::string value_of(int i) {
  return std::to_string(i) + std::string(300, static_cast<char>('a' + i % 26));
}

/// Commits `keys` batches (batch i sets key-i and moves channel 0 to i), then closes the store.
/// Closing the last connection checkpoints the WAL into the main file and deletes the WAL, so
/// that the main file alone holds every committed byte afterwards.
void fill(const fs::path& file, int keys) {
  {
    auto store = open_ok(file);
    for (int i = 1; i <= keys; ++i) {
      auto batch = changes_of({set(key_name(i), "count", value_of(i))});
      batch.positions = {{0, static_cast<uint64_t>(i)}};
      commit_ok(store, batch);
    }
  }
  REQUIRE_MESSAGE(!fs::exists(file.string() + "-wal"), "the WAL was not checkpointed on close");
}

/// Checks that a store holds exactly what fill(file, keys) committed.
void check_filled(journal_store& store, int keys) {
  CHECK(store.last_seq() == static_cast<uint64_t>(keys));
  CHECK(positions_ok(store) == std::map<uint64_t, uint64_t>{{0, keys}});
  CHECK(journal_length_ok(store) == static_cast<uint64_t>(keys));
  for (int i = 1; i <= keys; ++i) {
    CAPTURE(i);
    CHECK(get_ok(store, key_name(i), "count") == value_of(i));
  }
}

/// Opens `file` and reads everything a recovering partition reads (all keys of fill(), their
/// history, positions, timers, counts); returns the first error, none if all of it worked.
caf::error first_error_reading(const fs::path& file, int keys) {
  auto store = journal_store::open(file, test_meta(), durability::process);
  if (!store) {
    return store.error();
  }
  if (auto n = store->key_count(); !n) {
    return n.error();
  }
  if (auto n = store->journal_length(); !n) {
    return n.error();
  }
  if (auto p = store->positions(); !p) {
    return p.error();
  }
  if (auto t = store->due_timers(0, 1000000, 1000); !t) {
    return t.error();
  }
  for (int i = 1; i <= keys; ++i) {
    if (auto v = store->get(key_name(i), "count"); !v) {
      return v.error();
    }
    if (auto h = store->history(key_name(i), 1000); !h) {
      return h.error();
    }
  }
  return {};
}

/// Checks that `err` reports `file` as a corrupt journal, in words an operator can act on.
void check_corrupt(const caf::error& err, const fs::path& file) {
  REQUIRE(err);
  CHECK(code_of(err) == errc::corrupt_journal);
  CHECK(mentions(err, file.string() + " is not a valid Eddy journal"));
  CHECK(mentions(err, "--data-dir"));
}

bool running_as_root() {
  return ::geteuid() == 0;
}

} // namespace

TEST_SUITE_BEGIN("journal_store faults");

TEST_CASE("a truncated journal is reported as corrupt and left byte for byte as it is") {
  constexpr int keys = 100;
  for (bool to_100_bytes : {false, true}) {
    CAPTURE(to_100_bytes);
    temp_dir dir;
    auto file = dir / "p.db";
    fill(file, keys);
    auto full_size = fs::file_size(file);
    auto size = to_100_bytes ? uintmax_t{100} : full_size / 2;
    CAPTURE(size);
    fs::resize_file(file, size);
    auto backup = dir / "backup.db";
    fs::copy_file(file, backup);
    // Twice: a restart after the failure must fail the same way, not adopt a reset file.
    for (int attempt = 1; attempt <= 2; ++attempt) {
      CAPTURE(attempt);
      auto err = first_error_reading(file, keys);
      REQUIRE_MESSAGE(err, "a truncated journal was read without an error");
      check_corrupt(err, file);
      CHECK(fs::file_size(file) == size);
      CHECK(read_bytes(file) == read_bytes(backup));
    }
  }
}

TEST_CASE("a journal with a page of garbage fails reading or committing, and is not reset") {
  constexpr int keys = 100;
  temp_dir dir;
  auto file = dir / "p.db";
  fill(file, keys);
  auto bytes = read_bytes(file);
  constexpr size_t page_size = 4096;
  REQUIRE(bytes.size() >= 8 * page_size);
  // Two whole pages in the middle of the file: b-tree pages of the state or the journal.
  auto first_page = bytes.size() / page_size / 2;
  std::mt19937 rng{7};
  for (size_t i = first_page * page_size; i < (first_page + 2) * page_size; ++i) {
    bytes[i] = static_cast<char>(rng());
  }
  write_bytes(file, bytes);
  auto err = first_error_reading(file, keys);
  if (!err) {
    // Nothing read the damaged pages; writing next to them must notice them.
    auto store = open_ok(file);
    auto batch = changes_of({set(key_name(keys / 2), "count", "new")});
    batch.positions = {{0, keys + 1}};
    err = store.commit(batch);
  }
  REQUIRE_MESSAGE(err, "a journal with garbage pages was read and written without an error");
  check_corrupt(err, file);
  CHECK(read_bytes(file) == bytes);
}

TEST_CASE("a file that is not SQLite is refused and left as it is") {
  temp_dir dir;
  std::string lines;
  for (int i = 0; i < 200; ++i) {
    lines += "line " + std::to_string(i) + ": this is a text file, not a journal\n";
  }
  struct variant {
    std::string name;
    std::string bytes;
  };
  std::vector<variant> variants = {
    {"text", lines},
    {"short text", "hello\n"},
    {"forged header", std::string{"SQLite format 3\0", 16} + lines},
  };
  for (const auto& v : variants) {
    CAPTURE(v.name);
    auto file = dir / (v.name + ".db");
    write_bytes(file, v.bytes);
    auto store = journal_store::open(file, test_meta(), durability::process);
    REQUIRE(!store);
    check_corrupt(store.error(), file);
    CHECK(read_bytes(file) == v.bytes);
    CHECK(!fs::exists(file.string() + "-wal"));
  }
}

namespace {

/// Opens `file` and commits `batch`: the first error on the way, if any.
caf::error open_and_commit(const fs::path& file, const commit_batch& batch) {
  auto store = journal_store::open(file, test_meta(), durability::process);
  return store ? store->commit(batch) : store.error();
}

/// The error a journal that cannot be written must give: io_failure, naming the file.
void check_readonly_error(const caf::error& err, const fs::path& file) {
  CHECK(code_of(err) == errc::io_failure);
  CHECK(mentions(err, file.string()));
  CHECK(mentions(err, "readonly"));
}

} // namespace

TEST_CASE("an existing journal in a read-only directory fails with io_failure naming it") {
  if (running_as_root()) {
    MESSAGE("skipped: root ignores directory permissions, chmod 0555 cannot stop it");
    return;
  }
  temp_dir dir;
  auto data = dir / "data";
  auto file = data / "p.db";
  fill(file, 10);
  auto before = read_bytes(file);
  fs::permissions(data, fs::perms::owner_read | fs::perms::owner_exec);
  // Reading may work without a WAL; writing needs one, and the directory refuses it.
  auto err = open_and_commit(file, changes_of({set("key-1", "count", "new")}));
  fs::permissions(data, fs::perms::owner_all);
  REQUIRE_MESSAGE(err, "a journal in a read-only directory was written without an error");
  check_readonly_error(err, file);
  CHECK(read_bytes(file) == before);
  auto reopened = open_ok(file);
  check_filled(reopened, 10);
}

TEST_CASE("a read-only journal file fails clearly and its data is there once writable again") {
  if (running_as_root()) {
    MESSAGE("skipped: root ignores file permissions, chmod 0444 cannot stop it");
    return;
  }
  temp_dir dir;
  auto file = dir / "p.db";
  fill(file, 10);
  auto before = read_bytes(file);
  fs::permissions(file, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  auto batch = changes_of({set("key-1", "count", "new")});
  batch.positions = {{0, 11}};
  auto err = open_and_commit(file, batch);
  REQUIRE_MESSAGE(err, "a read-only journal was written without an error");
  check_readonly_error(err, file);
  CHECK(read_bytes(file) == before);
  // The operator fixes the permissions of the journal: everything committed is there.
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  auto store = open_ok(file);
  check_filled(store, 10);
}

// SQLite falls back to a read-only connection for a 0444 file, whose first read would
// create -wal and -shm files with the journal's 0444 mode; they would keep the journal
// read-only after the operator restored its mode. open() refuses such a connection first.
TEST_CASE("a journal made writable again after a read-only start accepts commits") {
  if (running_as_root()) {
    MESSAGE("skipped: root ignores file permissions, chmod 0444 cannot stop it");
    return;
  }
  temp_dir dir;
  auto file = dir / "p.db";
  fill(file, 10);
  fs::permissions(file, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  {
    auto store = journal_store::open(file, test_meta(), durability::process);
    if (store) {
      CHECK(store->commit(changes_of({set("key-1", "count", "new")})));
    }
  }
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  auto store = open_ok(file);
  auto batch = changes_of({set("key-1", "count", "new")});
  batch.positions = {{0, 11}};
  auto err = store.commit(batch);
  CHECK_MESSAGE(!err, "a journal made writable again still fails: " << describe(err));
  CHECK(get_ok(store, "key-1", "count") == (err ? value_of(1) : "new"));
  for (const char* suffix : {"-wal", "-shm"}) {
    auto sidecar = fs::path{file.string() + suffix};
    CAPTURE(sidecar);
    if (fs::exists(sidecar)) {
      CHECK((fs::status(sidecar).permissions() & fs::perms::owner_write) != fs::perms::none);
    }
  }
}

TEST_CASE("a full disk fails the commit with disk_full and rolls it back entirely") {
  temp_dir dir;
  auto file = dir / "p.db";
  auto store = open_ok(file);
  auto* db = store.native_handle();
  for (int i = 1; i <= 3; ++i) {
    auto batch = changes_of({set(key_name(i), "count", value_of(i))});
    batch.positions = {{0, static_cast<uint64_t>(i)}};
    commit_ok(store, batch);
  }
  // SQLite refuses to grow the database beyond max_page_count with SQLITE_FULL, the very
  // result code it returns when write() fails with ENOSPC on a full file system; both take
  // the same path through journal_store.
  auto pages = scalar_of(db, "PRAGMA page_count");
  REQUIRE(scalar_of(db, "PRAGMA max_page_count = " + std::to_string(pages + 8)) == pages + 8);
  // Batches of several large changes: the disk fills up in the middle of one.
  auto big_batch = [](int n) {
    commit_batch batch;
    for (int k = 0; k < 4; ++k) {
      batch.changes.push_back(set(key_name(n), "part-" + std::to_string(k),
                                  std::string(3000, static_cast<char>('A' + k))));
    }
    batch.positions = {{0, static_cast<uint64_t>(n)}, {1, static_cast<uint64_t>(n)}};
    batch.timers_added = {{0, n, key_name(n), "flush"}};
    return batch;
  };
  caf::error err;
  int n = 3;
  while (n < 1000) {
    ++n;
    err = store.commit(big_batch(n));
    if (err) {
      break;
    }
  }
  REQUIRE_MESSAGE(err, "max_page_count never made a commit fail");
  CAPTURE(n);
  CHECK(code_of(err) == errc::disk_full);
  CHECK(mentions(err, "disk full"));
  CHECK(mentions(err, file.string()));
  // Nothing of batch n is visible: it is the state of batch n - 1.
  auto last_ok = static_cast<uint64_t>(n - 1);
  CHECK(store.last_seq() == 3 + 4 * (last_ok - 3));
  auto positions = positions_ok(store);
  CHECK(positions[0] == last_ok);
  CHECK(get_ok(store, key_name(n), "part-0") == std::nullopt);
  CHECK(history_ok(store, key_name(n)).empty());
  CHECK(due_ok(store, 0, n).size() == last_ok - 3);
  CHECK(journal_length_ok(store) == store.last_seq());

  // Space is freed: the same batch commits, and everything before it is still there.
  REQUIRE(scalar_of(db, "PRAGMA max_page_count = 1000000") == 1000000);
  commit_ok(store, big_batch(n));
  auto last = store.last_seq();
  CHECK(last == 3 + 4 * (static_cast<uint64_t>(n) - 3));
  store = open_ok(file);
  CHECK(store.last_seq() == last);
  CHECK(positions_ok(store) == std::map<uint64_t, uint64_t>{{0, n}, {1, n}});
  for (int i = 1; i <= 3; ++i) {
    CHECK(get_ok(store, key_name(i), "count") == value_of(i));
  }
  for (int i = 4; i <= n; ++i) {
    CAPTURE(i);
    CHECK(get_ok(store, key_name(i), "part-3") == std::string(3000, 'D'));
    CHECK(history_ok(store, key_name(i)).size() == 4);
  }
  CHECK(due_ok(store, 0, n).size() == static_cast<size_t>(n - 3));
  CHECK(journal_length_ok(store) == last);
}

TEST_CASE("every commit is recovered from the WAL after a close or a crash without checkpoint") {
  constexpr int batches = 40;
  temp_dir dir;
  auto file = dir / "p.db";
  auto crashed = dir / "crashed";
  fs::create_directories(crashed);
  auto check_all = [&](journal_store& store) {
    CHECK(store.last_seq() == 2 * batches);
    CHECK(journal_length_ok(store) == 2 * batches);
    CHECK(positions_ok(store) ==
          std::map<uint64_t, uint64_t>{{0, batches}, {1, 2 * batches}, {7, 1}});
    for (int i = 1; i <= batches; ++i) {
      CAPTURE(i);
      CHECK(get_ok(store, key_name(i), "count") == value_of(i));
      CHECK(get_ok(store, "total", "sum") == std::to_string(batches));
    }
    CHECK(history_ok(store, "total").size() == batches);
    CHECK(due_ok(store, 1, 1000000).size() == batches);
  };
  {
    auto store = open_ok(file);
    // No checkpoint at all: neither automatic ones nor the one on close.
    REQUIRE(sqlite3_exec(store.native_handle(), "PRAGMA wal_autocheckpoint = 0", nullptr, nullptr,
                         nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_db_config(store.native_handle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1,
                              nullptr) == SQLITE_OK);
    for (int i = 1; i <= batches; ++i) {
      auto batch = changes_of(
        {set(key_name(i), "count", value_of(i)), set("total", "sum", std::to_string(i))});
      batch.positions = {{0, static_cast<uint64_t>(i)}, {1, static_cast<uint64_t>(2 * i)}};
      if (i == 1) {
        batch.positions.emplace_back(7, 1);
      }
      batch.timers_added = {{1, 1000 * i, key_name(i), "window"}};
      commit_ok(store, batch);
    }
    // A crash now: copy the files as they are on disk while the store is open.
    REQUIRE(fs::exists(file.string() + "-wal"));
    fs::copy_file(file, crashed / "p.db");
    fs::copy_file(file.string() + "-wal", crashed / "p.db-wal");
  }
  REQUIRE(fs::exists(file.string() + "-wal"));
  CHECK(fs::file_size(file.string() + "-wal") > 0);
  SUBCASE("closed without checkpoint") {
    auto store = open_ok(file);
    check_all(store);
  }
  SUBCASE("killed") {
    auto store = open_ok(crashed / "p.db");
    check_all(store);
  }
}

TEST_CASE("compaction followed by a reopen keeps the newest changes per key and last_seq") {
  temp_dir dir;
  auto file = dir / "p.db";
  uint64_t last = 0;
  {
    auto store = open_ok(file);
    for (int i = 1; i <= 6; ++i) {
      std::vector<state_change> changes = {set("alice", "count", std::to_string(i))};
      if (i <= 1) {
        changes.push_back(set("bob", "count", std::to_string(i)));
      }
      if (i % 2 == 0) {
        changes.push_back(set("carol", "count", std::to_string(i)));
      }
      auto batch = changes_of(std::move(changes));
      batch.positions = {{0, static_cast<uint64_t>(i)}};
      commit_ok(store, batch);
    }
    // The newest change of the journal is a clear, which compaction may drop as the newest
    // entry of carol only when keeping 0; last_seq must survive either way.
    commit_ok(store, changes_of({clear("carol", "count")}));
    last = store.last_seq();
    CHECK(last == 6 + 1 + 3 + 1);
    auto err = store.compact(2);
    REQUIRE_MESSAGE(!err, describe(err));
  }
  auto check_compacted = [&](journal_store& store) {
    CHECK(store.last_seq() == last);
    CHECK(journal_length_ok(store) == 2 + 1 + 2);
    auto alice = history_ok(store, "alice");
    REQUIRE(alice.size() == 2);
    CHECK(alice[0].value == "6");
    CHECK(alice[1].value == "5");
    auto bob = history_ok(store, "bob");
    REQUIRE(bob.size() == 1);
    CHECK(bob[0].value == "1");
    auto carol = history_ok(store, "carol");
    REQUIRE(carol.size() == 2);
    CHECK(carol[0].seq == last);
    CHECK(carol[0].value == std::nullopt);
    CHECK(carol[1].value == "6");
    CHECK(get_ok(store, "alice", "count") == "6");
    CHECK(get_ok(store, "bob", "count") == "1");
    CHECK(get_ok(store, "carol", "count") == std::nullopt);
    CHECK(positions_ok(store) == std::map<uint64_t, uint64_t>{{0, 6}});
  };
  {
    auto store = open_ok(file);
    check_compacted(store);
    // Keeping nothing drops the newest entry of the journal; reopen once more.
    auto err = store.compact(0);
    REQUIRE_MESSAGE(!err, describe(err));
    CHECK(journal_length_ok(store) == 0);
  }
  auto store = open_ok(file);
  CHECK(store.last_seq() == last);
  CHECK(get_ok(store, "alice", "count") == "6");
  commit_ok(store, changes_of({set("dave", "count", "1")}));
  CHECK(history_ok(store, "dave").at(0).seq == last + 1);
}

TEST_CASE("a second connection's write lock fails a commit within the busy timeout") {
  using clock = std::chrono::steady_clock;
  temp_dir dir;
  auto file = dir / "p.db";
  auto store = open_ok(file);
  auto batch = changes_of({set("alice", "count", "1")});
  batch.positions = {{0, 1}};
  commit_ok(store, batch);
  raw_db other{file};
  REQUIRE(other.exec("BEGIN IMMEDIATE") == SQLITE_OK);
  REQUIRE(other.exec("INSERT INTO positions(channel, seq) VALUES(5, 99)") == SQLITE_OK);

  auto next = changes_of({set("alice", "count", "2"), set("bob", "count", "1")});
  next.positions = {{0, 2}};
  auto start = clock::now();
  auto err = store.commit(next);
  auto waited = clock::now() - start;
  REQUIRE_MESSAGE(err, "a commit succeeded while another connection held the write lock");
  CHECK(code_of(err) == errc::io_failure);
  CHECK(mentions(err, file.string()));
  CHECK(mentions(err, "locked"));
  CHECK(mentions(err, "another connection holds its lock"));
  // It waited for the lock, but not much longer than the busy timeout.
  CHECK(waited >= std::chrono::milliseconds{journal_busy_timeout_ms / 2});
  CHECK(waited < std::chrono::milliseconds{journal_busy_timeout_ms + 2000});
  // Readers are not blocked (WAL) and see neither the failed batch nor the other's writes.
  CHECK(store.last_seq() == 1);
  CHECK(get_ok(store, "alice", "count") == "1");
  CHECK(get_ok(store, "bob", "count") == std::nullopt);
  CHECK(positions_ok(store) == std::map<uint64_t, uint64_t>{{0, 1}});

  REQUIRE(other.exec("ROLLBACK") == SQLITE_OK);
  commit_ok(store, next);
  CHECK(store.last_seq() == 3);

  // A lock released while the commit waits for it does not fail the commit.
  REQUIRE(other.exec("BEGIN IMMEDIATE") == SQLITE_OK);
  std::atomic<int> released{-1};
  std::thread holder{[&] {
    std::this_thread::sleep_for(std::chrono::milliseconds{journal_busy_timeout_ms / 10});
    released = other.exec("COMMIT");
  }};
  auto third = changes_of({set("carol", "count", "1")});
  third.positions = {{0, 3}};
  err = store.commit(third);
  holder.join();
  CHECK(released == SQLITE_OK);
  CHECK_MESSAGE(!err, describe(err));

  store = open_ok(file);
  CHECK(store.last_seq() == 4);
  CHECK(get_ok(store, "alice", "count") == "2");
  CHECK(get_ok(store, "bob", "count") == "1");
  CHECK(get_ok(store, "carol", "count") == "1");
  CHECK(positions_ok(store) == std::map<uint64_t, uint64_t>{{0, 3}});
}

TEST_SUITE_END();
