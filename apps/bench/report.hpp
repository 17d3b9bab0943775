#pragma once

// The measurements of eddy-bench's parent and what it reports of them.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cases.hpp"
#include "eddy/config/options.hpp"

namespace bench {

/// What a case reports: lines of the human-readable table and one line for scripts.
struct case_report {
  std::vector<std::string> table;
  std::string line;
};

/// The throughput cases: every variant of `c` once per run, in an order that rotates by one
/// each run so that a busy phase of the machine hits all of them; medians and ratios.
std::optional<case_report> measure_throughput(const case_info& c, uint64_t events, int runs,
                                              const eddy::command_line& cli);

/// The restart case: populates `keys` keys once (not timed), then restarts the same job
/// --runs times, each in a fresh child on the same data dir, each with one new event (see
/// `restart_count` in engine_run.cpp), and reports the median time to that event and the
/// peak RSS.
std::optional<case_report> measure_restart(const case_info& c, uint64_t keys, int runs,
                                           const eddy::command_line& cli);

/// Prints the configuration, the table of every case, then the script lines, on stdout.
void print_report(const std::vector<case_report>& reports, int runs, const eddy::command_line& cli);

} // namespace bench
