// Supervision end to end: real jobs with durable state whose user code throws on chosen
// records or at chosen moments. Each test compares the output with what a fault-free run
// computes from the same input (computed here, not by the engine), and lists the dead
// letters it expects exactly.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <csignal>
#include <sys/resource.h>

#include "eddy/io/dead_letter_store.hpp"
#include "support.hpp"

namespace {

using eddy::test::temp_dir;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

struct visit {
  std::string user;
  int64_t n = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(visit, user, n)

struct user_count {
  std::string user;
  int64_t count = 0;
  friend bool operator==(const user_count&, const user_count&) = default;
  friend bool operator<(const user_count& a, const user_count& b) {
    return a.user != b.user ? a.user < b.user : a.count < b.count;
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(user_count, user, count)

/// Visit n's user: 37 users, "evil" every 200th visit.
std::string user_of(int64_t n) {
  return n % 200 == 199 ? "evil" : "u" + std::to_string((n * 7919) % 37);
}

/// Writes visits 0..count-1 to `path`.
void write_visits(const std::filesystem::path& path, int64_t count) {
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  for (int64_t n = 0; n < count; ++n) {
    out << nlohmann::json(visit{user_of(n), n}).dump() << '\n';
  }
}

/// What a fault-free keyed count emits for visits 0..count-1 without those in `skipped`
/// and without the users in `users_out`: every count 1..c per user. Sorted.
std::vector<user_count> reference(int64_t count, const std::set<int64_t>& skipped = {},
                                  const std::set<std::string>& users_out = {}) {
  std::map<std::string, int64_t> counts;
  std::vector<user_count> result;
  for (int64_t n = 0; n < count; ++n) {
    auto u = user_of(n);
    if (skipped.contains(n) || users_out.contains(u)) {
      continue;
    }
    result.push_back(user_count{u, ++counts[u]});
  }
  std::sort(result.begin(), result.end());
  return result;
}

std::vector<user_count> read_counts(const std::filesystem::path& path) {
  std::vector<user_count> result;
  for (const auto& l : eddy::test::read_lines(path)) {
    result.push_back(nlohmann::json::parse(l).get<user_count>());
  }
  std::sort(result.begin(), result.end());
  return result;
}

/// Test options: durable state, fast backoff, a long window.
eddy::runtime_options supervised(const temp_dir& dir) {
  auto opts = eddy::test::test_options(dir);
  opts.state.level = eddy::durability::process;
  opts.supervision.backoff_ms = 1;
  opts.supervision.backoff_max_ms = 20;
  opts.supervision.window_s = 600;
  return opts;
}

/// The job's dead letters, oldest first.
std::vector<eddy::failed_record> dead_letters(const temp_dir& dir, const std::string& job) {
  auto store = eddy::dead_letter_store::open(eddy::dead_letter_store::path_in(dir.path()));
  REQUIRE_MESSAGE(store, (store ? "" : eddy::describe(store.error())));
  eddy::failed_record_query q;
  q.job = job;
  auto list = (*store)->list(q);
  REQUIRE(list);
  return *list;
}

/// A keyed count of visits from a JSONL file to a JSONL file; `fn` runs first on every
/// visit (and may throw). Returns the job's error; `handle` gets the job.
caf::error run_count(const eddy::runtime_options& opts, const temp_dir& dir,
                     const std::string& job_name, std::function<void(const visit&)> fn,
                     std::shared_ptr<eddy::job_handle>* handle = nullptr) {
  eddy::engine eng{opts, eddy::test::test_common(dir)};
  eddy::job_builder jb{job_name};
  jb.partitions(4);
  jb.source("visits", eddy::jsonl_source<visit>(dir / "visits.jsonl"))
    .key_by([](const visit& v) { return v.user; })
    .process<user_count>("count",
                         [fn](const visit& v, auto& ctx, auto& col) {
                           auto& c = ctx.template value<int64_t>("n");
                           c.set(c.get_or(0) + 1);
                           fn(v);
                           col.emit(user_count{ctx.key(), c.get()});
                         })
    .sink("out", eddy::jsonl_sink<user_count>(dir / "counts.jsonl"));
  auto graph = jb.build();
  REQUIRE(graph);
  auto job = eng.start(std::move(*graph));
  if (!job) {
    return job.error();
  }
  if (handle != nullptr) {
    *handle = *job;
  }
  return eddy::test::finish(**job);
}

uint64_t total_restarts(const eddy::job_handle& job) {
  uint64_t total = 0;
  for (const auto& a : job.actors()) {
    total += a.metrics->restarts;
  }
  return total;
}

} // namespace

TEST_SUITE("supervision") {

  TEST_CASE("a poison record goes to the dead-letter journal after R attempts; everything "
            "else equals a fault-free run") {
    temp_dir dir;
    constexpr int64_t count = 20'000;
    write_visits(dir / "visits.jsonl", count);
    const std::set<int64_t> poison{1'500, 12'000};
    std::shared_ptr<eddy::job_handle> job;
    auto err = run_count(
      supervised(dir), dir, "poison",
      [&poison](const visit& v) {
        if (poison.contains(v.n)) {
          throw std::runtime_error("bad visit " + std::to_string(v.n));
        }
      },
      &job);
    REQUIRE_MESSAGE(!err, eddy::describe(err));

    // The state changes of the failed attempts were rolled back: counts skip the poison.
    CHECK((read_counts(dir / "counts.jsonl") == reference(count, poison)));

    auto letters = dead_letters(dir, "poison");
    REQUIRE(letters.size() == poison.size());
    std::set<int64_t> seen;
    for (const auto& l : letters) {
      auto v = nlohmann::json::parse(l.record).get<visit>();
      INFO("dead letter: ", l.record, " error: ", l.error);
      CHECK(poison.contains(v.n));
      seen.insert(v.n);
      CHECK(l.op == "count");
      CHECK(l.partition < 4);
      CHECK(l.key == v.user);
      CHECK(l.error == "bad visit " + std::to_string(v.n));
      CHECK(l.attempts == 3);
      CHECK(l.origin != 0);
      CHECK(!l.replayed);
      CHECK(!l.payload.empty());
    }
    CHECK(seen == poison);
    // Three attempts per poison record, each ending in a restart of the job.
    CHECK(total_restarts(*job) == 6);
    CHECK(job->restarts() >= 3);
    CHECK(job->restarts() <= 6);
    for (const auto& a : job->actors()) {
      INFO(a.name);
      CHECK(a.metrics->status == eddy::actor_status::finished);
      CHECK(a.failure.empty());
    }
  }

  TEST_CASE("dead letters re-processed with --supervision.replay-dead-letters complete the "
            "result exactly once; one that still fails stays in the journal") {
    temp_dir dir;
    constexpr int64_t count = 6'000;
    write_visits(dir / "visits.jsonl", count);
    const std::set<int64_t> poison{700, 4'100, 5'000};
    // A bug that the second run has fixed, except for visit 5000.
    auto fixed = std::make_shared<std::atomic<bool>>(false);
    auto fn = [&poison, fixed](const visit& v) {
      if ((!*fixed && poison.contains(v.n)) || v.n == 5'000) {
        throw std::runtime_error("bug on visit " + std::to_string(v.n));
      }
    };
    auto opts = supervised(dir);
    auto err = run_count(opts, dir, "replay", fn);
    REQUIRE_MESSAGE(!err, eddy::describe(err));
    CHECK((read_counts(dir / "counts.jsonl") == reference(count, poison)));
    REQUIRE(dead_letters(dir, "replay").size() == 3);

    // The fixed job resumes with nothing new to read and re-processes the dead letters.
    *fixed = true;
    opts.state.reset = false;
    opts.supervision.replay_dead_letters = true;
    for (int run = 2; run <= 3; ++run) {
      CAPTURE(run);
      std::shared_ptr<eddy::job_handle> job;
      err = run_count(opts, dir, "replay", fn, &job);
      REQUIRE_MESSAGE(!err, eddy::describe(err));
      // Replayed once: the third run changes nothing.
      CHECK((read_counts(dir / "counts.jsonl") == reference(count, {5'000})));
      auto pending = dead_letters(dir, "replay");
      REQUIRE(pending.size() == 1);
      CHECK(nlohmann::json::parse(pending[0].record).get<visit>().n == 5'000);
      // Visit 5000 failed three more times when re-processed.
      CHECK(total_restarts(*job) == 3);
    }
    auto store = eddy::dead_letter_store::open(eddy::dead_letter_store::path_in(dir.path()));
    REQUIRE(store);
    eddy::failed_record_query all;
    all.job = "replay";
    all.pending_only = false;
    auto listed = (*store)->list(all);
    REQUIRE(listed);
    REQUIRE(listed->size() == 3);
    for (const auto& l : *listed) {
      CHECK(l.replayed == (nlohmann::json::parse(l.record).get<visit>().n != 5'000));
    }
  }

  TEST_CASE("failures at chosen moments are restarted from the journals and the output equals "
            "a fault-free run exactly") {
    temp_dir dir;
    constexpr int64_t count = 60'000;
    write_visits(dir / "visits.jsonl", count);
    // Calls of the keyed function, over every incarnation: the 15000th, 30000th and 45000th
    // throw, each once, whatever record they fall on.
    auto calls = std::make_shared<std::atomic<int64_t>>(0);
    std::shared_ptr<eddy::job_handle> job;
    auto err = run_count(
      supervised(dir), dir, "transient",
      [calls](const visit&) {
        auto c = ++*calls;
        if (c == 15'000 || c == 30'000 || c == 45'000) {
          throw std::runtime_error("transient failure at call " + std::to_string(c));
        }
      },
      &job);
    REQUIRE_MESSAGE(!err, eddy::describe(err));
    CHECK((read_counts(dir / "counts.jsonl") == reference(count)));
    CHECK(dead_letters(dir, "transient").empty());
    CHECK(total_restarts(*job) == 3);
    // Replays re-ran the function on what was not committed.
    CHECK(calls->load() > count);
  }

  TEST_CASE("crash loop: a partition failing on every attempt is marked failed after K "
            "restarts, its input goes to the dead-letter journal, the rest completes") {
    temp_dir dir;
    constexpr int64_t count = 10'000;
    write_visits(dir / "visits.jsonl", count);
    auto opts = supervised(dir);
    opts.supervision.restarts_max = 2;
    // More attempts than restarts: the record is not dead-lettered as poison first.
    opts.supervision.poison_attempts = 10;
    std::shared_ptr<eddy::job_handle> job;
    auto err = run_count(
      opts, dir, "loop",
      [](const visit& v) {
        if (v.user == "evil") {
          throw std::runtime_error("evil visit " + std::to_string(v.n));
        }
      },
      &job);
    auto text = eddy::describe(err);
    INFO("error: ", text);
    REQUIRE(err);
    CHECK(contains(text, "actor_failed"));
    CHECK(contains(text, "completed with failed actors: count/"));
    CHECK(contains(text, "evil visit 199"));

    // Exactly one partition failed, after 2 restarts, and says why.
    std::string failed;
    for (const auto& a : job->actors()) {
      INFO(a.name, ": ", std::string{eddy::to_string(a.metrics->status.load())}, " ", a.failure);
      if (a.metrics->status == eddy::actor_status::failed) {
        CHECK(failed.empty());
        failed = a.name;
        CHECK(a.kind == eddy::node_kind::keyed);
        CHECK(a.metrics->restarts == 2);
        CHECK(contains(a.failure, "evil visit 199"));
        CHECK(contains(a.failure, "3 failures within 600 s"));
      } else {
        CHECK(a.metrics->status == eddy::actor_status::finished);
        CHECK(a.failure.empty());
      }
    }
    REQUIRE(!failed.empty());

    // Every visit is accounted for exactly once: counted in the output, or, for the users
    // of the failed partition after its failure, in the dead-letter journal.
    auto letters = dead_letters(dir, "loop");
    std::set<std::string> lost_users;
    std::set<int64_t> dead;
    for (const auto& l : letters) {
      CHECK(l.op + "/" + std::to_string(l.partition) == failed);
      CHECK(contains(l.error, "evil visit 199"));
      auto v = nlohmann::json::parse(l.record).get<visit>();
      CHECK(l.key == v.user);
      CHECK(dead.insert(v.n).second);
      lost_users.insert(v.user);
    }
    REQUIRE(lost_users.contains("evil"));
    auto counts = read_counts(dir / "counts.jsonl");
    // Users of healthy partitions: exactly the fault-free counts.
    std::vector<user_count> healthy;
    std::map<std::string, int64_t> counted;
    for (const auto& c : counts) {
      if (!lost_users.contains(c.user)) {
        healthy.push_back(c);
      }
      counted[c.user] = std::max(counted[c.user], c.count);
    }
    CHECK((healthy == reference(count, {}, lost_users)));
    // Users of the failed partition: counted up to the failure, dead-lettered after it.
    std::map<std::string, int64_t> total;
    std::map<std::string, int64_t> dead_of;
    for (int64_t n = 0; n < count; ++n) {
      ++total[user_of(n)];
      if (dead.contains(n)) {
        ++dead_of[user_of(n)];
      }
    }
    for (const auto& u : lost_users) {
      INFO("user ", u);
      CHECK(counted[u] + dead_of[u] == total[u]);
    }
    CHECK(counted["evil"] == 0);
  }

  TEST_CASE("failure policy stop: the operator is stopped at its first failure and the records "
            "after it are dead-lettered, none lost") {
    temp_dir dir;
    constexpr int64_t count = 5'000;
    write_visits(dir / "visits.jsonl", count);
    eddy::engine eng{supervised(dir), eddy::test::test_common(dir)};
    eddy::job_builder jb{"stop"};
    jb.source("visits", eddy::jsonl_source<visit>(dir / "visits.jsonl"))
      .map("check",
           [](const visit& v) {
             if (v.n == 2'000) {
               throw std::runtime_error("cannot check visit 2000");
             }
             return v;
           })
      .on_failure(eddy::failure_policy::stop)
      .sink("out", eddy::jsonl_sink<visit>(dir / "out.jsonl"));
    auto graph = jb.build();
    REQUIRE(graph);
    auto job = eng.start(std::move(*graph));
    REQUIRE(job);
    auto err = eddy::test::finish(**job);
    INFO("error: ", eddy::describe(err));
    CHECK(contains(eddy::describe(err), "completed with failed actors: check/0"));
    for (const auto& a : (*job)->actors()) {
      if (a.node == "check") {
        CHECK(a.metrics->status == eddy::actor_status::failed);
        CHECK(a.metrics->restarts == 0);
        CHECK(contains(a.failure, "cannot check visit 2000"));
      }
    }
    std::set<int64_t> written;
    for (const auto& l : eddy::test::read_lines(dir / "out.jsonl")) {
      CHECK(written.insert(nlohmann::json::parse(l).get<visit>().n).second);
    }
    std::set<int64_t> dead;
    for (const auto& l : dead_letters(dir, "stop")) {
      CHECK(l.op == "check");
      CHECK(dead.insert(nlohmann::json::parse(l.record).get<visit>().n).second);
    }
    CHECK(dead.contains(2'000));
    CHECK(written.size() + dead.size() == count);
    for (int64_t n = 0; n < count; ++n) {
      INFO("visit ", n);
      CHECK(written.contains(n) != dead.contains(n));
    }
  }

  TEST_CASE("a corrupt partition journal stops the job at start with an error naming the file, "
            "and the file is left as it was") {
    temp_dir dir;
    write_visits(dir / "visits.jsonl", 3'000);
    auto opts = supervised(dir);
    auto err = run_count(opts, dir, "corrupt", [](const visit&) {});
    REQUIRE_MESSAGE(!err, eddy::describe(err));
    auto journal = dir / "corrupt" / "count" / "p1.db";
    REQUIRE(std::filesystem::exists(journal));
    std::filesystem::resize_file(journal, std::filesystem::file_size(journal) / 2);
    std::ifstream in{journal, std::ios::binary};
    std::string before{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};

    opts.state.reset = false;
    err = run_count(opts, dir, "corrupt", [](const visit&) {});
    auto text = eddy::describe(err);
    INFO("error: ", text);
    REQUIRE(err);
    CHECK(contains(text, "p1.db"));
    std::ifstream again{journal, std::ios::binary};
    CHECK(std::string{std::istreambuf_iterator<char>{again}, std::istreambuf_iterator<char>{}} ==
          before);
  }

  TEST_CASE("a full disk stops the job with an error naming the journal; once there is room "
            "again a restart resumes and the result equals a fault-free run") {
    temp_dir dir;
    constexpr int64_t count = 8'000;
    write_visits(dir / "visits.jsonl", count);
    // Every update writes a 16 KB state value: journals outgrow the file size limit quickly.
    auto run = [&](const eddy::runtime_options& opts, std::shared_ptr<eddy::job_handle>* h) {
      eddy::engine eng{opts, eddy::test::test_common(dir)};
      eddy::job_builder jb{"full"};
      jb.partitions(4);
      jb.source("visits", eddy::jsonl_source<visit>(dir / "visits.jsonl"))
        .key_by([](const visit& v) { return v.user; })
        .process<user_count>("count",
                             [](const visit&, auto& ctx, auto& col) {
                               auto& c = ctx.template value<int64_t>("n");
                               c.set(c.get_or(0) + 1);
                               ctx.template value<std::string>("blob").set(
                                 std::string(16 * 1024, 'x') + std::to_string(c.get()));
                               col.emit(user_count{ctx.key(), c.get()});
                             })
        .sink("out", eddy::jsonl_sink<user_count>(dir / "counts.jsonl"));
      auto graph = jb.build();
      REQUIRE(graph);
      auto job = eng.start(std::move(*graph));
      REQUIRE_MESSAGE(job, (job ? "" : eddy::describe(job.error())));
      if (h != nullptr) {
        *h = *job;
      }
      return eddy::test::finish(**job);
    };

    // A real write failure from the kernel: a file size limit of 512 KB for this process
    // (the input is read, not written; the output stays below it), with SIGXFSZ
    // ignored so that writes past it fail with EFBIG instead of killing the process.
    rlimit old_limit{};
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit small = old_limit;
    small.rlim_cur = 512 * 1024;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
    auto opts = supervised(dir);
    opts.supervision.restarts_max = 2;
    opts.state.compact_every = 1'000'000;
    std::shared_ptr<eddy::job_handle> job;
    auto err = run(opts, &job);
    REQUIRE(setrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    std::signal(SIGXFSZ, old_handler);

    auto text = eddy::describe(err);
    INFO("error: ", text);
    REQUIRE(err);
    CHECK((contains(text, "disk_full") || contains(text, "io_failure")));
    CHECK(contains(text, (dir / "full" / "count").string()));
    CHECK(contains(text, "also after 2 restarts"));
    CHECK(contains(text, "committed state intact"));
    CHECK(dead_letters(dir, "full").empty());
    auto partial = read_counts(dir / "counts.jsonl");
    CHECK(partial.size() < static_cast<size_t>(count));

    // Room again: the same job resumes from its journals and completes exactly.
    opts.state.reset = false;
    err = run(opts, nullptr);
    REQUIRE_MESSAGE(!err, eddy::describe(err));
    CHECK((read_counts(dir / "counts.jsonl") == reference(count)));
  }

  TEST_CASE("an actor killed from outside (the console's kill) is restarted and the job goes "
            "on exactly once") {
    temp_dir dir;
    eddy::engine eng{supervised(dir), eddy::test::test_common(dir)};
    eddy::job_builder jb{"kill"};
    jb.partitions(4);
    // Unbounded: the job runs until stop().
    jb.source("visits", eddy::generator_source(0,
                                               [](uint64_t i) {
                                                 auto n = static_cast<int64_t>(i);
                                                 return visit{user_of(n), n};
                                               }))
      .key_by([](const visit& v) { return v.user; })
      .process<user_count>("count",
                           [](const visit&, auto& ctx, auto& col) {
                             auto& c = ctx.template value<int64_t>("n");
                             c.set(c.get_or(0) + 1);
                             col.emit(user_count{ctx.key(), c.get()});
                           })
      .sink("out", eddy::jsonl_sink<user_count>(dir / "counts.jsonl"));
    auto graph = jb.build();
    REQUIRE(graph);
    auto job = eng.start(std::move(*graph));
    REQUIRE(job);
    auto& h = **job;
    CHECK(h.kill("count/9"));
    auto restarted = [&h] {
      for (int i = 0; i < 600 && h.restarts() == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      return h.restarts();
    };
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    REQUIRE(!h.kill("count/1"));
    CHECK(restarted() == 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    h.stop();
    auto err = eddy::test::finish(h);
    REQUIRE_MESSAGE(!err, eddy::describe(err));
    for (const auto& a : h.actors()) {
      INFO(a.name);
      CHECK(a.metrics->status == eddy::actor_status::finished);
      CHECK(a.metrics->restarts == (a.name == "count/1" ? 1 : 0));
    }
    // Exactly once across the kill: every user's counts are 1..n without gaps or repeats.
    std::map<std::string, int64_t> last;
    size_t lines = 0;
    for (const auto& l : eddy::test::read_lines(dir / "counts.jsonl")) {
      auto c = nlohmann::json::parse(l).get<user_count>();
      INFO("line ", l);
      CHECK(c.count == last[c.user] + 1);
      last[c.user] = c.count;
      ++lines;
    }
    CHECK(lines > 0);
  }

  TEST_CASE("--supervision.policy naming a node the job does not have is refused at start") {
    temp_dir dir;
    write_visits(dir / "visits.jsonl", 10);
    auto opts = supervised(dir);
    opts.supervision.policies = "count=stop,nosuch=escalate";
    auto err = run_count(opts, dir, "policy", [](const visit&) {});
    auto text = eddy::describe(err);
    INFO("error: ", text);
    CHECK(contains(text, "invalid_config"));
    CHECK(contains(text, "'nosuch'"));
  }
}
