// The window join (eddy/time/window_join.hpp): two out-of-order generated streams,
// connected and keyed, joined in tumbling and sliding windows on 4 partitions, in memory
// and durable, equal the brute-force pairs (every pair of one key sharing a window, once
// per shared window); and the function alone, on a hand-made keyed context: late records
// are dropped, a window's buffers go when it fires, sessions are refused, the state
// encodes.

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "eddy/time/window_join.hpp"
#include "join_streams.hpp"
#include "support.hpp"

namespace {

using namespace eddy;

using test::make_side;
using test::matched;
using test::order;
using test::payment;

auto pair_up() {
  return [](const order& o, const payment& p) {
    return matched{o.id, p.id};
  };
}

constexpr uint64_t orders = 600;
constexpr uint64_t payments = 450;
constexpr int64_t max_delay = 40;
constexpr int64_t bound = 50;

order order_at(uint64_t i) {
  return make_side<order>(i, 3, 10, max_delay);
}

payment payment_at(uint64_t i) {
  return make_side<payment>(i, 4, 13, max_delay);
}

std::vector<matched> run_join(window_assigner assigner, durability level) {
  test::temp_dir dir;
  auto opts = test::test_options(dir);
  opts.state.level = level;
  opts.batch_events_max = 16;
  engine eng{opts, test::test_common(dir)};
  auto out = std::make_shared<collected<matched>>();
  job_builder jb{"window_join"};
  jb.partitions(4);
  auto left = jb.source("orders", generator_source(orders, order_at))
                .event_time([](const order& o) { return o.ts; }, bounded_out_of_orderness(bound));
  auto right =
    jb.source("payments", generator_source(payments, payment_at))
      .event_time([](const payment& p) { return p.ts; }, bounded_out_of_orderness(bound));
  auto fn = make_window_join<order, payment>(assigner, pair_up());
  connect(left, right, "both")
    .key_by([](const either<order, payment>& e) { return e.is_left ? e.left.key : e.right.key; })
    .process<matched>(
      "wjoin",
      [fn](const either<order, payment>& e, auto& ctx, auto& col) { fn->on_element(e, ctx, col); },
      [fn](const timer_fired& t, auto& ctx, auto& col) { fn->on_timer(t, ctx, col); })
    .sink("out", collector_sink(out));
  test::run_ok(eng, jb);
  auto got = out->values();
  std::sort(got.begin(), got.end());
  return got;
}

/// Every pair of one key, once per window both fall in.
std::vector<matched> reference(const window_assigner& assigner) {
  std::vector<matched> want;
  for (uint64_t i = 0; i < orders; ++i) {
    auto o = order_at(i);
    auto ow = assign(assigner, o.ts);
    for (uint64_t j = 0; j < payments; ++j) {
      auto p = payment_at(j);
      if (o.key != p.key) {
        continue;
      }
      for (const auto& w : assign(assigner, p.ts)) {
        if (std::find(ow.begin(), ow.end(), w) != ow.end()) {
          want.push_back(matched{o.id, p.id});
        }
      }
    }
  }
  std::sort(want.begin(), want.end());
  return want;
}

/// Collects what a keyed function emits.
struct emitted {
  std::vector<matched> values;
  void emit(matched m) {
    values.push_back(m);
  }
};

} // namespace

TEST_CASE("a window join of two out-of-order streams in tumbling and sliding windows pairs "
          "exactly the brute-force pairs, once per shared window") {
  for (auto level : {durability::none, durability::process}) {
    CAPTURE(level);
    SUBCASE("tumbling") {
      auto got = run_join(tumbling(100), level);
      auto want = reference(tumbling(100));
      CHECK(want.size() > 100);
      CHECK(got == want);
    }
    SUBCASE("sliding") {
      auto got = run_join(sliding(100, 50), level);
      auto want = reference(sliding(100, 50));
      CHECK(want.size() > 100);
      // Some pairs share two windows and come twice.
      CHECK(std::adjacent_find(want.begin(), want.end()) != want.end());
      CHECK(got == want);
    }
  }
}

TEST_CASE("a window join drops late records, fires each window once and forgets it, and "
          "refuses session windows") {
  auto fn = make_window_join<order, payment>(tumbling(100), pair_up());
  keyed_store<int64_t> store;
  timer_book timers;
  timer_book event_timers{1};
  emitted out;
  int64_t key = 1;
  auto element = [&](const either<order, payment>& e, time_ms ts, time_ms watermark) {
    keyed_context<int64_t> ctx{key, store, timers, ts, &event_timers, watermark};
    fn->on_element(e, ctx, out);
    store.done_with(key, ctx.slot(), ctx.cleared());
  };
  auto advance = [&](time_ms watermark) {
    for (const auto& t : event_timers.take_due(watermark, 1000)) {
      keyed_context<int64_t> ctx{key, store, timers, t.at_ms, &event_timers, watermark};
      fn->on_timer(timer_fired{t.at_ms, t.tag, true}, ctx, out);
      store.done_with(key, ctx.slot(), ctx.cleared());
    }
  };
  auto left = [](int64_t id) {
    return either<order, payment>{true, order{1, 0, id}, payment{}};
  };
  auto right = [](int64_t id) {
    return either<order, payment>{false, order{}, payment{1, 0, id}};
  };

  element(left(1), 10, no_time);
  element(right(2), 99, no_time);
  element(right(3), 150, no_time); // window [100, 200): no left partner
  element(left(4), 50, 40);
  CHECK(out.values.empty());
  advance(98);
  CHECK(out.values.empty());
  advance(99); // [0, 100) fires
  CHECK(out.values == std::vector<matched>{{1, 2}, {4, 2}});
  // Late for [0, 100): dropped, nothing fires again.
  element(left(5), 60, 99);
  element(right(6), 0, 120);
  advance(120);
  CHECK(out.values.size() == 2);
  element(left(7), 199, 120);
  advance(199); // [100, 200) fires
  CHECK(out.values == std::vector<matched>{{1, 2}, {4, 2}, {7, 3}});
  advance(end_watermark);
  CHECK(out.values.size() == 3);
  // Every window was forgotten: the key holds no state.
  CHECK(store.find(key) == nullptr);

  auto with = [](window_assigner assigner) {
    return make_window_join<order, payment>(assigner, pair_up());
  };
  CHECK_THROWS_AS(with(session(10)), std::invalid_argument);
  CHECK_NOTHROW(with(sliding(100, 50)));
}

TEST_CASE("a window join's buffers encode for durable state and decode back") {
  static_assert(state_codable<window>);
  static_assert(state_codable<std::vector<timed<order>>>);
  map_state<window, std::vector<timed<order>>> buffers;
  buffers.put(window{0, 100}, {timed<order>{5, order{1, 5, 7}}, timed<order>{9, order{2, 9, 8}}});
  buffers.put(window{-100, 0}, {timed<order>{-3, order{3, -3, 9}}});
  std::string bytes;
  buffers.encode(bytes);
  map_state<window, std::vector<timed<order>>> back;
  back.decode(bytes);
  REQUIRE(back.size() == 2);
  const auto* w = back.find(window{0, 100});
  REQUIRE(w != nullptr);
  REQUIRE(w->size() == 2);
  CHECK((*w)[1].ts == 9);
  CHECK((*w)[1].value.id == 8);
  CHECK(back.find(window{-100, 0})->front().value.key == 3);
}
