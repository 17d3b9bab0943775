// The Nexmark benchmark (issue 9): generates the auction event stream, runs one query and
// prints what it cost: events/s, events per CPU-second, peak RSS and the end-to-end latency
// of its results.
//
//   build/bin/nexmark --query q5 --events 10000000
//   build/bin/nexmark --query q3 --events 100000 --output q3.jsonl --state.durability process

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>

#include "eddy/actors/engine.hpp"
#include "eddy/actors/metrics.hpp"
#include "eddy/eddy.hpp"
#include "nexmark/reference.hpp"

namespace {

namespace nx = eddy::nexmark;
using steady = std::chrono::steady_clock;

/// When each event time first went out of a source: one entry per poll (the highest event
/// time so far, the time of the poll), for the sinks to tell how long ago the input a result
/// depends on entered the job.
class emission_log {
public:
  void note(eddy::time_ms ts, size_t events) {
    std::lock_guard guard{mtx_};
    high_ = std::max(high_, ts);
    entries_.emplace_back(high_, steady::now());
    emitted_ += events;
  }
  /// For each event time in `times`, the seconds from when the first event at or after it
  /// went out until `now`, into `seconds` (none for a time no event reached yet). One lock
  /// for a sink's whole batch.
  void ages(const std::vector<eddy::time_ms>& times, steady::time_point now,
            std::vector<double>& seconds) const {
    std::lock_guard guard{mtx_};
    for (auto ts : times) {
      auto at = std::lower_bound(entries_.begin(), entries_.end(), ts,
                                 [](const auto& e, eddy::time_ms t) { return e.first < t; });
      if (at != entries_.end()) {
        seconds.push_back(std::chrono::duration<double>(now - at->second).count());
      }
    }
  }
  uint64_t emitted() const {
    std::lock_guard guard{mtx_};
    return emitted_;
  }

private:
  mutable std::mutex mtx_;
  eddy::time_ms high_ = eddy::no_time;
  std::vector<std::pair<eddy::time_ms, steady::time_point>> entries_;
  uint64_t emitted_ = 0;
};

/// Latencies in buckets 1% wide from 1 us on: percentiles within 1%, in constant memory.
class latency_histogram {
public:
  void add(const std::vector<double>& seconds) {
    std::lock_guard guard{mtx_};
    for (auto s : seconds) {
      auto us = std::max(1.0, s * 1e6);
      auto bucket = static_cast<size_t>(std::log(us) / std::log(growth));
      ++counts_[std::min(bucket, counts_.size() - 1)];
    }
    total_ += seconds.size();
  }
  /// The q-quantile in ms (0 without samples).
  double quantile_ms(double q) const {
    std::lock_guard guard{mtx_};
    if (total_ == 0) {
      return 0;
    }
    auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total_)));
    uint64_t seen = 0;
    for (size_t b = 0; b < counts_.size(); ++b) {
      seen += counts_[b];
      if (seen >= std::max<uint64_t>(rank, 1)) {
        return std::pow(growth, static_cast<double>(b) + 0.5) / 1000.0;
      }
    }
    return 0;
  }
  uint64_t samples() const {
    std::lock_guard guard{mtx_};
    return total_;
  }

private:
  static constexpr double growth = 1.01;
  mutable std::mutex mtx_;
  std::array<uint64_t, 2400> counts_{};
  uint64_t total_ = 0;
};

/// How a query's results tell the time their input entered: by event time (looked up in the
/// emission log) or, for processing-time windows, by the wall-clock time of the window's end.
enum class clock_kind { event_time, processing_time };

struct run_probe {
  emission_log log;
  latency_histogram latency;
  std::atomic<uint64_t> results{0};
  clock_kind clock = clock_kind::event_time;

  /// Counts a batch of results and adds their latencies (the sink is one instance, so
  /// the buffers are its own).
  template <class T>
  void observe(const std::vector<eddy::record<T>>& records) {
    results += records.size();
    times_.clear();
    seconds_.clear();
    for (const auto& r : records) {
      if (r.time != eddy::no_time && r.time < eddy::idle_watermark) {
        times_.push_back(r.time);
      }
    }
    if (clock == clock_kind::processing_time) {
      auto wall = nx::wall_ms();
      for (auto t : times_) {
        seconds_.push_back(static_cast<double>(std::max<eddy::time_ms>(0, wall - t)) / 1000.0);
      }
    } else {
      log.ages(times_, steady::now(), seconds_);
    }
    latency.add(seconds_);
  }

private:
  std::vector<eddy::time_ms> times_;
  std::vector<double> seconds_;
};

/// Counts the results and their latency, writes nothing (the suites' blackhole sink).
template <class T>
class blackhole_sink final : public eddy::sink_logic {
public:
  explicit blackhole_sink(std::shared_ptr<run_probe> probe)
    : probe_(std::move(probe)) {}
  void write(eddy::record_buffer& in) override {
    probe_->observe(eddy::typed<T>(in).records);
  }

private:
  std::shared_ptr<run_probe> probe_;
};

/// Writes the results as JSON lines (transactional with durable state) and counts them.
template <class T>
class results_sink final : public eddy::line_sink_logic {
public:
  results_sink(const std::filesystem::path& path, bool transactional,
               std::shared_ptr<run_probe> probe)
    : line_sink_logic(path, transactional)
    , probe_(std::move(probe)) {}
  void write(eddy::record_buffer& in) override {
    probe_->observe(eddy::typed<T>(in).records);
    for (auto& r : eddy::typed<T>(in).records) {
      writer().write_line(eddy::to_json_line(r.value));
    }
  }

private:
  std::shared_ptr<run_probe> probe_;
};

struct settings {
  std::string query;
  uint64_t events = 0;
  nx::config gen;
  uint32_t parallelism = 1;
  /// Events per second of wall time at most (0: as fast as possible).
  int64_t rate = 0;
  std::optional<std::string> output;
  bool progress = false;
  bool actors = false;
};

/// Prints a progress bar on stderr until the job completes; the first SIGINT or SIGTERM
/// stops the source (the job drains and the figures cover what it read).
void wait_with_progress(eddy::job_handle& job, const run_probe& probe, const settings& s) {
  auto begin = steady::now();
  bool stopping = false;
  while (!job.wait_for(200)) {
    if (eddy::stop_requested() && !stopping) {
      job.stop();
      stopping = true;
    }
    if (!s.progress) {
      continue;
    }
    auto done = probe.log.emitted();
    auto fraction = s.events == 0 ? 0.0 : static_cast<double>(done) / static_cast<double>(s.events);
    auto width = 30;
    auto filled = static_cast<int>(fraction * width);
    auto secs = std::chrono::duration<double>(steady::now() - begin).count();
    std::fprintf(stderr, "\r%s [%s%s] %5.1f%%  %.2f M events/s ", s.query.c_str(),
                 std::string(static_cast<size_t>(filled), '#').c_str(),
                 std::string(static_cast<size_t>(width - filled), '.').c_str(), fraction * 100,
                 secs > 0 ? static_cast<double>(done) / secs / 1e6 : 0.0);
  }
  if (s.progress) {
    std::fprintf(stderr, "\r%*s\r", 70, "");
  }
}

double cpu_seconds(const rusage& ru) {
  auto tv = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

/// What a finished run cost.
struct run_figures {
  uint64_t events = 0;
  double seconds = 0;
  double cpu = 0;
  double rss_mb = 0;
};

/// The events the job's sources read.
uint64_t source_events(const eddy::job_handle& job) {
  uint64_t events = 0;
  for (const auto& a : job.actors()) {
    if (a.kind == eddy::node_kind::source) {
      events += a.metrics->events_in;
    }
  }
  return events;
}

/// The human-readable figures of a run, then one line of key=value fields for scripts.
void print_figures(const settings& s, const run_probe& probe, const run_figures& f) {
  auto p50 = probe.latency.quantile_ms(0.5);
  auto p99 = probe.latency.quantile_ms(0.99);
  auto rate = static_cast<double>(f.events) / f.seconds;
  auto per_cpu = f.cpu > 0 ? static_cast<double>(f.events) / f.cpu : 0.0;
  std::printf("nexmark %s: %llu events in %.2f s, %llu results\n", s.query.c_str(),
              static_cast<unsigned long long>(f.events), f.seconds,
              static_cast<unsigned long long>(probe.results.load()));
  std::printf("  events/s           %12.0f\n", rate);
  std::printf("  events/CPU-second  %12.0f   (%.2f CPU-s)\n", per_cpu, f.cpu);
  std::printf("  peak RSS           %12.1f MB\n", f.rss_mb);
  if (probe.latency.samples() > 0) {
    std::printf("  latency p50 / p99  %12.2f / %.2f ms   (%llu results timed)\n", p50, p99,
                static_cast<unsigned long long>(probe.latency.samples()));
  } else {
    std::printf("  latency p50 / p99           n/a   (no result was timed: %s)\n",
                probe.results == 0 ? "none came" : "they all came at the end of the input");
  }
  auto ms = [&](double v) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3f", v);
    return probe.latency.samples() > 0 ? std::string{text} : std::string{"na"};
  };
  std::printf("query=%s events=%llu seconds=%.3f events_per_s=%.0f cpu_seconds=%.3f "
              "events_per_cpu_s=%.0f peak_rss_mb=%.1f results=%llu latency_p50_ms=%s "
              "latency_p99_ms=%s\n",
              s.query.c_str(), static_cast<unsigned long long>(f.events), f.seconds, rate, f.cpu,
              per_cpu, f.rss_mb, static_cast<unsigned long long>(probe.results.load()),
              ms(p50).c_str(), ms(p99).c_str());
}

/// Builds and runs the job, prints the figures. Returns the exit code: 0, 2 when the job
/// cannot be built or started, 1 when it failed.
int run_job(eddy::command_line& cli, eddy::job_builder& job, const settings& s,
            const run_probe& probe) {
  auto graph = job.build();
  if (!graph) {
    std::cerr << "nexmark: error: " << eddy::describe(graph.error()) << "\n";
    return 2;
  }
  eddy::install_signal_handlers();
  eddy::engine engine{cli.runtime, cli.common};
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  auto begin = steady::now();
  auto started = engine.start(std::move(*graph));
  if (!started) {
    std::cerr << "nexmark: error: " << eddy::describe(started.error()) << "\n";
    return 2;
  }
  wait_with_progress(**started, probe, s);
  if (auto err = (*started)->wait()) {
    std::cerr << "nexmark: error: " << eddy::describe(err) << "\n";
    return 1;
  }
  run_figures f;
  f.seconds = std::chrono::duration<double>(steady::now() - begin).count();
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  f.cpu = cpu_seconds(after) - cpu_seconds(before);
  f.events = source_events(**started);
  if (s.actors) {
    for (const auto& a : (*started)->actors()) {
      std::fprintf(stderr, "%s\n", eddy::actor_counters_line(a).c_str());
    }
  }
  f.rss_mb = static_cast<double>(after.ru_maxrss) / 1024.0;
  print_figures(s, probe, f);
  return 0;
}

/// Attaches the sink to the query's results, runs the job, prints the figures.
template <class T>
int run(eddy::command_line& cli, eddy::job_builder& job, eddy::stream<T> results, const settings& s,
        std::shared_ptr<run_probe> probe) {
  if (s.output) {
    auto path = *s.output;
    results.sink("results", eddy::sink_def<T>{[path, probe](const eddy::instance_context& ctx) {
                                                return std::make_unique<results_sink<T>>(
                                                  path, ctx.durable, probe);
                                              },
                                              1});
  } else {
    results.sink("results", eddy::sink_def<T>{[probe](const eddy::instance_context&) {
                                                return std::make_unique<blackhole_sink<T>>(probe);
                                              },
                                              1});
  }
  return run_job(cli, job, s, *probe);
}

using query_fn = std::function<int(eddy::command_line&, eddy::job_builder&, eddy::stream<nx::event>,
                                   const settings&, std::shared_ptr<run_probe>)>;
/// The reference computation: the number of its results, and, when `lines` is given, the
/// results as JSON lines there.
using reference_fn =
  std::function<size_t(const std::vector<nx::event>&, std::vector<std::string>* lines)>;

struct query_entry {
  std::string about;
  query_fn run;
  reference_fn reference;
};

/// A query: what it computes, how to run it, its reference computation.
template <class F, class R>
query_entry entry(std::string about, F q, R reference) {
  return {std::move(about),
          [q](eddy::command_line& cli, eddy::job_builder& job, eddy::stream<nx::event> events,
              const settings& s, std::shared_ptr<run_probe> probe) {
            return run(cli, job, q(std::move(events), nx::query_params{}), s, std::move(probe));
          },
          [reference](const std::vector<nx::event>& events, std::vector<std::string>* lines) {
            auto results = reference(events);
            for (const auto& r : results) {
              if (lines != nullptr) {
                lines->push_back(eddy::to_json_line(r));
              }
            }
            return results.size();
          }};
}

/// q12's reference: the bids of each bidder (its windows depend on processing time).
std::vector<nx::bidder_count> bidder_totals(const std::vector<nx::event>& events) {
  std::vector<nx::bidder_count> result;
  for (const auto& [bidder, n] : nx::reference::bids_per_bidder(events)) {
    result.push_back(nx::bidder_count{bidder, n, 0, 0});
  }
  return result;
}

/// Query names in their numeric order (q2 before q11).
struct by_number {
  bool operator()(const std::string& a, const std::string& b) const {
    return std::pair{a.size(), a} < std::pair{b.size(), b};
  }
};

const std::map<std::string, query_entry, by_number>& queries() {
  namespace ref = nx::reference;
  static const std::map<std::string, query_entry, by_number> all{
    {"q0", entry(
             "pass-through: every bid", [](auto e, auto p) { return nx::q0(e, p); },
             [](const auto& e) { return ref::bids(e); })},
    {"q1", entry(
             "currency conversion: bids in euros", [](auto e, auto p) { return nx::q1(e, p); },
             [](const auto& e) { return ref::q1(e); })},
    {"q2", entry(
             "selection: bids on every 123rd auction", [](auto e, auto p) { return nx::q2(e, p); },
             [](const auto& e) { return ref::q2(e); })},
    {"q3",
     entry(
       "local item suggestion: person/auction join", [](auto e, auto p) { return nx::q3(e, p); },
       [](const auto& e) { return ref::q3(e); })},
    {"q4", entry(
             "average closing price per category", [](auto e, auto p) { return nx::q4(e, p); },
             [](const auto& e) { return ref::q4(e); })},
    {"q5", entry(
             "hot items: most bids per sliding window", [](auto e, auto p) { return nx::q5(e, p); },
             [](const auto& e) { return ref::q5(e); })},
    {"q7", entry(
             "highest bid per tumbling window", [](auto e, auto p) { return nx::q7(e, p); },
             [](const auto& e) { return ref::q7(e); })},
    {"q8", entry(
             "new users: person/auction window join", [](auto e, auto p) { return nx::q8(e, p); },
             [](const auto& e) { return ref::q8(e); })},
    {"q11", entry(
              "user sessions: bids per session", [](auto e, auto p) { return nx::q11(e, p); },
              [](const auto& e) { return ref::q11(e); })},
    {"q12", entry(
              "bids per bidder per processing-time window",
              [](auto e, auto p) { return nx::q12(e, p); }, bidder_totals)},
  };
  return all;
}

std::string query_names() {
  std::string names;
  for (const auto& [name, q] : queries()) {
    names += (names.empty() ? "" : ", ") + name;
  }
  return names;
}

/// --reference: the reference computation over all events in memory (generated first), its
/// results to --output if given, and what it cost: the benchmark's baseline.
int write_reference(const query_entry& q, const settings& s) {
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  auto begin = steady::now();
  nx::generator gen{s.gen};
  std::vector<nx::event> events;
  events.reserve(s.events);
  for (uint64_t i = 0; i < s.events; ++i) {
    events.push_back(gen.at(i));
  }
  auto results = q.reference(events, nullptr);
  auto seconds = std::chrono::duration<double>(steady::now() - begin).count();
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  auto cpu = cpu_seconds(after) - cpu_seconds(before);
  if (s.output) {
    std::vector<std::string> lines;
    q.reference(events, &lines);
    eddy::line_writer out{*s.output};
    for (const auto& line : lines) {
      out.write_line(line);
    }
    out.flush();
  }
  std::printf("query=%s-reference events=%llu seconds=%.3f events_per_s=%.0f cpu_seconds=%.3f "
              "events_per_cpu_s=%.0f peak_rss_mb=%.1f results=%zu\n",
              s.query.c_str(), static_cast<unsigned long long>(s.events), seconds,
              static_cast<double>(s.events) / seconds, cpu,
              cpu > 0 ? static_cast<double>(s.events) / cpu : 0.0,
              static_cast<double>(after.ru_maxrss) / 1024.0, results);
  return 0;
}

void declare_options(eddy::command_line& cli) {
  namespace po = boost::program_options;
  auto add = cli.app_options().add_options();
  add("query", po::value<std::string>(), "q0, q1, q2, q3, q4, q5, q7, q8, q11 or q12 (required)");
  add("list", "list the queries and exit");
  add("events", po::value<int64_t>()->default_value(10'000'000), "events to generate");
  add("seed", po::value<int64_t>()->default_value(1), "the generator's seed");
  add("event-rate", po::value<int64_t>()->default_value(10'000),
      "events per second of event time (how fast the auction's clock runs)");
  add("out-of-order-ms", po::value<int64_t>()->default_value(50),
      "event timestamps lag by up to this (the watermark allows as much)");
  add("rate", po::value<int64_t>()->default_value(0),
      "events per second of wall time at most (0: as fast as possible)");
  add("parallelism", po::value<int64_t>()->default_value(1), "source instances");
  add("output", po::value<std::string>(),
      "write the results as JSON lines here (default: count them only)");
  add("resume", "keep the state of an earlier run of the query under --data-dir and resume "
                "where it committed (default: start afresh)");
  add("actors", "after the run, print every actor's counters (events, batches, commits) on "
                "stderr");
  add("no-progress", "no progress bar (there is none when stderr is not a terminal)");
  add("reference", "instead of the job, run the query's straightforward computation over all "
                   "events in memory (the benchmark's baseline) and write its results to "
                   "--output if given (q4: the last average of each category; q12: the bids of "
                   "each bidder)");
}

/// Reads the generator's and the run's flags into `s`; an exit code after a bad one.
std::optional<int> read_settings(const eddy::command_line& cli, settings& s) {
  const auto& vm = cli.values();
  auto events = vm["events"].as<int64_t>();
  auto seed = vm["seed"].as<int64_t>();
  auto event_rate = vm["event-rate"].as<int64_t>();
  auto lag = vm["out-of-order-ms"].as<int64_t>();
  auto rate = vm["rate"].as<int64_t>();
  auto parallelism = vm["parallelism"].as<int64_t>();
  if (events < 1 || event_rate < 1 || lag < 0 || rate < 0 || parallelism < 1 || parallelism > 64 ||
      seed < 0) {
    return cli.usage_error("--events and --event-rate must be positive, --out-of-order-ms, "
                           "--rate and --seed not negative, --parallelism in 1..64");
  }
  s.events = static_cast<uint64_t>(events);
  s.gen.seed = static_cast<uint64_t>(seed);
  s.gen.events_per_second = static_cast<uint64_t>(event_rate);
  s.gen.out_of_order_ms = lag;
  s.parallelism = static_cast<uint32_t>(parallelism);
  s.rate = rate;
  if (vm.count("output")) {
    s.output = vm["output"].as<std::string>();
  }
  s.actors = vm.count("actors") > 0;
  s.progress = !vm.count("no-progress") && isatty(STDERR_FILENO) != 0;
  return std::nullopt;
}

/// The runtime options the benchmark sets itself: the source rate, fewer partitions, and a
/// fresh state unless --resume.
void adjust_runtime(eddy::command_line& cli, const settings& s) {
  const auto& vm = cli.values();
  if (s.rate > 0) {
    cli.runtime.source_rate =
      static_cast<uint64_t>(std::max<int64_t>(1, s.rate / static_cast<int64_t>(s.parallelism)));
  }
  if (vm["job.partitions"].defaulted()) {
    // One journal per partition: a few per core rather than the general default.
    cli.runtime.partitions = 4;
  }
  cli.runtime.state.reset = !vm.count("resume");
}

/// The generated events with their event time; each poll notes in the probe's emission log
/// the highest event time it sent.
eddy::stream<nx::event> add_source(eddy::job_builder& job, const settings& s,
                                   std::shared_ptr<run_probe> probe) {
  nx::generator gen{s.gen};
  return job
    .source("events", eddy::generator_source(
                        s.events, [gen](uint64_t i) { return gen.at(i); },
                        [probe](const std::vector<eddy::record<nx::event>>& records, size_t first) {
                          if (records.size() > first) {
                            auto high = eddy::no_time;
                            for (size_t i = first; i < records.size(); ++i) {
                              high = std::max(high, std::visit([](const auto& x) { return x.ts; },
                                                               records[i].value));
                            }
                            probe->log.note(high, records.size() - first);
                          }
                        }))
    .parallelism(s.parallelism)
    .event_time(
      [](const nx::event& e) { return std::visit([](const auto& x) { return x.ts; }, e); },
      eddy::bounded_out_of_orderness(s.gen.out_of_order_ms));
}

} // namespace

int main(int argc, char** argv) {
  eddy::command_line cli{"nexmark", "the Nexmark benchmark: one query over generated auction "
                                    "events, with its throughput, CPU cost, memory and latency"};
  declare_options(cli);
  if (auto code = cli.parse(argc, argv)) {
    return *code;
  }
  const auto& vm = cli.values();
  if (vm.count("list")) {
    for (const auto& [name, q] : queries()) {
      std::printf("%-4s %s\n", name.c_str(), q.about.c_str());
    }
    return 0;
  }
  if (!vm.count("query")) {
    return cli.usage_error("needs --query (one of " + query_names() + ")");
  }
  settings s;
  s.query = vm["query"].as<std::string>();
  auto q = queries().find(s.query);
  if (q == queries().end()) {
    return cli.usage_error("unknown query '" + s.query + "' (one of " + query_names() + ")");
  }
  if (auto code = read_settings(cli, s)) {
    return *code;
  }
  adjust_runtime(cli, s);
  if (vm.count("reference")) {
    return write_reference(q->second, s);
  }
  auto probe = std::make_shared<run_probe>();
  probe->clock = s.query == "q12" ? clock_kind::processing_time : clock_kind::event_time;
  eddy::job_builder job{"nexmark-" + s.query};
  job.partitions(cli.runtime.partitions);
  auto source = add_source(job, s, probe);
  return q->second.run(cli, job, source, s, probe);
}
