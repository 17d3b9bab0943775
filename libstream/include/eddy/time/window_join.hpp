#pragma once

// A windowed join of two connected streams (Flink's window join): on a keyed stream of
// `either<A, B>` records (see `connect` and join.hpp), every left record a and right record
// b of one key that fall in one window of a tumbling or sliding assigner make the pair
// fn(a, b), emitted once per window they share when the watermark passes the window's end.
//
// Semantics (windows.hpp's rules with an allowed lateness of 0):
//   - A record at ts is buffered in each window of assign(assigner, ts) that is not late
//     (is_late(w, W, 0): the watermark W reached fires_at(w)); a record late for all its
//     windows, or without event time (no_time) or outside the windowed range (check_time),
//     is dropped without output.
//   - When the watermark reaches fires_at(w) (an event-time timer, tag
//     timer_tag(window_timer_kind::fire, w), registered when the key's window gets its first
//     record), the window emits fn(a, b) for every buffered a and b (left records in arrival
//     order, for each the right records in arrival order), then its buffers are dropped. A
//     window with records of only one side emits nothing. The outputs carry the timer's
//     time, fires_at(w) = w.end - 1, as their event time.
//   - Sliding windows: a pair sharing k windows is emitted k times, once per window.
//   - At the end of the input the watermark becomes end_watermark, so every window fires.
//
// State per key: map_state<window, std::vector<timed<A>>> "window_join_left" and
// map_state<window, std::vector<timed<B>>> "window_join_right". Durable state encodes the
// window keys through their CAF `inspect` and the buffers through timed<T>'s JSON hooks, so
// A and B need nlohmann-json hooks (or a CAF `inspect`, which vectors of timed<T> do not
// use). Adding a record rewrites its window's buffer (a copy): cost O(records in the window)
// per record and window, fine for windows of moderate size per key.

#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "eddy/state/keyed_state.hpp"
#include "eddy/time/join.hpp"
#include "eddy/time/windows.hpp"

namespace eddy {

/// The keyed function and timer function of a window join of `either<A, B>` records with
/// `fn(const A&, const B&) -> Out`; shared by the operator's partitions, holds no state of
/// its own. Use with `keyed_stream::process<Out>(name, element fn, timer fn)`:
///
///   auto join = make_window_join<A, B>(tumbling(100), fn);
///   connect(a, b, "both").key_by(...).process<decltype(join)::element_type::output>(
///     "join", [join](const either<A, B>& e, auto& ctx, auto& out) {
///       join->on_element(e, ctx, out); },
///     [join](const timer_fired& t, auto& ctx, auto& out) { join->on_timer(t, ctx, out); });
template <class A, class B, class F>
class window_join_function {
public:
  /// What `fn` returns: the operator's output type.
  using output = std::decay_t<std::invoke_result_t<const F&, const A&, const B&>>;
  using left_buffers = map_state<window, std::vector<timed<A>>>;
  using right_buffers = map_state<window, std::vector<timed<B>>>;

  /// State names, for `keyed_stream::declare_state` and `eddy console`.
  static constexpr const char* left_state = "window_join_left";
  static constexpr const char* right_state = "window_join_right";

  /// Throws std::invalid_argument for session windows (they merge; not supported by the
  /// window join) and for assigners not made by `tumbling` / `sliding`.
  window_join_function(window_assigner assigner, F fn)
    : assigner_(assigner)
    , fn_(std::move(fn)) {
    if (is_merging(assigner_)) {
      throw std::invalid_argument("window join: session windows are not supported, use "
                                  "tumbling or sliding windows");
    }
    check_assigner(assigner_);
  }

  [[nodiscard]] const window_assigner& assigner() const noexcept {
    return assigner_;
  }

  template <class Ctx, class Out>
  void on_element(const either<A, B>& e, Ctx& ctx, Out&) const {
    auto ts = ctx.time();
    if (check_time(ts)) {
      return; // no event time, or outside the windowed range: cannot be windowed
    }
    auto watermark = ctx.watermark();
    auto& lefts = ctx.template map<window, std::vector<timed<A>>>(left_state);
    auto& rights = ctx.template map<window, std::vector<timed<B>>>(right_state);
    for (const auto& w : assign(assigner_, ts)) {
      if (watermark != no_time && is_late(w, watermark, 0)) {
        continue;
      }
      const auto* l = lefts.find(w);
      const auto* r = rights.find(w);
      if (l == nullptr && r == nullptr) {
        // Not late: fires_at(w) > watermark, so the timer is still ahead.
        ctx.register_event_timer(fires_at(w), timer_tag(window_timer_kind::fire, w));
      }
      if (e.is_left) {
        append(lefts, l, w, timed<A>{ts, e.left});
      } else {
        append(rights, r, w, timed<B>{ts, e.right});
      }
    }
  }

  template <class Ctx, class Out>
  void on_timer(const timer_fired& t, Ctx& ctx, Out& out) const {
    auto timer = parse_timer_tag(t.tag);
    if (!t.event_time || !timer || timer->kind != window_timer_kind::fire) {
      return;
    }
    auto& lefts = ctx.template map<window, std::vector<timed<A>>>(left_state);
    auto& rights = ctx.template map<window, std::vector<timed<B>>>(right_state);
    const auto* l = lefts.find(timer->win);
    const auto* r = rights.find(timer->win);
    if (l != nullptr && r != nullptr) {
      for (const auto& a : *l) {
        for (const auto& b : *r) {
          out.emit(fn_(a.value, b.value));
        }
      }
    }
    lefts.remove(timer->win);
    rights.remove(timer->win);
  }

private:
  template <class Buffers, class Record>
  static void append(Buffers& buffers, const typename Buffers::container::mapped_type* current,
                     const window& w, Record record) {
    typename Buffers::container::mapped_type items;
    if (current != nullptr) {
      items = *current;
    }
    items.push_back(std::move(record));
    buffers.put(w, std::move(items));
  }

  window_assigner assigner_;
  F fn_;
};

/// A shared window join function for `keyed_stream::process` (see window_join_function);
/// throws std::invalid_argument for session windows.
template <class A, class B, class F>
std::shared_ptr<const window_join_function<A, B, std::decay_t<F>>>
make_window_join(window_assigner assigner, F&& fn) {
  return std::make_shared<const window_join_function<A, B, std::decay_t<F>>>(assigner,
                                                                             std::forward<F>(fn));
}

} // namespace eddy
