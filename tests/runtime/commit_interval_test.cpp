// Commit intervals end to end (`--state.commit-interval-ms`, `keyed_stream::commit_interval_ms`):
// real jobs with durable state in SQLite files under a temporary --data-dir. Whatever the
// interval, the output equals that of a commit per group of batches; a longer interval makes
// fewer commits, bounded by the output a partition may hold; a restart after a run at a long
// interval resumes from what it committed.

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support.hpp"

namespace {

using eddy::durability;
using eddy::test::state_options;
using eddy::test::temp_dir;

constexpr uint64_t key_count = 150;
/// Each partition holds at most 16 batches of output between commits (limits.hpp).
constexpr uint32_t batch = 64;
constexpr uint32_t partitions = 4;

/// The job: event i has key i mod 150; the partition counts per key and emits "key:count"
/// for every event.
std::vector<std::string> run_counts(eddy::engine& eng, uint64_t events,
                                    std::optional<uint32_t> operator_interval,
                                    std::shared_ptr<eddy::job_handle>* handle = nullptr) {
  auto out = std::make_shared<eddy::collected<std::string>>();
  eddy::job_builder jb{"intervals"};
  jb.partitions(partitions);
  auto keyed =
    jb.source("events", eddy::generator_source(
                          events, [](uint64_t i) { return static_cast<int64_t>(i % key_count); }))
      .key_by([](const int64_t& k) { return k; });
  if (operator_interval) {
    keyed.commit_interval_ms(*operator_interval);
  }
  keyed
    .process<std::string>("count",
                          [](const int64_t& k, auto& ctx, auto& col) {
                            auto& n = ctx.template value<int64_t>("n");
                            n.set(n.get_or(0) + 1);
                            col.emit(std::to_string(k) + ":" + std::to_string(n.get()));
                          })
    .sink("out", eddy::collector_sink(out));
  auto h = eddy::test::run_ok(eng, jb);
  if (handle != nullptr) {
    *handle = h;
  }
  auto got = out->values();
  std::sort(got.begin(), got.end());
  return got;
}

/// What the job emits for events first..last-1 given the counts before (sorted).
std::vector<std::string> expected_counts(uint64_t first, uint64_t last) {
  std::map<int64_t, int64_t> n;
  for (uint64_t i = 0; i < first; ++i) {
    ++n[static_cast<int64_t>(i % key_count)];
  }
  std::vector<std::string> result;
  for (uint64_t i = first; i < last; ++i) {
    auto k = static_cast<int64_t>(i % key_count);
    result.push_back(std::to_string(k) + ":" + std::to_string(++n[k]));
  }
  std::sort(result.begin(), result.end());
  return result;
}

uint64_t commits_of(const eddy::job_handle& h) {
  uint64_t n = 0;
  for (const auto& a : h.actors()) {
    if (a.kind == eddy::node_kind::keyed) {
      n += a.metrics->commit_latency.count.load();
    }
  }
  return n;
}

eddy::runtime_options interval_options(const temp_dir& dir, uint32_t interval, bool reset) {
  auto opts = state_options(dir, durability::process, reset);
  opts.batch_events_max = batch;
  opts.state.commit_interval_ms = interval;
  return opts;
}

} // namespace

TEST_SUITE("runtime") {
  TEST_CASE("a commit interval commits less often and computes what a commit per group does") {
    temp_dir dir;
    constexpr uint64_t events = 6'000;
    auto want = expected_counts(0, events);
    std::map<uint32_t, uint64_t> commits;
    for (uint32_t interval : {0U, 10U, 60'000U}) {
      INFO("commit interval ", interval, " ms");
      eddy::engine eng{interval_options(dir, interval, true), eddy::test::test_common(dir)};
      std::shared_ptr<eddy::job_handle> h;
      CHECK((run_counts(eng, events, std::nullopt, &h) == want));
      commits[interval] = commits_of(*h);
    }
    // A minute never passes: each partition commits when its held output reaches 16 batches
    // and at the end of its input.
    CHECK(commits[60'000] < commits[0]);
    CHECK(commits[60'000] >= partitions);
    CHECK(commits[60'000] <= partitions * (events / partitions / (16 * batch) + 3));
  }

  TEST_CASE("a keyed operator's own commit interval overrides the job's") {
    temp_dir dir;
    constexpr uint64_t events = 6'000;
    eddy::engine eng{interval_options(dir, 60'000, true), eddy::test::test_common(dir)};
    std::shared_ptr<eddy::job_handle> by_job;
    auto want = expected_counts(0, events);
    CHECK((run_counts(eng, events, std::nullopt, &by_job) == want));
    std::shared_ptr<eddy::job_handle> by_operator;
    CHECK((run_counts(eng, events, 0U, &by_operator) == want));
    CHECK(commits_of(*by_operator) > commits_of(*by_job));
  }

  TEST_CASE("after a run at a long commit interval a restart resumes exactly once") {
    temp_dir dir;
    {
      eddy::engine eng{interval_options(dir, 60'000, true), eddy::test::test_common(dir)};
      CHECK((run_counts(eng, 3'000, std::nullopt) == expected_counts(0, 3'000)));
    }
    // The generator of 5000 replays from the committed positions: only events 3000.. are new,
    // and their counts continue from the restored state.
    eddy::engine eng{interval_options(dir, 60'000, false), eddy::test::test_common(dir)};
    CHECK((run_counts(eng, 5'000, std::nullopt) == expected_counts(3'000, 5'000)));
  }

  TEST_CASE("a commit interval over ten minutes is refused with the operator's name") {
    eddy::job_builder jb{"intervals"};
    auto out = std::make_shared<eddy::collected<int64_t>>();
    jb.source("events", eddy::generator_source(10, [](uint64_t i) { return int64_t(i); }))
      .key_by([](const int64_t& k) { return k; })
      .commit_interval_ms(600'001)
      .process<int64_t>("count", [](const int64_t& k, auto&, auto& col) { col.emit(k); })
      .sink("out", eddy::collector_sink(out));
    auto graph = jb.build();
    REQUIRE(!graph);
    auto text = eddy::describe(graph.error());
    CHECK(text.find("'count'") != std::string::npos);
    CHECK(text.find("600001 ms") != std::string::npos);
  }
}
