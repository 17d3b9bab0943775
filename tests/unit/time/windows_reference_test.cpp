// The brute-force window reference (window_reference.hpp): hand-computed cases, and
// properties against sorting by event time and against an incremental operator.

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "eddy/time/window_aggregate.hpp"
#include "eddy/time/windows.hpp"
#include "support/window_reference.hpp"
#include "windows_support.hpp"

using namespace eddy;
using namespace eddy::test;

namespace {

using event = window_event<std::string, int64_t>;
using firing = window_firing<std::string, int64_t>;
using string_result = window_result<std::string, int64_t>;
using late = late_element<std::string, int64_t>;
using emissions = window_emissions<std::string, int64_t, int64_t>;

std::string show(const std::vector<firing>& list) {
  std::string s;
  for (const auto& f : list) {
    s += f.key + to_string(f.win) + "=" + std::to_string(f.result) + (f.is_update ? "u" : "") +
         "@" + std::to_string(f.watermark) + " ";
  }
  return s;
}

std::string show(const std::vector<string_result>& list) {
  std::string s;
  for (const auto& r : list) {
    s += r.key + to_string(r.win) + "=" + std::to_string(r.result) + " ";
  }
  return s;
}

std::string show(const std::vector<late>& list) {
  std::string s;
  for (const auto& l : list) {
    s += l.key + "@" + std::to_string(l.ts) + ":" + to_string(l.reason) + "/" +
         std::to_string(l.watermark) + " ";
  }
  return s;
}

/// Events of one key arriving in the order given.
std::vector<event> in_order(const std::string& key, std::initializer_list<time_ms> times) {
  std::vector<event> result;
  for (time_ms ts : times) {
    result.push_back(event{key, ts, ts, static_cast<int64_t>(result.size())});
  }
  return result;
}

/// Events of keys "a".."c" at event times in [-400, 1200] (a random walk, so that sessions
/// both form and break), values 1..100, each arriving `delay` in [0, max_delay] after its
/// event time.
std::vector<event> random_stream(uint64_t seed, size_t n, time_ms max_delay) {
  rng r{seed};
  std::vector<event> result;
  time_ms ts = -400;
  for (size_t i = 0; i < n; ++i) {
    ts = std::clamp<time_ms>(ts + r.between(-15, 25), -400, 1200);
    std::string key(1, static_cast<char>('a' + r.between(0, 2)));
    result.push_back(event{key, ts, r.between(1, 100), ts + r.between(0, max_delay)});
  }
  return result;
}

const std::vector<uint64_t> seeds = {1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233};

std::vector<window_assigner> assigners() {
  return {tumbling(50),       tumbling(40, 7), tumbling(1), sliding(60, 20),
          sliding(50, 15, 4), sliding(30, 30), session(30), session(7)};
}

std::string name_of(const window_assigner& a) {
  return std::visit(
    [](const auto& x) -> std::string {
      using A = std::decay_t<decltype(x)>;
      if constexpr (std::is_same_v<A, tumbling_windows>) {
        return "tumbling(" + std::to_string(x.size) + ", " + std::to_string(x.offset) + ")";
      } else if constexpr (std::is_same_v<A, sliding_windows>) {
        return "sliding(" + std::to_string(x.size) + ", " + std::to_string(x.slide) + ", " +
               std::to_string(x.offset) + ")";
      } else {
        return "session(" + std::to_string(x.gap) + ")";
      }
    },
    a);
}

/// An incremental window operator written only with the API of windows.hpp and
/// window_aggregate.hpp, the way the keyed runtime operator is meant to be: accumulators
/// per key and window (merged for sessions), and event-time timers ordered by (time, key,
/// tag) that fire when the watermark passes them. Checked against the brute-force
/// reference, it shows that the API is enough and that both agree.
template <class A>
class model_operator {
public:
  using acc_t = typename A::accumulator;

  model_operator(window_assigner assigner, time_ms lateness, A agg)
    : assigner_(assigner)
    , lateness_(lateness)
    , agg_(agg) {}

  emissions run(const std::vector<window_step<std::string, int64_t>>& steps) {
    for (const auto& step : steps) {
      if (const auto* adv = std::get_if<watermark_advance>(&step)) {
        advance(adv->watermark);
      } else {
        element(std::get<event>(step));
      }
    }
    return std::move(out_);
  }

private:
  void element(const event& e) {
    if (auto reason = check_time(e.ts)) {
      out_.late.push_back({e.key, e.ts, e.value, *reason, wm_});
      return;
    }
    auto& windows = state_[e.key];
    if (!is_merging(assigner_)) {
      bool taken = false;
      for (const window& w : assign(assigner_, e.ts)) {
        if (is_late(w, wm_, lateness_)) {
          continue;
        }
        taken = true;
        auto [i, fresh] = windows.try_emplace(w, window_contents<acc_t>{agg_.create(), false});
        if (fresh) {
          register_timers(e.key, w);
        }
        agg_.add(i->second.acc, e.value);
        if (is_complete(w, wm_)) {
          fire(e.key, w, i->second);
        }
      }
      if (!taken) {
        out_.late.push_back({e.key, e.ts, e.value, late_reason::too_late, wm_});
      }
      return;
    }
    std::vector<window> current;
    for (const auto& [w, _] : windows) {
      current.push_back(w);
    }
    auto m = merge_sessions(current, assign(assigner_, e.ts).front());
    if (is_late(m.target, wm_, lateness_)) {
      out_.late.push_back({e.key, e.ts, e.value, late_reason::too_late, wm_});
      return;
    }
    window_contents<acc_t> c{agg_.create(), false};
    if (m.target_existed) {
      c = windows.at(m.target);
    }
    for (const window& a : m.absorbed) {
      const auto& old = windows.at(a);
      agg_.merge(c.acc, old.acc);
      c.emitted = c.emitted || old.emitted;
      timers_.erase({fires_at(a), e.key, timer_tag(window_timer_kind::fire, a)});
      timers_.erase({cleanup_at(a, lateness_), e.key, timer_tag(window_timer_kind::purge, a)});
      windows.erase(a);
    }
    agg_.add(c.acc, e.value);
    if (!m.target_existed) {
      register_timers(e.key, m.target);
    }
    auto& slot = windows[m.target] = c;
    if (is_complete(m.target, wm_)) {
      fire(e.key, m.target, slot);
    }
  }

  void register_timers(const std::string& key, const window& w) {
    if (!is_complete(w, wm_)) {
      timers_.insert({fires_at(w), key, timer_tag(window_timer_kind::fire, w)});
    }
    timers_.insert({cleanup_at(w, lateness_), key, timer_tag(window_timer_kind::purge, w)});
  }

  void advance(time_ms watermark) {
    if (watermark <= wm_) {
      return;
    }
    wm_ = watermark;
    while (!timers_.empty() && std::get<0>(*timers_.begin()) <= wm_) {
      auto [at, key, tag] = *timers_.begin();
      timers_.erase(timers_.begin());
      auto t = parse_timer_tag(tag);
      REQUIRE(t.has_value());
      auto& windows = state_.at(key);
      if (t->kind == window_timer_kind::fire) {
        fire(key, t->win, windows.at(t->win));
      } else {
        windows.erase(t->win);
      }
    }
  }

  void fire(const std::string& key, const window& w, window_contents<acc_t>& c) {
    out_.firings.push_back({key, w, agg_.result(c.acc), c.emitted, wm_});
    c.emitted = true;
  }

  window_assigner assigner_;
  time_ms lateness_;
  A agg_;
  time_ms wm_ = no_time;
  std::map<std::string, std::map<window, window_contents<acc_t>>> state_;
  std::set<std::tuple<time_ms, std::string, std::string>> timers_;
  emissions out_;
};

/// The watermark each event sees when it arrives (the reference's strategy, computed
/// separately), in arrival order with the events.
std::vector<std::pair<event, time_ms>> with_watermarks(std::vector<event> events, time_ms bound) {
  std::stable_sort(events.begin(), events.end(),
                   [](const auto& a, const auto& b) { return a.arrival < b.arrival; });
  std::vector<std::pair<event, time_ms>> result;
  time_ms max_ts = no_time;
  for (auto& e : events) {
    result.emplace_back(e, max_ts == no_time ? no_time : max_ts - bound - 1);
    max_ts = std::max(max_ts, e.ts);
  }
  return result;
}

} // namespace

// --- references: hand-computed cases -----------------------------------------------------

TEST_CASE("the window reference fires tumbling windows as the watermark passes them and drops "
          "an element behind a fired window without lateness") {
  auto out = reference_windows(in_order("a", {1, 5, 12, 3, 25}), monotonous_timestamps(),
                               tumbling(10), 0, sum);
  CAPTURE(show(out.firings));
  // After 12 the watermark is 11: [0, 10) fires. 3 arrives behind it. After 25: 24, [10, 20)
  // fires. [20, 30) fires at the end.
  CHECK(out.firings == std::vector<firing>{{"a", {0, 10}, 6, false, 11},
                                           {"a", {10, 20}, 12, false, 24},
                                           {"a", {20, 30}, 25, false, end_watermark}});
  CHECK(out.late == std::vector<late>{{"a", 3, 3, late_reason::too_late, 11}});
}

TEST_CASE("the window reference updates a fired window for an element within the allowed "
          "lateness and drops one after it") {
  auto events = in_order("a", {1, 5, 12, 3, 14, 4, 25});
  auto out = reference_windows(events, monotonous_timestamps(), tumbling(10), 5, sum);
  CAPTURE(show(out.firings));
  CAPTURE(show(out.late));
  // 3 arrives at watermark 11 < 9 + 5: taken, [0, 10) fires again at once with 9. After 14
  // the watermark is 13 (still < 14). 4 arrives at 13: taken too (13 < 14), fires with 13.
  CHECK(out.firings == std::vector<firing>{{"a", {0, 10}, 6, false, 11},
                                           {"a", {0, 10}, 9, true, 11},
                                           {"a", {0, 10}, 13, true, 13},
                                           {"a", {10, 20}, 26, false, 24},
                                           {"a", {20, 30}, 25, false, end_watermark}});
  CHECK(out.late.empty());
  // One ms later it is late: the watermark reached cleanup_at = 14.
  events = in_order("a", {1, 5, 12, 3, 15, 4, 25});
  out = reference_windows(events, monotonous_timestamps(), tumbling(10), 5, sum);
  CHECK(out.late == std::vector<late>{{"a", 4, 4, late_reason::too_late, 14}});
}

TEST_CASE("the window reference creates a window for an element within the lateness after its "
          "end, and fires it at once as a first result") {
  // [0, 10) never had an element; 12 moves the watermark to 11; 7 is within lateness 5.
  auto out =
    reference_windows(in_order("a", {12, 7}), monotonous_timestamps(), tumbling(10), 5, sum);
  CHECK(out.firings == std::vector<firing>{{"a", {0, 10}, 7, false, 11},
                                           {"a", {10, 20}, 12, false, end_watermark}});
  CHECK(out.late.empty());
}

TEST_CASE("the window reference fires the windows of one watermark advance by end, then key") {
  std::vector<event> events = {{"b", 5, 1, 0}, {"a", 15, 2, 1},  {"a", 3, 4, 2},
                               {"c", 8, 8, 3}, {"b", 14, 16, 4}, {"a", 100, 32, 5}};
  // Bound 50: nothing fires until 100 arrives (watermark 49), then everything up to 49.
  auto out = reference_windows(events, bounded_out_of_orderness(50), tumbling(10), 0, sum);
  CAPTURE(show(out.firings));
  CHECK(out.firings == std::vector<firing>{{"a", {0, 10}, 4, false, 49},
                                           {"b", {0, 10}, 1, false, 49},
                                           {"c", {0, 10}, 8, false, 49},
                                           {"a", {10, 20}, 2, false, 49},
                                           {"b", {10, 20}, 16, false, 49},
                                           {"a", {100, 110}, 32, false, end_watermark}});
}

TEST_CASE("the window reference fires the sliding windows an update touches by end") {
  // Lateness 100: nothing is dropped.
  auto out =
    reference_windows(in_order("a", {6, 20, 7}), monotonous_timestamps(), sliding(10, 5), 100, sum);
  CAPTURE(show(out.firings));
  // 20: watermark 19 fires [0, 10) = 6 and [5, 15) = 6. 7 then updates both, by end.
  CHECK(out.firings == std::vector<firing>{{"a", {0, 10}, 6, false, 19},
                                           {"a", {5, 15}, 6, false, 19},
                                           {"a", {0, 10}, 13, true, 19},
                                           {"a", {5, 15}, 13, true, 19},
                                           {"a", {15, 25}, 20, false, end_watermark},
                                           {"a", {20, 30}, 20, false, end_watermark}});
}

TEST_CASE("the window reference merges sessions bridged by an out-of-order element") {
  // gap 5: 0 and 8 open [0, 5) and [8, 13); 4 arrives late (bound 10) and bridges them.
  std::vector<event> events = {{"a", 0, 1, 0}, {"a", 8, 2, 1}, {"a", 4, 4, 2}, {"a", 30, 8, 3}};
  auto out = reference_windows(events, bounded_out_of_orderness(10), session(5), 0, sum);
  CAPTURE(show(out.firings));
  CHECK(out.firings == std::vector<firing>{{"a", {0, 13}, 7, false, 19},
                                           {"a", {30, 35}, 8, false, end_watermark}});
  CHECK(out.late.empty());
  CHECK(results_of(out.firings) == sorted_reference(events, session(5), sum));
}

TEST_CASE("the window reference extends a fired session with a late element within the "
          "lateness as an update, and a session the element cannot join is late") {
  // gap 5, lateness 10. 0 and 2 make [0, 7). 20 moves the watermark to 19: [0, 7) fires and,
  // since its cleanup_at 6 + 10 = 16 <= 19, is purged. 5 then has nothing to join and its own
  // window [5, 10) is late (9 + 10 <= 19); so is 1's. 40 fires [20, 25) at 39; 3 is late.
  std::vector<event> events = in_order("a", {0, 2, 20, 5, 1, 40, 3});
  auto out = reference_windows(events, monotonous_timestamps(), session(5), 10, sum);
  CAPTURE(show(out.firings));
  CAPTURE(show(out.late));
  CHECK(out.firings == std::vector<firing>{{"a", {0, 7}, 2, false, 19},
                                           {"a", {20, 25}, 20, false, 39},
                                           {"a", {40, 45}, 40, false, end_watermark}});
  CHECK(out.late == std::vector<late>{{"a", 5, 5, late_reason::too_late, 19},
                                      {"a", 1, 1, late_reason::too_late, 19},
                                      {"a", 3, 3, late_reason::too_late, 39}});

  // With the watermark only at 10 when 5 arrives, the session is alive (cleanup 16 > 10) and
  // 5 joins it: [0, 10) fires at once (9 <= 10) as an update of [0, 7).
  events = in_order("a", {0, 2, 11, 5});
  out = reference_windows(events, monotonous_timestamps(), session(5), 10, sum);
  CAPTURE(show(out.firings));
  CHECK(out.firings == std::vector<firing>{{"a", {0, 7}, 2, false, 10},
                                           {"a", {0, 10}, 7, true, 10},
                                           {"a", {11, 16}, 11, false, end_watermark}});
  CHECK(out.late.empty());
}

TEST_CASE("the window reference drops elements without event time or outside the range, and "
          "replays explicit watermark steps") {
  std::vector<window_step<std::string, int64_t>> steps = {
    event{"a", 3, 1, 0},  event{"a", no_time, 2, 0}, event{"a", max_event_time + 1, 4, 0},
    watermark_advance{9}, watermark_advance{5}, // never goes back
    event{"a", 8, 8, 0},  event{"a", 12, 16, 0},     watermark_advance{end_watermark}};
  auto out = replay_windows(steps, tumbling(10), 0, sum);
  CAPTURE(show(out.firings));
  CHECK(out.firings == std::vector<firing>{{"a", {0, 10}, 1, false, 9},
                                           {"a", {10, 20}, 16, false, end_watermark}});
  CHECK(out.late ==
        std::vector<late>{{"a", no_time, 2, late_reason::untimed, no_time},
                          {"a", max_event_time + 1, 4, late_reason::out_of_range, no_time},
                          {"a", 8, 8, late_reason::too_late, 9}});
  CHECK_THROWS_AS(replay_windows(steps, tumbling(10), -1, sum), std::invalid_argument);
}

TEST_CASE("the window reference gives a process-all function a window's elements in arrival "
          "order") {
  auto all = process_all<int64_t>([](std::span<const int64_t> values) {
    return std::vector<int64_t>(values.begin(), values.end());
  });
  std::vector<event> events = {{"a", 5, 5, 0}, {"a", 2, 2, 1}, {"a", 4, 4, 2}, {"a", 30, 30, 3}};
  auto out = reference_windows(events, bounded_out_of_orderness(10), tumbling(10), 0, all);
  REQUIRE(out.firings.size() == 2);
  CHECK(out.firings[0].win == window{0, 10});
  CHECK(out.firings[0].result == std::vector<int64_t>{5, 2, 4});
  CHECK(out.firings[1].result == std::vector<int64_t>{30});
  // The sorted reference goes by event time.
  auto sorted = sorted_reference(events, tumbling(10), all);
  REQUIRE(sorted.size() == 2);
  CHECK(sorted[0].result == std::vector<int64_t>{2, 4, 5});
}

TEST_CASE("the sorted reference aggregates every element per key and window") {
  std::vector<event> events = {
    {"b", 12, 1, 0}, {"a", 3, 2, 0}, {"a", -1, 4, 0}, {"a", 9, 8, 0}, {"b", no_time, 100, 0}};
  CHECK(sorted_reference(events, tumbling(10), sum) ==
        std::vector<string_result>{{"a", {-10, 0}, 4}, {"a", {0, 10}, 10}, {"b", {10, 20}, 1}});
  // Sessions of gap 4: a: -1 [-1, 3) touches 3 [3, 7): two sessions; 9 is separate.
  CHECK(sorted_reference(events, session(4), sum) ==
        std::vector<string_result>{
          {"a", {-1, 3}, 4}, {"a", {3, 7}, 2}, {"a", {9, 13}, 8}, {"b", {12, 16}, 1}});
  CHECK(sorted_reference(events, session(5), sum) ==
        std::vector<string_result>{{"a", {-1, 8}, 6}, {"a", {9, 14}, 8}, {"b", {12, 17}, 1}});
}

// --- property tests ----------------------------------------------------------------------

TEST_CASE("without late data the window reference equals sorting by event time, for tumbling, "
          "sliding and session windows") {
  for (time_ms bound : {0, 5, 40}) {
    for (uint64_t seed : seeds) {
      // Delays up to the bound: every element arrives before the watermark passes it.
      auto events = random_stream(seed, 150, bound);
      auto strategy = bound == 0 ? monotonous_timestamps() : bounded_out_of_orderness(bound);
      for (const auto& a : assigners()) {
        CAPTURE(bound);
        CAPTURE(seed);
        CAPTURE(name_of(a));
        for (time_ms lateness : {0, 25}) {
          auto out = reference_windows(events, strategy, a, lateness, sum);
          CHECK(out.late.empty());
          auto got = results_of(out.firings);
          auto expected = sorted_reference(events, a, sum);
          CAPTURE(show(got));
          CAPTURE(show(expected));
          CHECK(got == expected);
          CHECK(std::none_of(out.firings.begin(), out.firings.end(),
                             [](const firing& f) { return f.is_update; }));
        }
      }
    }
  }
}

TEST_CASE("an incremental operator built on the window API emits exactly what the reference "
          "does, with and without late data") {
  for (uint64_t seed : seeds) {
    for (time_ms delay : {10, 120}) {
      auto events = random_stream(seed, 150, delay);
      for (const auto& a : assigners()) {
        for (time_ms lateness : {0, 30, 200}) {
          CAPTURE(seed);
          CAPTURE(delay);
          CAPTURE(name_of(a));
          CAPTURE(lateness);
          auto steps = steps_of(events, bounded_out_of_orderness(10));
          auto expected = replay_windows(steps, a, lateness, sum);
          auto got = model_operator{a, lateness, sum}.run(steps);
          CAPTURE(show(expected.firings));
          CAPTURE(show(got.firings));
          CHECK(got.firings == expected.firings);
          CHECK(got.late == expected.late);
        }
      }
    }
  }
}

TEST_CASE("with delays beyond the bound, exactly the elements whose windows are all late are "
          "dropped, and the last result of a window holds the elements it took") {
  time_ms bound = 10;
  size_t updates = 0;
  size_t dropped = 0;
  for (uint64_t seed : seeds) {
    auto events = random_stream(seed, 150, 120);
    auto arrivals = with_watermarks(events, bound);
    for (const auto& a : assigners()) {
      if (is_merging(a)) {
        continue;
      }
      for (time_ms lateness : {0, 30, 200}) {
        CAPTURE(seed);
        CAPTURE(name_of(a));
        CAPTURE(lateness);
        auto out = reference_windows(events, bounded_out_of_orderness(bound), a, lateness, sum);
        // The definition, element by element with the watermark it met.
        std::vector<late> expected_late;
        std::map<std::tuple<time_ms, std::string, time_ms>, int64_t> taken;
        int64_t total = 0;
        for (const auto& [e, wm] : arrivals) {
          auto windows = assign(a, e.ts);
          if (is_late(windows, wm, lateness)) {
            expected_late.push_back({e.key, e.ts, e.value, late_reason::too_late, wm});
          }
          for (const auto& w : windows) {
            if (!is_late(w, wm, lateness)) {
              taken[{w.end, e.key, w.start}] += e.value;
              total += e.value;
            }
          }
        }
        CHECK(out.late == expected_late);
        std::vector<string_result> expected_final;
        for (const auto& [id, s] : taken) {
          expected_final.push_back({std::get<1>(id), {std::get<2>(id), std::get<0>(id)}, s});
        }
        CHECK(final_results(out.firings) == expected_final);
        // Every firing comes at or after its window's end, updates within the lateness.
        for (const auto& f : out.firings) {
          CHECK(f.watermark >= fires_at(f.win));
          if (f.is_update) {
            CHECK(f.watermark < cleanup_at(f.win, lateness));
            CHECK(lateness > 0);
          }
          updates += f.is_update ? 1 : 0;
        }
        dropped += out.late.size();
        // Tumbling: each element is in one window, so nothing is lost or counted twice.
        if (std::holds_alternative<tumbling_windows>(a)) {
          int64_t late_sum = 0;
          for (const auto& l : out.late) {
            late_sum += l.value;
          }
          int64_t all = 0;
          for (const auto& e : events) {
            all += e.value;
          }
          CHECK(total + late_sum == all);
        }
      }
    }
  }
  // The streams do exercise both paths.
  CHECK(updates > 100);
  CHECK(dropped > 100);
}

TEST_CASE("with delays beyond the bound, a dropped session element met a late window, and with "
          "a lateness longer than every delay sessions end up as with sorting") {
  time_ms bound = 10;
  size_t dropped = 0;
  size_t updates = 0;
  size_t joined_late = 0;
  for (uint64_t seed : seeds) {
    auto events = random_stream(seed, 150, 120);
    auto arrivals = with_watermarks(events, bound);
    for (time_ms gap : {7, 30}) {
      CAPTURE(seed);
      CAPTURE(gap);
      auto out = reference_windows(events, bounded_out_of_orderness(bound), session(gap), 0, sum);
      // A dropped element's own window was late; an element whose own window was not late
      // is never dropped. (One whose own window was late may still join a live session.)
      size_t i = 0;
      size_t joined = 0;
      for (const auto& [e, wm] : arrivals) {
        window own{e.ts, e.ts + gap};
        bool is_dropped = i < out.late.size() && out.late[i].ts == e.ts &&
                          out.late[i].key == e.key && out.late[i].value == e.value &&
                          out.late[i].watermark == wm;
        if (is_dropped) {
          CHECK(is_late(own, wm, 0));
          ++i;
        } else if (is_late(own, wm, 0)) {
          ++joined;
        }
      }
      CHECK(i == out.late.size());
      dropped += out.late.size();
      joined_late += joined;

      // A lateness longer than every delay: nothing is dropped, and the last results of the
      // final sessions are those of sorting by event time.
      auto patient =
        reference_windows(events, bounded_out_of_orderness(bound), session(gap), 1000, sum);
      CHECK(patient.late.empty());
      auto expected = sorted_reference(events, session(gap), sum);
      auto final = final_results(patient.firings);
      std::vector<string_result> final_sessions;
      for (const auto& r : final) {
        bool is_final = std::any_of(expected.begin(), expected.end(), [&](const string_result& x) {
          return x.key == r.key && x.win == r.win;
        });
        if (is_final) {
          final_sessions.push_back(r);
        } else {
          // An earlier firing of a session that grew later: inside a final session.
          CHECK(std::any_of(expected.begin(), expected.end(), [&](const string_result& x) {
            return x.key == r.key && x.win.cover(r.win) == x.win;
          }));
        }
      }
      CAPTURE(show(final_sessions));
      CAPTURE(show(expected));
      CHECK(final_sessions == expected);
      for (const auto& f : patient.firings) {
        updates += f.is_update ? 1 : 0;
      }
    }
  }
  CHECK(dropped > 50);
  CHECK(updates > 50);
  CHECK(joined_late > 50); // elements behind the watermark that joined a live session
}
