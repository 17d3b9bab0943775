#pragma once

// Event-time windows: the pure, runtime-independent core (no actor, no state store). A
// window operator built on it follows Flink's semantics, spelled out here once:
//
// Windows and assigners
//   A window is a half-open interval [start, end) of event time; its last instant is
//   `max_timestamp() = end - 1`. An assigner maps an element's timestamp to its windows:
//   - tumbling(size, offset): the one window [k*size + offset, (k+1)*size + offset)
//     holding the timestamp;
//   - sliding(size, slide, offset): every window [k*slide + offset, k*slide + offset + size)
//     holding it (size/slide of them when slide divides size; slide <= size, so there is
//     always at least one);
//   - session(gap): first [ts, ts + gap); the session windows of one key that overlap
//     (share an instant: a.start < b.end && b.start < a.end) then merge into their cover,
//     see `merge_sessions`. Two elements are in one session when a chain of elements less
//     than `gap` apart links them. (Flink also merges windows that only touch, [0, 10) and
//     [10, 20); we do not: then a session that fired can never be extended by an element
//     that is not behind the watermark.)
//
// Watermark, firing, lateness (W: the operator's watermark, L: the allowed lateness)
//   - A window's result is due once W >= fires_at(w) = w.max_timestamp(): the watermark
//     passed its last instant, so (unless the data is late) it is complete. The operator
//     registers an event-time timer at fires_at(w) when it creates the window, or fires
//     right away when the window is created with W >= fires_at(w) already (then it is
//     created by an element within the allowed lateness).
//   - A window's state is kept until W >= cleanup_at(w, L) = w.max_timestamp() + L (a second
//     timer); then it is purged. L = 0: it is purged when it fires.
//   - A window is late when is_late(w, W, L): cleanup_at(w, L) <= W, i.e. it is purged or
//     would be. An element is late, and goes to the side output (reason `too_late`), when
//     every window it would be added to is late: for tumbling and sliding windows, all of
//     `assign(ts)`; for sessions, the merged window `merge_sessions(...).target` (a late
//     element may still join a live session that overlaps it; its window then is not late).
//     An element is added to its windows that are not late, and a window that already
//     fired (W >= fires_at) fires again at once with the updated result ("updated
//     results", `is_update`).
//   - Elements without event time (`no_time`) or outside [-max_event_time, max_event_time]
//     cannot be windowed: side output with reason `no_time` / `out_of_range`.
//   - At the end of the input the watermark becomes `end_watermark` (+inf, see
//     time/watermark.hpp): every window not fired yet fires, then all state is purged.
//   - Order: firings caused by one watermark advance come by window end, then key (the
//     timer order; the runtime's timers order keys by their encoding, and across partitions
//     only the order per key is defined); firings caused by an element (updates) when it is
//     processed, by window end. See tests/support/window_reference.hpp, which computes all of this
//     by brute force.
//
// Recipe for the keyed operator (per key; `ctx` the keyed_context):
//   on element (ts, value), W = ctx.watermark():
//     if (auto r = check_time(ts)) -> side output (*r)
//     tumbling/sliding: for w in assign(assigner, ts): if is_late(w, W, L) skip; else add
//       value to w's accumulator (create it + register timers if new); if is_complete(w, W)
//       emit result(w), is_update = w was emitted before. No window taken -> side output.
//     sessions: m = merge_sessions(key's windows, assign(assigner, ts)[0]);
//       if is_late(m.target, W, L) -> side output (nothing changes).
//       else acc(target) = m.target_existed ? acc(target) : create() merged with the
//       accumulators of m.absorbed in that order; delete their timers and state; add value;
//       register target's timers if new; if is_complete(target, W): emit (is_update = it or
//       an absorbed window was emitted before).
//   timers: register_event_timer(fires_at(w), timer_tag(window_timer_kind::fire, w)) only
//     when fires_at(w) > W (else it fired at once), and register_event_timer(cleanup_at(w,
//     L), timer_tag(window_timer_kind::purge, w)); tags sort "fire" before "purge", so with
//     L = 0 both timers at one instant run fire first. `parse_timer_tag` gives the window
//     back in the timer function.

#include <algorithm>
#include <charconv>
#include <compare>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "eddy/flow/record.hpp"

namespace eddy {

/// Event times that windows accept: [-max_event_time, max_event_time] (2^61 ms, about 73
/// million years). Window sizes, slides, gaps and the allowed lateness are at most this
/// too, so that window bounds and cleanup times never overflow time_ms.
inline constexpr time_ms max_event_time = time_ms{1} << 61;

/// A half-open interval [start, end) of event time. Ordered by start, then end.
struct window {
  time_ms start = 0;
  time_ms end = 0;

  /// The last instant in the window: end - 1.
  [[nodiscard]] constexpr time_ms max_timestamp() const noexcept {
    return end - 1;
  }
  [[nodiscard]] constexpr bool contains(time_ms ts) const noexcept {
    return start <= ts && ts < end;
  }
  /// Whether the windows share an instant (windows that only touch do not).
  [[nodiscard]] constexpr bool overlaps(const window& other) const noexcept {
    return start < other.end && other.start < end;
  }
  /// The smallest window covering both.
  [[nodiscard]] constexpr window cover(const window& other) const noexcept {
    return window{std::min(start, other.start), std::max(end, other.end)};
  }

  constexpr auto operator<=>(const window&) const = default;
};

/// CAF inspection, so that windows can be keys of map_state and journal entries.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, window& x) {
  return f(x.start, x.end);
}

/// "[start, end)", for messages and test output.
inline std::string to_string(const window& w) {
  return "[" + std::to_string(w.start) + ", " + std::to_string(w.end) + ")";
}

namespace detail {

/// a mod m in [0, m), for m > 0.
constexpr time_ms floor_mod(time_ms a, time_ms m) noexcept {
  time_ms r = a % m;
  return r < 0 ? r + m : r;
}

inline void check_length(time_ms value, const char* what) {
  if (value <= 0 || value > max_event_time) {
    throw std::invalid_argument(std::string{what} + " must be in 1.." +
                                std::to_string(max_event_time) + " ms, not " +
                                std::to_string(value));
  }
}

} // namespace detail

/// Fixed-size windows that do not overlap: [k*size + offset, (k+1)*size + offset).
/// Make with `tumbling`; `offset` is kept modulo `size` (in [0, size)).
struct tumbling_windows {
  time_ms size = 1;
  time_ms offset = 0;
  auto operator<=>(const tumbling_windows&) const = default;
};

/// Windows of `size` starting every `slide`: [k*slide + offset, k*slide + offset + size).
/// Make with `sliding`; slide <= size, `offset` kept modulo `slide`.
struct sliding_windows {
  time_ms size = 1;
  time_ms slide = 1;
  time_ms offset = 0;
  auto operator<=>(const sliding_windows&) const = default;
};

/// Session windows: an element opens [ts, ts + gap), overlapping windows of a key merge.
/// Make with `session`.
struct session_windows {
  time_ms gap = 1;
  auto operator<=>(const session_windows&) const = default;
};

/// Any of the three assigners.
using window_assigner = std::variant<tumbling_windows, sliding_windows, session_windows>;

/// Tumbling windows of `size` ms (1..max_event_time), aligned to `offset` (any value; e.g.
/// a day shifted to a time zone). Throws std::invalid_argument on a bad size.
inline tumbling_windows tumbling(time_ms size, time_ms offset = 0) {
  detail::check_length(size, "the size of tumbling windows");
  return tumbling_windows{size, detail::floor_mod(offset, size)};
}

/// Sliding windows of `size` ms every `slide` ms (1 <= slide <= size <= max_event_time),
/// aligned to `offset`. Throws std::invalid_argument on bad values (slide > size would leave
/// elements in no window; filter the stream instead).
inline sliding_windows sliding(time_ms size, time_ms slide, time_ms offset = 0) {
  detail::check_length(size, "the size of sliding windows");
  detail::check_length(slide, "the slide of sliding windows");
  if (slide > size) {
    throw std::invalid_argument("the slide of sliding windows (" + std::to_string(slide) +
                                " ms) must not exceed their size (" + std::to_string(size) +
                                " ms)");
  }
  return sliding_windows{size, slide, detail::floor_mod(offset, slide)};
}

/// Session windows closing after `gap` ms (1..max_event_time) without elements. Throws
/// std::invalid_argument on a bad gap.
inline session_windows session(time_ms gap) {
  detail::check_length(gap, "the gap of session windows");
  return session_windows{gap};
}

/// Throws std::invalid_argument if `a` was not made by `tumbling`, `sliding` or `session`
/// (fields set by hand out of range).
inline void check_assigner(const window_assigner& a) {
  std::visit(
    [](const auto& x) {
      using A = std::decay_t<decltype(x)>;
      if constexpr (std::is_same_v<A, tumbling_windows>) {
        if (tumbling(x.size, x.offset) != x) {
          throw std::invalid_argument("tumbling windows: offset not in [0, size)");
        }
      } else if constexpr (std::is_same_v<A, sliding_windows>) {
        if (sliding(x.size, x.slide, x.offset) != x) {
          throw std::invalid_argument("sliding windows: offset not in [0, slide)");
        }
      } else {
        (void) session(x.gap);
      }
    },
    a);
}

/// Whether windows of the assigner merge (sessions).
[[nodiscard]] inline bool is_merging(const window_assigner& a) noexcept {
  return std::holds_alternative<session_windows>(a);
}

/// Why an element cannot go into a window.
enum class late_reason : uint8_t {
  /// Its windows are late: is_late(w, W, L) for every window it would join.
  too_late,
  /// It has no event time (its time is no_time; the reason's text is "no_time").
  untimed,
  /// Its event time is outside [-max_event_time, max_event_time].
  out_of_range,
};

[[nodiscard]] constexpr const char* to_string(late_reason r) noexcept {
  switch (r) {
    case late_reason::too_late:
      return "too_late";
    case late_reason::untimed:
      return "no_time";
    case late_reason::out_of_range:
      return "out_of_range";
  }
  return "unknown";
}

/// Whether `ts` can be windowed: nullopt if so, else why not.
[[nodiscard]] constexpr std::optional<late_reason> check_time(time_ms ts) noexcept {
  if (ts == no_time) {
    return late_reason::untimed;
  }
  if (ts < -max_event_time || ts > max_event_time) {
    return late_reason::out_of_range;
  }
  return std::nullopt;
}

/// The window of `ts` (ts must pass check_time).
[[nodiscard]] constexpr window assign_one(const tumbling_windows& a, time_ms ts) noexcept {
  time_ms start = ts - detail::floor_mod(detail::floor_mod(ts, a.size) - a.offset, a.size);
  return window{start, start + a.size};
}

/// The windows of `ts`, by start (ts must pass check_time).
[[nodiscard]] inline std::vector<window> assign(const tumbling_windows& a, time_ms ts) {
  return {assign_one(a, ts)};
}

/// The windows holding `ts`, by start (hence by end): starts s = offset (mod slide) with
/// ts - size < s <= ts (ts must pass check_time).
[[nodiscard]] inline std::vector<window> assign(const sliding_windows& a, time_ms ts) {
  time_ms r = detail::floor_mod(detail::floor_mod(ts, a.slide) - a.offset, a.slide);
  time_ms last = ts - r;
  time_ms n = (a.size - r - 1) / a.slide + 1;
  std::vector<window> result;
  result.reserve(static_cast<size_t>(n));
  for (time_ms j = n - 1; j >= 0; --j) {
    time_ms start = last - j * a.slide;
    result.push_back(window{start, start + a.size});
  }
  return result;
}

/// The element's own window [ts, ts + gap), before merging (ts must pass check_time).
[[nodiscard]] inline std::vector<window> assign(const session_windows& a, time_ms ts) {
  return {window{ts, ts + a.gap}};
}

[[nodiscard]] inline std::vector<window> assign(const window_assigner& a, time_ms ts) {
  return std::visit([ts](const auto& x) { return assign(x, ts); }, a);
}

/// The watermark at which `w`'s result is due: its max_timestamp().
[[nodiscard]] constexpr time_ms fires_at(const window& w) noexcept {
  return w.max_timestamp();
}

/// Whether the watermark passed `w`'s last instant (W >= fires_at(w)): its result is due,
/// and an element added now makes it fire again at once.
[[nodiscard]] constexpr bool is_complete(const window& w, time_ms watermark) noexcept {
  return watermark >= fires_at(w);
}

/// The watermark at which `w`'s state is purged: max_timestamp() + lateness
/// (0 <= lateness <= max_event_time).
[[nodiscard]] constexpr time_ms cleanup_at(const window& w, time_ms lateness) noexcept {
  return w.max_timestamp() + lateness;
}

/// Whether `w` is late at watermark W: cleanup_at(w, lateness) <= W. Nothing may be added
/// to a late window (its state is or will at once be purged).
[[nodiscard]] constexpr bool is_late(const window& w, time_ms watermark,
                                     time_ms lateness) noexcept {
  return cleanup_at(w, lateness) <= watermark;
}

/// Whether an element whose windows are `windows` is late: all of them are (for sessions
/// pass the merged target, see merge_sessions). False for no windows.
[[nodiscard]] inline bool is_late(std::span<const window> windows, time_ms watermark,
                                  time_ms lateness) noexcept {
  return !windows.empty() && std::all_of(windows.begin(), windows.end(), [&](const window& w) {
    return is_late(w, watermark, lateness);
  });
}

/// Throws std::invalid_argument unless 0 <= lateness <= max_event_time.
inline void check_lateness(time_ms lateness) {
  if (lateness < 0 || lateness > max_event_time) {
    throw std::invalid_argument("the allowed lateness must be in 0.." +
                                std::to_string(max_event_time) + " ms, not " +
                                std::to_string(lateness));
  }
}

/// A sentence for the side output: why the element at `ts` was dropped.
inline std::string late_message(late_reason reason, time_ms ts, time_ms watermark,
                                time_ms lateness) {
  switch (reason) {
    case late_reason::untimed:
      return "the element has no event time";
    case late_reason::out_of_range:
      return "the event time " + std::to_string(ts) + " is outside the windowed range +-" +
             std::to_string(max_event_time);
    case late_reason::too_late:
      break;
  }
  return "the element at event time " + std::to_string(ts) + " is late: the watermark " +
         std::to_string(watermark) + " passed every window of it by at least the allowed " +
         "lateness of " + std::to_string(lateness) + " ms";
}

/// What adding a session window to a key's session windows does.
struct session_merge {
  /// The window the new element belongs to: the added window covered with every current
  /// window overlapping it (it may be one of the current windows, unchanged).
  window target;
  /// Whether `target` is one of the current windows, unchanged (the element falls inside
  /// an existing session): add to its accumulator; nothing else changes.
  bool target_existed = false;
  /// The current windows merged into `target` (every one overlapping the added window,
  /// except `target` itself), by start. Their accumulators merge into target's in this
  /// order, their timers are deleted and their state dropped.
  std::vector<window> absorbed;
  /// The key's session windows afterwards, by start: the current ones minus `absorbed`,
  /// plus `target`.
  std::vector<window> windows;

  [[nodiscard]] bool operator==(const session_merge&) const = default;
};

/// Adds the session window `added` to `current` (a key's session windows, which do not
/// overlap each other; any order). Pure: the caller first checks `is_late(result.target,
/// W, L)` (late: the element goes to the side output and nothing changes), then applies it.
/// Windows that only touch `added` do not merge.
[[nodiscard]] inline session_merge merge_sessions(std::span<const window> current, window added) {
  session_merge m;
  m.target = added;
  std::vector<window> overlapping;
  for (const auto& w : current) {
    if (w.overlaps(added)) {
      overlapping.push_back(w);
      m.target = m.target.cover(w);
    } else {
      m.windows.push_back(w);
    }
  }
  std::sort(overlapping.begin(), overlapping.end());
  for (const auto& w : overlapping) {
    if (w == m.target) {
      m.target_existed = true;
    } else {
      m.absorbed.push_back(w);
    }
  }
  m.windows.push_back(m.target);
  std::sort(m.windows.begin(), m.windows.end());
  return m;
}

/// The two event-time timers of a window.
enum class window_timer_kind : uint8_t {
  /// At fires_at(w): emit the result.
  fire,
  /// At cleanup_at(w, L): drop the state.
  purge,
};

/// A window timer decoded from its tag.
struct window_timer {
  window_timer_kind kind = window_timer_kind::fire;
  window win;
  [[nodiscard]] bool operator==(const window_timer&) const = default;
};

/// The tag of a window timer: "window fire <start> <end>" or "window purge <start> <end>".
/// For one key and instant, fire tags sort before purge tags.
inline std::string timer_tag(window_timer_kind kind, const window& w) {
  return std::string{kind == window_timer_kind::fire ? "window fire " : "window purge "} +
         std::to_string(w.start) + " " + std::to_string(w.end);
}

/// The timer a `timer_tag` made; nullopt for any other tag.
[[nodiscard]] inline std::optional<window_timer> parse_timer_tag(std::string_view tag) {
  window_timer t;
  constexpr std::string_view fire = "window fire ";
  constexpr std::string_view purge = "window purge ";
  if (tag.starts_with(fire)) {
    tag.remove_prefix(fire.size());
  } else if (tag.starts_with(purge)) {
    t.kind = window_timer_kind::purge;
    tag.remove_prefix(purge.size());
  } else {
    return std::nullopt;
  }
  const char* p = tag.data();
  const char* e = tag.data() + tag.size();
  auto r1 = std::from_chars(p, e, t.win.start);
  if (r1.ec != std::errc{} || r1.ptr == e || *r1.ptr != ' ') {
    return std::nullopt;
  }
  auto r2 = std::from_chars(r1.ptr + 1, e, t.win.end);
  if (r2.ec != std::errc{} || r2.ptr != e || t.win.end <= t.win.start) {
    return std::nullopt;
  }
  return t;
}

} // namespace eddy
