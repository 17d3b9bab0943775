#pragma once

// Windows on a keyed stream (`keyed_stream::window`), written on the keyed function API:
// per key, the accumulator of every live window in map state "windows", an event-time
// timer when a window is due and one when its allowed lateness is over, following the
// rules of windows.hpp (Flink's window semantics). Results, updated results (an element
// within the allowed lateness of a window that fired) and late elements with the reason
// all go out as `window_output` records, told apart by `kind`.

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "eddy/state/keyed_state.hpp"
#include "eddy/time/window_aggregate.hpp"
#include "eddy/time/windows.hpp"

namespace eddy {

/// What a window operator emits: a window's result ("result"; "update" when it fired
/// before and a late element changed it), or an element that came too late ("late", with
/// its timestamp and the reason).
template <class K, class T, class R>
struct window_output {
  std::string kind;
  K key{};
  time_ms start = 0;
  time_ms end = 0;
  R result{};
  T element{};
  time_ms ts = 0;
  std::string reason;
};

/// The binary encoding of a window output (a partition's outbox keeps its outputs encoded
/// until downstream committed them): CAF's, when its parts have one, else JSON's.
template <class Inspector, class K, class T, class R>
requires(caf_serializable<K>&& caf_serializable<T>&& caf_serializable<R>)
  typename Inspector::result_type inspect(Inspector& f, window_output<K, T, R>& o) {
  return f(o.kind, o.key, o.start, o.end, o.result, o.element, o.ts, o.reason);
}

template <class K, class T, class R>
void to_json(nlohmann::json& j, const window_output<K, T, R>& o) {
  j = nlohmann::json{{"kind", o.kind}, {"key", o.key}};
  if (o.kind == "late") {
    j["element"] = o.element;
    j["ts"] = o.ts;
    j["reason"] = o.reason;
  } else {
    j["start"] = o.start;
    j["end"] = o.end;
    j["result"] = o.result;
  }
}

template <class K, class T, class R>
void from_json(const nlohmann::json& j, window_output<K, T, R>& o) {
  j.at("kind").get_to(o.kind);
  j.at("key").get_to(o.key);
  if (o.kind == "late") {
    j.at("element").get_to(o.element);
    j.at("ts").get_to(o.ts);
    j.at("reason").get_to(o.reason);
  } else {
    j.at("start").get_to(o.start);
    j.at("end").get_to(o.end);
    j.at("result").get_to(o.result);
  }
}

/// The keyed function and timer function of a window operator over elements T with
/// aggregate A (see window_aggregate.hpp); shared by the operator's partitions, holds no
/// state of its own.
template <class K, class T, class A>
class window_function {
public:
  using result_type = aggregate_result_t<A>;
  using output = window_output<K, T, result_type>;
  using contents = window_contents<typename A::accumulator>;

  window_function(window_assigner assigner, A aggregate, time_ms allowed_lateness)
    : assigner_(assigner)
    , aggregate_(std::move(aggregate))
    , lateness_(allowed_lateness) {
    check_assigner(assigner_);
    check_lateness(lateness_);
    if constexpr (!merging_window_aggregate<A, T>) {
      if (is_merging(assigner_)) {
        throw std::invalid_argument("session windows need an aggregate with merge()");
      }
    }
  }

  template <class Ctx, class Out>
  void on_element(const T& value, Ctx& ctx, Out& out) const {
    auto ts = ctx.time();
    auto watermark = ctx.watermark();
    if (auto reason = check_time(ts)) {
      late(ctx, out, value, ts, *reason, watermark);
      return;
    }
    auto& windows = ctx.template map<window, contents>("windows");
    if (is_merging(assigner_)) {
      add_to_session(value, ts, watermark, windows, ctx, out);
      return;
    }
    bool taken = false;
    for (const auto& w : assign(assigner_, ts)) {
      if (is_late(w, watermark, lateness_)) {
        continue;
      }
      taken = true;
      const auto* existing = windows.find(w);
      auto c = existing ? *existing : contents{aggregate_.create(), false};
      if (!existing) {
        register_timers(ctx, w, watermark);
      }
      aggregate_.add(c.acc, value);
      emit_if_complete(ctx, out, w, c, watermark);
      windows.put(w, std::move(c));
    }
    if (!taken) {
      late(ctx, out, value, ts, late_reason::too_late, watermark);
    }
  }

  template <class Ctx, class Out>
  void on_timer(const timer_fired& t, Ctx& ctx, Out& out) const {
    auto timer = parse_timer_tag(t.tag);
    if (!t.event_time || !timer) {
      return;
    }
    auto& windows = ctx.template map<window, contents>("windows");
    const auto* existing = windows.find(timer->win);
    if (!existing) {
      return;
    }
    if (timer->kind == window_timer_kind::purge) {
      windows.remove(timer->win);
      return;
    }
    auto c = *existing;
    out.emit(result_of(ctx, timer->win, c));
    c.emitted = true;
    if (lateness_ == 0) {
      windows.remove(timer->win);
    } else {
      windows.put(timer->win, std::move(c));
    }
  }

private:
  template <class Ctx, class Windows, class Out>
  void add_to_session(const T& value, time_ms ts, time_ms watermark, Windows& windows, Ctx& ctx,
                      Out& out) const {
    if constexpr (merging_window_aggregate<A, T>) {
      std::vector<window> current;
      for (const auto& [w, _] : windows.entries()) {
        current.push_back(w);
      }
      auto m = merge_sessions(current, assign(assigner_, ts).front());
      if (is_late(m.target, watermark, lateness_)) {
        late(ctx, out, value, ts, late_reason::too_late, watermark);
        return;
      }
      const auto* existing = m.target_existed ? windows.find(m.target) : nullptr;
      auto c = existing ? *existing : contents{aggregate_.create(), false};
      for (const auto& w : m.absorbed) {
        const auto& old = *windows.find(w);
        aggregate_.merge(c.acc, old.acc);
        c.emitted = c.emitted || old.emitted;
        delete_timers(ctx, w);
        windows.remove(w);
      }
      if (!m.target_existed) {
        register_timers(ctx, m.target, watermark);
      }
      aggregate_.add(c.acc, value);
      emit_if_complete(ctx, out, m.target, c, watermark);
      windows.put(m.target, std::move(c));
    }
  }

  template <class Ctx>
  void register_timers(Ctx& ctx, const window& w, time_ms watermark) const {
    if (watermark == no_time || fires_at(w) > watermark) {
      ctx.register_event_timer(fires_at(w), timer_tag(window_timer_kind::fire, w));
    }
    if (lateness_ > 0) {
      ctx.register_event_timer(cleanup_at(w, lateness_), timer_tag(window_timer_kind::purge, w));
    }
  }

  template <class Ctx>
  void delete_timers(Ctx& ctx, const window& w) const {
    ctx.delete_event_timer(fires_at(w), timer_tag(window_timer_kind::fire, w));
    if (lateness_ > 0) {
      ctx.delete_event_timer(cleanup_at(w, lateness_), timer_tag(window_timer_kind::purge, w));
    }
  }

  /// A window the watermark passed already (an element within the allowed lateness): its
  /// result goes out at once.
  template <class Ctx, class Out>
  void emit_if_complete(Ctx& ctx, Out& out, const window& w, contents& c, time_ms watermark) const {
    if (watermark != no_time && is_complete(w, watermark)) {
      out.emit(result_of(ctx, w, c));
      c.emitted = true;
    }
  }

  template <class Ctx>
  output result_of(Ctx& ctx, const window& w, const contents& c) const {
    output o;
    o.kind = c.emitted ? "update" : "result";
    o.key = ctx.key();
    o.start = w.start;
    o.end = w.end;
    o.result = aggregate_.result(c.acc);
    return o;
  }

  template <class Ctx, class Out>
  void late(Ctx& ctx, Out& out, const T& value, time_ms ts, late_reason reason,
            time_ms watermark) const {
    output o;
    o.kind = "late";
    o.key = ctx.key();
    o.element = value;
    o.ts = ts;
    o.reason = late_message(reason, ts, watermark, lateness_);
    out.emit(std::move(o));
  }

  window_assigner assigner_;
  A aggregate_;
  time_ms lateness_;
};

} // namespace eddy
