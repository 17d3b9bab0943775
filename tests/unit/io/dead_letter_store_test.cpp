// dead_letter_store: the SQLite journal of records whose processing failed. Each case checks
// what an operator relies on: every field comes back as it was added, a record is
// dead-lettered once however often it is replayed, queries return what they say, and a file
// that is not ours or cannot be written gives an error naming it and is left as it is.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <grp.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include "eddy/core/error.hpp"
#include "eddy/io/dead_letter_store.hpp"
#include "support/journal_support.hpp"
#include "support/temp_dir.hpp"

using namespace eddy;
using eddy::test::read_bytes;
using eddy::test::write_bytes;
namespace fs = std::filesystem;
using eddy::test::code_of;
using eddy::test::mentions;
using eddy::test::raw_db;
using eddy::test::temp_dir;

namespace {

/// The error of `x` as text, empty when it holds a value (doctest evaluates messages of
/// passing assertions too, with -s).
template <class T>
std::string failure_of(const caf::expected<T>& x) {
  return x ? std::string{} : describe(x.error());
}

std::unique_ptr<dead_letter_store> open_ok(const fs::path& file) {
  auto store = dead_letter_store::open(file);
  REQUIRE_MESSAGE(store, failure_of(store));
  return std::move(*store);
}

bool add_ok(dead_letter_store& store, const failed_record& r) {
  auto added = store.add(r);
  REQUIRE_MESSAGE(added, failure_of(added));
  return *added;
}

std::vector<failed_record> list_ok(const dead_letter_store& store, failed_record_query q = {}) {
  auto list = store.list(q);
  REQUIRE_MESSAGE(list, failure_of(list));
  return *list;
}

uint64_t count_ok(const dead_letter_store& store, const failed_record_query& q) {
  auto n = store.count(q);
  REQUIRE_MESSAGE(n, failure_of(n));
  return *n;
}

failed_record_query all() {
  failed_record_query q;
  q.pending_only = false;
  return q;
}

/// A record whose fields all differ from those of sample(j) for j != i.
failed_record sample(int i) {
  failed_record r;
  r.at_ms = 1700000000000 + i;
  r.job = "job-" + std::to_string(i % 2);
  r.op = "op-" + std::to_string(i % 3);
  r.partition = static_cast<uint32_t>(i);
  r.origin = (uint64_t{1} << 48) | static_cast<uint64_t>(i + 1);
  r.key = "key-" + std::to_string(i);
  r.record = R"({"n":)" + std::to_string(i) + "}";
  r.payload = std::string{"\0\x01payload-", 10} + std::to_string(i);
  r.error = "error " + std::to_string(i);
  r.attempts = static_cast<uint32_t>(i + 1);
  return r;
}

/// Checks that `got` holds what `want` held when it was added, `replayed` aside.
void check_same(const failed_record& got, const failed_record& want) {
  CHECK(got.at_ms == want.at_ms);
  CHECK(got.job == want.job);
  CHECK(got.op == want.op);
  CHECK(got.partition == want.partition);
  CHECK(got.origin == want.origin);
  CHECK(got.key == want.key);
  CHECK(got.record == want.record);
  CHECK(got.payload == want.payload);
  CHECK(got.error == want.error);
  CHECK(got.attempts == want.attempts);
}

std::vector<int64_t> ids_of(const std::vector<failed_record>& rs) {
  std::vector<int64_t> ids;
  for (const auto& r : rs) {
    ids.push_back(r.id);
  }
  return ids;
}

/// Nothing but `file` itself: no -wal, -shm or -journal file was left beside it.
void check_no_sidecars(const fs::path& file) {
  for (const char* suffix : {"-wal", "-shm", "-journal"}) {
    auto sidecar = file.string() + suffix;
    CHECK_MESSAGE(!fs::exists(sidecar), sidecar);
  }
}

/// What `dead_letter_store::open` answered.
struct open_outcome {
  bool ok = false;
  errc code = errc::none;
  std::string message;
};

open_outcome open_outcome_of(const fs::path& file) {
  auto store = dead_letter_store::open(file);
  if (store) {
    return {true, errc::none, ""};
  }
  auto code = store.error().category() == caf::atom("eddy")
                ? static_cast<errc>(store.error().code())
                : errc::none;
  return {false, code, describe(store.error())};
}

/// Opens `file` as a user whom file permissions stop: this process, or, when it runs as
/// root (which ignores permissions), a forked child that became "nobody". nullopt when the
/// child cannot drop root.
std::optional<open_outcome> open_unprivileged(const fs::path& file) {
  if (::geteuid() != 0) {
    return open_outcome_of(file);
  }
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string out = "skip";
    constexpr uid_t nobody = 65534;
    if (::setgroups(0, nullptr) == 0 && ::setgid(nobody) == 0 && ::setuid(nobody) == 0) {
      auto o = open_outcome_of(file);
      out = (o.ok ? "ok " : "error ") + std::to_string(static_cast<int>(o.code)) + " " + o.message;
    }
    auto written = ::write(fds[1], out.data(), out.size());
    ::_exit(written == static_cast<ssize_t>(out.size()) ? 0 : 1);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) {
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  if (out == "skip") {
    return std::nullopt;
  }
  open_outcome o;
  o.ok = out.starts_with("ok ");
  auto first = out.find(' ');
  auto second = out.find(' ', first + 1);
  REQUIRE(second != std::string::npos);
  o.code = static_cast<errc>(std::stoi(out.substr(first + 1, second - first - 1)));
  o.message = out.substr(second + 1);
  return o;
}

/// Opens `file` as an unprivileged user while its directory `dir` is read-only and checks
/// the refusal: io_failure naming the file and saying it must be writable. False when the
/// test cannot drop root (it is skipped then).
bool refused_in_readonly_dir(const fs::path& dir, const fs::path& file) {
  fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::others_read |
                         fs::perms::others_exec);
  auto outcome = open_unprivileged(file);
  fs::permissions(dir, fs::perms::owner_all);
  if (!outcome) {
    MESSAGE("skipped: running as root and cannot become nobody");
    return false;
  }
  CHECK(!outcome->ok);
  CHECK(outcome->code == errc::io_failure);
  CHECK(outcome->message.find(file.string()) != std::string::npos);
  CHECK(outcome->message.find("writable") != std::string::npos);
  return true;
}

/// Lets "nobody" reach `dir` (mkdtemp makes it 0700) when the test drops root.
void open_to_everyone(const fs::path& dir) {
  fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                         fs::perms::others_read | fs::perms::others_exec);
}

} // namespace

TEST_SUITE_BEGIN("dead_letter_store");

TEST_CASE("a dead letter is listed back with every field as it was added") {
  temp_dir dir;
  auto store = open_ok(dead_letter_store::path_in(dir.path()));
  auto first = sample(1);
  // Every bit of the origin and of the partition is kept, even where int64 turns negative.
  auto second = sample(2);
  second.origin = 0xFFFF'0000'0000'0001;
  second.partition = UINT32_MAX;
  second.attempts = UINT32_MAX;
  second.at_ms = -1;
  second.key = "clé \xF0\x9F\x94\x91";
  second.record = "line 1\nline 2";
  second.payload = std::string(100000, '\0') + "end";
  // Ignored by add: the store assigns the id and a new entry is pending.
  second.id = 77;
  second.replayed = true;
  CHECK(add_ok(*store, first));
  CHECK(add_ok(*store, second));
  auto list = list_ok(*store);
  REQUIRE(list.size() == 2);
  check_same(list[0], first);
  check_same(list[1], second);
  CHECK(list[0].id > 0);
  CHECK(list[1].id > list[0].id);
  CHECK(!list[0].replayed);
  CHECK(!list[1].replayed);
  CHECK(store->path() == dir / "deadletters.db");
}

TEST_CASE("an empty key, record, payload and error come back empty") {
  temp_dir dir;
  auto store = open_ok(dir / "deadletters.db");
  failed_record r;
  r.job = "j";
  r.op = "o";
  CHECK(add_ok(*store, r));
  auto list = list_ok(*store);
  REQUIRE(list.size() == 1);
  check_same(list[0], r);
}

TEST_CASE("a reopened dead-letter journal holds every entry and replayed mark") {
  temp_dir dir;
  auto file = dead_letter_store::path_in(dir.path());
  std::vector<int64_t> ids;
  {
    auto store = open_ok(file);
    for (int i = 0; i < 5; ++i) {
      REQUIRE(add_ok(*store, sample(i)));
    }
    ids = ids_of(list_ok(*store));
    REQUIRE(!store->mark_replayed({ids[1], ids[3]}));
  }
  auto store = open_ok(file);
  auto list = list_ok(*store, all());
  REQUIRE(list.size() == 5);
  CHECK(ids_of(list) == ids);
  for (int i = 0; i < 5; ++i) {
    CAPTURE(i);
    check_same(list[i], sample(i));
    CHECK(list[i].replayed == (i == 1 || i == 3));
  }
  // Ids are never reused, even after the newest entry was replayed.
  REQUIRE(add_ok(*store, sample(5)));
  CHECK(list_ok(*store).back().id > ids.back());
}

TEST_CASE("a record with the same job, operator, partition and origin is dead-lettered once") {
  temp_dir dir;
  auto file = dir / "deadletters.db";
  auto store = open_ok(file);
  auto r = sample(1);
  CHECK(add_ok(*store, r));
  // The replay after a crash fails again, later and with another text: nothing changes.
  auto again = r;
  again.at_ms += 1000;
  again.error = "failed again";
  again.attempts = 9;
  CHECK(!add_ok(*store, again));
  // A change in any one of the four fields makes another record.
  auto other_job = r;
  other_job.job = "other";
  auto other_op = r;
  other_op.op = "other";
  auto other_partition = r;
  other_partition.partition += 1;
  auto other_origin = r;
  other_origin.origin += 1;
  for (const auto& other : {other_job, other_op, other_partition, other_origin}) {
    CHECK(add_ok(*store, other));
  }
  auto list = list_ok(*store);
  REQUIRE(list.size() == 5);
  check_same(list[0], r);
  // A replayed entry still counts: its record must not come back as a new dead letter.
  REQUIRE(!store->mark_replayed({list[0].id}));
  store.reset();
  auto reopened = open_ok(file);
  CHECK(!add_ok(*reopened, again));
  CHECK(count_ok(*reopened, all()) == 5);
}

TEST_CASE("records of unknown origin are always added") {
  temp_dir dir;
  auto store = open_ok(dir / "deadletters.db");
  auto r = sample(1);
  r.origin = 0;
  CHECK(add_ok(*store, r));
  CHECK(add_ok(*store, r));
  auto list = list_ok(*store);
  REQUIRE(list.size() == 2);
  check_same(list[0], r);
  check_same(list[1], r);
  CHECK(list[0].id != list[1].id);
}

TEST_CASE("queries filter by job, operator and pending state, oldest first, up to the limit") {
  temp_dir dir;
  auto store = open_ok(dir / "deadletters.db");
  std::vector<failed_record> added;
  for (int i = 0; i < 12; ++i) {
    REQUIRE(add_ok(*store, sample(i)));
  }
  added = list_ok(*store);
  REQUIRE(added.size() == 12);
  std::set<int64_t> replayed = {added[0].id, added[5].id, added[6].id, added[11].id};
  REQUIRE(!store->mark_replayed({replayed.begin(), replayed.end()}));
  for (std::string job : {"", "job-0", "job-1", "no-such-job"}) {
    for (std::string op : {"", "op-0", "op-2", "no-such-op"}) {
      for (bool pending_only : {true, false}) {
        for (size_t limit : {SIZE_MAX, size_t{0}, size_t{1}, size_t{3}}) {
          failed_record_query q{job, op, pending_only, limit};
          CAPTURE(job);
          CAPTURE(op);
          CAPTURE(pending_only);
          CAPTURE(limit);
          std::vector<int64_t> want;
          for (const auto& r : added) {
            if ((job.empty() || r.job == job) && (op.empty() || r.op == op) &&
                !(pending_only && replayed.count(r.id) > 0) && want.size() < limit) {
              want.push_back(r.id);
            }
          }
          auto got = list_ok(*store, q);
          CHECK(ids_of(got) == want);
          CHECK(count_ok(*store, q) == want.size());
          for (const auto& r : got) {
            CHECK(r.replayed == (replayed.count(r.id) > 0));
          }
        }
      }
    }
  }
}

TEST_CASE("mark_replayed marks exactly the given ids and ignores unknown ones") {
  temp_dir dir;
  auto store = open_ok(dir / "deadletters.db");
  for (int i = 0; i < 4; ++i) {
    REQUIRE(add_ok(*store, sample(i)));
  }
  auto ids = ids_of(list_ok(*store));
  CHECK(!store->mark_replayed({}));
  CHECK(list_ok(*store).size() == 4);
  CHECK(!store->mark_replayed({ids[2], 999999, -1, 0}));
  CHECK(ids_of(list_ok(*store)) == std::vector<int64_t>{ids[0], ids[1], ids[3]});
  // Marking twice changes nothing more.
  CHECK(!store->mark_replayed({ids[2], ids[0]}));
  CHECK(ids_of(list_ok(*store)) == std::vector<int64_t>{ids[1], ids[3]});
  auto everything = list_ok(*store, all());
  REQUIRE(everything.size() == 4);
  for (size_t i = 0; i < 4; ++i) {
    CAPTURE(i);
    CHECK(everything[i].replayed == (i == 0 || i == 2));
    check_same(everything[i], sample(static_cast<int>(i)));
  }
}

TEST_CASE("the journal is created with its missing directories at <data-dir>/deadletters.db") {
  temp_dir dir;
  CHECK(dead_letter_store::path_in(dir / "data") == dir / "data" / "deadletters.db");
  auto file = dead_letter_store::path_in(dir / "a" / "b");
  REQUIRE(!fs::exists(dir / "a"));
  auto store = open_ok(file);
  CHECK(fs::is_regular_file(file));
  CHECK(store->path() == file);
  CHECK(list_ok(*store).empty());
  CHECK(count_ok(*store, all()) == 0);
}

TEST_CASE("two connections share the file: what one writes the other reads at once") {
  temp_dir dir;
  auto file = dir / "deadletters.db";
  // The running job and the `eddy deadletters` tool.
  auto job = open_ok(file);
  auto tool = open_ok(file);
  REQUIRE(add_ok(*job, sample(1)));
  auto seen = list_ok(*tool);
  REQUIRE(seen.size() == 1);
  check_same(seen[0], sample(1));
  CHECK(!add_ok(*tool, sample(1)));
  REQUIRE(!tool->mark_replayed({seen[0].id}));
  CHECK(list_ok(*job).empty());
}

TEST_CASE("concurrent adds from several threads each land once") {
  temp_dir dir;
  auto store = open_ok(dir / "deadletters.db");
  constexpr int threads = 4;
  constexpr int per_thread = 50;
  std::vector<std::thread> workers;
  std::vector<int> added(threads, 0);
  std::vector<int> failures(threads, 0);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        auto r = sample(t * per_thread + i);
        // Every record twice: the second add must be refused as a duplicate.
        for (int copy = 0; copy < 2; ++copy) {
          auto ok = store->add(r);
          if (!ok) {
            ++failures[t];
          } else if (*ok) {
            ++added[t];
          }
        }
      }
    });
  }
  for (auto& w : workers) {
    w.join();
  }
  for (int t = 0; t < threads; ++t) {
    CAPTURE(t);
    CHECK(failures[t] == 0);
    CHECK(added[t] == per_thread);
  }
  auto list = list_ok(*store);
  REQUIRE(list.size() == threads * per_thread);
  std::set<uint64_t> origins;
  for (const auto& r : list) {
    origins.insert(r.origin);
  }
  CHECK(origins.size() == list.size());
}

TEST_CASE("a file that is not SQLite is refused naming it and left byte for byte as it is") {
  temp_dir dir;
  std::string lines;
  for (int i = 0; i < 200; ++i) {
    lines += "line " + std::to_string(i) + ": this is a text file, not a journal\n";
  }
  for (const auto& bytes :
       {lines, std::string{"hello\n"}, std::string{"SQLite format 3\0", 16} + lines}) {
    CAPTURE(bytes.size());
    auto file = dir / "deadletters.db";
    write_bytes(file, bytes);
    auto store = dead_letter_store::open(file);
    REQUIRE(!store);
    CHECK(code_of(store.error()) == errc::corrupt_journal);
    CHECK(mentions(store.error(), file.string() + " is not a valid Eddy dead-letter journal"));
    CHECK(read_bytes(file) == bytes);
    check_no_sidecars(file);
  }
}

TEST_CASE("an SQLite database of another application is refused naming it and left as it is") {
  temp_dir dir;
  auto file = dir / "deadletters.db";
  {
    raw_db db{file};
    REQUIRE(db.exec("CREATE TABLE notes(text TEXT); INSERT INTO notes VALUES('mine')") ==
            SQLITE_OK);
  }
  auto before = read_bytes(file);
  auto store = dead_letter_store::open(file);
  REQUIRE(!store);
  CHECK(code_of(store.error()) == errc::corrupt_journal);
  CHECK(mentions(store.error(), file.string()));
  CHECK(mentions(store.error(), "another application"));
  CHECK(read_bytes(file) == before);
  check_no_sidecars(file);
  raw_db db{file};
  CHECK(db.scalar("SELECT count(*) FROM notes") == 1);
}

TEST_CASE("a file with our application_id but without our table is refused as corrupt") {
  temp_dir dir;
  auto file = dir / "deadletters.db";
  {
    raw_db db{file};
    auto sql = "PRAGMA application_id = " + std::to_string(dead_letter_application_id) +
               "; PRAGMA user_version = 1; CREATE TABLE other(x)";
    REQUIRE(db.exec(sql) == SQLITE_OK);
  }
  auto before = read_bytes(file);
  auto store = dead_letter_store::open(file);
  REQUIRE(!store);
  CHECK(code_of(store.error()) == errc::corrupt_journal);
  CHECK(mentions(store.error(), file.string() + " is not a valid Eddy dead-letter journal"));
  CHECK(mentions(store.error(), "dead_letters"));
}

TEST_CASE("a dead-letter journal of a newer format is refused with state_mismatch") {
  temp_dir dir;
  auto file = dir / "deadletters.db";
  {
    auto store = open_ok(file);
    REQUIRE(add_ok(*store, sample(1)));
  }
  {
    raw_db db{file};
    REQUIRE(db.exec("PRAGMA user_version = " + std::to_string(dead_letter_format_version + 1)) ==
            SQLITE_OK);
  }
  auto before = read_bytes(file);
  auto store = dead_letter_store::open(file);
  REQUIRE(!store);
  CHECK(code_of(store.error()) == errc::state_mismatch);
  CHECK(mentions(store.error(), file.string()));
  CHECK(mentions(store.error(), "newer Eddy (format 2"));
  CHECK(read_bytes(file) == before);
}

TEST_CASE("a data directory that cannot be created gives io_failure naming the file") {
  temp_dir dir;
  auto blocker = dir / "regular-file";
  write_bytes(blocker, "not a directory");
  auto file = dead_letter_store::path_in(blocker / "data");
  auto store = dead_letter_store::open(file);
  REQUIRE(!store);
  CHECK(code_of(store.error()) == errc::io_failure);
  CHECK(mentions(store.error(), file.string()));
  CHECK(read_bytes(blocker) == "not a directory");
}

TEST_CASE("a read-only data directory gives io_failure naming the file and creates nothing") {
  temp_dir dir;
  open_to_everyone(dir.path());
  auto data = dir / "data";
  fs::create_directories(data);
  auto file = dead_letter_store::path_in(data);
  if (!refused_in_readonly_dir(data, file)) {
    return;
  }
  CHECK(fs::is_empty(data));
}

TEST_CASE("a journal in a read-only directory is refused naming it and left as it is") {
  temp_dir dir;
  open_to_everyone(dir.path());
  auto data = dir / "data";
  auto file = dead_letter_store::path_in(data);
  {
    auto store = open_ok(file);
    REQUIRE(add_ok(*store, sample(1)));
  }
  check_no_sidecars(file);
  auto before = read_bytes(file);
  // The file itself stays writable: only the directory (where the WAL must go) is not.
  fs::permissions(file, fs::perms::all & ~(fs::perms::owner_exec | fs::perms::group_exec |
                                           fs::perms::others_exec));
  if (!refused_in_readonly_dir(data, file)) {
    return;
  }
  CHECK(read_bytes(file) == before);
  check_no_sidecars(file);
  auto store = open_ok(file);
  auto list = list_ok(*store);
  REQUIRE(list.size() == 1);
  check_same(list[0], sample(1));
}

TEST_CASE("a read-only journal file is refused naming it and its entries are there once fixed") {
  temp_dir dir;
  open_to_everyone(dir.path());
  auto data = dir / "data";
  auto file = dead_letter_store::path_in(data);
  {
    auto store = open_ok(file);
    REQUIRE(add_ok(*store, sample(1)));
  }
  auto before = read_bytes(file);
  // The directory is writable for everyone: only the file is not.
  fs::permissions(data, fs::perms::all);
  fs::permissions(file, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  auto outcome = open_unprivileged(file);
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  if (!outcome) {
    MESSAGE("skipped: running as root and cannot become nobody");
    return;
  }
  CHECK(!outcome->ok);
  CHECK(outcome->code == errc::io_failure);
  CHECK(outcome->message.find(file.string() + " is readonly") != std::string::npos);
  CHECK(outcome->message.find("fix its permissions") != std::string::npos);
  CHECK(read_bytes(file) == before);
  check_no_sidecars(file);
  auto store = open_ok(file);
  auto list = list_ok(*store);
  REQUIRE(list.size() == 1);
  check_same(list[0], sample(1));
}

TEST_SUITE_END();
