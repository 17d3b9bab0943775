#pragma once

// Brute-force references of event-time windows, for tests: what a correct window operator
// emits for a given input, computed as plainly as possible (quadratic; a few thousand
// elements at most). The semantics are those of windows.hpp:
//
// `replay_windows` takes the operator's input as a sequence of steps, elements and
// watermark advances, in the order the operator sees them, and returns
//   - the firings (key, window, result, is_update, watermark) in the order they happen:
//       * an element taken into a window that is already complete (watermark >= its
//         max_timestamp, within the allowed lateness) makes that window fire at once, with
//         the current watermark; windows of one element by end;
//       * a watermark advance from W to W' fires every window whose fires_at is in (W, W'],
//         by window end, then key (K's operator<; the runtime's timers order keys by their
//         encoding, so compare keys of one end as a set), then start, then purges every
//         window with cleanup_at <= W';
//     `is_update`: the window (or, for sessions, a session merged into it) fired before;
//   - the elements dropped (key, ts, value, reason, watermark), in input order.
//   A window's result is the aggregate of its elements in input order, recomputed from the
//   elements each time (no accumulator is merged: this checks `merge` and `merge_sessions`
//   of an incremental operator). Sessions are kept as sets of elements; a session's window
//   is [min ts, max ts + gap).
//
// `reference_windows` derives the steps from events with arrival positions and a watermark
// strategy (time/watermark.hpp): the events in arrival order, each followed by the
// watermark `strategy.watermark_after(highest ts so far)` (Flink's bounded
// out-of-orderness: max ts - bound - 1; monotonous: bound 0), and at the end the watermark
// `end_watermark` (+inf), which fires every window not fired yet.
//
// `sorted_reference` is the plain one: every element with a valid event time, sorted by
// event time, aggregated per key and window (sessions: an element `gap` or more after the
// latest element of the key's current session starts a new one). Without late data
// (every element arrives before the watermark passes it, and so no window fires twice)
// `results_of(replay firings)` equals it, in the same order (window end, key, start), for
// aggregates that do not depend on the order of the elements.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <tuple>
#include <variant>
#include <vector>

#include "eddy/flow/record.hpp"
#include "eddy/time/watermark.hpp"
#include "eddy/time/window_aggregate.hpp"
#include "eddy/time/windows.hpp"

namespace eddy {

/// An element of key K: its event time, its value and its arrival position (elements are
/// processed by arrival, ties in input order).
template <class K, class V>
struct window_event {
  K key{};
  time_ms ts = no_time;
  V value{};
  int64_t arrival = 0;
  [[nodiscard]] bool operator==(const window_event&) const = default;
};

/// The operator's watermark moves to `watermark` (ignored unless it is higher).
struct watermark_advance {
  time_ms watermark = no_time;
  [[nodiscard]] bool operator==(const watermark_advance&) const = default;
};

/// One input of the window operator, in the order it sees them.
template <class K, class V>
using window_step = std::variant<window_event<K, V>, watermark_advance>;

/// One result a window operator emits.
template <class K, class R>
struct window_firing {
  K key{};
  window win;
  R result{};
  /// The window fired before (an updated result after late elements).
  bool is_update = false;
  /// The operator's watermark when it fired (end_watermark: at the end of the input).
  time_ms watermark = no_time;
  [[nodiscard]] bool operator==(const window_firing&) const = default;
};

/// An element that no window took.
template <class K, class V>
struct late_element {
  K key{};
  time_ms ts = no_time;
  V value{};
  late_reason reason = late_reason::too_late;
  /// The operator's watermark when it arrived.
  time_ms watermark = no_time;
  [[nodiscard]] bool operator==(const late_element&) const = default;
};

/// Everything a window operator emits for an input.
template <class K, class V, class R>
struct window_emissions {
  std::vector<window_firing<K, R>> firings;
  std::vector<late_element<K, V>> late;
};

/// A window's result without the firing's circumstances.
template <class K, class R>
struct window_result {
  K key{};
  window win;
  R result{};
  [[nodiscard]] bool operator==(const window_result&) const = default;
};

namespace detail {

template <class V>
struct reference_element {
  size_t seq = 0;
  time_ms ts = no_time;
  V value{};
};

template <class K, class V>
struct reference_window {
  K key{};
  window win;
  std::vector<reference_element<V>> elements;
  bool emitted = false;
};

/// The aggregate of `elements` in input order.
template <class A, class V>
auto reference_result(const A& agg, std::vector<reference_element<V>> elements) {
  std::sort(elements.begin(), elements.end(),
            [](const auto& x, const auto& y) { return x.seq < y.seq; });
  auto acc = agg.create();
  for (const auto& e : elements) {
    agg.add(acc, e.value);
  }
  return agg.result(acc);
}

/// Orders windows by (end, key, start): the order in which they fire.
template <class K>
bool fires_before(const window& a, const K& ka, const window& b, const K& kb) {
  if (a.end != b.end) {
    return a.end < b.end;
  }
  if (ka < kb) {
    return true;
  }
  if (kb < ka) {
    return false;
  }
  return a.start < b.start;
}

/// The state of `replay_windows` between two steps: every key's windows not purged yet, the
/// watermark and what was emitted so far. Lives for one call; not thread-safe.
template <class K, class V, class A>
class window_replay {
public:
  using group = reference_window<K, V>;
  using emissions = window_emissions<K, V, aggregate_result_t<A>>;

  window_replay(const window_assigner& assigner, time_ms lateness, const A& agg)
    : assigner_(assigner)
    , lateness_(lateness)
    , agg_(agg) {}

  /// The watermark moves to `next`: fires the windows due by (end, key, start), then purges.
  void advance(time_ms next) {
    if (next <= wm_) {
      return;
    }
    std::vector<group*> due;
    for (auto& g : live_) {
      if (fires_at(g.win) > wm_ && fires_at(g.win) <= next) {
        due.push_back(&g);
      }
    }
    std::sort(due.begin(), due.end(), [](const group* a, const group* b) {
      return fires_before(a->win, a->key, b->win, b->key);
    });
    for (auto* g : due) {
      emit(*g, next);
    }
    wm_ = next;
    std::erase_if(live_, [&](const group& g) { return is_late(g.win, wm_, lateness_); });
  }

  /// An element arrives: into its windows (sessions: merged with the ones it overlaps), or
  /// into the late elements.
  void take(const window_event<K, V>& e) {
    reference_element<V> element{seq_++, e.ts, e.value};
    if (auto reason = check_time(e.ts)) {
      out_.late.push_back({e.key, e.ts, e.value, *reason, wm_});
      return;
    }
    if (const auto* s = std::get_if<session_windows>(&assigner_)) {
      take_session(e, element, s->gap);
    } else {
      take_assigned(e, element);
    }
  }

  emissions finish() && {
    return std::move(out_);
  }

private:
  static bool same_key(const K& a, const K& b) {
    return !(a < b) && !(b < a);
  }

  void emit(group& g, time_ms at) {
    out_.firings.push_back({g.key, g.win, reference_result(agg_, g.elements), g.emitted, at});
    g.emitted = true;
  }

  /// The element with every live session of its key that overlaps its own window; `joins`
  /// marks those sessions.
  group merge_session(const window_event<K, V>& e, const reference_element<V>& element, time_ms gap,
                      std::vector<bool>& joins) const {
    window own{e.ts, e.ts + gap};
    group merged{e.key, own, {element}, false};
    for (size_t i = 0; i < live_.size(); ++i) {
      if (same_key(live_[i].key, e.key) && live_[i].win.overlaps(own)) {
        joins[i] = true;
        merged.elements.insert(merged.elements.end(), live_[i].elements.begin(),
                               live_[i].elements.end());
        merged.emitted = merged.emitted || live_[i].emitted;
      }
    }
    time_ms lo = e.ts;
    time_ms hi = e.ts;
    for (const auto& x : merged.elements) {
      lo = std::min(lo, x.ts);
      hi = std::max(hi, x.ts);
    }
    merged.win = window{lo, hi + gap};
    return merged;
  }

  void take_session(const window_event<K, V>& e, const reference_element<V>& element, time_ms gap) {
    std::vector<bool> joins(live_.size(), false);
    auto merged = merge_session(e, element, gap, joins);
    if (is_late(merged.win, wm_, lateness_)) {
      out_.late.push_back({e.key, e.ts, e.value, late_reason::too_late, wm_});
      return;
    }
    std::vector<group> rest;
    for (size_t i = 0; i < live_.size(); ++i) {
      if (!joins[i]) {
        rest.push_back(std::move(live_[i]));
      }
    }
    live_ = std::move(rest);
    live_.push_back(std::move(merged));
    if (is_complete(live_.back().win, wm_)) {
      emit(live_.back(), wm_);
    }
  }

  void take_assigned(const window_event<K, V>& e, const reference_element<V>& element) {
    bool taken = false;
    for (const window& w : assign(assigner_, e.ts)) {
      if (is_late(w, wm_, lateness_)) {
        continue;
      }
      taken = true;
      auto i = std::find_if(live_.begin(), live_.end(),
                            [&](const group& g) { return g.win == w && same_key(g.key, e.key); });
      if (i == live_.end()) {
        live_.push_back(group{e.key, w, {}, false});
        i = std::prev(live_.end());
      }
      i->elements.push_back(element);
      if (is_complete(w, wm_)) {
        emit(*i, wm_);
      }
    }
    if (!taken) {
      out_.late.push_back({e.key, e.ts, e.value, late_reason::too_late, wm_});
    }
  }

  const window_assigner& assigner_;
  time_ms lateness_;
  const A& agg_;
  emissions out_;
  std::vector<group> live_;
  time_ms wm_ = no_time;
  size_t seq_ = 0;
};

} // namespace detail

/// What a correct window operator emits for `steps` (see the top of this file). K needs
/// `<`; A is an aggregate of V. Throws std::invalid_argument on a bad assigner or lateness.
template <class K, class V, class A>
requires window_aggregate<A, V> window_emissions<K, V, aggregate_result_t<A>>
replay_windows(const std::vector<window_step<K, V>>& steps, const window_assigner& assigner,
               time_ms lateness, const A& agg) {
  check_assigner(assigner);
  check_lateness(lateness);
  detail::window_replay<K, V, A> replay{assigner, lateness, agg};
  for (const auto& step : steps) {
    if (const auto* adv = std::get_if<watermark_advance>(&step)) {
      replay.advance(adv->watermark);
    } else {
      replay.take(std::get<window_event<K, V>>(step));
    }
  }
  return std::move(replay).finish();
}

/// The steps an operator sees for `events` under `strategy`: each event in arrival order
/// (ties in input order) followed by the watermark after the highest event time so far
/// (events without event time move no watermark), then `end_watermark`.
template <class K, class V>
std::vector<window_step<K, V>> steps_of(std::vector<window_event<K, V>> events,
                                        const watermark_strategy& strategy) {
  std::stable_sort(events.begin(), events.end(),
                   [](const auto& a, const auto& b) { return a.arrival < b.arrival; });
  std::vector<window_step<K, V>> steps;
  steps.reserve(2 * events.size() + 1);
  time_ms max_ts = no_time;
  for (auto& e : events) {
    time_ms ts = e.ts;
    steps.emplace_back(std::move(e));
    // (The guard keeps watermark_after from underflowing for absurd timestamps.)
    if (ts != no_time && ts > std::numeric_limits<time_ms>::min() + strategy.bound + 1) {
      max_ts = std::max(max_ts, ts);
      steps.emplace_back(watermark_advance{strategy.watermark_after(max_ts)});
    }
  }
  steps.emplace_back(watermark_advance{end_watermark});
  return steps;
}

/// `replay_windows(steps_of(events, strategy), ...)`.
template <class K, class V, class A>
requires window_aggregate<A, V> window_emissions<K, V, aggregate_result_t<A>>
reference_windows(std::vector<window_event<K, V>> events, const watermark_strategy& strategy,
                  const window_assigner& assigner, time_ms lateness, const A& agg) {
  return replay_windows(steps_of(std::move(events), strategy), assigner, lateness, agg);
}

/// Every element with a valid event time (arrival and watermarks ignored), aggregated per
/// key and window in event-time order (ties in input order); by (window end, key, start).
template <class K, class V, class A>
requires window_aggregate<A, V> std::vector<window_result<K, aggregate_result_t<A>>>
sorted_reference(const std::vector<window_event<K, V>>& events, const window_assigner& assigner,
                 const A& agg) {
  check_assigner(assigner);
  std::vector<std::pair<time_ms, size_t>> order; // (ts, input position)
  for (size_t i = 0; i < events.size(); ++i) {
    if (!check_time(events[i].ts)) {
      order.emplace_back(events[i].ts, i);
    }
  }
  std::sort(order.begin(), order.end());
  // (end, key, start) -> elements in event-time order
  std::map<std::tuple<time_ms, K, time_ms>, std::vector<const V*>> windows;
  if (const auto* s = std::get_if<session_windows>(&assigner)) {
    std::map<K, std::vector<std::pair<window, std::vector<const V*>>>> sessions;
    for (auto [ts, i] : order) {
      auto& of_key = sessions[events[i].key];
      if (of_key.empty() || ts >= of_key.back().first.end) {
        of_key.push_back({window{ts, ts + s->gap}, {}});
      }
      auto& current = of_key.back();
      current.first.end = std::max(current.first.end, ts + s->gap);
      current.second.push_back(&events[i].value);
    }
    for (auto& [key, list] : sessions) {
      for (auto& [w, values] : list) {
        windows[{w.end, key, w.start}] = std::move(values);
      }
    }
  } else {
    for (auto [ts, i] : order) {
      for (const window& w : assign(assigner, ts)) {
        windows[{w.end, events[i].key, w.start}].push_back(&events[i].value);
      }
    }
  }
  std::vector<window_result<K, aggregate_result_t<A>>> result;
  for (const auto& [id, values] : windows) {
    auto acc = agg.create();
    for (const V* v : values) {
      agg.add(acc, *v);
    }
    result.push_back({std::get<1>(id), window{std::get<2>(id), std::get<0>(id)}, agg.result(acc)});
  }
  return result;
}

/// The firings without their circumstances, in the same order.
template <class K, class R>
std::vector<window_result<K, R>> results_of(const std::vector<window_firing<K, R>>& firings) {
  std::vector<window_result<K, R>> result;
  result.reserve(firings.size());
  for (const auto& f : firings) {
    result.push_back({f.key, f.win, f.result});
  }
  return result;
}

/// The last result of every (key, window) that fired, by (window end, key, start).
template <class K, class R>
std::vector<window_result<K, R>> final_results(const std::vector<window_firing<K, R>>& firings) {
  std::map<std::tuple<time_ms, K, time_ms>, const R*> last;
  for (const auto& f : firings) {
    last[{f.win.end, f.key, f.win.start}] = &f.result;
  }
  std::vector<window_result<K, R>> result;
  result.reserve(last.size());
  for (const auto& [id, r] : last) {
    result.push_back({std::get<1>(id), window{std::get<2>(id), std::get<0>(id)}, *r});
  }
  return result;
}

} // namespace eddy
