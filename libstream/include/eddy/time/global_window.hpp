#pragma once

// The global window of a keyed stream with a custom trigger (Flink's GlobalWindows with a
// Trigger): every element of a key goes into one window, and the trigger says when its
// result goes out and whether the window then starts empty again. A trigger is a type with
//   trigger_decision on_element(time_ms ts, uint64_t elements, time_ms watermark) const;
//   trigger_decision on_event_time(time_ms at) const;
// `elements` counts the window's elements with this one; a decision may ask for an
// event-time timer, which calls `on_event_time` once the watermark reaches it.

#include <optional>
#include <string>
#include <utility>

#include "eddy/state/keyed_state.hpp"
#include "eddy/time/window_aggregate.hpp"
#include "eddy/time/window_operator.hpp"

namespace eddy {

/// What a trigger decides: emit the window's result, then empty it (`purge`); and an
/// event-time timer to be called at.
struct trigger_decision {
  bool fire = false;
  bool purge = false;
  std::optional<time_ms> timer;
};

/// Fires every `n` elements of a key and starts the window empty again (a count window).
struct count_trigger {
  uint64_t n = 1;
  [[nodiscard]] trigger_decision on_element(time_ms, uint64_t elements, time_ms) const {
    return elements >= n ? trigger_decision{true, true, std::nullopt} : trigger_decision{};
  }
  [[nodiscard]] trigger_decision on_event_time(time_ms) const {
    return {};
  }
};

/// Fires once the watermark passes the end of each `period` of event time (the boundaries
/// k * period) in which the key had elements, with everything the key got until then, and
/// starts empty again. (Unlike tumbling windows, an element of the next period that came
/// before the boundary fired is counted in it: a global window has one bucket.)
struct period_trigger {
  time_ms period = 1000;
  [[nodiscard]] trigger_decision on_element(time_ms ts, uint64_t, time_ms) const {
    auto start = ts >= 0 ? ts / period * period : (ts - period + 1) / period * period;
    return trigger_decision{false, false, start + period - 1};
  }
  [[nodiscard]] trigger_decision on_event_time(time_ms) const {
    return trigger_decision{true, true, std::nullopt};
  }
};

/// The per-key state of a global window.
template <class Acc>
struct global_contents {
  Acc acc{};
  uint64_t elements = 0;
  bool emitted = false;
};

template <class Inspector, class Acc>
typename Inspector::result_type inspect(Inspector& f, global_contents<Acc>& x) {
  return f(x.acc, x.elements, x.emitted);
}

/// The keyed function and timer function of a global window with trigger `Trig` over
/// elements T with aggregate A; its results are `window_output` records of kind "result"
/// ("update" when the window fired before without a purge) spanning all event time.
template <class K, class T, class A, class Trig>
class global_window_function {
public:
  using result_type = aggregate_result_t<A>;
  using output = window_output<K, T, result_type>;
  using contents = global_contents<typename A::accumulator>;

  global_window_function(Trig trigger, A aggregate)
    : trigger_(std::move(trigger))
    , aggregate_(std::move(aggregate)) {}

  template <class Ctx, class Out>
  void on_element(const T& value, Ctx& ctx, Out& out) const {
    auto& state = ctx.template value<contents>("global");
    auto c = state.get_or(contents{aggregate_.create(), 0, false});
    aggregate_.add(c.acc, value);
    ++c.elements;
    apply(ctx, out, state, c, trigger_.on_element(ctx.time(), c.elements, ctx.watermark()));
  }

  template <class Ctx, class Out>
  void on_timer(const timer_fired& t, Ctx& ctx, Out& out) const {
    auto& state = ctx.template value<contents>("global");
    if (!t.event_time || t.tag != "global" || !state.exists()) {
      return;
    }
    auto c = state.get();
    apply(ctx, out, state, c, trigger_.on_event_time(t.at));
  }

private:
  template <class Ctx, class Out, class State>
  void apply(Ctx& ctx, Out& out, State& state, contents& c, const trigger_decision& d) const {
    if (d.timer) {
      ctx.register_event_timer(*d.timer, "global");
    }
    if (d.fire && c.elements > 0) {
      output o;
      o.kind = c.emitted ? "update" : "result";
      o.key = ctx.key();
      o.start = -max_event_time;
      o.end = max_event_time;
      o.result = aggregate_.result(c.acc);
      out.emit(std::move(o));
      c.emitted = true;
    }
    if (d.purge) {
      state.clear();
    } else {
      state.set(c);
    }
  }

  Trig trigger_;
  A aggregate_;
};

} // namespace eddy
