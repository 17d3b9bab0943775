// The child side of eddy-bench: one variant run in its own process (see child.hpp).

#include "child.hpp"

#include <cstdio>
#include <exception>
#include <iostream>
#include <optional>
#include <string>

#include <sys/resource.h>

#include "caf_baseline.hpp"
#include "engine_run.hpp"
#include "sqlite_baseline.hpp"

namespace bench {
namespace {

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

} // namespace

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
              "minor_faults=%ld buffered_peak=%llu first_out_seconds=%.6f latency_p50_ms=%.3f "
              "latency_p99_ms=%.3f\n",
              v.name, c.name, static_cast<unsigned long long>(r->events), r->seconds,
              static_cast<unsigned long long>(r->out), static_cast<unsigned long long>(r->keys),
              static_cast<double>(ru.ru_maxrss) / 1024.0, ru.ru_minflt,
              static_cast<unsigned long long>(r->buffered_peak), r->first_out_seconds,
              r->latency_p50_ms, r->latency_p99_ms);
  std::fflush(stdout);
  return 0;
}

} // namespace bench
