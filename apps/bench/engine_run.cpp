// The engine's side of eddy-bench: the job of each kind of work, run and measured.

#include "engine_run.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "eddy/actors/engine.hpp"
#include "eddy/actors/metrics.hpp"
#include "eddy/eddy.hpp"

namespace bench {
namespace {

/// What the sink saw, for the parent thread.
struct sink_probe {
  std::atomic<uint64_t> records{0};
  /// When the first record arrived; set once, before `records`.
  std::atomic<std::chrono::steady_clock::time_point> first{};
  /// The latency case: each record's latency in microseconds, in order of arrival.
  std::mutex latencies_mutex;
  std::vector<uint32_t> latencies_us;
};

using probe_ptr = std::shared_ptr<sink_probe>;

/// Counts records and notes when the first one arrived.
class counting_sink final : public eddy::sink_logic {
public:
  explicit counting_sink(probe_ptr probe)
    : probe_(std::move(probe)) {}
  void write(eddy::record_buffer& in) override {
    if (count_ == 0 && in.size() > 0) {
      probe_->first.store(std::chrono::steady_clock::now());
    }
    count_ += in.size();
  }
  void flush() override {
    probe_->records.store(count_);
  }

private:
  probe_ptr probe_;
  uint64_t count_ = 0;
};

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

/// The latency case's sink: transactional with durable state, so that the engine commits
/// what it wrote with its input positions; a record's latency is taken when the sink makes
/// it durable (`flush` or `sync`, right before that commit), in memory when it is written.
class latency_sink final : public eddy::sink_logic {
public:
  latency_sink(probe_ptr probe, bool durable)
    : probe_(std::move(probe))
    , durable_(durable) {}
  void write(eddy::record_buffer& in) override {
    for (const auto& r : eddy::typed<timed_key>(in).records) {
      made_ns_.push_back(r.value.ts);
    }
    count_ += in.size();
    if (!durable_) {
      settle();
    }
  }
  void flush() override {
    settle();
  }
  void sync() override {
    settle();
  }
  [[nodiscard]] bool transactional() const noexcept override {
    return durable_;
  }
  [[nodiscard]] uint64_t length() const noexcept override {
    return count_;
  }
  void resume(uint64_t length) override {
    count_ = length;
  }

private:
  void settle() {
    auto now = steady_ns();
    std::lock_guard lock{probe_->latencies_mutex};
    for (auto made : made_ns_) {
      probe_->latencies_us.push_back(
        static_cast<uint32_t>(std::max<int64_t>(0, now - made) / 1000));
    }
    made_ns_.clear();
    probe_->records.store(count_);
  }

  probe_ptr probe_;
  bool durable_;
  uint64_t count_ = 0;
  std::vector<int64_t> made_ns_;
};

/// The median and 99th percentile of the latencies after the warm-up, in ms.
void latency_percentiles(sink_probe& probe, run_result& r) {
  std::lock_guard lock{probe.latencies_mutex};
  auto& all = probe.latencies_us;
  auto skip = static_cast<size_t>(static_cast<double>(all.size()) * latency_warmup_share);
  std::vector<uint32_t> v(all.begin() + static_cast<std::ptrdiff_t>(skip), all.end());
  if (v.empty()) {
    return;
  }
  auto at = [&](double q) {
    auto k = static_cast<size_t>(q * static_cast<double>(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return static_cast<double>(v[k]) / 1000.0;
  };
  r.latency_p50_ms = at(0.5);
  r.latency_p99_ms = at(0.99);
}

void add_keyed_latency(eddy::job_builder& job, uint64_t events, const probe_ptr& probe) {
  job
    .source("gen", eddy::generator_source(events,
                                          [](uint64_t i) {
                                            return timed_key{keyed_value(i), steady_ns()};
                                          }))
    .key_by([](const timed_key& e) { return e.key; })
    .process<timed_key>("count",
                        [](const timed_key& e, auto& ctx, auto& out) {
                          auto& n = ctx.template value<int64_t>("n");
                          n.set(n.get_or(0) + 1);
                          out.emit(e);
                        })
    .sink("sink", eddy::sink_def<timed_key>{[probe](const eddy::instance_context& ctx) {
                                              return std::make_unique<latency_sink>(probe,
                                                                                    ctx.durable);
                                            },
                                            1});
}

template <class T>
eddy::sink_def<T> counting_sink_def(probe_ptr probe) {
  return eddy::sink_def<T>{
    [probe](const eddy::instance_context&) { return std::make_unique<counting_sink>(probe); }, 1};
}

/// The keyed function of keyed_count and restart: counts the events of each key in value
/// state "n". With `emit_repeats`, emits the key of every event whose key had a count already.
auto count_per_key(bool emit_repeats) {
  return [emit_repeats](const int64_t& key, auto& ctx, auto& out) {
    auto& n = ctx.template value<int64_t>("n");
    auto count = n.get_or(0) + 1;
    n.set(count);
    if (emit_repeats && count > 1) {
      out.emit(key);
    }
  };
}

/// The generator count of the restart case. The populating run (`run_index` 0) makes keys
/// 0..N-1 once each. Restart run r makes N + r events: on restart the engine resumes every
/// source after the positions the partitions committed, so the N + r - 1 events of the runs
/// before are skipped (or, if replayed, dropped as duplicates) and only event N + r - 1 is
/// new. Its key (r - 1) already has a count of 1 in the restored state, so the count becomes
/// 2 and the key reaches the sink: exactly one record, and only if the state came back.
/// That is what a user does: restart the same job (same job, operator and partition names)
/// on an input that has grown, and rely on exactly-once resume to skip what was processed.
uint64_t restart_count(uint64_t keys, uint32_t run_index) {
  return keys + run_index;
}

void add_sliding_count(eddy::job_builder& job, uint64_t events, const probe_ptr& probe) {
  job.source("gen", eddy::generator_source(events, [](uint64_t i) { return timed_event(i); }))
    .event_time([](const timed_key& e) { return e.ts; }, eddy::bounded_out_of_orderness(50))
    .key_by([](const timed_key& e) { return e.key; })
    .window("windows", eddy::sliding(10'000, 1'000), eddy::count_aggregate{})
    .sink("sink", counting_sink_def<eddy::window_output<int64_t, timed_key, uint64_t>>(probe));
}

void add_interval_join(eddy::job_builder& job, uint64_t events, const probe_ptr& probe) {
  auto half = events / 2;
  auto make = [](uint64_t i) {
    return timed_event(i * 2);
  };
  auto left =
    job.source("left", eddy::generator_source(half, make))
      .event_time([](const timed_key& e) { return e.ts; }, eddy::bounded_out_of_orderness(50));
  auto right =
    job
      .source("right",
              eddy::generator_source(half, [](uint64_t i) { return timed_event(i * 2 + 1); }))
      .event_time([](const timed_key& e) { return e.ts; }, eddy::bounded_out_of_orderness(50));
  eddy::connect(left, right, "both")
    .key_by([](const eddy::either<timed_key, timed_key>& e) {
      return e.is_left ? e.left.key : e.right.key;
    })
    .interval_join<int64_t>("join", -5, 5,
                            [](const timed_key& a, const timed_key& b) { return a.ts - b.ts; })
    .sink("sink", counting_sink_def<int64_t>(probe));
}

void add_stateless(eddy::job_builder& job, uint64_t events, const probe_ptr& probe) {
  job.source("gen", eddy::generator_source(events, [](uint64_t i) { return stateless_value(i); }))
    .map("map", [](const int64_t& x) { return stateless_map(x); })
    .filter("filter", [](const int64_t& x) { return stateless_keep(x); })
    .sink("count", counting_sink_def<int64_t>(probe));
}

void add_keyed_count(eddy::job_builder& job, uint64_t events, const probe_ptr& probe) {
  job.source("gen", eddy::generator_source(events, [](uint64_t i) { return keyed_value(i); }))
    .key_by([](const int64_t& k) { return k; })
    .process<int64_t>("count", count_per_key(false))
    .sink("sink", counting_sink_def<int64_t>(probe));
}

/// keyed_count whose keyed function throws `failures` times, at evenly spaced calls.
void add_failing_keyed_count(eddy::job_builder& job, uint64_t events, uint32_t failures,
                             const probe_ptr& probe) {
  // Calls over every incarnation: the k-th of every events/(failures+1) throws once.
  auto calls = std::make_shared<std::atomic<uint64_t>>(0);
  auto every = events / (failures + 1);
  auto last = every * failures;
  job.source("gen", eddy::generator_source(events, [](uint64_t i) { return keyed_value(i); }))
    .key_by([](const int64_t& k) { return k; })
    .process<int64_t>(
      "count",
      [calls, every, last, count = count_per_key(false)](const int64_t& key, auto& ctx, auto& out) {
        auto c = ++*calls;
        if (c % every == 0 && c <= last) {
          throw std::runtime_error("injected failure at call " + std::to_string(c));
        }
        count(key, ctx, out);
      })
    .sink("sink", counting_sink_def<int64_t>(probe));
}

void add_restart(eddy::job_builder& job, uint64_t keys, uint32_t run_index,
                 const probe_ptr& probe) {
  job
    .source("gen",
            eddy::generator_source(restart_count(keys, run_index),
                                   [keys](uint64_t i) { return static_cast<int64_t>(i % keys); }))
    .key_by([](const int64_t& k) { return k; })
    .process<int64_t>("count", count_per_key(true))
    .sink("sink", counting_sink_def<int64_t>(probe));
}

/// Adds the job of variant `v` to `job`. A failing variant restarts without backoff, so that
/// the restart itself is measured.
void add_work(eddy::job_builder& job, const case_info& c, const variant_info& v, uint64_t events,
              uint32_t run_index, eddy::runtime_options& rt, const probe_ptr& probe) {
  switch (v.job.value_or(c.job)) {
    case work::sliding_count:
      add_sliding_count(job, events, probe);
      break;
    case work::interval_join:
      add_interval_join(job, events, probe);
      break;
    case work::stateless:
      add_stateless(job, events, probe);
      break;
    case work::keyed_count:
      if (v.failures == 0) {
        add_keyed_count(job, events, probe);
      } else {
        rt.supervision.backoff_ms = 0;
        add_failing_keyed_count(job, events, v.failures, probe);
      }
      break;
    case work::restart:
      add_restart(job, events, run_index, probe);
      break;
    case work::keyed_latency:
      if (rt.source_rate == 0) {
        rt.source_rate = latency_rate_default;
      }
      add_keyed_latency(job, events, probe);
      break;
  }
}

/// Sums the counters of the job's actors into `r`; false (after printing why) when a failing
/// variant restarted another number of times than it failed.
bool read_counters(const eddy::job_handle& h, const variant_info& v, uint64_t events,
                   run_result& r) {
  auto actors = h.actors();
  if (v.failures > 0) {
    // Sources count what they re-read after each restart: the work is the input.
    r.events = events;
    uint64_t failures = 0;
    for (const auto& a : actors) {
      failures += a.metrics->restarts;
    }
    if (failures != v.failures) {
      std::cerr << "eddy-bench: error: " << failures << " failures restarted, expected "
                << v.failures << "\n";
      return false;
    }
  }
  for (const auto& a : actors) {
    if (a.kind == eddy::node_kind::source && v.failures == 0) {
      r.events += a.metrics->events_in;
    } else if (a.kind == eddy::node_kind::keyed) {
      r.keys += a.metrics->keys;
    }
    r.buffered_peak += a.metrics->buffered_events_peak;
  }
  if (std::getenv("EDDY_BENCH_ACTORS") != nullptr) {
    // Diagnostics: per-actor counters (mean batch sizes, queue peaks).
    for (const auto& a : actors) {
      std::fprintf(stderr, "%s\n", eddy::actor_counters_line(a).c_str());
    }
  }
  return true;
}

} // namespace

std::optional<run_result> run_engine(const case_info& c, const variant_info& v, uint64_t events,
                                     uint32_t run_index, eddy::runtime_options rt,
                                     const eddy::common_options& common) {
  auto probe = std::make_shared<sink_probe>();
  eddy::job_builder job{std::string{"bench-"} + c.name};
  job.partitions(rt.partitions);
  add_work(job, c, v, events, run_index, rt, probe);
  auto graph = job.build();
  if (!graph) {
    std::cerr << "eddy-bench: error: " << eddy::describe(graph.error()) << "\n";
    return std::nullopt;
  }
  eddy::engine eng{rt, common};
  auto begin = std::chrono::steady_clock::now();
  auto started = eng.start(std::move(*graph));
  if (!started) {
    std::cerr << "eddy-bench: error: " << eddy::describe(started.error()) << "\n";
    return std::nullopt;
  }
  auto h = *started;
  if (auto err = h->wait()) {
    std::cerr << "eddy-bench: error: " << eddy::describe(err) << "\n";
    return std::nullopt;
  }
  run_result r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  if (!read_counters(*h, v, events, r)) {
    return std::nullopt;
  }
  r.out = probe->records.load();
  if (c.job == work::keyed_latency) {
    latency_percentiles(*probe, r);
  }
  if (r.out > 0) {
    r.first_out_seconds = std::chrono::duration<double>(probe->first.load() - begin).count();
  }
  return r;
}

} // namespace bench
