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
//
// The files: cases.cpp (the case table), engine_run.cpp (each case's job on the engine),
// child.cpp (a `--run-one` child), runner.cpp (the parent's child processes), report.cpp
// (medians, ratios and the printed report); this file only parses and dispatches.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cases.hpp"
#include "child.hpp"
#include "eddy/config/options.hpp"
#include "report.hpp"

namespace {

/// The command line without the hidden flags that mark a child: `--run-one CASE VARIANT`
/// (and `--run-index R` of the restart case).
struct split_args {
  std::vector<const char*> args;
  std::optional<std::pair<std::string, std::string>> run_one;
  uint32_t run_index = 0;
};

split_args take_child_flags(int argc, char** argv) {
  split_args result;
  for (int i = 0; i < argc; ++i) {
    if (i > 0 && std::strcmp(argv[i], "--run-one") == 0 && i + 2 < argc) {
      result.run_one.emplace(argv[i + 1], argv[i + 2]);
      i += 2;
    } else if (i > 0 && std::strcmp(argv[i], "--run-index") == 0 && i + 1 < argc) {
      result.run_index = static_cast<uint32_t>(std::strtoul(argv[i + 1], nullptr, 10));
      i += 1;
    } else {
      result.args.push_back(argv[i]);
    }
  }
  return result;
}

void declare_options(eddy::command_line& cli) {
  namespace po = boost::program_options;
  auto add = cli.app_options().add_options();
  add("case", po::value<std::vector<std::string>>(),
      "cases to run (positional; default: all, see --list)");
  add("events", po::value<int64_t>()->default_value(0),
      "events per run (0: the case's default, 100M stateless, 20M keyed_count, 2M "
      "durable_keyed_count; restart: keys populated, 10M)");
  add("runs", po::value<int64_t>()->default_value(3), "runs per variant; the median is reported");
  add("list", "print the cases and exit");
  cli.positional().add("case", -1);
}

int unknown_case(const eddy::command_line& cli, const std::string& name) {
  return cli.usage_error("unknown case '" + name +
                         "' (cases: " + bench::names_of(bench::all_cases()) + ")");
}

/// The cases named on the command line, or every case; an exit code after an unknown one.
std::optional<int> select_cases(const eddy::command_line& cli,
                                std::vector<const bench::case_info*>& selected) {
  const auto& vm = cli.values();
  if (!vm.count("case")) {
    for (const auto& c : bench::all_cases()) {
      selected.push_back(&c);
    }
    return std::nullopt;
  }
  for (const auto& name : vm["case"].as<std::vector<std::string>>()) {
    auto c = bench::find_case(name);
    if (c == nullptr) {
      return unknown_case(cli, name);
    }
    selected.push_back(c);
  }
  return std::nullopt;
}

/// --events, or the case's default when it is 0.
uint64_t events_of(const bench::case_info& c, int64_t events) {
  return events > 0 ? static_cast<uint64_t>(events) : c.default_events;
}

/// A child: runs variant `variant` of case `which` once.
int run_variant(const eddy::command_line& cli, const std::string& which, const std::string& variant,
                int64_t events, uint32_t run_index) {
  auto c = bench::find_case(which);
  if (c == nullptr) {
    return unknown_case(cli, which);
  }
  auto v = bench::find_variant(*c, variant);
  if (v == nullptr) {
    return cli.usage_error("unknown variant '" + variant + "' of " + which +
                           "; allowed: " + bench::names_of(c->variants));
  }
  return bench::run_one(*c, *v, events_of(*c, events), run_index, cli);
}

/// The parent: measures every selected case, then prints the report.
int run_cases(const std::vector<const bench::case_info*>& selected, int64_t events, int runs,
              const eddy::command_line& cli) {
  std::vector<bench::case_report> reports;
  for (auto c : selected) {
    auto r = c->job == bench::work::restart
               ? bench::measure_restart(*c, events_of(*c, events), runs, cli)
               : bench::measure_throughput(*c, events_of(*c, events), runs, cli);
    if (!r) {
      return 1;
    }
    reports.push_back(std::move(*r));
  }
  bench::print_report(reports, runs, cli);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  auto split = take_child_flags(argc, argv);
  eddy::command_line cli{"eddy-bench", "throughput and peak RSS of the engine beside "
                                       "hand-written baselines; runs every case by default"};
  declare_options(cli);
  if (auto code = cli.parse(static_cast<int>(split.args.size()), split.args.data())) {
    return *code;
  }
  const auto& vm = cli.values();
  if (vm.count("list")) {
    for (const auto& c : bench::all_cases()) {
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
  std::vector<const bench::case_info*> selected;
  if (auto code = select_cases(cli, selected)) {
    return *code;
  }
  if (split.run_one) {
    const auto& [which, variant] = *split.run_one;
    return run_variant(cli, which, variant, events, split.run_index);
  }
  return run_cases(selected, events, static_cast<int>(runs), cli);
}
