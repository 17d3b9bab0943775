// What the runtime makes of a graph: one actor per source/operator/sink instance and per
// key partition, reported by job_handle::actors() with consistent counters; and stateless
// pipelines that must equal the same computation done with std algorithms.

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "support.hpp"

namespace {

struct tagged {
  uint64_t key = 0;
  int64_t value = 0;
  friend bool operator==(const tagged&, const tagged&) = default;
  friend bool operator<(const tagged& a, const tagged& b) {
    return a.key != b.key ? a.key < b.key : a.value < b.value;
  }
};

} // namespace

TEST_CASE("the runtime reports one actor per instance and partition, by kind") {
  eddy::test::temp_dir dir;
  eddy::engine eng{eddy::test::test_options(dir), eddy::test::test_common(dir)};
  auto out = std::make_shared<eddy::collected<tagged>>();
  constexpr uint64_t n = 3'000;
  eddy::job_builder jb{"shape"};
  jb.partitions(5);
  jb.source("gen", eddy::generator_source(n, [](uint64_t i) { return i; }))
    .parallelism(2)
    .map("double",
         [](const uint64_t& i) {
           return tagged{i % 17, static_cast<int64_t>(i) * 2};
         })
    .parallelism(3)
    .key_by([](const tagged& t) { return t.key; })
    .process<tagged>("pass", [](const tagged& t, auto&, auto& col) { col.emit(t); })
    .sink("out", eddy::collector_sink(out))
    .parallelism(2);
  auto graph = jb.build();
  REQUIRE(graph);
  const auto expected_actors = graph->actor_count();
  CHECK(expected_actors == 2 + 3 + 5 + 2);
  auto started = eng.start(std::move(*graph));
  REQUIRE(started);
  auto job = *started;
  // The actor list is complete from the start, not only after the job ran.
  CHECK(job->actors().size() == expected_actors);
  REQUIRE(!eddy::test::finish(*job));

  auto actors = job->actors();
  REQUIRE(actors.size() == expected_actors);
  auto kinds = eddy::test::count_by_kind(actors);
  CHECK(kinds[eddy::node_kind::source] == 2);
  CHECK(kinds[eddy::node_kind::transform] == 3);
  CHECK(kinds[eddy::node_kind::keyed] == 5);
  CHECK(kinds[eddy::node_kind::sink] == 2);

  std::set<std::string> names;
  for (const auto& a : actors) {
    INFO("actor ", a.name);
    REQUIRE(a.metrics);
    CHECK(a.name == a.node + "/" + std::to_string(a.index));
    names.insert(a.name);
    CHECK(a.metrics->status == eddy::actor_status::finished);
  }
  CHECK(names == std::set<std::string>{"gen/0", "gen/1", "double/0", "double/1", "double/2",
                                       "pass/0", "pass/1", "pass/2", "pass/3", "pass/4", "out/0",
                                       "out/1"});
  CHECK(out->values().size() == n);
}

TEST_CASE("every record sent on an edge is counted once by the sender and once by a receiver") {
  eddy::test::temp_dir dir;
  auto opts = eddy::test::test_options(dir);
  opts.batch_events_max = 13;
  opts.credit_batches_max = 3;
  eddy::engine eng{opts, eddy::test::test_common(dir)};
  auto out = std::make_shared<eddy::collected<int64_t>>();
  constexpr uint64_t n = 10'000;
  eddy::job_builder jb{"edges"};
  jb.partitions(7);
  jb.source("gen", eddy::generator_source(n, [](uint64_t i) { return static_cast<int64_t>(i); }))
    .filter("odd", [](const int64_t& i) { return i % 2 == 1; })
    .parallelism(2)
    .key_by([](const int64_t& i) { return i % 11; })
    .process<int64_t>("dup",
                      [](const int64_t& i, auto&, auto& col) {
                        col.emit(i);
                        col.emit(-i);
                      })
    .sink("out", eddy::collector_sink(out))
    .parallelism(3);
  auto job = eddy::test::run_ok(eng, jb);

  std::map<std::string, uint64_t> in;
  std::map<std::string, uint64_t> sent;
  for (const auto& a : job->actors()) {
    in[a.node] += a.metrics->events_in;
    sent[a.node] += a.metrics->events_out;
  }
  CHECK(in["gen"] == n);
  CHECK(sent["gen"] == n);
  CHECK(in["odd"] == n);
  CHECK(sent["odd"] == n / 2);
  CHECK(in["dup"] == n / 2);
  CHECK(sent["dup"] == n);
  CHECK(in["out"] == n);
  CHECK(sent["out"] == 0);
  CHECK(out->values().size() == n);
}

TEST_CASE("a stateless map, filter and flat_map pipeline equals the std algorithms reference") {
  eddy::test::temp_dir dir;
  constexpr uint64_t n = 20'000;
  auto square_plus = [](const uint64_t& i) {
    return static_cast<int64_t>(i * i % 1'000) + 3;
  };
  auto keep = [](const int64_t& v) {
    return v % 3 != 0;
  };
  auto expand = [](const int64_t& v, eddy::collector<tagged>& col) {
    // 0, 1 or 2 outputs per input.
    for (int64_t k = 0; k < v % 3; ++k) {
      col.emit(tagged{static_cast<uint64_t>(k), v * 10 + k});
    }
  };

  // Reference with std algorithms.
  std::vector<uint64_t> input(n);
  std::iota(input.begin(), input.end(), uint64_t{0});
  std::vector<int64_t> mapped(n);
  std::transform(input.begin(), input.end(), mapped.begin(), square_plus);
  std::vector<int64_t> kept;
  std::copy_if(mapped.begin(), mapped.end(), std::back_inserter(kept), keep);
  std::vector<eddy::record<tagged>> expanded_records;
  eddy::collector<tagged> ref_col{expanded_records, eddy::no_time};
  std::for_each(kept.begin(), kept.end(), [&](const int64_t& v) { expand(v, ref_col); });
  std::vector<tagged> expected;
  std::transform(expanded_records.begin(), expanded_records.end(), std::back_inserter(expected),
                 [](const eddy::record<tagged>& r) { return r.value; });
  std::sort(expected.begin(), expected.end());
  REQUIRE(expected.size() > n / 2);

  for (uint32_t par : {1u, 3u}) {
    for (bool small_batches : {false, true}) {
      INFO("operator parallelism ", par, ", small batches ", small_batches);
      auto opts = eddy::test::test_options(dir);
      if (small_batches) {
        opts.batch_events_max = 7;
        opts.credit_batches_max = 2;
      }
      eddy::engine eng{opts, eddy::test::test_common(dir)};
      auto out = std::make_shared<eddy::collected<tagged>>();
      eddy::job_builder jb{"stateless"};
      jb.source("gen", eddy::generator_source(n, [](uint64_t i) { return i; }))
        .map("square", square_plus)
        .parallelism(par)
        .filter("keep", keep)
        .parallelism(par == 1 ? 2 : 1)
        .flat_map<tagged>("expand", expand)
        .parallelism(par)
        .sink("out", eddy::collector_sink(out))
        .parallelism(2);
      auto job = eddy::test::run_ok(eng, jb);
      auto got = out->values();
      std::sort(got.begin(), got.end());
      CHECK(got.size() == expected.size());
      CHECK((got == expected));
      // Both sink instances took part.
      for (const auto& a : job->actors()) {
        if (a.kind == eddy::node_kind::sink) {
          CHECK(a.metrics->events_in > 0);
        }
      }
    }
  }
}

TEST_CASE("records of one operator instance reach a single sink instance in order") {
  eddy::test::temp_dir dir;
  auto opts = eddy::test::test_options(dir);
  opts.batch_events_max = 5;
  opts.credit_batches_max = 2;
  eddy::engine eng{opts, eddy::test::test_common(dir)};
  auto out = std::make_shared<eddy::collected<uint64_t>>();
  constexpr uint64_t n = 5'000;
  eddy::job_builder jb{"fifo"};
  jb.source("gen", eddy::generator_source(n, [](uint64_t i) { return i; }))
    .map("id", [](const uint64_t& i) { return i; })
    .sink("out", eddy::collector_sink(out));
  eddy::test::run_ok(eng, jb);
  // One source, one operator, one sink: every channel is FIFO, so the order is kept.
  std::vector<uint64_t> expected(n);
  std::iota(expected.begin(), expected.end(), uint64_t{0});
  CHECK((out->values() == expected));
}
