// eddy-bench: throughput and memory of the engine beside hand-written baselines.
//
// Every measured variant (the engine with some state durability, or a baseline) runs in a
// child process (this executable re-executed with the hidden `--run-one CASE VARIANT`), so that
// the peak RSS the child reports through getrusage belongs to that variant alone, and in a
// fresh temporary data dir under --data-dir. The parent runs the variants of a case in turn
// --runs times, rotating which goes first, and reports the medians and the ratios.
//
// The CAF baseline is what one would write with CAF alone: a producer and a consumer actor
// (event_based, plain caf::behavior) passing std::vector batches of the same values in a
// shared_ptr, batches of --runtime.batch-events-max values, with a credit window: the
// producer keeps at most --runtime.credit-batches-max batches in flight and the consumer acks
// each batch, the same protocol the engine uses per channel (caf_baseline.cpp). The SQLite
// baseline writes the keyed counts with plain SQLite: one table, a prepared upsert, 1000 rows
// per transaction (sqlite_baseline.cpp).
// The `restart` case measures the time from engine start to the first processed event of a
// job that resumes on a large durable state. See docs/benchmarks.md.

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caf_baseline.hpp"
#include "eddy/actors/engine.hpp"
#include "eddy/actors/messages.hpp"
#include "eddy/actors/metrics.hpp"
#include "eddy/eddy.hpp"
#include "sqlite_baseline.hpp"
#include "work.hpp"

namespace bench {
namespace {

// -- the work, shared by engine and baselines ---------------------------------------------------

/// The job a case runs on the engine (and the work its baselines do).
enum class work {
  /// generator -> map -> filter -> sink.
  stateless,
  /// generator of keyed_value(i) -> key_by -> count per key -> sink (nothing reaches it).
  keyed_count,
  /// generator of i mod N -> key_by -> count per key -> sink of the keys seen twice.
  restart,
  /// Event time: generator of (key, ts) out of order -> sliding window count per key.
  sliding_count,
  /// Event time: two generators of (key, ts) -> connect -> interval join per key.
  interval_join,
};

/// How a variant runs in its child process.
enum class runner { engine, caf_baseline, sqlite_baseline };

struct variant_info {
  /// Name in reports and in `--run-one CASE VARIANT`.
  const char* name;
  runner how;
  /// The engine's --state.durability. For the SQLite baseline its synchronous mode, as in the
  /// journals: process = synchronous=NORMAL, machine = synchronous=FULL.
  eddy::durability level;
  /// keyed_count: the keyed function throws this many times, at evenly spaced calls, and
  /// supervision restarts the job from its journals each time (backoff 0: the restart itself
  /// is measured, not the waiting).
  uint32_t failures = 0;
  /// The job of this variant when it is not the case's.
  std::optional<work> job = std::nullopt;
};

/// A reported ratio of two variants' median throughputs.
struct ratio_info {
  /// Field name in the report, e.g. "baseline_ratio".
  const char* name;
  const char* numerator;
  const char* denominator;
  /// What the issue asks for at least (0: no target, the ratio is for information).
  double target;
};

struct case_info {
  const char* name;
  const char* description;
  uint64_t default_events;
  work job;
  /// The first variant is the case's main one: its fields have no prefix in the report.
  std::vector<variant_info> variants;
  std::vector<ratio_info> ratios;
};

using eddy::durability;

const case_info cases[] = {
  {"stateless",
   "generator -> map -> filter -> counting sink; baseline: CAF producer -> consumer doing the "
   "map+filter",
   100'000'000,
   work::stateless,
   {{"engine", runner::engine, durability::none},
    {"baseline", runner::caf_baseline, durability::none}},
   {{"baseline_ratio", "engine", "baseline", 0.7}}},
  {"keyed_count",
   "generator over 100k int64 keys -> key_by -> value_state<int64_t> count per key -> sink; "
   "baseline: CAF producer -> consumer counting into std::unordered_map",
   20'000'000,
   work::keyed_count,
   {{"engine", runner::engine, durability::none},
    {"baseline", runner::caf_baseline, durability::none}},
   {{"baseline_ratio", "engine", "baseline", 0.5}}},
  {"durable_keyed_count",
   "keyed_count with state in memory, durable (process, machine), and raw SQLite upserts "
   "(synchronous NORMAL, FULL)",
   2'000'000,
   work::keyed_count,
   {{"memory", runner::engine, durability::none},
    {"process", runner::engine, durability::process},
    {"machine", runner::engine, durability::machine},
    {"sqlite_normal", runner::sqlite_baseline, durability::process},
    {"sqlite_full", runner::sqlite_baseline, durability::machine}},
   {{"process_memory_ratio", "process", "memory", 0.4},
    {"machine_sqlite_full_ratio", "machine", "sqlite_full", 0.5}}},
  {"supervised_keyed_count",
   "durable keyed_count (process) without failures, and with 3 failures of the keyed "
   "function, each restarting the job from its journals",
   2'000'000,
   work::keyed_count,
   {{"clean", runner::engine, durability::process},
    {"failures", runner::engine, durability::process, 3}},
   {{"failures_clean_ratio", "failures", "clean", 0}}},
  {"event_time",
   "generator of (key of 1000, ts) out of order by up to 20 ms -> key_by -> a count per key "
   "(the baseline) / a sliding window count (10 s every 1 s) / an interval join (+-5 ms) of "
   "two such streams of half the events each",
   5'000'000,
   work::keyed_count,
   {{"keyed_count", runner::engine, durability::none, 0, work::keyed_count},
    {"sliding_count", runner::engine, durability::none, 0, work::sliding_count},
    {"interval_join", runner::engine, durability::none, 0, work::interval_join}},
   {{"sliding_keyed_ratio", "sliding_count", "keyed_count", 0},
    {"join_keyed_ratio", "interval_join", "keyed_count", 0}}},
  {"restart",
   "populate N distinct keys (durability process), then time a restart from engine start to "
   "the first new event at the sink",
   10'000'000,
   work::restart,
   {{"populate", runner::engine, durability::process},
    {"restart", runner::engine, durability::process}},
   {}},
};

const case_info* find_case(const std::string& name) {
  for (const auto& c : cases) {
    if (name == c.name) {
      return &c;
    }
  }
  return nullptr;
}

const variant_info* find_variant(const case_info& c, const std::string& name) {
  for (const auto& v : c.variants) {
    if (name == v.name) {
      return &v;
    }
  }
  return nullptr;
}

/// The names of `cases` or of a case's variants, comma-separated.
template <class Range>
std::string names_of(const Range& items) {
  std::string result;
  for (const auto& x : items) {
    result += (result.empty() ? "" : ", ") + std::string{x.name};
  }
  return result;
}

/// What one variant run measured.
// -- engine -------------------------------------------------------------------------------------

/// What the sink saw, for the parent thread.
struct sink_probe {
  std::atomic<uint64_t> records{0};
  /// When the first record arrived; set once, before `records`.
  std::atomic<std::chrono::steady_clock::time_point> first{};
};

/// Counts records and notes when the first one arrived.
class counting_sink final : public eddy::sink_logic {
public:
  explicit counting_sink(std::shared_ptr<sink_probe> probe)
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
  std::shared_ptr<sink_probe> probe_;
  uint64_t count_ = 0;
};

template <class T>
eddy::sink_def<T> counting_sink_def(std::shared_ptr<sink_probe> probe) {
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

std::optional<run_result> run_engine(const case_info& c, const variant_info& v, uint64_t events,
                                     uint32_t run_index, eddy::runtime_options rt,
                                     const eddy::common_options& common) {
  auto probe = std::make_shared<sink_probe>();
  eddy::job_builder job{std::string{"bench-"} + c.name};
  job.partitions(rt.partitions);
  switch (v.job.value_or(c.job)) {
    case work::sliding_count:
      job.source("gen", eddy::generator_source(events, [](uint64_t i) { return timed_event(i); }))
        .event_time([](const timed_key& e) { return e.ts; }, eddy::bounded_out_of_orderness(50))
        .key_by([](const timed_key& e) { return e.key; })
        .window("windows", eddy::sliding(10'000, 1'000), eddy::count_aggregate{})
        .sink("sink", counting_sink_def<eddy::window_output<int64_t, timed_key, uint64_t>>(probe));
      break;
    case work::interval_join: {
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
      break;
    }
    case work::stateless:
      job
        .source("gen",
                eddy::generator_source(events, [](uint64_t i) { return stateless_value(i); }))
        .map("map", [](const int64_t& x) { return stateless_map(x); })
        .filter("filter", [](const int64_t& x) { return stateless_keep(x); })
        .sink("count", counting_sink_def<int64_t>(probe));
      break;
    case work::keyed_count:
      if (v.failures == 0) {
        job.source("gen", eddy::generator_source(events, [](uint64_t i) { return keyed_value(i); }))
          .key_by([](const int64_t& k) { return k; })
          .process<int64_t>("count", count_per_key(false))
          .sink("sink", counting_sink_def<int64_t>(probe));
      } else {
        // Calls over every incarnation: the k-th of every events/(failures+1) throws once.
        auto calls = std::make_shared<std::atomic<uint64_t>>(0);
        auto every = events / (v.failures + 1);
        auto last = every * v.failures;
        rt.supervision.backoff_ms = 0;
        job.source("gen", eddy::generator_source(events, [](uint64_t i) { return keyed_value(i); }))
          .key_by([](const int64_t& k) { return k; })
          .process<int64_t>(
            "count",
            [calls, every, last, count = count_per_key(false)](const int64_t& key, auto& ctx,
                                                               auto& out) {
              auto c = ++*calls;
              if (c % every == 0 && c <= last) {
                throw std::runtime_error("injected failure at call " + std::to_string(c));
              }
              count(key, ctx, out);
            })
          .sink("sink", counting_sink_def<int64_t>(probe));
      }
      break;
    case work::restart:
      job
        .source("gen", eddy::generator_source(
                         restart_count(events, run_index),
                         [keys = events](uint64_t i) { return static_cast<int64_t>(i % keys); }))
        .key_by([](const int64_t& k) { return k; })
        .process<int64_t>("count", count_per_key(true))
        .sink("sink", counting_sink_def<int64_t>(probe));
      break;
  }
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
  if (v.failures > 0) {
    // Sources count what they re-read after each restart: the work is the input.
    r.events = events;
    uint64_t failures = 0;
    for (const auto& a : h->actors()) {
      failures += a.metrics->restarts;
    }
    if (failures != v.failures) {
      std::cerr << "eddy-bench: error: " << failures << " failures restarted, expected "
                << v.failures << "\n";
      return std::nullopt;
    }
  }
  for (const auto& a : h->actors()) {
    if (a.kind == eddy::node_kind::source && v.failures == 0) {
      r.events += a.metrics->events_in;
    } else if (a.kind == eddy::node_kind::keyed) {
      r.keys += a.metrics->keys;
    }
    r.buffered_peak += a.metrics->buffered_events_peak;
  }
  if (std::getenv("EDDY_BENCH_ACTORS") != nullptr) {
    // Diagnostics: per-actor counters (mean batch sizes, queue peaks).
    for (const auto& a : h->actors()) {
      std::fprintf(stderr, "%s\n", eddy::actor_counters_line(a).c_str());
    }
  }
  r.out = probe->records.load();
  if (r.out > 0) {
    r.first_out_seconds = std::chrono::duration<double>(probe->first.load() - begin).count();
  }
  return r;
}

// -- child side ---------------------------------------------------------------------------------

rusage self_usage() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru;
}

/// The restart case's own check: the populating run makes no output, a restart exactly one
/// record (the new event). Returns an error message, or "" if the run is right.
std::string check_restart(const run_result& r, uint32_t run_index) {
  if (run_index == 0 && r.out != 0) {
    return "the populating run found state already (" + std::to_string(r.out) +
           " keys seen twice); its data dir was not fresh";
  }
  if (run_index > 0 && r.out == 0) {
    return "the restarted job's new event found no count for its key: the state of the "
           "populating run was not restored (durable state not wired, or --state.durability "
           "ignored?)";
  }
  if (run_index > 0 && r.out > 1) {
    return std::to_string(r.out - 1) +
           " events of the populating run were applied again after the restart (exactly-once "
           "resume failed)";
  }
  return {};
}

int run_one(const case_info& c, const variant_info& v, uint64_t events, uint32_t run_index,
            const eddy::command_line& cli) {
  auto rt = cli.runtime;
  rt.state.level = v.level;
  std::optional<run_result> r;
  try {
    switch (v.how) {
      case runner::engine:
        r = run_engine(c, v, events, run_index, rt, cli.common);
        break;
      case runner::caf_baseline:
        r = run_caf_baseline(c.job == work::keyed_count, events, rt);
        break;
      case runner::sqlite_baseline:
        r = run_sqlite_baseline(events, v.level, cli.common.data_dir);
        break;
    }
  } catch (const std::exception& e) {
    std::cerr << "eddy-bench: error: " << e.what() << "\n";
    return 1;
  }
  if (!r) {
    return 1;
  }
  if (c.job == work::restart) {
    if (auto problem = check_restart(*r, run_index); !problem.empty()) {
      std::cerr << "eddy-bench: error: restart: " << problem << "\n";
      return 1;
    }
  }
  auto ru = self_usage();
  // ru_maxrss is in KiB on Linux.
  std::printf("variant=%s case=%s events=%llu seconds=%.6f out=%llu keys=%llu peak_rss_mb=%.1f "
              "minor_faults=%ld buffered_peak=%llu first_out_seconds=%.6f\n",
              v.name, c.name, static_cast<unsigned long long>(r->events), r->seconds,
              static_cast<unsigned long long>(r->out), static_cast<unsigned long long>(r->keys),
              static_cast<double>(ru.ru_maxrss) / 1024.0, ru.ru_minflt,
              static_cast<unsigned long long>(r->buffered_peak), r->first_out_seconds);
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

double number(const fields& f, const std::string& key) {
  return std::stod(f.at(key));
}

/// A fresh directory `<root>/eddy-bench-XXXXXX`, removed with its content on destruction.
/// The variants' data dirs: under --data-dir, so that durable state goes to the disk the
/// user picked (a tmpfs /tmp would make fsync free).
class scratch_dir {
public:
  explicit scratch_dir(const std::filesystem::path& root)
    : root_(root)
    , created_root_(std::filesystem::create_directories(root)) {
    auto pattern = (root / "eddy-bench-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
    }
    path_ = pattern;
  }
  ~scratch_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
    if (created_root_) {
      // Only if empty: a default ./data made for the benchmark does not stay behind.
      std::filesystem::remove(root_, ignored);
    }
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const noexcept {
    return path_;
  }

private:
  std::filesystem::path root_;
  bool created_root_;
  std::filesystem::path path_;
};

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

/// The options a child needs to reproduce the parent's configuration, with `data_dir` as its
/// --data-dir. The state durability comes from the variant.
std::vector<std::string> child_args(const case_info& c, const variant_info& v, uint64_t events,
                                    uint32_t run_index, const std::filesystem::path& data_dir,
                                    const eddy::command_line& cli) {
  const auto& rt = cli.runtime;
  std::vector<std::string> args = {
    "eddy-bench", "--run-one", c.name, v.name, "--run-index", std::to_string(run_index), "--events",
    std::to_string(events), "--runtime.threads", std::to_string(rt.threads), "--job.partitions",
    std::to_string(rt.partitions), "--runtime.batch-events-max",
    std::to_string(rt.batch_events_max), "--runtime.credit-batches-max",
    std::to_string(rt.credit_batches_max), "--runtime.linger-ms", std::to_string(rt.linger_ms),
    "--state.cache-mb", std::to_string(rt.state.cache_mb), "--state.keep-changes",
    std::to_string(rt.state.keep_changes), "--state.compact-every",
    std::to_string(rt.state.compact_every), "--data-dir", data_dir.string(),
    // The children's "job starting" lines would interleave with the report.
    "--log.level",
    cli.values()["log.level"].defaulted() ? std::string{"warn"} : cli.common.log_level};
  if (cli.values().count("runtime.dead-letters")) {
    args.insert(args.end(), {"--runtime.dead-letters", rt.dead_letters.string()});
  }
  return args;
}

/// Runs variant `v` once in a child with a fresh data dir; nullopt after a failure.
std::optional<fields> run_fresh(const case_info& c, const variant_info& v, uint64_t events,
                                const eddy::command_line& cli) {
  try {
    scratch_dir dir{cli.common.data_dir};
    return run_child(child_args(c, v, events, 0, dir.path(), cli));
  } catch (const std::exception& e) {
    std::cerr << "eddy-bench: error: " << e.what() << "\n";
    return std::nullopt;
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// What a case reports: lines of the human-readable table and one line for scripts.
struct case_report {
  std::vector<std::string> table;
  std::string line;
};

std::string format(const char* fmt, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof(buf), fmt, args...);
  return buf;
}

struct variant_summary {
  const variant_info* info;
  std::vector<double> rates;
  std::vector<double> faults;
  double peak_rss_mb = 0;
};

/// The throughput cases: every variant of `c` once per run, in an order that rotates by one
/// each run so that a busy phase of the machine hits all of them; medians and ratios.
std::optional<case_report> measure_throughput(const case_info& c, uint64_t events, int runs,
                                              const eddy::command_line& cli) {
  std::vector<variant_summary> vs;
  for (const auto& v : c.variants) {
    vs.push_back({&v, {}, {}, 0});
  }
  auto n = vs.size();
  for (int run = 1; run <= runs; ++run) {
    std::vector<fields> got(n);
    for (size_t j = 0; j < n; ++j) {
      auto k = (static_cast<size_t>(run - 1) + j) % n;
      auto f = run_fresh(c, *vs[k].info, events, cli);
      if (!f) {
        return std::nullopt;
      }
      got[k] = std::move(*f);
    }
    // All variants must have done the same work.
    for (size_t k = 1; k < n; ++k) {
      // Keys held in memory: after a restart keys are loaded lazily, so fewer are held.
      // Variants with jobs of their own (event_time) share only the input.
      bool same_job = vs[k].info->job.value_or(c.job) == vs[0].info->job.value_or(c.job);
      bool keys_differ =
        got[k].at("keys") != got[0].at("keys") && vs[k].info->failures == 0 && same_job;
      if (got[k].at("events") != got[0].at("events") || keys_differ ||
          (c.job == work::stateless && got[k].at("out") != got[0].at("out"))) {
        std::cerr << "eddy-bench: error: variants disagree on " << c.name << ": "
                  << vs[0].info->name << " events=" << got[0].at("events")
                  << " out=" << got[0].at("out") << " keys=" << got[0].at("keys") << ", "
                  << vs[k].info->name << " events=" << got[k].at("events")
                  << " out=" << got[k].at("out") << " keys=" << got[k].at("keys") << "\n";
        return std::nullopt;
      }
    }
    std::string progress = format("  %s run %d/%d:", c.name, run, runs);
    for (size_t k = 0; k < n; ++k) {
      auto rate = number(got[k], "events") / number(got[k], "seconds");
      auto mb = number(got[k], "peak_rss_mb");
      vs[k].rates.push_back(rate);
      vs[k].faults.push_back(number(got[k], "minor_faults"));
      vs[k].peak_rss_mb = std::max(vs[k].peak_rss_mb, mb);
      progress +=
        format("%s %s %.2f M/s (%.1f MB)", k == 0 ? "" : ",", vs[k].info->name, rate / 1e6, mb);
    }
    std::cerr << progress << "\n";
  }

  auto rate_of = [&](const char* name) {
    for (const auto& v : vs) {
      if (std::strcmp(v.info->name, name) == 0) {
        return median(v.rates);
      }
    }
    return 0.0;
  };
  std::vector<double> ratios;
  for (const auto& q : c.ratios) {
    ratios.push_back(rate_of(q.numerator) / rate_of(q.denominator));
  }
  // The first variant's fields are unprefixed ("events_per_s"), the others' carry its name
  // ("baseline_events_per_s").
  auto field = [&](size_t k, const char* what) {
    return " " + (k == 0 ? std::string{} : std::string{vs[k].info->name} + "_") + what + "=";
  };
  case_report r;
  std::ostringstream line;
  line << "case=" << c.name << field(0, "events_per_s") << format("%.0f", median(vs[0].rates));
  for (size_t i = 0; i < ratios.size(); ++i) {
    line << " " << c.ratios[i].name << "=" << format("%.3f", ratios[i]);
  }
  line << field(0, "peak_rss_mb") << format("%.1f", vs[0].peak_rss_mb);
  for (size_t k = 1; k < n; ++k) {
    line << field(k, "events_per_s") << format("%.0f", median(vs[k].rates))
         << field(k, "peak_rss_mb") << format("%.1f", vs[k].peak_rss_mb);
  }
  line << " events=" << events << " runs=" << runs;
  for (size_t k = 0; k < n; ++k) {
    line << field(k, "minor_faults") << format("%.0f", median(vs[k].faults));
  }
  r.line = line.str();
  for (const auto& v : vs) {
    r.table.push_back(format("%-20s %-14s %12llu %14.0f %10.1f %12.0f", c.name, v.info->name,
                             static_cast<unsigned long long>(events), median(v.rates),
                             v.peak_rss_mb, median(v.faults)));
  }
  for (size_t i = 0; i < ratios.size(); ++i) {
    const auto& q = c.ratios[i];
    if (q.target > 0) {
      r.table.push_back(format("%-20s %s / %s = %.3f (target >= %.1f: %s)", "", q.numerator,
                               q.denominator, ratios[i], q.target,
                               ratios[i] >= q.target ? "met" : "not met"));
    } else {
      r.table.push_back(format("%-20s %s / %s = %.3f", "", q.numerator, q.denominator, ratios[i]));
    }
  }
  return r;
}

/// The restart case: populates `keys` keys once (not timed), then restarts the same job
/// --runs times, each in a fresh child on the same data dir, each with one new event (see
/// `restart_count`), and reports the median time to that event and the peak RSS.
std::optional<case_report> measure_restart(const case_info& c, uint64_t keys, int runs,
                                           const eddy::command_line& cli) {
  if (keys < static_cast<uint64_t>(runs)) {
    std::cerr << "eddy-bench: error: restart needs --events >= --runs (one key per run)\n";
    return std::nullopt;
  }
  const auto& populate = c.variants[0];
  const auto& restart = c.variants[1];
  std::optional<scratch_dir> dir;
  try {
    dir.emplace(cli.common.data_dir);
  } catch (const std::exception& e) {
    std::cerr << "eddy-bench: error: " << e.what() << "\n";
    return std::nullopt;
  }
  auto filled = run_child(child_args(c, populate, keys, 0, dir->path(), cli));
  if (!filled) {
    return std::nullopt;
  }
  std::cerr << format("  restart: populated %llu keys in %.1f s (%.1f MB)\n",
                      static_cast<unsigned long long>(keys), number(*filled, "seconds"),
                      number(*filled, "peak_rss_mb"));
  std::vector<double> first;
  std::vector<double> total;
  std::vector<double> reread;
  double peak = 0;
  for (int run = 1; run <= runs; ++run) {
    auto f = run_child(child_args(c, restart, keys, static_cast<uint32_t>(run), dir->path(), cli));
    if (!f) {
      return std::nullopt;
    }
    first.push_back(number(*f, "first_out_seconds"));
    total.push_back(number(*f, "seconds"));
    reread.push_back(number(*f, "events"));
    peak = std::max(peak, number(*f, "peak_rss_mb"));
    std::cerr << format("  restart run %d/%d: first event after %.3f s, job done after %.3f s, "
                        "%.0f events read by the source (%.1f MB)\n",
                        run, runs, first.back(), total.back(), reread.back(),
                        number(*f, "peak_rss_mb"));
  }
  case_report r;
  r.line = format("case=%s keys=%llu first_event_seconds=%.3f seconds=%.3f peak_rss_mb=%.1f "
                  "source_events=%.0f populate_seconds=%.1f populate_peak_rss_mb=%.1f runs=%d",
                  c.name, static_cast<unsigned long long>(keys), median(first), median(total), peak,
                  median(reread), number(*filled, "seconds"), number(*filled, "peak_rss_mb"), runs);
  r.table.push_back(format("%-20s %llu keys populated in %.1f s (peak %.1f MB)", c.name,
                           static_cast<unsigned long long>(keys), number(*filled, "seconds"),
                           number(*filled, "peak_rss_mb")));
  r.table.push_back(format("%-20s engine start -> first new event at the sink: %.3f s (target "
                           "< 2 s: %s), job done: %.3f s, peak RSS %.1f MB, source read %.0f "
                           "events",
                           "", median(first), median(first) < 2 ? "met" : "not met", median(total),
                           peak, median(reread)));
  return r;
}

void print_report(const std::vector<case_report>& reports, int runs,
                  const eddy::command_line& cli) {
  std::printf("eddy-bench: median of %d run(s), %u hardware threads, runtime.threads=%u, "
              "batch-events-max=%u, credit-batches-max=%u, partitions=%u\n\n",
              runs, std::thread::hardware_concurrency(), cli.runtime.threads,
              cli.runtime.batch_events_max, cli.runtime.credit_batches_max, cli.runtime.partitions);
  std::printf("%-20s %-14s %12s %14s %10s %12s\n", "case", "variant", "events", "ev/s", "peak MB",
              "minor faults");
  for (const auto& r : reports) {
    for (const auto& row : r.table) {
      std::printf("%s\n", row.c_str());
    }
  }
  std::printf("\n");
  for (const auto& r : reports) {
    std::printf("%s\n", r.line.c_str());
  }
}

} // namespace
} // namespace bench

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  // The hidden `--run-one CASE VARIANT` (and `--run-index R` of the restart case) mark a
  // child; take them out before the regular parse.
  std::vector<const char*> args;
  std::optional<std::pair<std::string, std::string>> run_one;
  uint32_t run_index = 0;
  for (int i = 0; i < argc; ++i) {
    if (i > 0 && std::strcmp(argv[i], "--run-one") == 0 && i + 2 < argc) {
      run_one.emplace(argv[i + 1], argv[i + 2]);
      i += 2;
    } else if (i > 0 && std::strcmp(argv[i], "--run-index") == 0 && i + 1 < argc) {
      run_index = static_cast<uint32_t>(std::strtoul(argv[i + 1], nullptr, 10));
      i += 1;
    } else {
      args.push_back(argv[i]);
    }
  }

  eddy::command_line cli{"eddy-bench", "throughput and peak RSS of the engine beside "
                                       "hand-written baselines; runs every case by default"};
  cli.app_options().add_options()("case", po::value<std::vector<std::string>>(),
                                  "cases to run (positional; default: all, see --list)")(
    "events", po::value<int64_t>()->default_value(0),
    "events per run (0: the case's default, 100M stateless, 20M keyed_count, 2M "
    "durable_keyed_count; restart: keys populated, 10M)")(
    "runs", po::value<int64_t>()->default_value(3),
    "runs per variant; the median is reported")("list", "print the cases and exit");
  cli.positional().add("case", -1);
  if (auto code = cli.parse(static_cast<int>(args.size()), args.data())) {
    return *code;
  }
  const auto& vm = cli.values();

  if (vm.count("list")) {
    for (const auto& c : bench::cases) {
      std::printf("%-20s %s\n", c.name, c.description);
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
  auto unknown_case = [&](const std::string& name) {
    return cli.usage_error("unknown case '" + name + "' (cases: " + bench::names_of(bench::cases) +
                           ")");
  };
  std::vector<const bench::case_info*> selected;
  if (vm.count("case")) {
    for (const auto& name : vm["case"].as<std::vector<std::string>>()) {
      auto c = bench::find_case(name);
      if (c == nullptr) {
        return unknown_case(name);
      }
      selected.push_back(c);
    }
  } else {
    for (const auto& c : bench::cases) {
      selected.push_back(&c);
    }
  }
  auto events_of = [events](const bench::case_info& c) {
    return events > 0 ? static_cast<uint64_t>(events) : c.default_events;
  };

  if (run_one) {
    auto& [which, variant] = *run_one;
    auto c = bench::find_case(which);
    if (c == nullptr) {
      return unknown_case(which);
    }
    auto v = bench::find_variant(*c, variant);
    if (v == nullptr) {
      return cli.usage_error("unknown variant '" + variant + "' of " + which +
                             "; allowed: " + bench::names_of(c->variants));
    }
    return bench::run_one(*c, *v, events_of(*c), run_index, cli);
  }

  std::vector<bench::case_report> reports;
  for (auto c : selected) {
    auto r = c->job == bench::work::restart
               ? bench::measure_restart(*c, events_of(*c), static_cast<int>(runs), cli)
               : bench::measure_throughput(*c, events_of(*c), static_cast<int>(runs), cli);
    if (!r) {
      return 1;
    }
    reports.push_back(std::move(*r));
  }
  bench::print_report(reports, static_cast<int>(runs), cli);
  return 0;
}
