// eddy-bench: throughput and memory of the engine beside a hand-written CAF baseline.
//
// Every measured variant (one case on the engine, or on the baseline) runs in a child process
// (this executable re-executed with the hidden `--run-one CASE engine|baseline`), so that the
// peak RSS the child reports through getrusage belongs to that variant alone. The parent runs
// engine and baseline alternately --runs times, reports the medians and the ratio.
//
// The baseline is what one would write with CAF alone: a producer and a consumer actor
// (event_based, plain caf::behavior) passing std::vector batches of the same values in a
// shared_ptr, batches of --runtime.batch-events-max values, with a credit window: the
// producer keeps at most --runtime.credit-batches-max batches in flight and the consumer acks
// each batch, the same protocol the engine uses per channel. See docs/benchmarks.md.

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "eddy/actors/engine.hpp"
#include "eddy/actors/messages.hpp"
#include "eddy/eddy.hpp"

namespace bench {

/// The message of the baseline: a batch of values, shared so that CAF copies a pointer.
struct raw_batch {
  std::shared_ptr<std::vector<int64_t>> values;
};

/// Only the size travels if CAF ever serializes it (it never does: all actors are local).
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, raw_batch& x) {
  uint64_t size = x.values ? x.values->size() : 0;
  return f(size);
}

} // namespace bench

CAF_BEGIN_TYPE_ID_BLOCK(eddy_bench, caf::id_block::eddy::end)

CAF_ADD_TYPE_ID(eddy_bench, (bench::raw_batch))

/// Consumer -> producer: one batch consumed, one more may be sent.
CAF_ADD_ATOM(eddy_bench, bench, ack_atom, "ack")
/// Producer -> consumer: no more batches.
CAF_ADD_ATOM(eddy_bench, bench, done_atom, "done")
/// Main -> producer: start sending.
CAF_ADD_ATOM(eddy_bench, bench, go_atom, "go")

CAF_END_TYPE_ID_BLOCK(eddy_bench)

namespace bench {
namespace {

// -- the work, shared by engine and baseline ----------------------------------------------------

/// Distinct keys of keyed_count.
constexpr int64_t keyed_distinct = 100'000;

/// Value i of the stateless case.
inline int64_t stateless_value(uint64_t i) noexcept {
  return static_cast<int64_t>(i);
}
inline int64_t stateless_map(int64_t x) noexcept {
  return x * 3 + 1;
}
/// Drops one value in four.
inline bool stateless_keep(int64_t x) noexcept {
  return (x & 3) != 0;
}
/// Key i of keyed_count: a pseudo-random key in 0..99999 (the splitmix64 finalizer of i), so
/// that keys arrive in no particular order; 20M draws hit every one of the 100k keys.
inline int64_t keyed_value(uint64_t i) noexcept {
  uint64_t z = i + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<int64_t>(z % static_cast<uint64_t>(keyed_distinct));
}

struct case_info {
  const char* name;
  const char* description;
  uint64_t default_events;
};

const case_info cases[] = {
  {"stateless",
   "generator -> map -> filter -> counting sink; baseline: CAF producer -> consumer doing the "
   "map+filter",
   100'000'000},
  {"keyed_count",
   "generator over 100k int64 keys -> key_by -> value_state<int64_t> count per key -> sink; "
   "baseline: CAF producer -> consumer counting into std::unordered_map",
   20'000'000},
};

const case_info* find_case(const std::string& name) {
  for (const auto& c : cases) {
    if (name == c.name) {
      return &c;
    }
  }
  return nullptr;
}

/// What one variant run measured.
struct run_result {
  double seconds = 0;
  uint64_t events = 0;
  /// Records that reached the end of the pipeline (stateless) or 0 (keyed_count).
  uint64_t out = 0;
  /// Distinct keys held at the end (keyed_count).
  uint64_t keys = 0;
  /// Engine only: the sum over all actors of the records their output side held at most.
  uint64_t buffered_peak = 0;
};

// -- engine -------------------------------------------------------------------------------------

class counting_sink final : public eddy::sink_logic {
public:
  explicit counting_sink(std::shared_ptr<std::atomic<uint64_t>> into)
    : into_(std::move(into)) {}
  void write(eddy::record_buffer& in) override {
    count_ += in.size();
  }
  void flush() override {
    into_->store(count_);
  }

private:
  std::shared_ptr<std::atomic<uint64_t>> into_;
  uint64_t count_ = 0;
};

template <class T>
eddy::sink_def<T> counting_sink_def(std::shared_ptr<std::atomic<uint64_t>> into) {
  return eddy::sink_def<T>{
    [into](const eddy::instance_context&) { return std::make_unique<counting_sink>(into); }, 1};
}

std::optional<run_result> run_engine(const std::string& which, uint64_t events,
                                     const eddy::command_line& cli) {
  auto sunk = std::make_shared<std::atomic<uint64_t>>(0);
  eddy::job_builder job{"bench-" + which};
  job.partitions(cli.runtime.partitions);
  if (which == "stateless") {
    job.source("gen", eddy::generator_source(events, [](uint64_t i) { return stateless_value(i); }))
      .map("map", [](const int64_t& x) { return stateless_map(x); })
      .filter("filter", [](const int64_t& x) { return stateless_keep(x); })
      .sink("count", counting_sink_def<int64_t>(sunk));
  } else {
    job.source("gen", eddy::generator_source(events, [](uint64_t i) { return keyed_value(i); }))
      .key_by([](const int64_t& k) { return k; })
      .process<int64_t>("count",
                        [](const int64_t&, auto& ctx, auto&) {
                          auto& n = ctx.template value<int64_t>("n");
                          n.set(n.get_or(0) + 1);
                        })
      .sink("sink", counting_sink_def<int64_t>(sunk));
  }
  auto graph = job.build();
  if (!graph) {
    std::cerr << "eddy-bench: error: " << eddy::describe(graph.error()) << "\n";
    return std::nullopt;
  }
  eddy::engine eng{cli.runtime, cli.common};
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
  for (const auto& a : h->actors()) {
    if (a.kind == eddy::node_kind::source) {
      r.events += a.metrics->events_in;
    } else if (a.kind == eddy::node_kind::keyed) {
      r.keys += a.metrics->keys;
    }
    r.buffered_peak += a.metrics->buffered_events_peak;
  }
  if (std::getenv("EDDY_BENCH_ACTORS") != nullptr) {
    // Diagnostics: per-actor counters (mean batch sizes, queue peaks).
    for (const auto& a : h->actors()) {
      const auto& m = *a.metrics;
      std::fprintf(stderr,
                   "actor=%s events_in=%llu batches_in=%llu events_out=%llu batches_out=%llu "
                   "queued_peak=%llu buffered_peak=%llu keys=%llu\n",
                   a.name.c_str(), static_cast<unsigned long long>(m.events_in.load()),
                   static_cast<unsigned long long>(m.batches_in.load()),
                   static_cast<unsigned long long>(m.events_out.load()),
                   static_cast<unsigned long long>(m.batches_out.load()),
                   static_cast<unsigned long long>(m.queued_batches_peak.load()),
                   static_cast<unsigned long long>(m.buffered_events_peak.load()),
                   static_cast<unsigned long long>(m.keys.load()));
    }
  }
  r.out = sunk->load();
  return r;
}

// -- baseline -----------------------------------------------------------------------------------

struct baseline_params {
  std::string which;
  uint64_t events = 0;
  size_t batch = 1024;
  uint32_t window = 8;
};

/// Filled by the consumer before it quits; read by main after await_all_actors_done.
struct baseline_result {
  uint64_t events = 0;
  uint64_t out = 0;
  uint64_t keys = 0;
};

struct producer_state {
  uint64_t next = 0;
  uint32_t in_flight = 0;
  bool done_sent = false;
};

caf::behavior producer(caf::stateful_actor<producer_state>* self, caf::actor consumer,
                       baseline_params p) {
  auto keyed = p.which == "keyed_count";
  // Sends one batch if values remain; false once all are out.
  auto send_one = [self, consumer, p, keyed] {
    auto& st = self->state;
    if (st.next >= p.events) {
      return false;
    }
    auto values = std::make_shared<std::vector<int64_t>>();
    values->reserve(p.batch);
    auto end = std::min(p.events, st.next + p.batch);
    if (keyed) {
      for (auto i = st.next; i < end; ++i) {
        values->push_back(keyed_value(i));
      }
    } else {
      for (auto i = st.next; i < end; ++i) {
        values->push_back(stateless_value(i));
      }
    }
    st.next = end;
    ++st.in_flight;
    self->send(consumer, raw_batch{std::move(values)});
    return true;
  };
  auto fill = [self, consumer, p, send_one] {
    auto& st = self->state;
    while (st.in_flight < p.window && send_one()) {
      // Keep the window full.
    }
    if (st.in_flight == 0 && !st.done_sent) {
      st.done_sent = true;
      self->send(consumer, done_atom::value);
      self->quit();
    }
  };
  return {
    [fill](go_atom) { fill(); },
    [self, fill](ack_atom) {
      --self->state.in_flight;
      fill();
    },
  };
}

struct consumer_state {
  uint64_t events = 0;
  uint64_t out = 0;
  std::unordered_map<int64_t, int64_t> counts;
};

caf::behavior consumer(caf::stateful_actor<consumer_state>* self, std::string which,
                       std::shared_ptr<baseline_result> result) {
  auto on_done = [self, result](done_atom) {
    auto& st = self->state;
    result->events = st.events;
    result->out = st.out;
    result->keys = st.counts.size();
    self->quit();
  };
  auto ack = [self] {
    self->send(caf::actor_cast<caf::actor>(self->current_sender()), ack_atom::value);
  };
  if (which == "keyed_count") {
    return {
      [self, ack](raw_batch& b) {
        auto& st = self->state;
        for (auto k : *b.values) {
          ++st.counts[k];
        }
        st.events += b.values->size();
        ack();
      },
      on_done,
    };
  }
  return {
    [self, ack](raw_batch& b) {
      auto& st = self->state;
      uint64_t kept = 0;
      for (auto x : *b.values) {
        if (stateless_keep(stateless_map(x))) {
          ++kept;
        }
      }
      st.out += kept;
      st.events += b.values->size();
      ack();
    },
    on_done,
  };
}

std::optional<run_result> run_baseline(const std::string& which, uint64_t events,
                                       const eddy::command_line& cli) {
  caf::actor_system_config cfg;
  cfg.add_message_types<caf::id_block::eddy_bench>();
  if (cli.runtime.threads > 0) {
    cfg.set("scheduler.max-threads", static_cast<size_t>(cli.runtime.threads));
  }
  caf::actor_system sys{cfg};
  baseline_params p{which, events, cli.runtime.batch_events_max, cli.runtime.credit_batches_max};
  auto result = std::make_shared<baseline_result>();
  auto begin = std::chrono::steady_clock::now();
  auto c = sys.spawn(consumer, which, result);
  auto prod = sys.spawn(producer, c, p);
  caf::anon_send(prod, go_atom::value);
  sys.await_all_actors_done();
  run_result r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  r.events = result->events;
  r.out = result->out;
  r.keys = result->keys;
  return r;
}

// -- child side ---------------------------------------------------------------------------------

rusage self_usage() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru;
}

int run_one(const std::string& which, const std::string& variant, uint64_t events,
            const eddy::command_line& cli) {
  auto r = variant == "engine" ? run_engine(which, events, cli) : run_baseline(which, events, cli);
  if (!r) {
    return 1;
  }
  auto ru = self_usage();
  // ru_maxrss is in KiB on Linux.
  std::printf("variant=%s case=%s events=%llu seconds=%.6f out=%llu keys=%llu peak_rss_mb=%.1f "
              "minor_faults=%ld buffered_peak=%llu\n",
              variant.c_str(), which.c_str(), static_cast<unsigned long long>(r->events),
              r->seconds, static_cast<unsigned long long>(r->out),
              static_cast<unsigned long long>(r->keys), static_cast<double>(ru.ru_maxrss) / 1024.0,
              ru.ru_minflt, static_cast<unsigned long long>(r->buffered_peak));
  std::fflush(stdout);
  return 0;
}

// -- parent side --------------------------------------------------------------------------------

using fields = std::map<std::string, std::string>;

fields parse_fields(const std::string& line) {
  fields result;
  std::istringstream in{line};
  std::string token;
  while (in >> token) {
    if (auto eq = token.find('='); eq != std::string::npos) {
      result[token.substr(0, eq)] = token.substr(eq + 1);
    }
  }
  return result;
}

/// Runs this executable with `args` and returns the key=value fields of its last stdout line.
std::optional<fields> run_child(const std::vector<std::string>& args) {
  int fds[2];
  if (pipe(fds) != 0) {
    std::perror("eddy-bench: pipe");
    return std::nullopt;
  }
  auto pid = fork();
  if (pid < 0) {
    std::perror("eddy-bench: fork");
    return std::nullopt;
  }
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> argv;
    for (const auto& a : args) {
      argv.push_back(const_cast<char*>(a.c_str()));
    }
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    std::perror("eddy-bench: exec /proc/self/exe");
    _exit(127);
  }
  close(fds[1]);
  std::string output;
  char buf[4096];
  for (;;) {
    auto n = read(fds[0], buf, sizeof(buf));
    if (n > 0) {
      output.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::cerr << "eddy-bench: error: child '" << args[2] << " " << args[3] << "' failed\n";
    return std::nullopt;
  }
  while (!output.empty() && output.back() == '\n') {
    output.pop_back();
  }
  auto last = output.rfind('\n');
  return parse_fields(last == std::string::npos ? output : output.substr(last + 1));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct variant_summary {
  double events_per_s = 0;
  double peak_rss_mb = 0;
  double minor_faults = 0;
  std::vector<double> rates;
  std::vector<double> faults;
};

struct case_summary {
  const case_info* info;
  uint64_t events;
  variant_summary engine;
  variant_summary baseline;
};

/// The options a child needs to reproduce the parent's configuration.
std::vector<std::string> child_args(const std::string& which, const std::string& variant,
                                    uint64_t events, const eddy::command_line& cli) {
  const auto& rt = cli.runtime;
  return {"eddy-bench", "--run-one", which, variant, "--events", std::to_string(events),
          "--runtime.threads", std::to_string(rt.threads), "--job.partitions",
          std::to_string(rt.partitions), "--runtime.batch-events-max",
          std::to_string(rt.batch_events_max), "--runtime.credit-batches-max",
          std::to_string(rt.credit_batches_max), "--runtime.linger-ms",
          std::to_string(rt.linger_ms), "--data-dir", cli.common.data_dir.string(),
          "--runtime.dead-letters", rt.dead_letters.string(),
          // The children's "job starting" lines would interleave with the report.
          "--log.level",
          cli.values()["log.level"].defaulted() ? std::string{"warn"} : cli.common.log_level};
}

std::optional<case_summary> measure(const case_info& c, uint64_t events, int runs,
                                    const eddy::command_line& cli) {
  case_summary s{&c, events, {}, {}};
  for (int run = 1; run <= runs; ++run) {
    std::optional<fields> e;
    std::optional<fields> b;
    // Alternate the order so that a slow phase of the machine hits both sides.
    if (run % 2 == 1) {
      e = run_child(child_args(c.name, "engine", events, cli));
      b = e ? run_child(child_args(c.name, "baseline", events, cli)) : std::nullopt;
    } else {
      b = run_child(child_args(c.name, "baseline", events, cli));
      e = b ? run_child(child_args(c.name, "engine", events, cli)) : std::nullopt;
    }
    if (!e || !b) {
      return std::nullopt;
    }
    auto rate = [](const fields& f) {
      return std::stod(f.at("events")) / std::stod(f.at("seconds"));
    };
    s.engine.rates.push_back(rate(*e));
    s.baseline.rates.push_back(rate(*b));
    s.engine.faults.push_back(std::stod(e->at("minor_faults")));
    s.baseline.faults.push_back(std::stod(b->at("minor_faults")));
    s.engine.peak_rss_mb = std::max(s.engine.peak_rss_mb, std::stod(e->at("peak_rss_mb")));
    s.baseline.peak_rss_mb = std::max(s.baseline.peak_rss_mb, std::stod(b->at("peak_rss_mb")));
    // Both sides must have done the same work.
    if (e->at("events") != b->at("events") || e->at("keys") != b->at("keys") ||
        (std::string{c.name} == "stateless" && e->at("out") != b->at("out"))) {
      std::cerr << "eddy-bench: error: engine and baseline disagree on " << c.name
                << ": engine events=" << e->at("events") << " out=" << e->at("out")
                << " keys=" << e->at("keys") << ", baseline events=" << b->at("events")
                << " out=" << b->at("out") << " keys=" << b->at("keys") << "\n";
      return std::nullopt;
    }
    std::fprintf(stderr, "  %s run %d/%d: engine %.2f M/s (%.1f MB), baseline %.2f M/s (%.1f MB)\n",
                 c.name, run, runs, rate(*e) / 1e6, std::stod(e->at("peak_rss_mb")), rate(*b) / 1e6,
                 std::stod(b->at("peak_rss_mb")));
  }
  s.engine.events_per_s = median(s.engine.rates);
  s.baseline.events_per_s = median(s.baseline.rates);
  s.engine.minor_faults = median(s.engine.faults);
  s.baseline.minor_faults = median(s.baseline.faults);
  return s;
}

void print_report(const std::vector<case_summary>& results, int runs,
                  const eddy::command_line& cli) {
  std::printf("eddy-bench: median of %d run(s), %u hardware threads, runtime.threads=%u, "
              "batch-events-max=%u, credit-batches-max=%u, partitions=%u\n\n",
              runs, std::thread::hardware_concurrency(), cli.runtime.threads,
              cli.runtime.batch_events_max, cli.runtime.credit_batches_max, cli.runtime.partitions);
  std::printf("%-12s %12s %14s %14s %7s %12s %12s\n", "case", "events", "engine ev/s",
              "baseline ev/s", "ratio", "engine MB", "baseline MB");
  for (const auto& r : results) {
    std::printf("%-12s %12llu %14.0f %14.0f %7.3f %12.1f %12.1f\n", r.info->name,
                static_cast<unsigned long long>(r.events), r.engine.events_per_s,
                r.baseline.events_per_s, r.engine.events_per_s / r.baseline.events_per_s,
                r.engine.peak_rss_mb, r.baseline.peak_rss_mb);
  }
  std::printf("\n");
  for (const auto& r : results) {
    std::printf("case=%s events_per_s=%.0f baseline_ratio=%.3f peak_rss_mb=%.1f "
                "baseline_events_per_s=%.0f baseline_peak_rss_mb=%.1f events=%llu runs=%d "
                "minor_faults=%.0f baseline_minor_faults=%.0f\n",
                r.info->name, r.engine.events_per_s,
                r.engine.events_per_s / r.baseline.events_per_s, r.engine.peak_rss_mb,
                r.baseline.events_per_s, r.baseline.peak_rss_mb,
                static_cast<unsigned long long>(r.events), runs, r.engine.minor_faults,
                r.baseline.minor_faults);
  }
}

} // namespace
} // namespace bench

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  // The hidden `--run-one CASE VARIANT` marks a child; take it out before the regular parse.
  std::vector<const char*> args;
  std::optional<std::pair<std::string, std::string>> run_one;
  for (int i = 0; i < argc; ++i) {
    if (i > 0 && std::strcmp(argv[i], "--run-one") == 0 && i + 2 < argc) {
      run_one.emplace(argv[i + 1], argv[i + 2]);
      i += 2;
    } else {
      args.push_back(argv[i]);
    }
  }

  eddy::command_line cli{"eddy-bench", "throughput and peak RSS of the engine beside a "
                                       "hand-written CAF baseline; runs every case by default"};
  cli.app_options().add_options()("case", po::value<std::vector<std::string>>(),
                                  "cases to run (positional; default: all, see --list)")(
    "events", po::value<int64_t>()->default_value(0),
    "events per run (0: the case's default, 100M stateless, 20M keyed_count)")(
    "runs", po::value<int64_t>()->default_value(3),
    "runs per variant; the median is reported")("list", "print the cases and exit");
  cli.positional().add("case", -1);
  if (auto code = cli.parse(static_cast<int>(args.size()), args.data())) {
    return *code;
  }
  const auto& vm = cli.values();

  if (vm.count("list")) {
    for (const auto& c : bench::cases) {
      std::printf("%-12s %s\n", c.name, c.description);
    }
    return 0;
  }
  auto events = vm["events"].as<int64_t>();
  if (events < 0) {
    return cli.usage_error("--events is " + std::to_string(events) + "; must be >= 0");
  }
  auto runs = vm["runs"].as<int64_t>();
  if (runs < 1 || runs > 1000) {
    return cli.usage_error("--runs is " + std::to_string(runs) + "; allowed: 1..1000");
  }
  std::vector<const bench::case_info*> selected;
  if (vm.count("case")) {
    for (const auto& name : vm["case"].as<std::vector<std::string>>()) {
      auto c = bench::find_case(name);
      if (c == nullptr) {
        return cli.usage_error("unknown case '" + name + "' (cases: stateless, keyed_count)");
      }
      selected.push_back(c);
    }
  } else {
    for (const auto& c : bench::cases) {
      selected.push_back(&c);
    }
  }

  if (run_one) {
    auto& [which, variant] = *run_one;
    auto c = bench::find_case(which);
    if (c == nullptr) {
      return cli.usage_error("unknown case '" + which + "' (cases: stateless, keyed_count)");
    }
    if (variant != "engine" && variant != "baseline") {
      return cli.usage_error("unknown variant '" + variant + "'; allowed: engine, baseline");
    }
    return bench::run_one(which, variant,
                          events > 0 ? static_cast<uint64_t>(events) : c->default_events, cli);
  }

  std::vector<bench::case_summary> results;
  for (auto c : selected) {
    auto n = events > 0 ? static_cast<uint64_t>(events) : c->default_events;
    auto r = bench::measure(*c, n, static_cast<int>(runs), cli);
    if (!r) {
      return 1;
    }
    results.push_back(*r);
  }
  bench::print_report(results, static_cast<int>(runs), cli);
  return 0;
}
