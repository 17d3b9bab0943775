// Durable keyed state end to end: real jobs on eddy::engine with their journals in SQLite
// files under a temporary --data-dir. Each test checks what a user of the runtime would:
// a restarted job resumes where it stopped without replaying output twice, every durability
// level and cache size computes the same as the in-memory run, state encodings can be
// upgraded, and a data dir of another shape is refused untouched. Timers are in
// durable_timers_test.cpp. Every expected result is computed from the test's own input.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "support.hpp"

namespace {

using eddy::durability;
using eddy::test::run_job;
using eddy::test::state_options;
using eddy::test::temp_dir;

uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string file_bytes(const std::filesystem::path& path) {
  std::ifstream in{path, std::ios::binary};
  return std::string{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

/// Every regular file under `root` with its bytes.
std::map<std::string, std::string> snapshot_files(const std::filesystem::path& root) {
  std::map<std::string, std::string> result;
  for (const auto& e : std::filesystem::recursive_directory_iterator{root}) {
    if (e.is_regular_file()) {
      result[std::filesystem::relative(e.path(), root).string()] = file_bytes(e.path());
    }
  }
  return result;
}

uint64_t keys_held(const std::shared_ptr<eddy::job_handle>& job) {
  uint64_t total = 0;
  for (const auto& a : job->actors()) {
    if (a.kind == eddy::node_kind::keyed) {
      total += a.metrics->keys;
    }
  }
  return total;
}

// ---------------------------------------------------------------------------------------
// A keyed count of visits per user, read from a JSONL file and written to a JSONL file.

struct visit {
  std::string user;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(visit, user)

struct user_count {
  std::string user;
  int64_t count = 0;
  friend bool operator==(const user_count&, const user_count&) = default;
  friend bool operator<(const user_count& a, const user_count& b) {
    return std::tie(a.user, a.count) < std::tie(b.user, b.count);
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(user_count, user, count)

std::string user_of(uint64_t i) {
  // Skewed: a few users visit often, many rarely.
  auto r = mix(i) % 1000;
  return "u" + std::to_string(r * r / 20'000);
}

std::vector<std::string> visit_lines(uint64_t from, uint64_t to) {
  std::vector<std::string> lines;
  for (uint64_t i = from; i < to; ++i) {
    lines.push_back(nlohmann::json(visit{user_of(i)}).dump());
  }
  return lines;
}

/// The updates a keyed count emits for visits from..to-1, counting from visit 0. Sorted.
std::vector<user_count> count_updates(uint64_t from, uint64_t to) {
  std::map<std::string, int64_t> counts;
  std::vector<user_count> result;
  for (uint64_t i = 0; i < to; ++i) {
    auto u = user_of(i);
    auto n = ++counts[u];
    if (i >= from) {
      result.push_back(user_count{u, n});
    }
  }
  std::sort(result.begin(), result.end());
  return result;
}

std::vector<user_count> parse_counts(const std::vector<std::string>& lines) {
  std::vector<user_count> result;
  for (const auto& l : lines) {
    result.push_back(nlohmann::json::parse(l).get<user_count>());
  }
  return result;
}

/// Per user the updates arrive as 1, 2, ..., n: empty if so, else the first problem.
std::string check_per_user_order(const std::vector<user_count>& updates) {
  std::map<std::string, int64_t> last;
  for (const auto& u : updates) {
    auto& prev = last[u.user];
    if (u.count != prev + 1) {
      return "user " + u.user + ": update " + std::to_string(u.count) + " after " +
             std::to_string(prev);
    }
    prev = u.count;
  }
  return {};
}

caf::error run_visit_count(const eddy::runtime_options& opts, const temp_dir& dir,
                           eddy::source_def<visit> source, eddy::sink_def<user_count> sink,
                           const std::string& job_name = "visits", uint32_t partitions = 4) {
  eddy::engine eng{opts, eddy::test::test_common(dir)};
  eddy::job_builder jb{job_name};
  jb.partitions(partitions);
  jb.source("visits", std::move(source))
    .key_by([](const visit& v) { return v.user; })
    .process<user_count>("count",
                         [](const visit&, auto& ctx, auto& col) {
                           auto& n = ctx.template value<int64_t>("n");
                           n.set(n.get_or(0) + 1);
                           col.emit(user_count{ctx.key(), n.get()});
                         })
    .sink("out", std::move(sink));
  return run_job(eng, jb);
}

auto visit_generator(uint64_t count) {
  return eddy::generator_source(count, [](uint64_t i) { return visit{user_of(i)}; });
}

// ---------------------------------------------------------------------------------------
// Per key: a count, a sum, the last three values (list_state) and a histogram of values
// (map_state).

struct key_event {
  uint64_t key = 0;
  int64_t value = 0;
};

struct key_summary {
  uint64_t key = 0;
  int64_t count = 0;
  int64_t sum = 0;
  std::vector<int64_t> last3;
  std::map<int64_t, int64_t> histogram;
  friend bool operator==(const key_summary&, const key_summary&) = default;
  friend bool operator<(const key_summary& a, const key_summary& b) {
    return std::tie(a.key, a.count, a.sum, a.last3, a.histogram) <
           std::tie(b.key, b.count, b.sum, b.last3, b.histogram);
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(key_summary, key, count, sum, last3, histogram)

std::string to_string(const key_summary& s) {
  return nlohmann::json(s).dump();
}

key_event event_of(uint64_t i, uint64_t keys) {
  return key_event{mix(i) % keys, static_cast<int64_t>(mix(i ^ 0x5bd1e995ULL) % 7)};
}

void update_summary(key_summary& s, int64_t value) {
  ++s.count;
  s.sum += value;
  s.last3.push_back(value);
  if (s.last3.size() > 3) {
    s.last3.erase(s.last3.begin());
  }
  ++s.histogram[value];
}

/// The final summary of every key after events 0..count-1.
std::map<uint64_t, key_summary> reference_summaries(uint64_t count, uint64_t keys) {
  std::map<uint64_t, key_summary> result;
  for (uint64_t i = 0; i < count; ++i) {
    auto e = event_of(i, keys);
    auto& s = result[e.key];
    s.key = e.key;
    update_summary(s, e.value);
  }
  return result;
}

/// The keyed function under test: the same summary kept in value, list and map state.
auto summarize = [](const key_event& e, auto& ctx, auto& col) {
  auto& count = ctx.template value<int64_t>("count");
  auto& sum = ctx.template value<int64_t>("sum");
  auto& last = ctx.template list<int64_t>("last3");
  auto& hist = ctx.template map<int64_t, int64_t>("histogram");
  count.set(count.get_or(0) + 1);
  sum.set(sum.get_or(0) + e.value);
  auto items = last.get();
  items.push_back(e.value);
  if (items.size() > 3) {
    items.erase(items.begin());
  }
  last.update(std::move(items));
  const auto* seen = hist.find(e.value);
  hist.put(e.value, (seen != nullptr ? *seen : 0) + 1);
  key_summary s{ctx.key(), count.get(), sum.get(), last.get(), {}};
  for (const auto& [v, n] : hist.entries()) {
    s.histogram[v] = n;
  }
  col.emit(std::move(s));
};

std::vector<key_summary> run_summaries(const eddy::runtime_options& opts, const temp_dir& dir,
                                       uint64_t count, uint64_t keys,
                                       std::shared_ptr<eddy::job_handle>* handle = nullptr) {
  eddy::engine eng{opts, eddy::test::test_common(dir)};
  auto out = std::make_shared<eddy::collected<key_summary>>();
  eddy::job_builder jb{"summaries"};
  jb.partitions(4);
  jb.source("events",
            eddy::generator_source(count, [keys](uint64_t i) { return event_of(i, keys); }))
    .key_by([](const key_event& e) { return e.key; })
    .process<key_summary>("summarize", summarize)
    .sink("out", eddy::collector_sink(out));
  auto err = run_job(eng, jb, handle);
  REQUIRE_MESSAGE(!err, eddy::describe(err));
  return out->values();
}

/// The last summary emitted per key (one sink instance, one partition per key: in order).
std::map<uint64_t, key_summary> last_per_key(const std::vector<key_summary>& out,
                                             std::map<uint64_t, key_summary> into = {}) {
  for (const auto& s : out) {
    into[s.key] = s;
  }
  return into;
}

/// Empty if `got` equals `want`, else the first difference.
std::string compare_summaries(const std::map<uint64_t, key_summary>& got,
                              const std::map<uint64_t, key_summary>& want) {
  for (const auto& [k, s] : want) {
    auto i = got.find(k);
    if (i == got.end()) {
      return "key " + std::to_string(k) + " missing, expected " + to_string(s);
    }
    if (!(i->second == s)) {
      return "key " + std::to_string(k) + ": got " + to_string(i->second) + ", expected " +
             to_string(s);
    }
  }
  if (got.size() != want.size()) {
    return std::to_string(got.size()) + " keys, expected " + std::to_string(want.size());
  }
  return {};
}

// ---------------------------------------------------------------------------------------
// Schema evolution.

struct amount {
  uint64_t key = 0;
  int64_t value = 0;
};

amount amount_of(uint64_t i) {
  return amount{i % 10, static_cast<int64_t>(mix(i) % 100) + 1};
}

/// Per key the sum of the amounts of events 0..count-1.
std::map<uint64_t, int64_t> reference_totals(uint64_t count) {
  std::map<uint64_t, int64_t> result;
  for (uint64_t i = 0; i < count; ++i) {
    auto a = amount_of(i);
    result[a.key] += a.value;
  }
  return result;
}

enum class schema_run { v1, v2_without_upgrade, v2_with_upgrade };

/// Runs the totals job over events 0..count-1 (resuming) and returns per processed event
/// (key, total before the event).
caf::error run_totals(const temp_dir& dir, schema_run version, uint64_t count,
                      std::vector<std::pair<uint64_t, int64_t>>& before,
                      std::shared_ptr<std::atomic<int>> upgrades = {}, bool reset = false) {
  eddy::engine eng{state_options(dir, durability::process, reset), eddy::test::test_common(dir)};
  auto out = std::make_shared<eddy::collected<std::pair<uint64_t, int64_t>>>();
  eddy::job_builder jb{"totals"};
  jb.partitions(3);
  auto keyed =
    jb.source("amounts", eddy::generator_source(count, amount_of)).key_by([](const amount& a) {
      return a.key;
    });
  if (version != schema_run::v1) {
    keyed.state_version(2);
  }
  if (version == schema_run::v2_with_upgrade) {
    keyed.upgrade(1, [upgrades](std::string_view name, std::string_view bytes) {
      CHECK(name == "total");
      upgrades->fetch_add(1);
      int64_t v = 0;
      std::string reason;
      if (!eddy::decode_value(bytes, v, reason)) {
        throw std::runtime_error("upgrade: " + reason);
      }
      return eddy::encode_value(v * 10);
    });
  }
  keyed
    .process<std::pair<uint64_t, int64_t>>("sum",
                                           [](const amount& a, auto& ctx, auto& col) {
                                             auto& total = ctx.template value<int64_t>("total");
                                             col.emit({ctx.key(), total.get_or(0)});
                                             total.set(total.get_or(0) + a.value);
                                           })
    .sink("out", eddy::collector_sink(out));
  auto err = run_job(eng, jb);
  before = out->values();
  return err;
}

// ---------------------------------------------------------------------------------------
// A user type stored through its CAF inspect overload.

struct profile {
  std::string name;
  int64_t visits = 0;
  std::vector<uint64_t> recent;
  friend bool operator==(const profile&, const profile&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, profile& x) {
  return f(caf::meta::type_name("profile"), x.name, x.visits, x.recent);
}

struct keyed_profile {
  uint64_t key = 0;
  profile value;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, keyed_profile& x) {
  return f(caf::meta::type_name("keyed_profile"), x.key, x.value);
}

static_assert(eddy::caf_serializable<profile>);
// No JSON hooks: the journal can only store it through inspect.
static_assert(!eddy::json_codable<profile>);

constexpr uint64_t profile_keys = 8;

void visit_profile(profile& p, uint64_t key, uint64_t i) {
  if (p.name.empty()) {
    p.name = "user-" + std::to_string(key);
  }
  ++p.visits;
  p.recent.push_back(i);
  if (p.recent.size() > 3) {
    p.recent.erase(p.recent.begin());
  }
}

} // namespace

TEST_SUITE("durable state") {

  TEST_CASE("a restarted job resumes a JSONL input: nothing is replayed twice and new lines "
            "continue the durable counts") {
    temp_dir dir;
    auto input = dir / "visits.jsonl";
    auto output = dir / "counts.jsonl";
    constexpr uint64_t first = 3'000;
    constexpr uint64_t second = 4'500;
    eddy::test::write_lines(input, visit_lines(0, first));

    // Run 1: a fresh job over the whole file.
    auto fresh = state_options(dir, durability::process, true);
    auto err = run_visit_count(fresh, dir, eddy::jsonl_source<visit>(input),
                               eddy::jsonl_sink<user_count>(output));
    REQUIRE_MESSAGE(!err, eddy::describe(err));
    auto after_first = eddy::test::read_lines(output);
    auto updates = parse_counts(after_first);
    CHECK(check_per_user_order(updates) == "");
    std::sort(updates.begin(), updates.end());
    CHECK(updates.size() == first);
    CHECK((updates == count_updates(0, first)));
    auto bytes_first = file_bytes(output);

    // Run 2: the same input again resumes after everything: the output does not change.
    auto resume = state_options(dir, durability::process, false);
    err = run_visit_count(resume, dir, eddy::jsonl_source<visit>(input),
                          eddy::jsonl_sink<user_count>(output));
    REQUIRE_MESSAGE(!err, eddy::describe(err));
    CHECK(file_bytes(output) == bytes_first);

    // Run 3: new lines appended to the input add exactly their updates, counting on from
    // the durable state.
    {
      std::ofstream out{input, std::ios::binary | std::ios::app};
      for (const auto& l : visit_lines(first, second)) {
        out << l << '\n';
      }
    }
    err = run_visit_count(resume, dir, eddy::jsonl_source<visit>(input),
                          eddy::jsonl_sink<user_count>(output));
    REQUIRE_MESSAGE(!err, eddy::describe(err));
    auto after_third = eddy::test::read_lines(output);
    REQUIRE(after_third.size() >= after_first.size());
    CHECK(std::equal(after_first.begin(), after_first.end(), after_third.begin()));
    auto added = parse_counts(
      {after_third.begin() + static_cast<ptrdiff_t>(after_first.size()), after_third.end()});
    std::sort(added.begin(), added.end());
    CHECK(added.size() == second - first);
    CHECK((added == count_updates(first, second)));
    auto all = parse_counts(after_third);
    CHECK(check_per_user_order(all) == "");
    std::sort(all.begin(), all.end());
    CHECK((all == count_updates(0, second)));
  }

  TEST_CASE("durability process and machine (group commit) compute what the in-memory run "
            "computes") {
    temp_dir dir;
    constexpr uint64_t events = 6'000;
    constexpr uint64_t keys = 150;
    auto ref = reference_summaries(events, keys);
    std::vector<key_summary> memory;
    for (auto level : {durability::none, durability::process, durability::machine}) {
      INFO("durability ", eddy::to_string(level));
      auto opts = state_options(dir, level, true);
      // Small batches: many commits, and at machine many batches share one.
      opts.batch_events_max = 64;
      auto out = run_summaries(opts, dir, events, keys);
      CHECK(out.size() == events);
      CHECK(compare_summaries(last_per_key(out), ref) == "");
      std::sort(out.begin(), out.end());
      if (level == durability::none) {
        memory = out;
      } else {
        CHECK((out == memory));
        CHECK(std::filesystem::exists(dir / "summaries" / "summarize" / "p0.db"));
      }
    }
  }

  TEST_CASE("with cache_mb = 0 every key is read back from SQLite, and value, list and map "
            "state survive eviction and a restart") {
    temp_dir dir;
    constexpr uint64_t keys = 20'000;
    constexpr uint64_t events = 100'000;
    constexpr uint64_t half = 50'000;
    auto ref = reference_summaries(events, keys);
    REQUIRE(ref.size() > keys * 9 / 10);

    std::shared_ptr<eddy::job_handle> job;
    auto memory = last_per_key(
      run_summaries(state_options(dir, durability::none, true), dir, events, keys, &job));
    CHECK(compare_summaries(memory, ref) == "");
    CHECK(keys_held(job) == ref.size());

    auto tiny = state_options(dir, durability::process, true);
    tiny.state.cache_mb = 0;
    auto first = run_summaries(tiny, dir, half, keys, &job);
    CHECK(first.size() == half);
    CHECK(compare_summaries(last_per_key(first), reference_summaries(half, keys)) == "");
    // Evicted after the last commit: the partitions hold (almost) no keys any more.
    CHECK(keys_held(job) < keys / 10);

    tiny.state.reset = false;
    auto second = run_summaries(tiny, dir, events, keys, &job);
    CHECK(second.size() == events - half);
    auto durable = last_per_key(second, last_per_key(first));
    CHECK(compare_summaries(durable, ref) == "");
    CHECK(compare_summaries(durable, memory) == "");
    CHECK(keys_held(job) < keys / 10);
  }

  TEST_CASE("state_version and upgrade: old rows are upgraded on read; missing upgrades and "
            "newer rows fail the job naming the versions") {
    temp_dir dir;
    std::vector<std::pair<uint64_t, int64_t>> before;

    // v1 writes totals of events 0..29.
    auto err = run_totals(dir, schema_run::v1, 30, before, {}, true);
    REQUIRE_MESSAGE(!err, eddy::describe(err));
    CHECK(before.size() == 30);
    auto totals_30 = reference_totals(30);

    // v2 without an upgrade from 1 cannot read them.
    err = run_totals(dir, schema_run::v2_without_upgrade, 40, before);
    REQUIRE(err);
    auto text = eddy::describe(err);
    INFO(text);
    CHECK(contains(text, "state version 1"));
    CHECK(contains(text, "version is 2"));
    CHECK(contains(text, "upgrade"));

    // v2 with the upgrade sees every stored total multiplied by 10, each row upgraded once.
    auto upgrades = std::make_shared<std::atomic<int>>(0);
    err = run_totals(dir, schema_run::v2_with_upgrade, 40, before, upgrades);
    REQUIRE_MESSAGE(!err, eddy::describe(err));
    REQUIRE(before.size() == 10);
    std::sort(before.begin(), before.end());
    std::vector<std::pair<uint64_t, int64_t>> expected;
    for (const auto& [k, total] : totals_30) {
      expected.emplace_back(k, total * 10);
    }
    CHECK((before == expected));
    CHECK(upgrades->load() == 10);

    // The upgraded rows were written back as version 2: v2 reads them without an upgrade.
    err = run_totals(dir, schema_run::v2_without_upgrade, 50, before);
    REQUIRE_MESSAGE(!err, eddy::describe(err));
    std::sort(before.begin(), before.end());
    expected.clear();
    for (const auto& [k, total] : totals_30) {
      expected.emplace_back(k, total * 10 + amount_of(30 + k).value);
    }
    CHECK((before == expected));

    // v1 refuses rows written by v2.
    err = run_totals(dir, schema_run::v1, 60, before);
    REQUIRE(err);
    text = eddy::describe(err);
    INFO(text);
    CHECK(contains(text, "newer"));
    CHECK(contains(text, "version 2"));
    CHECK(contains(text, "version 1"));
  }

  TEST_CASE("a restart with another partition count is refused at start and leaves the "
            "journals untouched") {
    temp_dir dir;
    auto sink = [](std::shared_ptr<eddy::collected<user_count>> out) {
      return eddy::collector_sink(std::move(out));
    };
    auto first = std::make_shared<eddy::collected<user_count>>();
    auto err = run_visit_count(state_options(dir, durability::process, true), dir,
                               visit_generator(1'000), sink(first), "refuse", 4);
    REQUIRE_MESSAGE(!err, eddy::describe(err));
    auto before = snapshot_files(dir / "refuse");
    REQUIRE(before.count("count/p0.db") == 1);
    REQUIRE(before.count("count/p3.db") == 1);

    for (uint32_t partitions : {2u, 8u}) {
      INFO("partitions ", partitions);
      auto out = std::make_shared<eddy::collected<user_count>>();
      err = run_visit_count(state_options(dir, durability::process, false), dir,
                            visit_generator(2'000), sink(out), "refuse", partitions);
      REQUIRE(err);
      CHECK(err.category() == caf::atom("eddy"));
      CHECK(err.code() == static_cast<uint8_t>(eddy::errc::state_mismatch));
      CHECK(contains(eddy::describe(err), "partitions"));
      CHECK(out->values().empty());
      auto after = snapshot_files(dir / "refuse");
      CHECK(after.size() == before.size());
      CHECK((after == before));
    }

    // The original shape still resumes: counts continue from the first run.
    auto out = std::make_shared<eddy::collected<user_count>>();
    err = run_visit_count(state_options(dir, durability::process, false), dir,
                          visit_generator(2'000), sink(out), "refuse", 4);
    REQUIRE_MESSAGE(!err, eddy::describe(err));
    auto added = out->values();
    std::sort(added.begin(), added.end());
    CHECK((added == count_updates(1'000, 2'000)));
  }

  TEST_CASE("--state.reset starts a job afresh: counts restart from 1") {
    temp_dir dir;
    constexpr uint64_t visits = 2'000;
    auto ref = count_updates(0, visits);
    auto run = [&](bool reset) {
      auto out = std::make_shared<eddy::collected<user_count>>();
      auto err = run_visit_count(state_options(dir, durability::process, reset), dir,
                                 visit_generator(visits), eddy::collector_sink(out), "reset");
      REQUIRE_MESSAGE(!err, eddy::describe(err));
      auto values = out->values();
      std::sort(values.begin(), values.end());
      return values;
    };
    auto first = run(false);
    CHECK((first == ref));
    // Without reset the same input is done already: nothing new.
    CHECK(run(false).empty());
    // With reset the state is gone: the same updates again, from 1.
    auto again = run(true);
    CHECK((again == ref));
    CHECK(
      std::count_if(again.begin(), again.end(), [](const user_count& u) { return u.count == 1; }) ==
      std::count_if(ref.begin(), ref.end(), [](const user_count& u) { return u.count == 1; }));
    // And the reset state is durable again.
    CHECK(run(false).empty());
    // The old state was moved aside, not deleted: its journals are still there, once per
    // reset, and a second reset keeps the first one's copy.
    auto moved_aside = [&] {
      std::vector<std::filesystem::path> found;
      for (const auto& e : std::filesystem::directory_iterator{dir.path()}) {
        if (e.path().filename().string().starts_with("reset.reset-")) {
          found.push_back(e.path());
        }
      }
      return found;
    };
    auto aside = moved_aside();
    REQUIRE(aside.size() == 1);
    bool has_journal = false;
    for (const auto& e : std::filesystem::recursive_directory_iterator{aside[0]}) {
      has_journal |= e.path().extension() == ".db";
    }
    CHECK(has_journal);
    CHECK((run(true) == ref));
    CHECK(moved_aside().size() == 2);
  }

  TEST_CASE("a user struct with a CAF inspect overload survives a restart as value_state") {
    temp_dir dir;
    constexpr uint64_t keys = profile_keys;
    auto run = [&](bool reset, uint64_t count) {
      eddy::engine eng{state_options(dir, durability::process, reset),
                       eddy::test::test_common(dir)};
      auto out = std::make_shared<eddy::collected<keyed_profile>>();
      eddy::job_builder jb{"profiles"};
      jb.partitions(3);
      jb.source("ids", eddy::generator_source(count, [](uint64_t i) { return i; }))
        .key_by([](const uint64_t& i) { return i % profile_keys; })
        .process<keyed_profile>("profile",
                                [](const uint64_t& i, auto& ctx, auto& col) {
                                  auto& state = ctx.template value<profile>("profile");
                                  auto p = state.get_or(profile{});
                                  visit_profile(p, ctx.key(), i);
                                  state.set(p);
                                  col.emit(keyed_profile{ctx.key(), p});
                                })
        .sink("out", eddy::collector_sink(out));
      auto err = run_job(eng, jb);
      REQUIRE_MESSAGE(!err, eddy::describe(err));
      return out->values();
    };
    auto reference = [&](uint64_t count) {
      std::map<uint64_t, profile> result;
      for (uint64_t i = 0; i < count; ++i) {
        visit_profile(result[i % keys], i % keys, i);
      }
      return result;
    };
    auto final_of = [](const std::vector<keyed_profile>& out) {
      std::map<uint64_t, profile> result;
      for (const auto& kp : out) {
        result[kp.key] = kp.value;
      }
      return result;
    };
    auto first = run(true, 40);
    CHECK(first.size() == 40);
    CHECK((final_of(first) == reference(40)));
    auto second = run(false, 80);
    CHECK(second.size() == 40);
    // Every key was visited again: its profile went on from the stored one.
    CHECK((final_of(second) == reference(80)));
  }

} // TEST_SUITE
