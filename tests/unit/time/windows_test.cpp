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

#include "eddy/codec/binary.hpp"
#include "eddy/time/window_aggregate.hpp"
#include "eddy/time/windows.hpp"
#include "support/window_reference.hpp"

using namespace eddy;

namespace {

using event = window_event<std::string, int64_t>;
using firing = window_firing<std::string, int64_t>;
using result = window_result<std::string, int64_t>;
using late = late_element<std::string, int64_t>;
using emissions = window_emissions<std::string, int64_t, int64_t>;

const sum_aggregate<int64_t> sum{};

std::vector<window> ws(std::initializer_list<window> list) {
  return list;
}

std::string show(const window& w) {
  return to_string(w);
}

std::string show(const std::vector<window>& list) {
  std::string s;
  for (const auto& w : list) {
    s += to_string(w) + " ";
  }
  return s;
}

std::string show(const std::vector<firing>& list) {
  std::string s;
  for (const auto& f : list) {
    s += f.key + to_string(f.win) + "=" + std::to_string(f.result) + (f.is_update ? "u" : "") +
         "@" + std::to_string(f.watermark) + " ";
  }
  return s;
}

std::string show(const std::vector<result>& list) {
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

/// splitmix64: the same numbers on every platform and standard library.
class rng {
public:
  explicit rng(uint64_t seed)
    : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  /// Uniform in [lo, hi].
  int64_t between(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo + 1));
  }

private:
  uint64_t state_;
};

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

// --- windows ---------------------------------------------------------------------------

TEST_CASE("a window is half-open, its max timestamp is end - 1 and windows that only touch "
          "do not overlap") {
  window w{0, 10};
  CHECK(w.max_timestamp() == 9);
  CHECK(w.contains(0));
  CHECK(w.contains(9));
  CHECK_FALSE(w.contains(10));
  CHECK_FALSE(w.contains(-1));
  CHECK(w.overlaps(window{9, 20}));
  CHECK(w.overlaps(window{-5, 1}));
  CHECK(w.overlaps(window{2, 3}));
  CHECK_FALSE(w.overlaps(window{10, 20}));
  CHECK_FALSE(w.overlaps(window{-10, 0}));
  CHECK(w.cover(window{15, 20}) == window{0, 20});
  CHECK(to_string(window{-10, 0}) == "[-10, 0)");
}

TEST_CASE("windows are ordered by start, then end") {
  CHECK(window{0, 10} < window{1, 5});
  CHECK(window{0, 5} < window{0, 10});
  CHECK(window{-3, 0} < window{0, 1});
  CHECK(window{2, 4} == window{2, 4});
  auto list = ws({{5, 6}, {0, 10}, {0, 5}, {-1, 100}});
  std::sort(list.begin(), list.end());
  CHECK(list == ws({{-1, 100}, {0, 5}, {0, 10}, {5, 6}}));
}

TEST_CASE("a window and its contents round-trip through the state encoding") {
  static_assert(state_codable<window>);
  static_assert(state_codable<window_contents<int64_t>>);
  static_assert(state_codable<window_contents<window_buffer<std::string>>>);
  window w{-1234567890123, 42};
  window back;
  std::string reason;
  REQUIRE(decode_value(encode_value(w), back, reason));
  CHECK(back == w);
  window_contents<window_buffer<std::string>> c{{"x", "yz"}, true};
  window_contents<window_buffer<std::string>> c_back;
  REQUIRE(decode_value(encode_value(c), c_back, reason));
  CHECK(c_back == c);
}

// --- assigners ---------------------------------------------------------------------------

TEST_CASE("tumbling windows hold a timestamp on their start boundary and not on their end") {
  auto t = tumbling(10);
  CHECK(assign(t, 0) == ws({{0, 10}}));
  CHECK(assign(t, 9) == ws({{0, 10}}));
  CHECK(assign(t, 10) == ws({{10, 20}}));
  CHECK(assign(t, 123) == ws({{120, 130}}));
}

TEST_CASE("tumbling windows of negative timestamps round down, not toward zero") {
  auto t = tumbling(10);
  CHECK(assign(t, -1) == ws({{-10, 0}}));
  CHECK(assign(t, -10) == ws({{-10, 0}}));
  CHECK(assign(t, -11) == ws({{-20, -10}}));
  CHECK(assign(t, -25) == ws({{-30, -20}}));
}

TEST_CASE("tumbling windows with an offset are shifted, and the offset counts modulo the size") {
  auto t = tumbling(10, 3);
  CHECK(t.offset == 3);
  CHECK(assign(t, 3) == ws({{3, 13}}));
  CHECK(assign(t, 2) == ws({{-7, 3}}));
  CHECK(assign(t, 12) == ws({{3, 13}}));
  CHECK(assign(t, 13) == ws({{13, 23}}));
  CHECK(assign(t, -7) == ws({{-7, 3}}));
  CHECK(assign(t, -8) == ws({{-17, -7}}));
  CHECK(tumbling(10, -7) == t);
  CHECK(tumbling(10, 23) == t);
  CHECK(tumbling(10, 10) == tumbling(10));
  // A day in UTC+2: windows start at 22:00 UTC.
  time_ms hour = 3'600'000;
  auto day = tumbling(24 * hour, -2 * hour);
  CHECK(assign(day, 0) == ws({{-2 * hour, 22 * hour}}));
  CHECK(assign(day, 22 * hour) == ws({{22 * hour, 46 * hour}}));
}

TEST_CASE("tumbling windows of size 1 hold exactly their timestamp") {
  auto t = tumbling(1);
  CHECK(assign(t, 0) == ws({{0, 1}}));
  CHECK(assign(t, -7) == ws({{-7, -6}}));
}

TEST_CASE("sliding windows hold each timestamp in size/slide windows, by start") {
  auto s = sliding(10, 5);
  CHECK(assign(s, 0) == ws({{-5, 5}, {0, 10}}));
  CHECK(assign(s, 4) == ws({{-5, 5}, {0, 10}}));
  CHECK(assign(s, 5) == ws({{0, 10}, {5, 15}}));
  CHECK(assign(s, 9) == ws({{0, 10}, {5, 15}}));
  CHECK(assign(s, -1) == ws({{-10, 0}, {-5, 5}}));
  CHECK(assign(s, -5) == ws({{-10, 0}, {-5, 5}}));
  CHECK(assign(s, -6) == ws({{-15, -5}, {-10, 0}}));
  CHECK(assign(sliding(60, 20), 100) == ws({{60, 120}, {80, 140}, {100, 160}}));
}

TEST_CASE("sliding windows whose slide does not divide the size hold a timestamp in the "
          "floor or the ceiling of size/slide windows") {
  auto s = sliding(10, 3);
  CHECK(assign(s, 0) == ws({{-9, 1}, {-6, 4}, {-3, 7}, {0, 10}}));
  CHECK(assign(s, 1) == ws({{-6, 4}, {-3, 7}, {0, 10}}));
  CHECK(assign(s, 2) == ws({{-6, 4}, {-3, 7}, {0, 10}}));
  CHECK(assign(s, 3) == ws({{-6, 4}, {-3, 7}, {0, 10}, {3, 13}}));
}

TEST_CASE("sliding windows with an offset, and with slide equal to size, are like tumbling") {
  auto s = sliding(10, 5, 2);
  CHECK(s.offset == 2);
  CHECK(assign(s, 2) == ws({{-3, 7}, {2, 12}}));
  CHECK(assign(s, 1) == ws({{-8, 2}, {-3, 7}}));
  CHECK(sliding(10, 5, -3) == s);
  CHECK(sliding(10, 5, 7) == s);
  for (time_ms ts = -30; ts <= 30; ++ts) {
    CAPTURE(ts);
    CHECK(assign(sliding(10, 10, 4), ts) == assign(tumbling(10, 4), ts));
  }
}

TEST_CASE("sliding windows are exactly the aligned windows holding the timestamp, for random "
          "sizes, slides, offsets and timestamps") {
  rng r{42};
  for (int round = 0; round < 300; ++round) {
    time_ms slide = r.between(1, 12);
    time_ms size = slide * r.between(1, 4) + r.between(0, slide - 1);
    time_ms offset = r.between(-50, 50);
    time_ms ts = r.between(-100, 100);
    CAPTURE(size);
    CAPTURE(slide);
    CAPTURE(offset);
    CAPTURE(ts);
    std::vector<window> expected;
    for (time_ms start = ts - size - slide; start <= ts; ++start) {
      bool aligned = ((start - offset) % slide + slide) % slide == 0;
      if (aligned && start <= ts && ts < start + size) {
        expected.push_back(window{start, start + size});
      }
    }
    CHECK(assign(sliding(size, slide, offset), ts) == expected);
    CHECK(expected.size() >= static_cast<size_t>(size / slide));
    CHECK(expected.size() <= static_cast<size_t>((size + slide - 1) / slide));
  }
}

TEST_CASE("a session window starts at the element and lasts the gap") {
  CHECK(assign(session(5), 0) == ws({{0, 5}}));
  CHECK(assign(session(5), -3) == ws({{-3, 2}}));
  CHECK(assign(window_assigner{session(1)}, 7) == ws({{7, 8}}));
  CHECK(is_merging(session(5)));
  CHECK_FALSE(is_merging(tumbling(5)));
  CHECK_FALSE(is_merging(sliding(5, 1)));
}

TEST_CASE("windows reach the ends of the supported event time range without overflow") {
  time_ms m = max_event_time;
  CHECK(assign(tumbling(m), m) == ws({{m, 2 * m}}));
  CHECK(assign(tumbling(m), -m) == ws({{-m, 0}}));
  CHECK(assign(tumbling(m), -m + 1) == ws({{-m, 0}}));
  CHECK(assign(tumbling(7), -m).front().contains(-m));
  CHECK(assign(sliding(m, m / 2), -m) == ws({{-3 * (m / 2), -m / 2}, {-m, 0}}));
  CHECK(assign(session(m), m) == ws({{m, 2 * m}}));
  CHECK(cleanup_at(window{m, 2 * m}, m) == 3 * m - 1);
  CHECK_FALSE(is_late(window{m, 2 * m}, 3 * m - 2, m));
  CHECK(is_late(window{m, 2 * m}, 3 * m - 1, m));
  CHECK(is_late(window{m, 2 * m}, end_watermark, m));
}

TEST_CASE("assigners reject sizes, slides and gaps that are not positive or too large, and a "
          "slide larger than the size") {
  CHECK_THROWS_AS(tumbling(0), std::invalid_argument);
  CHECK_THROWS_AS(tumbling(-10), std::invalid_argument);
  CHECK_THROWS_AS(tumbling(max_event_time + 1), std::invalid_argument);
  CHECK_NOTHROW(tumbling(max_event_time, -max_event_time));
  CHECK_THROWS_AS(sliding(10, 0), std::invalid_argument);
  CHECK_THROWS_AS(sliding(0, 1), std::invalid_argument);
  CHECK_THROWS_WITH_AS(sliding(10, 20), doctest::Contains("must not exceed their size"),
                       std::invalid_argument);
  CHECK_THROWS_AS(session(0), std::invalid_argument);
  CHECK_THROWS_WITH_AS(session(-1), doctest::Contains("gap of session windows"),
                       std::invalid_argument);
  CHECK_THROWS_AS(check_lateness(-1), std::invalid_argument);
  CHECK_THROWS_AS(check_lateness(max_event_time + 1), std::invalid_argument);
  CHECK_NOTHROW(check_lateness(0));
  // Fields set by hand, out of their range.
  CHECK_THROWS_AS(check_assigner(tumbling_windows{10, 10}), std::invalid_argument);
  CHECK_THROWS_AS(check_assigner(tumbling_windows{0, 0}), std::invalid_argument);
  CHECK_THROWS_AS(check_assigner(sliding_windows{10, 5, -1}), std::invalid_argument);
  CHECK_THROWS_AS(check_assigner(sliding_windows{5, 10, 0}), std::invalid_argument);
  CHECK_THROWS_AS(check_assigner(session_windows{0}), std::invalid_argument);
  CHECK_NOTHROW(check_assigner(sliding(10, 5, 3)));
}

TEST_CASE("event times must be present and within the supported range") {
  CHECK(check_time(no_time) == late_reason::no_time);
  CHECK(check_time(max_event_time + 1) == late_reason::out_of_range);
  CHECK(check_time(-max_event_time - 1) == late_reason::out_of_range);
  CHECK(check_time(end_watermark) == late_reason::out_of_range);
  CHECK_FALSE(check_time(max_event_time).has_value());
  CHECK_FALSE(check_time(-max_event_time).has_value());
  CHECK_FALSE(check_time(0).has_value());
}

// --- session merging ---------------------------------------------------------------------

TEST_CASE("a session window overlapping none of the key's sessions starts a new one") {
  auto m = merge_sessions({}, window{0, 5});
  CHECK(m.target == window{0, 5});
  CHECK_FALSE(m.target_existed);
  CHECK(m.absorbed.empty());
  CHECK(m.windows == ws({{0, 5}}));

  auto current = ws({{20, 30}, {0, 5}});
  m = merge_sessions(current, window{10, 15});
  CHECK(m.target == window{10, 15});
  CHECK_FALSE(m.target_existed);
  CHECK(m.absorbed.empty());
  CHECK(m.windows == ws({{0, 5}, {10, 15}, {20, 30}}));
}

TEST_CASE("session windows that only touch do not merge") {
  auto current = ws({{0, 5}, {10, 15}});
  auto m = merge_sessions(current, window{5, 10});
  CHECK(m.target == window{5, 10});
  CHECK(m.absorbed.empty());
  CHECK(m.windows == ws({{0, 5}, {5, 10}, {10, 15}}));
}

TEST_CASE("an element inside an existing session leaves the sessions as they are") {
  auto current = ws({{0, 20}, {30, 40}});
  auto m = merge_sessions(current, window{3, 8});
  CHECK(m.target == window{0, 20});
  CHECK(m.target_existed);
  CHECK(m.absorbed.empty());
  CHECK(m.windows == current);
  // Exactly equal to an existing one.
  m = merge_sessions(current, window{30, 40});
  CHECK(m.target == window{30, 40});
  CHECK(m.target_existed);
  CHECK(m.absorbed.empty());
}

TEST_CASE("a session window extending one session absorbs it") {
  auto current = ws({{0, 10}, {30, 40}});
  auto m = merge_sessions(current, window{7, 17});
  CHECK(m.target == window{0, 17});
  CHECK_FALSE(m.target_existed);
  CHECK(m.absorbed == ws({{0, 10}}));
  CHECK(m.windows == ws({{0, 17}, {30, 40}}));
  // Extending to the left.
  m = merge_sessions(current, window{25, 35});
  CHECK(m.target == window{25, 40});
  CHECK(m.absorbed == ws({{30, 40}}));
}

TEST_CASE("one element bridging two sessions merges them into one") {
  // gap 5: elements at 0 and 8 made [0, 5) and [8, 13); an element at 4 links them.
  auto current = ws({{8, 13}, {0, 5}});
  auto m = merge_sessions(current, assign(session(5), 4).front());
  CHECK(m.target == window{0, 13});
  CHECK_FALSE(m.target_existed);
  CHECK(m.absorbed == ws({{0, 5}, {8, 13}}));
  CHECK(m.windows == ws({{0, 13}}));
}

TEST_CASE("a long session window absorbs every session it spans") {
  auto current = ws({{0, 2}, {3, 5}, {6, 8}, {9, 11}, {20, 22}});
  auto m = merge_sessions(current, window{1, 10});
  CHECK(m.target == window{0, 11});
  CHECK(m.absorbed == ws({{0, 2}, {3, 5}, {6, 8}, {9, 11}}));
  CHECK(m.windows == ws({{0, 11}, {20, 22}}));
}

TEST_CASE("a chain of elements, each within the gap of the last, grows one session") {
  auto gap = session(10);
  std::vector<window> sessions;
  for (time_ms ts : {0, 9, 18, 27, 36}) {
    auto m = merge_sessions(sessions, assign(gap, ts).front());
    sessions = m.windows;
  }
  CHECK(sessions == ws({{0, 46}}));
  // One step too far starts a new one; filling the hole joins them.
  auto m = merge_sessions(sessions, window{46, 56});
  CHECK(m.windows == ws({{0, 46}, {46, 56}}));
  m = merge_sessions(m.windows, window{45, 55});
  CHECK(m.target == window{0, 56});
  CHECK(m.absorbed == ws({{0, 46}, {46, 56}}));
  CHECK(m.windows == ws({{0, 56}}));
}

TEST_CASE("merging random session windows keeps the sessions disjoint and covers the same "
          "instants") {
  rng r{7};
  for (int round = 0; round < 200; ++round) {
    std::vector<window> sessions;
    std::set<time_ms> covered;
    for (int i = 0; i < 12; ++i) {
      time_ms ts = r.between(-50, 50);
      time_ms gap = r.between(1, 8);
      window added{ts, ts + gap};
      auto m = merge_sessions(sessions, added);
      CAPTURE(show(sessions));
      CAPTURE(show(added));
      // Every absorbed window and the added one lie in the target.
      CHECK(m.target.cover(added) == m.target);
      for (const auto& a : m.absorbed) {
        CHECK(a.overlaps(added));
        CHECK(m.target.cover(a) == m.target);
      }
      sessions = m.windows;
      for (time_ms t = added.start; t < added.end; ++t) {
        covered.insert(t);
      }
      REQUIRE(std::is_sorted(sessions.begin(), sessions.end()));
      for (size_t j = 1; j < sessions.size(); ++j) {
        CHECK_FALSE(sessions[j - 1].overlaps(sessions[j]));
      }
      std::set<time_ms> now;
      for (const auto& w : sessions) {
        for (time_ms t = w.start; t < w.end; ++t) {
          now.insert(t);
        }
      }
      CHECK(now == covered);
    }
  }
}

// --- lateness ----------------------------------------------------------------------------

TEST_CASE("a window fires when the watermark reaches its max timestamp and is purged the "
          "allowed lateness later") {
  window w{0, 10};
  CHECK(fires_at(w) == 9);
  CHECK_FALSE(is_complete(w, 8));
  CHECK(is_complete(w, 9));
  CHECK_FALSE(is_complete(w, no_time));
  CHECK(cleanup_at(w, 0) == 9);
  CHECK(cleanup_at(w, 5) == 14);
  // Without lateness the window is late once it fired.
  CHECK_FALSE(is_late(w, 8, 0));
  CHECK(is_late(w, 9, 0));
  // With lateness 5 elements are still taken until the watermark reaches 14.
  CHECK_FALSE(is_late(w, 9, 5));
  CHECK_FALSE(is_late(w, 13, 5));
  CHECK(is_late(w, 14, 5));
  CHECK_FALSE(is_late(w, no_time, 0));
  CHECK(is_late(w, end_watermark, max_event_time));
}

TEST_CASE("an element is late only when every one of its windows is late") {
  auto s = sliding(10, 5);
  auto windows = assign(s, 7); // [0, 10) and [5, 15)
  CHECK_FALSE(is_late(windows, 8, 0));
  CHECK_FALSE(is_late(windows, 9, 0)); // [0, 10) is late, [5, 15) is not
  CHECK_FALSE(is_late(windows, 13, 0));
  CHECK(is_late(windows, 14, 0));
  CHECK_FALSE(is_late(windows, 14, 1));
  CHECK(is_late(windows, 15, 1));
  CHECK_FALSE(is_late(std::span<const window>{}, end_watermark, 0));
}

TEST_CASE("the side output message says why an element was dropped") {
  CHECK(late_message(late_reason::no_time, no_time, 5, 0).find("no event time") !=
        std::string::npos);
  CHECK(late_message(late_reason::out_of_range, end_watermark, 5, 0).find("outside") !=
        std::string::npos);
  auto text = late_message(late_reason::too_late, 3, 11, 2);
  CHECK(text.find("event time 3") != std::string::npos);
  CHECK(text.find("watermark 11") != std::string::npos);
  CHECK(text.find("lateness of 2 ms") != std::string::npos);
  CHECK(std::string{to_string(late_reason::too_late)} == "too_late");
}

TEST_CASE("window timer tags give the window back, and fire tags sort before purge tags") {
  for (auto w : ws({{0, 10}, {-25, -5}, {-max_event_time, max_event_time}})) {
    for (auto kind : {window_timer_kind::fire, window_timer_kind::purge}) {
      auto t = parse_timer_tag(timer_tag(kind, w));
      REQUIRE(t.has_value());
      CHECK(t->kind == kind);
      CHECK(t->win == w);
    }
    CHECK(timer_tag(window_timer_kind::fire, w) < timer_tag(window_timer_kind::purge, w));
  }
  CHECK(timer_tag(window_timer_kind::fire, window{-5, 5}) == "window fire -5 5");
  for (std::string_view bad :
       {"", "window", "window fire", "window fire 1", "window fire 1 ", "window fire x 2",
        "window fire 1 2 3", "window fire 2 1", "window close 1 2", "user tag"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_timer_tag(bad).has_value());
  }
}

// --- aggregates --------------------------------------------------------------------------

TEST_CASE("the sum, count, function and process-all aggregates add, merge and read results") {
  static_assert(merging_window_aggregate<sum_aggregate<int64_t>, int64_t>);
  static_assert(merging_window_aggregate<count_aggregate, std::string>);
  static_assert(!window_aggregate<sum_aggregate<int64_t>, std::string>);

  auto acc = sum.create();
  sum.add(acc, 3);
  sum.add(acc, 4);
  auto other = sum.create();
  sum.add(other, 10);
  sum.merge(acc, other);
  CHECK(sum.result(acc) == 17);

  count_aggregate count;
  auto n = count.create();
  count.add(n, std::string{"x"});
  count.add(n, std::string{"y"});
  count.merge(n, 5);
  CHECK(count.result(n) == 7);

  // The average as (sum, count).
  auto avg = make_aggregate(
    [] {
      return std::pair<int64_t, int64_t>{0, 0};
    },
    [](auto& a, int64_t v) {
      a.first += v;
      ++a.second;
    },
    [](auto& a, const auto& b) {
      a.first += b.first;
      a.second += b.second;
    },
    [](const auto& a) { return a.second == 0 ? 0.0 : 1.0 * a.first / a.second; });
  static_assert(merging_window_aggregate<decltype(avg), int64_t>);
  auto a = avg.create();
  CHECK(avg.result(a) == 0.0);
  avg.add(a, 1);
  avg.add(a, 2);
  auto b = avg.create();
  avg.add(b, 6);
  avg.merge(a, b);
  CHECK(avg.result(a) == 3.0);

  // Process all elements: the buffer keeps them in order; merge appends.
  auto joined = process_all<std::string>([](std::span<const std::string> all) {
    std::string s;
    for (const auto& x : all) {
      s += x;
    }
    return s;
  });
  static_assert(merging_window_aggregate<decltype(joined), std::string>);
  static_assert(std::is_same_v<aggregate_result_t<decltype(joined)>, std::string>);
  auto buf = joined.create();
  joined.add(buf, "a");
  joined.add(buf, "b");
  auto more = joined.create();
  joined.add(more, "c");
  joined.merge(buf, more);
  CHECK(buf == window_buffer<std::string>{"a", "b", "c"});
  CHECK(joined.result(buf) == "abc");
  CHECK(joined.result(buf) == "abc"); // reading a result does not consume the buffer
}

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
        std::vector<late>{{"a", no_time, 2, late_reason::no_time, no_time},
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
        std::vector<result>{{"a", {-10, 0}, 4}, {"a", {0, 10}, 10}, {"b", {10, 20}, 1}});
  // Sessions of gap 4: a: -1 [-1, 3) touches 3 [3, 7): two sessions; 9 is separate.
  CHECK(sorted_reference(events, session(4), sum) ==
        std::vector<result>{
          {"a", {-1, 3}, 4}, {"a", {3, 7}, 2}, {"a", {9, 13}, 8}, {"b", {12, 16}, 1}});
  CHECK(sorted_reference(events, session(5), sum) ==
        std::vector<result>{{"a", {-1, 8}, 6}, {"a", {9, 14}, 8}, {"b", {12, 17}, 1}});
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
        std::vector<result> expected_final;
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
      std::vector<result> final_sessions;
      for (const auto& r : final) {
        bool is_final = std::any_of(expected.begin(), expected.end(), [&](const result& x) {
          return x.key == r.key && x.win == r.win;
        });
        if (is_final) {
          final_sessions.push_back(r);
        } else {
          // An earlier firing of a session that grew later: inside a final session.
          CHECK(std::any_of(expected.begin(), expected.end(), [&](const result& x) {
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
