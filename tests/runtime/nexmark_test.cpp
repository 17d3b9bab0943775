// The Nexmark queries (apps/nexmark/queries.hpp) run as jobs on generated events, out of
// order within the watermark's bound, with two source instances, small batches, 4
// partitions and durable state, and their results equal the straightforward computations
// of apps/nexmark/reference.hpp (as multisets; q4 by its last update per category; q12,
// whose windows depend on processing time, by the bids of each bidder).

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "nexmark/reference.hpp"
#include "support.hpp"

namespace {

using namespace eddy;
namespace nx = eddy::nexmark;

constexpr uint64_t event_count = 30'000;

nx::config test_config() {
  nx::config c;
  c.seed = 7;
  // 30 s of event time: three 10 s windows, many slides and sessions.
  c.events_per_second = 1'000;
  c.out_of_order_ms = 40;
  return c;
}

std::vector<nx::event> all_events() {
  nx::generator gen{test_config()};
  std::vector<nx::event> result;
  for (uint64_t i = 0; i < event_count; ++i) {
    result.push_back(gen.at(i));
  }
  return result;
}

/// Runs `query` over the events with `opts` tuned for the test; its results.
template <class T, class Q>
std::vector<T> run_query(Q query, durability level, uint64_t source_rate = 0) {
  test::temp_dir dir;
  auto opts = test::test_options(dir);
  opts.state.level = level;
  opts.batch_events_max = 64;
  opts.source_rate = source_rate;
  engine eng{opts, test::test_common(dir)};
  auto out = std::make_shared<collected<T>>();
  nx::generator gen{test_config()};
  job_builder jb{"nexmark"};
  jb.partitions(4);
  auto events =
    jb.source("events", generator_source(event_count, [gen](uint64_t i) { return gen.at(i); }))
      .parallelism(2)
      .event_time(
        [](const nx::event& e) { return std::visit([](const auto& x) { return x.ts; }, e); },
        bounded_out_of_orderness(test_config().out_of_order_ms));
  query(events).sink("results", collector_sink(out));
  test::run_ok(eng, jb);
  return out->values();
}

template <class T>
std::vector<std::string> sorted_json(const std::vector<T>& values) {
  std::vector<std::string> lines;
  for (const auto& v : values) {
    lines.push_back(nlohmann::json(v).dump());
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

/// Checks that the job's results of `query` equal `expected`, in memory and durable.
template <class T, class Q>
void check_query(Q query, const std::vector<T>& expected) {
  REQUIRE(!expected.empty());
  auto want = sorted_json(expected);
  for (auto level : {durability::none, durability::process}) {
    CAPTURE(to_string(level));
    auto got = sorted_json(run_query<T>(query, level));
    CHECK(got.size() == want.size());
    CHECK(got == want);
  }
}

} // namespace

TEST_CASE("nexmark q0, q1 and q2 pass, convert and select the bids") {
  auto events = all_events();
  check_query([](auto e) { return nx::q0(e); }, nx::reference::bids(events));
  check_query([](auto e) { return nx::q1(e); }, nx::reference::q1(events));
  check_query([](auto e) { return nx::q2(e); }, nx::reference::q2(events));
}

TEST_CASE("nexmark q3 joins category-10 auctions with their local sellers") {
  check_query([](auto e) { return nx::q3(e); }, nx::reference::q3(all_events()));
}

TEST_CASE("nexmark q4 ends at the reference's average closing price of every category") {
  auto expected = nx::reference::q4(all_events());
  REQUIRE(expected.size() == 5);
  for (auto level : {durability::none, durability::process}) {
    CAPTURE(to_string(level));
    auto updates = run_query<nx::category_average>([](auto e) { return nx::q4(e); }, level);
    std::map<int64_t, nx::category_average> last;
    for (const auto& u : updates) {
      auto& l = last[u.category];
      CHECK(u.auctions > l.auctions); // one update per closed auction, counting up
      l = u;
    }
    std::vector<nx::category_average> final_values;
    for (const auto& [category, avg] : last) {
      final_values.push_back(avg);
    }
    CHECK(sorted_json(final_values) == sorted_json(expected));
  }
}

TEST_CASE("nexmark q5 finds the hottest auctions of every sliding window") {
  check_query([](auto e) { return nx::q5(e); }, nx::reference::q5(all_events()));
}

TEST_CASE("nexmark q7 finds the highest bids of every tumbling window") {
  check_query([](auto e) { return nx::q7(e); }, nx::reference::q7(all_events()));
}

TEST_CASE("nexmark q8 finds the people who joined and sold within one window") {
  check_query([](auto e) { return nx::q8(e); }, nx::reference::q8(all_events()));
}

TEST_CASE("nexmark q11 counts the bids of every bidder's sessions") {
  check_query([](auto e) { return nx::q11(e); }, nx::reference::q11(all_events()));
}

TEST_CASE("nexmark q12 counts every bid of a bidder once over its processing-time windows") {
  nx::query_params params;
  params.processing_window_ms = 100;
  // About a second of processing time: windows close while the job runs, the rest at the
  // end of the input.
  auto results = run_query<nx::bidder_count>([params](auto e) { return nx::q12(e, params); },
                                             durability::process, 15'000);
  std::map<int64_t, uint64_t> per_bidder;
  std::set<std::pair<int64_t, time_ms>> windows;
  for (const auto& r : results) {
    per_bidder[r.bidder] += r.bids;
    CHECK(r.bids > 0);
    CHECK(r.start % 100 == 0);
    CHECK(r.end == r.start + 100);
    CHECK(windows.emplace(r.bidder, r.start).second); // one result per bidder and window
  }
  CHECK(per_bidder == nx::reference::bids_per_bidder(all_events()));
  // Windows of a bidder closed while the job ran: more results than bidders.
  CHECK(results.size() > per_bidder.size());
}
