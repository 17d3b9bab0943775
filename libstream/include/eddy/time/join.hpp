#pragma once

// Two-input operators over event time. `connect(a, b)` makes one stream of `either<A, B>`
// of two streams (each record keeps its timestamp; the watermark is the lower of the
// two); keyed by a key both sides share, a keyed function sees both sides with shared
// state (Flink's connect + KeyedCoProcessFunction). `interval_join` is such a function:
// it pairs a left record a with every right record b of its key whose timestamp lies in
// [a.ts + lower, a.ts + upper], each pair once, keeping each record only until the
// watermark says no partner can come any more.

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "eddy/state/keyed_state.hpp"

namespace eddy {

/// A record of one of two connected streams.
template <class A, class B>
struct either {
  bool is_left = true;
  A left{};
  B right{};
};

template <class A, class B>
void to_json(nlohmann::json& j, const either<A, B>& e) {
  j = e.is_left ? nlohmann::json{{"left", e.left}} : nlohmann::json{{"right", e.right}};
}

template <class A, class B>
void from_json(const nlohmann::json& j, either<A, B>& e) {
  e.is_left = j.contains("left");
  if (e.is_left) {
    j.at("left").get_to(e.left);
  } else {
    j.at("right").get_to(e.right);
  }
}

/// A record kept by a join, with its timestamp.
template <class T>
struct timed {
  time_ms ts = 0;
  T value{};
};

template <class T>
void to_json(nlohmann::json& j, const timed<T>& t) {
  j = nlohmann::json{{"ts", t.ts}, {"value", t.value}};
}

template <class T>
void from_json(const nlohmann::json& j, timed<T>& t) {
  j.at("ts").get_to(t.ts);
  j.at("value").get_to(t.value);
}

/// The keyed function and timer function of an interval join of `either<A, B>` records:
/// `fn(const A&, const B&) -> Out` for every pair of one key with
/// a.ts + lower <= b.ts <= a.ts + upper. Records behind the watermark that can no longer
/// pair are not kept (Flink drops them too).
template <class A, class B, class F>
class interval_join_function {
public:
  interval_join_function(time_ms lower, time_ms upper, F fn)
    : lower_(lower)
    , upper_(upper)
    , fn_(std::move(fn)) {
    if (lower > upper) {
      throw std::invalid_argument("interval_join: lower bound " + std::to_string(lower) +
                                  " is above upper bound " + std::to_string(upper));
    }
  }

  template <class Ctx, class Out>
  void on_element(const either<A, B>& e, Ctx& ctx, Out& out) const {
    auto ts = ctx.time();
    auto watermark = ctx.watermark();
    auto& lefts = ctx.template list<timed<A>>("left");
    auto& rights = ctx.template list<timed<B>>("right");
    if (e.is_left) {
      for (const auto& b : rights.get()) {
        if (ts + lower_ <= b.ts && b.ts <= ts + upper_) {
          out.emit(fn_(e.left, b.value));
        }
      }
      // A right record pairing with it needs b.ts <= ts + upper.
      keep(ctx, lefts, timed<A>{ts, e.left}, ts + upper_, watermark, "left");
    } else {
      for (const auto& a : lefts.get()) {
        if (a.ts + lower_ <= ts && ts <= a.ts + upper_) {
          out.emit(fn_(a.value, e.right));
        }
      }
      // A left record pairing with it needs a.ts >= ts - upper, a.ts <= ts - lower.
      keep(ctx, rights, timed<B>{ts, e.right}, ts - lower_, watermark, "right");
    }
  }

  template <class Ctx, class Out>
  void on_timer(const timer_fired& t, Ctx& ctx, Out&) const {
    if (!t.event_time) {
      return;
    }
    // The watermark reached t: a record kept until t can pair with nobody any more.
    if (t.tag == "left") {
      drop(ctx.template list<timed<A>>("left"),
           [&](const auto& r) { return r.ts + upper_ <= t.at; });
    } else if (t.tag == "right") {
      drop(ctx.template list<timed<B>>("right"),
           [&](const auto& r) { return r.ts - lower_ <= t.at; });
    }
  }

private:
  /// Keeps `record` until the watermark reaches `until` (an event-time timer), unless it
  /// has already.
  template <class Ctx, class List, class Record>
  void keep(Ctx& ctx, List& list, Record record, time_ms until, time_ms watermark,
            const char* tag) const {
    if (watermark != no_time && until <= watermark) {
      return;
    }
    list.add(std::move(record));
    ctx.register_event_timer(until, tag);
  }

  template <class List, class Pred>
  static void drop(List& list, Pred expired) {
    auto items = list.get();
    std::erase_if(items, expired);
    if (items.empty()) {
      list.clear();
    } else {
      list.update(std::move(items));
    }
  }

  time_ms lower_;
  time_ms upper_;
  F fn_;
};

} // namespace eddy
