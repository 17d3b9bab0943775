// The measurements and reports of eddy-bench (see report.hpp).

#include "report.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <sstream>
#include <thread>

#include "runner.hpp"

namespace bench {
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string format(const char* fmt, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof(buf), fmt, args...);
  return buf;
}

struct variant_summary {
  const variant_info* info;
  std::vector<double> rates;
  std::vector<double> faults;
  /// The latency case: each run's median and 99th percentile latency (ms).
  std::vector<double> p50;
  std::vector<double> p99;
  double peak_rss_mb = 0;
};

/// Run `run` (from 1) of every variant, the first one rotating by one each run; the fields
/// of each variant at its index in `vs`.
std::optional<std::vector<fields>> run_round(const case_info& c,
                                             const std::vector<variant_summary>& vs, int run,
                                             uint64_t events, const eddy::command_line& cli) {
  auto n = vs.size();
  std::vector<fields> got(n);
  for (size_t j = 0; j < n; ++j) {
    auto k = (static_cast<size_t>(run - 1) + j) % n;
    auto f = run_fresh(c, *vs[k].info, events, cli);
    if (!f) {
      return std::nullopt;
    }
    got[k] = std::move(*f);
  }
  return got;
}

/// All variants must have done the same work; false (after printing how) when they did not.
bool same_work(const case_info& c, const std::vector<variant_summary>& vs,
               const std::vector<fields>& got) {
  for (size_t k = 1; k < vs.size(); ++k) {
    // Keys held in memory: after a restart keys are loaded lazily, so fewer are held.
    // Variants with jobs of their own (event_time) share only the input.
    bool same_job = vs[k].info->job.value_or(c.job) == vs[0].info->job.value_or(c.job);
    bool keys_differ =
      got[k].at("keys") != got[0].at("keys") && vs[k].info->failures == 0 && same_job;
    if (got[k].at("events") != got[0].at("events") || keys_differ ||
        (c.job == work::stateless && got[k].at("out") != got[0].at("out"))) {
      std::cerr << "eddy-bench: error: variants disagree on " << c.name << ": " << vs[0].info->name
                << " events=" << got[0].at("events") << " out=" << got[0].at("out")
                << " keys=" << got[0].at("keys") << ", " << vs[k].info->name
                << " events=" << got[k].at("events") << " out=" << got[k].at("out")
                << " keys=" << got[k].at("keys") << "\n";
      return false;
    }
  }
  return true;
}

/// Adds the fields of one run to the summaries and prints the run's progress line.
void note_round(const case_info& c, int run, int runs, std::vector<variant_summary>& vs,
                const std::vector<fields>& got) {
  std::string progress = format("  %s run %d/%d:", c.name, run, runs);
  for (size_t k = 0; k < vs.size(); ++k) {
    auto rate = number(got[k], "events") / number(got[k], "seconds");
    auto mb = number(got[k], "peak_rss_mb");
    vs[k].rates.push_back(rate);
    vs[k].faults.push_back(number(got[k], "minor_faults"));
    vs[k].peak_rss_mb = std::max(vs[k].peak_rss_mb, mb);
    progress +=
      format("%s %s %.2f M/s (%.1f MB)", k == 0 ? "" : ",", vs[k].info->name, rate / 1e6, mb);
    if (auto i = got[k].find("latency_p50_ms");
        i != got[k].end() && number(got[k], i->first) >= 0) {
      vs[k].p50.push_back(number(got[k], "latency_p50_ms"));
      vs[k].p99.push_back(number(got[k], "latency_p99_ms"));
      progress += format(" p50 %.1f ms p99 %.1f ms", vs[k].p50.back(), vs[k].p99.back());
    }
  }
  std::cerr << progress << "\n";
}

/// The ratios of `c.ratios`, of the variants' median rates.
std::vector<double> median_ratios(const case_info& c, const std::vector<variant_summary>& vs) {
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
  return ratios;
}

/// The line for scripts of a throughput case.
std::string throughput_line(const case_info& c, uint64_t events, int runs,
                            const std::vector<variant_summary>& vs,
                            const std::vector<double>& ratios) {
  // The first variant's fields are unprefixed ("events_per_s"), the others' carry its name
  // ("baseline_events_per_s").
  auto field = [&](size_t k, const char* what) {
    std::string text = " ";
    if (k > 0) {
      text += vs[k].info->name;
      text += '_';
    }
    return text + what + "=";
  };
  std::ostringstream line;
  line << "case=" << c.name << field(0, "events_per_s") << format("%.0f", median(vs[0].rates));
  for (size_t i = 0; i < ratios.size(); ++i) {
    line << " " << c.ratios[i].name << "=" << format("%.3f", ratios[i]);
  }
  line << field(0, "peak_rss_mb") << format("%.1f", vs[0].peak_rss_mb);
  for (size_t k = 1; k < vs.size(); ++k) {
    line << field(k, "events_per_s") << format("%.0f", median(vs[k].rates))
         << field(k, "peak_rss_mb") << format("%.1f", vs[k].peak_rss_mb);
  }
  line << " events=" << events << " runs=" << runs;
  for (size_t k = 0; k < vs.size(); ++k) {
    line << field(k, "minor_faults") << format("%.0f", median(vs[k].faults));
  }
  for (size_t k = 0; k < vs.size(); ++k) {
    if (!vs[k].p50.empty()) {
      line << field(k, "latency_p50_ms") << format("%.2f", median(vs[k].p50))
           << field(k, "latency_p99_ms") << format("%.2f", median(vs[k].p99));
    }
  }
  return line.str();
}

/// The table rows of a throughput case: one per variant, one per ratio.
std::vector<std::string> throughput_table(const case_info& c, uint64_t events,
                                          const std::vector<variant_summary>& vs,
                                          const std::vector<double>& ratios) {
  std::vector<std::string> table;
  for (const auto& v : vs) {
    auto row = format("%-20s %-14s %12llu %14.0f %10.1f %12.0f", c.name, v.info->name,
                      static_cast<unsigned long long>(events), median(v.rates), v.peak_rss_mb,
                      median(v.faults));
    if (!v.p50.empty()) {
      row += format("   latency p50 %.2f ms, p99 %.2f ms", median(v.p50), median(v.p99));
    }
    table.push_back(row);
  }
  for (size_t i = 0; i < ratios.size(); ++i) {
    const auto& q = c.ratios[i];
    if (q.target > 0) {
      table.push_back(format("%-20s %s / %s = %.3f (target >= %.1f: %s)", "", q.numerator,
                             q.denominator, ratios[i], q.target,
                             ratios[i] >= q.target ? "met" : "not met"));
    } else {
      table.push_back(format("%-20s %s / %s = %.3f", "", q.numerator, q.denominator, ratios[i]));
    }
  }
  return table;
}

} // namespace

std::optional<case_report> measure_throughput(const case_info& c, uint64_t events, int runs,
                                              const eddy::command_line& cli) {
  std::vector<variant_summary> vs;
  for (const auto& v : c.variants) {
    vs.push_back({&v, {}, {}, {}, {}, 0});
  }
  for (int run = 1; run <= runs; ++run) {
    auto got = run_round(c, vs, run, events, cli);
    if (!got || !same_work(c, vs, *got)) {
      return std::nullopt;
    }
    note_round(c, run, runs, vs, *got);
  }
  auto ratios = median_ratios(c, vs);
  case_report r;
  r.line = throughput_line(c, events, runs, vs, ratios);
  r.table = throughput_table(c, events, vs, ratios);
  return r;
}

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

} // namespace bench
