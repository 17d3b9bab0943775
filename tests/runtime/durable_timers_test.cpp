// Durable timers end to end: real jobs on eddy::engine with their journals in SQLite files
// under a temporary --data-dir. Timers registered before a job ended fire exactly once in
// the next run, timers due while a job runs fire during the run (with and without a
// journal), and a deleted timer never fires. Expected results come from the test's input.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support.hpp"

namespace {

using eddy::durability;
using eddy::test::run_job;
using eddy::test::state_options;
using eddy::test::temp_dir;

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// ---------------------------------------------------------------------------------------
// Timers.

struct tick {
  uint64_t key = 0;
  /// false: arm the key's timers; true: delete its "drop" timer.
  bool disarm = false;
};

struct fired {
  uint64_t key = 0;
  std::string tag;
  int64_t at = 0;
  int64_t fired_at = 0;
  /// How often a timer of this key fired so far, from durable state.
  int64_t times = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(fired, key, tag, at, fired_at, times)

constexpr int64_t timer_delay_ms = 300;
/// Keys of the restart timer test.
constexpr uint64_t timer_keys = 24;

/// Emits one record per fired timer, with a per-key count kept in state.
auto on_timer = [](const eddy::timer_fired& t, auto& ctx, auto& col) {
  auto& times = ctx.template value<int64_t>("times");
  times.set(times.get_or(0) + 1);
  col.emit(fired{ctx.key(), t.tag, t.at, now_ms(), times.get()});
};

/// Per key the "keep" timers that fired; fails the test on a "drop" timer or one that
/// fired before it was due.
std::map<uint64_t, int> keep_timers(const std::vector<fired>& out) {
  std::map<uint64_t, int> result;
  for (const auto& f : out) {
    INFO("key ", f.key, " tag ", f.tag, " at ", f.at, " fired at ", f.fired_at);
    CHECK(f.tag == "keep");
    CHECK(f.fired_at >= f.at);
    ++result[f.key];
  }
  return result;
}
} // namespace

TEST_SUITE("durable state") {

  TEST_CASE("durable timers registered before the job ended fire exactly once in the next run; "
            "deleted timers never fire") {
    temp_dir dir;
    constexpr uint64_t keys = timer_keys;
    auto run = [&](bool reset, std::vector<fired>& out) {
      auto opts = state_options(dir, durability::process, reset);
      // Batches of 8: a key's "drop" timer is deleted in a later commit than it was added.
      opts.batch_events_max = 8;
      eddy::engine eng{opts, eddy::test::test_common(dir)};
      auto collected = std::make_shared<eddy::collected<fired>>();
      eddy::job_builder jb{"timers"};
      jb.partitions(4);
      jb.source("ticks", eddy::generator_source(2 * keys,
                                                [](uint64_t i) {
                                                  return tick{i % timer_keys, i >= timer_keys};
                                                }))
        .key_by([](const tick& t) { return t.key; })
        .process<fired>(
          "arm",
          [](const tick& t, auto& ctx, auto&) {
            auto& at = ctx.template value<int64_t>("at");
            if (!t.disarm) {
              auto when = now_ms() + timer_delay_ms;
              at.set(when);
              ctx.register_timer(when, "keep");
              ctx.register_timer(when, "drop");
            } else {
              ctx.delete_timer(at.get(), "drop");
            }
          },
          on_timer)
        .sink("out", eddy::collector_sink(collected));
      auto err = run_job(eng, jb);
      REQUIRE_MESSAGE(!err, eddy::describe(err));
      out = collected->values();
    };

    std::vector<fired> first;
    auto started = now_ms();
    run(true, first);
    auto first_ended = now_ms();
    if (first_ended - started < timer_delay_ms - 20) {
      // The job ended before any timer was due: none fired, all wait in the journals.
      CHECK(first.empty());
    } else {
      MESSAGE("run 1 took ", first_ended - started, " ms; some timers may have fired in it");
    }

    std::this_thread::sleep_until(std::chrono::system_clock::now() +
                                  std::chrono::milliseconds(timer_delay_ms + 200));
    std::vector<fired> second;
    run(false, second);
    auto both = first;
    both.insert(both.end(), second.begin(), second.end());
    auto fired_keys = keep_timers(both);
    CHECK(fired_keys.size() == keys);
    for (uint64_t k = 0; k < keys; ++k) {
      INFO("key ", k);
      CHECK(fired_keys[k] == 1);
    }
    for (const auto& f : both) {
      CHECK(f.times == 1);
    }

    // Run 3: nothing is due any more.
    std::vector<fired> third;
    run(false, third);
    CHECK(third.empty());
  }

  namespace {

  /// Runs a job whose unbounded, slow source keeps it alive; each of 5 keys registers a
  /// "keep" timer at now + 300 ms on its first record (and a "drop" timer that it deletes at
  /// once). Returns whether all 5 fired before the job was stopped (3 s at most).
  bool timers_fire_while_running(durability level, std::vector<fired>& out) {
    temp_dir dir;
    auto opts = state_options(dir, level, true);
    opts.batch_events_max = 4;
    eddy::engine eng{opts, eddy::test::test_common(dir)};
    auto collected = std::make_shared<eddy::collected<fired>>();
    eddy::job_builder jb{"live-timers"};
    jb.partitions(2);
    jb.source("ticks",
              eddy::generator_source(0,
                                     [](uint64_t i) {
                                       std::this_thread::sleep_for(std::chrono::milliseconds(1));
                                       return tick{i % 5, false};
                                     }))
      .key_by([](const tick& t) { return t.key; })
      .process<fired>(
        "arm",
        [](const tick&, auto& ctx, auto&) {
          auto& at = ctx.template value<int64_t>("at");
          if (!at.exists()) {
            auto when = now_ms() + timer_delay_ms;
            at.set(when);
            ctx.register_timer(when, "keep");
            ctx.register_timer(when, "drop");
            ctx.delete_timer(when, "drop");
          }
        },
        on_timer)
      .sink("out", eddy::collector_sink(collected));
    auto graph = jb.build();
    REQUIRE(graph);
    auto job = eng.start(std::move(*graph));
    REQUIRE(job);
    bool during = false;
    for (int i = 0; i < 300 && !during; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      during = collected->values().size() >= 5;
    }
    (*job)->stop();
    auto err = eddy::test::finish(**job);
    CHECK_MESSAGE(!err, eddy::describe(err));
    out = collected->values();
    return during;
  }

  } // namespace

  TEST_CASE("a durable timer due while the job runs fires during the run") {
    std::vector<fired> out;
    CHECK(timers_fire_while_running(durability::process, out));
    auto fired_keys = keep_timers(out);
    CHECK(fired_keys == std::map<uint64_t, int>{{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 1}});
  }

  TEST_CASE("an in-memory timer due while the job runs fires during the run") {
    // Regression test: before e5fc34c a partition without a journal never scheduled a timer
    // message for timers registered while processing, so they fired only when the job ended.
    std::vector<fired> out;
    CHECK(timers_fire_while_running(durability::none, out));
    // Whenever they fire: each key's timer once, the deleted one never.
    auto fired_keys = keep_timers(out);
    CHECK(fired_keys == std::map<uint64_t, int>{{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 1}});
  }

  namespace {

  struct timer_op {
    uint64_t key = 0;
    /// 0: register the key's "late" timer at now + 100 ms; 1: nothing; 2: busy for 200 ms;
    /// 3: delete the "late" timer.
    int op = 0;
  };

  /// One partition, batches of one record: record 0 registers a timer due at +100 ms (its
  /// commit is done long before), record 4 keeps the partition busy past the due time, and
  /// record 5 deletes the timer. The timer message queues behind records 4 and 5, so the
  /// deletion is processed before the timer is due to be handled: it must not fire after
  /// that. Returns the timers that fired after their deletion was processed.
  std::vector<fired> timers_fired_after_delete(durability level) {
    temp_dir dir;
    auto opts = state_options(dir, level, true);
    opts.batch_events_max = 1;
    eddy::engine eng{opts, eddy::test::test_common(dir)};
    auto collected = std::make_shared<eddy::collected<fired>>();
    eddy::job_builder jb{"delete-timers"};
    jb.partitions(1);
    jb.source("ops",
              eddy::generator_source(6,
                                     [](uint64_t i) {
                                       if (i == 4) {
                                         // Records 0..3 go out first, 4 and 5 later.
                                         std::this_thread::sleep_for(std::chrono::milliseconds(50));
                                       }
                                       int op = i == 0 ? 0 : i == 4 ? 2 : i == 5 ? 3 : 1;
                                       return timer_op{i == 0 || i == 5 ? 0u : 1u, op};
                                     }))
      .key_by([](const timer_op& t) { return t.key; })
      .process<fired>(
        "arm",
        [](const timer_op& t, auto& ctx, auto&) {
          auto& at = ctx.template value<int64_t>("at");
          if (t.op == 0) {
            at.set(now_ms() + 100);
            ctx.register_timer(at.get(), "late");
          } else if (t.op == 2) {
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
          } else if (t.op == 3) {
            ctx.delete_timer(at.get(), "late");
            ctx.template value<int64_t>("deleted").set(1);
          }
        },
        [](const eddy::timer_fired& t, auto& ctx, auto& col) {
          // times: 1 if the deletion of this key's timer was processed before it fired.
          col.emit(fired{ctx.key(), t.tag, t.at, now_ms(),
                         ctx.template value<int64_t>("deleted").get_or(0)});
        })
      .sink("out", eddy::collector_sink(collected));
    auto err = run_job(eng, jb);
    CHECK_MESSAGE(!err, eddy::describe(err));
    std::vector<fired> result;
    for (const auto& f : collected->values()) {
      if (f.times != 0) {
        result.push_back(f);
      }
    }
    return result;
  }

  } // namespace

  TEST_CASE("a durable timer deleted before it is handled does not fire (durability process)") {
    auto late = timers_fired_after_delete(durability::process);
    CHECK_MESSAGE(late.empty(), late.size(), " timer(s) fired after their deletion");
  }

  TEST_CASE("a durable timer deleted before it is handled does not fire (durability machine)") {
    // Regression test: before e5fc34c the deletion was still uncommitted in a group when the
    // timer message (or the end of the input) read the due timers from the journal.
    auto late = timers_fired_after_delete(durability::machine);
    CHECK_MESSAGE(late.empty(), late.size(), " timer(s) fired after their deletion");
  }

} // TEST_SUITE
