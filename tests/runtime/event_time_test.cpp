// Event time end to end: sources stamp records and emit watermarks (bounded
// out-of-orderness), the watermarks travel with the batches through operators to the key
// partitions, and event-time timers of a keyed function fire once, in timestamp order,
// when the partition's watermark passes them. The keyed function here is a hand-written
// tumbling-window count (the window library builds on the same timers); the reference
// sorts the generated events by event time.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "join_streams.hpp"
#include "support.hpp"
#include "support/window_reference.hpp"

namespace {

using namespace eddy;

struct event {
  int64_t key = 0;
  int64_t ts = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(event, key, ts)

/// A window's count (kind "window"), or an event that came after the watermark passed it
/// (kind "late").
struct window_count {
  std::string kind;
  int64_t key = 0;
  int64_t end = 0;
  int64_t count = 0;
  int64_t watermark = 0;
  friend bool operator<(const window_count& a, const window_count& b) {
    return std::tie(a.kind, a.key, a.end, a.count) < std::tie(b.kind, b.key, b.end, b.count);
  }
  friend bool operator==(const window_count& a, const window_count& b) {
    return std::tie(a.kind, a.key, a.end, a.count) == std::tie(b.kind, b.key, b.end, b.count);
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(window_count, kind, key, end, count, watermark)

uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

constexpr int64_t window_ms = 100;
constexpr int64_t keys = 7;

/// Event i: 10 ms apart, delayed by up to `max_delay` ms (seeded, reproducible).
event make_event(uint64_t i, uint64_t seed, int64_t max_delay) {
  auto h = mix(i * 31 + seed);
  return event{static_cast<int64_t>(h % keys),
               static_cast<int64_t>(i) * 10 - static_cast<int64_t>((h >> 8) % (max_delay + 1))};
}

int64_t window_end(int64_t ts) {
  auto start = ts >= 0 ? ts / window_ms * window_ms : (ts - window_ms + 1) / window_ms * window_ms;
  return start + window_ms;
}

/// Counts per key in tumbling windows of `window_ms`: the count goes out when the watermark
/// passes the window's last millisecond (an event-time timer); an event whose window the
/// watermark passed already goes out as "late".
auto tumbling_count() {
  return [](const event& e, auto& ctx, auto& out) {
    auto end = window_end(e.ts);
    if (ctx.watermark() != no_time && end - 1 <= ctx.watermark()) {
      out.emit(window_count{"late", e.key, end, 1, ctx.watermark()});
      return;
    }
    auto& counts = ctx.template map<int64_t, int64_t>("counts");
    const auto* n = counts.find(end);
    counts.put(end, n ? *n + 1 : 1);
    ctx.register_event_timer(end - 1, "window");
  };
}

auto fire_window() {
  return [](const timer_fired& t, auto& ctx, auto& out) {
    REQUIRE(t.event_time);
    auto& counts = ctx.template map<int64_t, int64_t>("counts");
    const auto* n = counts.find(t.at + 1);
    REQUIRE(n != nullptr);
    out.emit(window_count{"window", ctx.key(), t.at + 1, *n, ctx.watermark()});
    counts.remove(t.at + 1);
  };
}

std::vector<window_count> run_windows(uint64_t count, uint64_t seed, int64_t max_delay,
                                      int64_t bound, uint32_t source_parallelism,
                                      uint32_t partitions, durability level,
                                      uint32_t batch_events_max = 256) {
  test::temp_dir dir;
  auto opts = test::test_options(dir);
  opts.state.level = level;
  opts.batch_events_max = batch_events_max;
  engine eng{opts, test::test_common(dir)};
  auto out = std::make_shared<collected<window_count>>();
  job_builder jb{"event_time"};
  jb.partitions(partitions);
  jb.source("events",
            generator_source(
              count, [seed, max_delay](uint64_t i) { return make_event(i, seed, max_delay); }))
    .parallelism(source_parallelism)
    .event_time([](const event& e) { return e.ts; }, bounded_out_of_orderness(bound))
    .map("pass", [](const event& e) { return e; })
    .key_by([](const event& e) { return e.key; })
    .process<window_count>("windows", tumbling_count(), fire_window())
    .sink("out", collector_sink(out));
  test::run_ok(eng, jb);
  return out->values();
}

/// Every window's count, from the events sorted by event time.
std::vector<window_count> reference(uint64_t count, uint64_t seed, int64_t max_delay) {
  std::map<std::pair<int64_t, int64_t>, int64_t> counts;
  for (uint64_t i = 0; i < count; ++i) {
    auto e = make_event(i, seed, max_delay);
    ++counts[{e.key, window_end(e.ts)}];
  }
  std::vector<window_count> result;
  for (const auto& [k, n] : counts) {
    result.push_back(window_count{"window", k.first, k.second, n, 0});
  }
  return result;
}

} // namespace

TEST_CASE("event-time windows over an out-of-order stream equal the sorted reference, each "
          "window once and in timestamp order per key") {
  for (uint64_t seed : {1u, 2u, 3u}) {
    for (auto [sources, partitions, level] :
         {std::tuple{1u, 4u, durability::none}, std::tuple{2u, 8u, durability::process},
          std::tuple{2u, 8u, durability::none}, std::tuple{1u, 8u, durability::process}}) {
      CAPTURE(seed);
      CAPTURE(sources);
      CAPTURE(level);
      // Delays of up to 45 ms with a bound of 50 ms: no event is late.
      // Small batches: the watermark moves many times while the stream runs.
      auto got = run_windows(3000, seed, 45, 50, sources, partitions, level, 16);
      std::map<int64_t, int64_t> last_end;
      for (const auto& w : got) {
        CHECK(w.kind == "window");
        // Timers fire in timestamp order per key, and only once the watermark passed them.
        CHECK((last_end.count(w.key) == 0 || w.end > last_end[w.key]));
        last_end[w.key] = w.end;
        CHECK(w.watermark >= w.end - 1);
      }
      // The watermark moved while the stream ran: most windows fired before the end.
      auto before_end = std::count_if(
        got.begin(), got.end(), [](const window_count& w) { return w.watermark < end_watermark; });
      CHECK(before_end > static_cast<long>(got.size()) / 2);
      std::sort(got.begin(), got.end());
      CHECK(got == reference(3000, seed, 45));
    }
  }
}

TEST_CASE("events later than the watermark are reported late, exactly those the watermark "
          "passed, and the windows count the rest") {
  // One record per batch, one partition, a commit per batch: the partition takes every
  // watermark right after its record, as the reference does.
  uint64_t count = 600;
  int64_t max_delay = 300;
  int64_t bound = 40;
  auto got = run_windows(count, 5, max_delay, bound, 1, 1, durability::none, 1);
  // The reference: the source's watermark after each record is the highest timestamp so
  // far minus the bound minus 1; a record is late when its window's last millisecond is
  // at or below the watermark after the record before it.
  std::map<std::pair<int64_t, int64_t>, int64_t> windows;
  std::multiset<std::pair<int64_t, int64_t>> late;
  int64_t highest = no_time;
  for (uint64_t i = 0; i < count; ++i) {
    auto e = make_event(i, 5, max_delay);
    auto watermark = highest == no_time ? no_time : highest - bound - 1;
    if (watermark != no_time && window_end(e.ts) - 1 <= watermark) {
      late.insert({e.key, window_end(e.ts)});
    } else {
      ++windows[{e.key, window_end(e.ts)}];
    }
    highest = std::max(highest, e.ts);
  }
  std::multiset<std::pair<int64_t, int64_t>> got_late;
  std::map<std::pair<int64_t, int64_t>, int64_t> got_windows;
  for (const auto& w : got) {
    if (w.kind == "late") {
      got_late.insert({w.key, w.end});
    } else {
      got_windows[{w.key, w.end}] += w.count;
    }
  }
  CHECK(!late.empty());
  CHECK(got_late == late);
  CHECK(got_windows == windows);
}

namespace {

using reading = event;

/// Runs `assigner` with a sum of 1 per element (a count) over a seeded out-of-order stream,
/// one partition and one record per batch, so that the operator sees the watermark after
/// every element as the brute-force reference does.
template <class Assigner>
void check_windows_against_reference(Assigner assigner, int64_t max_delay, int64_t bound,
                                     time_ms lateness, durability level) {
  uint64_t count = 400;
  uint64_t seed = 11;
  test::temp_dir dir;
  auto opts = test::test_options(dir);
  opts.state.level = level;
  opts.batch_events_max = 1;
  engine eng{opts, test::test_common(dir)};
  using out_t = window_output<int64_t, reading, int64_t>;
  auto out = std::make_shared<collected<out_t>>();
  auto ones = make_aggregate([] { return int64_t{0}; }, [](int64_t& acc, const auto&) { ++acc; },
                             [](int64_t& into, const int64_t& from) { into += from; },
                             [](const int64_t& acc) { return acc; });
  job_builder jb{"windows"};
  jb.partitions(1);
  jb.source("events",
            generator_source(
              count, [seed, max_delay](uint64_t i) { return make_event(i, seed, max_delay); }))
    .event_time([](const reading& e) { return e.ts; }, bounded_out_of_orderness(bound))
    .key_by([](const reading& e) { return e.key; })
    .window("windows", assigner, ones, lateness)
    .sink("out", collector_sink(out));
  test::run_ok(eng, jb);

  std::vector<window_event<int64_t, int64_t>> events;
  for (uint64_t i = 0; i < count; ++i) {
    auto e = make_event(i, seed, max_delay);
    events.push_back({e.key, e.ts, 1, static_cast<int64_t>(i)});
  }
  auto expected = reference_windows(events, bounded_out_of_orderness(bound),
                                    window_assigner{assigner}, lateness, ones);
  // Firings per key in the order they happened, and the late elements.
  std::map<int64_t, std::vector<std::tuple<time_ms, time_ms, int64_t, bool>>> want;
  std::multiset<std::pair<int64_t, time_ms>> want_late;
  for (const auto& f : expected.firings) {
    want[f.key].emplace_back(f.win.start, f.win.end, f.result, f.is_update);
  }
  for (const auto& l : expected.late) {
    want_late.insert({l.key, l.ts});
  }
  std::map<int64_t, std::vector<std::tuple<time_ms, time_ms, int64_t, bool>>> got;
  std::multiset<std::pair<int64_t, time_ms>> got_late;
  for (const auto& o : out->values()) {
    if (o.kind == "late") {
      got_late.insert({o.key, o.ts});
      CHECK(o.reason.find("late") != std::string::npos);
    } else {
      got[o.key].emplace_back(o.start, o.end, o.result, o.kind == "update");
    }
  }
  CHECK(got == want);
  CHECK(got_late == want_late);
}

} // namespace

TEST_CASE("tumbling, sliding and session windows with allowed lateness equal the brute-force "
          "reference, results, updates and late elements") {
  for (auto level : {durability::none, durability::process}) {
    CAPTURE(level);
    SUBCASE("tumbling, nothing late") {
      check_windows_against_reference(tumbling(100), 45, 50, 0, level);
    }
    SUBCASE("tumbling, late elements and updates") {
      check_windows_against_reference(tumbling(100), 300, 40, 60, level);
    }
    SUBCASE("sliding") {
      check_windows_against_reference(sliding(100, 30), 200, 40, 50, level);
    }
    SUBCASE("session") {
      check_windows_against_reference(session(25), 200, 40, 50, level);
    }
  }
}

namespace {

using test::make_side;
using test::matched;
using test::order;
using test::payment;

} // namespace

TEST_CASE("an interval join of two out-of-order streams pairs exactly the records the brute "
          "force pairs, each pair once") {
  uint64_t orders = 800;
  uint64_t payments = 600;
  int64_t lower = -20;
  int64_t upper = 60;
  for (auto level : {durability::none, durability::process}) {
    CAPTURE(level);
    test::temp_dir dir;
    auto opts = test::test_options(dir);
    opts.state.level = level;
    opts.batch_events_max = 16;
    engine eng{opts, test::test_common(dir)};
    auto out = std::make_shared<collected<matched>>();
    job_builder jb{"join"};
    jb.partitions(4);
    auto left =
      jb.source("orders",
                generator_source(orders, [](uint64_t i) { return make_side<order>(i, 3, 10, 40); }))
        .event_time([](const order& o) { return o.ts; }, bounded_out_of_orderness(50));
    auto right = jb.source("payments",
                           generator_source(
                             payments, [](uint64_t i) { return make_side<payment>(i, 4, 13, 40); }))
                   .event_time([](const payment& p) { return p.ts; }, bounded_out_of_orderness(50));
    connect(left, right, "both")
      .key_by([](const either<order, payment>& e) { return e.is_left ? e.left.key : e.right.key; })
      .interval_join<matched>("match", lower, upper,
                              [](const order& o, const payment& p) {
                                return matched{o.id, p.id};
                              })
      .sink("out", collector_sink(out));
    test::run_ok(eng, jb);
    std::vector<matched> want;
    for (uint64_t i = 0; i < orders; ++i) {
      auto o = make_side<order>(i, 3, 10, 40);
      for (uint64_t j = 0; j < payments; ++j) {
        auto p = make_side<payment>(j, 4, 13, 40);
        if (o.key == p.key && o.ts + lower <= p.ts && p.ts <= o.ts + upper) {
          want.push_back(matched{o.id, p.id});
        }
      }
    }
    auto got = out->values();
    std::sort(got.begin(), got.end());
    std::sort(want.begin(), want.end());
    CHECK(want.size() > 100);
    CHECK(got == want);
  }
}

namespace {

/// A source of two instances for the idleness test: instance 0 emits `count` events of key
/// 1, 10 ms apart in event time, a few per poll; instance 1 emits nothing and stays open
/// (as a quiet partition of a topic would) until instance 0 is done and `release` is set.
class quiet_pair_source final : public source_logic {
public:
  quiet_pair_source(const instance_context& ctx, uint64_t count,
                    std::shared_ptr<std::atomic<bool>> release)
    : index_(ctx.index)
    , count_(count)
    , release_(std::move(release)) {}

  bool poll(record_buffer& out, size_t max) override {
    if (index_ == 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return !release_->load();
    }
    auto& dst = typed<event>(out).records;
    for (size_t n = 0; n < std::min<size_t>(max, 4) && next_ < count_; ++n, ++next_) {
      dst.push_back(record<event>{event{1, static_cast<int64_t>(next_) * 10}, no_time, 0});
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (next_ >= count_) {
      // Waits for the others to see what it sent, then lets the quiet instance end.
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      release_->store(true);
      return false;
    }
    return true;
  }
  bool blocking() const noexcept override {
    return true;
  }

private:
  uint32_t index_;
  uint64_t count_;
  uint64_t next_ = 0;
  std::shared_ptr<std::atomic<bool>> release_;
};

/// Windows that fired while the quiet instance was open (below the watermark of the last
/// event, 399 * 10 - 1), with an idle timeout of `idle_ms`.
size_t windows_before_end(uint32_t idle_ms) {
  test::temp_dir dir;
  auto opts = test::test_options(dir);
  opts.state.level = durability::none;
  engine eng{opts, test::test_common(dir)};
  auto out = std::make_shared<collected<window_count>>();
  auto release = std::make_shared<std::atomic<bool>>(false);
  job_builder jb{"idle"};
  jb.partitions(2);
  source_def<event> quiet{[release](const instance_context& ctx) -> std::unique_ptr<source_logic> {
                            return std::make_unique<quiet_pair_source>(ctx, 400, release);
                          },
                          2};
  jb.source("events", quiet)
    .parallelism(2)
    .event_time([](const event& e) { return e.ts; }, bounded_out_of_orderness(0, idle_ms))
    .key_by([](const event& e) { return e.key; })
    .process<window_count>("windows", tumbling_count(), fire_window())
    .sink("out", collector_sink(out));
  test::run_ok(eng, jb);
  auto got = out->values();
  CHECK(got.size() == 40);
  return static_cast<size_t>(std::count_if(
    got.begin(), got.end(), [](const window_count& w) { return w.watermark < 399 * 10 - 1; }));
}

} // namespace

TEST_CASE("an idle source instance holds the watermark back without an idle timeout, and "
          "not with one") {
  // Without: instance 1 never reports a watermark, so windows wait until it ends.
  CHECK(windows_before_end(0) == 0);
  // With 50 ms: instance 1 is idle and left out; windows fire while instance 0 runs.
  CHECK(windows_before_end(50) > 20);
}

namespace {

using global_out = window_output<int64_t, event, int64_t>;

std::vector<global_out> run_global(bool by_count) {
  test::temp_dir dir;
  auto opts = test::test_options(dir);
  opts.state.level = durability::process;
  opts.batch_events_max = 16;
  engine eng{opts, test::test_common(dir)};
  auto out = std::make_shared<collected<global_out>>();
  auto ones = make_aggregate([] { return int64_t{0}; }, [](int64_t& acc, const event&) { ++acc; },
                             [](int64_t& into, const int64_t& from) { into += from; },
                             [](const int64_t& acc) { return acc; });
  job_builder jb{"global"};
  jb.partitions(4);
  auto keyed =
    jb.source("events", generator_source(2000, [](uint64_t i) { return make_event(i, 9, 45); }))
      .event_time([](const event& e) { return e.ts; }, bounded_out_of_orderness(50))
      .key_by([](const event& e) { return e.key; });
  if (by_count) {
    keyed.global_window("counts", count_trigger{5}, ones).sink("out", collector_sink(out));
  } else {
    keyed.global_window("counts", period_trigger{100}, ones).sink("out", collector_sink(out));
  }
  test::run_ok(eng, jb);
  return out->values();
}

} // namespace

TEST_CASE("a global window with a count trigger fires every n elements of a key, and one "
          "with a period trigger fires at period boundaries with everything the key got") {
  std::map<int64_t, int64_t> per_key;
  for (uint64_t i = 0; i < 2000; ++i) {
    ++per_key[make_event(i, 9, 45).key];
  }
  // Count trigger: per key, full windows of 5; the rest of a key never fires (no trigger).
  std::map<int64_t, int64_t> fired;
  for (const auto& o : run_global(true)) {
    CHECK(o.kind == "result");
    CHECK(o.result == 5);
    fired[o.key] += 5;
  }
  for (const auto& [key, n] : per_key) {
    CHECK(fired[key] == n / 5 * 5);
  }
  // Period trigger: every element is counted once, over many firings per key.
  std::map<int64_t, int64_t> counted;
  size_t firings = 0;
  for (const auto& o : run_global(false)) {
    counted[o.key] += o.result;
    ++firings;
  }
  CHECK(counted == per_key);
  CHECK(firings > 100);
}
