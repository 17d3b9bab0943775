// Windows, their assigners, session merging, lateness and the aggregates (windows.hpp,
// window_aggregate.hpp).

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "eddy/codec/binary.hpp"
#include "eddy/time/watermark.hpp"
#include "eddy/time/window_aggregate.hpp"
#include "eddy/time/windows.hpp"
#include "windows_support.hpp"

using namespace eddy;
using namespace eddy::test;

namespace {

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
  CHECK(check_time(no_time) == late_reason::untimed);
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
  CHECK(late_message(late_reason::untimed, no_time, 5, 0).find("no event time") !=
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
