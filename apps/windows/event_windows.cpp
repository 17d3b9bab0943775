// Windowed sums over event time: JSON lines {"key": "...", "ts": epoch_ms, "value": n} ->
// event time with bounded out-of-orderness -> key_by key -> tumbling, sliding or session
// windows with a sum -> JSON lines of window results, updates and late elements.
//
//   build/bin/event-windows readings.jsonl --output sums.jsonl --window sliding:60000:10000
//     --bound-ms 5000 --lateness-ms 10000

#include <iostream>
#include <sstream>

#include "eddy/actors/engine.hpp"
#include "eddy/eddy.hpp"

namespace {

struct reading {
  std::string key;
  int64_t ts = 0;
  int64_t value = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(reading, key, ts, value)

/// "tumbling:SIZE", "sliding:SIZE:SLIDE" or "session:GAP" (ms); nullopt when it is none.
std::optional<eddy::window_assigner> parse_window(const std::string& text) {
  std::vector<int64_t> n;
  std::string kind = text.substr(0, text.find(':'));
  std::stringstream rest{text.substr(std::min(text.size(), kind.size() + 1))};
  for (std::string part; std::getline(rest, part, ':');) {
    try {
      size_t used = 0;
      n.push_back(std::stoll(part, &used));
      if (used != part.size()) {
        return std::nullopt;
      }
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  try {
    if (kind == "tumbling" && n.size() == 1) {
      return eddy::tumbling(n[0]);
    }
    if (kind == "sliding" && n.size() == 2) {
      return eddy::sliding(n[0], n[1]);
    }
    if (kind == "session" && n.size() == 1) {
      return eddy::session(n[0]);
    }
  } catch (const std::invalid_argument&) {
  }
  return std::nullopt;
}

/// A pair of an interval join.
struct pair {
  std::string key;
  int64_t left_ts = 0;
  int64_t right_ts = 0;
  int64_t left_value = 0;
  int64_t right_value = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(pair, key, left_ts, right_ts, left_value, right_value)

/// Starts `graph` and waits for it; the exit code.
int run_graph(eddy::command_line& cli, caf::expected<eddy::job_graph> graph) {
  if (!graph) {
    std::cerr << "event-windows: error: " << eddy::describe(graph.error()) << "\n";
    return 2;
  }
  eddy::install_signal_handlers();
  eddy::engine engine{cli.runtime, cli.common};
  auto started = engine.start(std::move(*graph));
  if (!started) {
    std::cerr << "event-windows: error: " << eddy::describe(started.error()) << "\n";
    return 2;
  }
  if (auto err = (*started)->wait_stopping_on_signal()) {
    std::cerr << "event-windows: error: " << eddy::describe(err) << "\n";
    return 1;
  }
  return 0;
}

/// --join: the readings of `left` and `right` paired by key within the bounds.
int run_join(eddy::command_line& cli, const std::string& left, const std::string& right,
             int64_t bound) {
  const auto& vm = cli.values();
  auto lower = vm["join-lower-ms"].as<int64_t>();
  auto upper = vm["join-upper-ms"].as<int64_t>();
  if (lower > upper) {
    return cli.usage_error("--join-lower-ms must not be above --join-upper-ms");
  }
  eddy::job_builder job{"event-join"};
  job.partitions(cli.runtime.partitions);
  auto ts = [](const reading& r) {
    return r.ts;
  };
  auto a = job.source("left", eddy::jsonl_source<reading>(left))
             .event_time(ts, eddy::bounded_out_of_orderness(bound));
  auto b = job.source("right", eddy::jsonl_source<reading>(right))
             .event_time(ts, eddy::bounded_out_of_orderness(bound));
  eddy::connect(a, b, "both")
    .key_by(
      [](const eddy::either<reading, reading>& e) { return e.is_left ? e.left.key : e.right.key; })
    .interval_join<pair>("join", lower, upper,
                         [](const reading& l, const reading& r) {
                           return pair{l.key, l.ts, r.ts, l.value, r.value};
                         })
    .sink("output", eddy::jsonl_sink<pair>(vm["output"].as<std::string>()));
  return run_graph(cli, job.build());
}

} // namespace

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  eddy::command_line cli{"event-windows", "windowed sums over event time of JSONL readings"};
  cli.app_options().add_options()("input", po::value<std::string>(),
                                  "JSONL {\"key\",\"ts\",\"value\"} (required); - reads stdin")(
    "output", po::value<std::string>(), "JSONL window results (required)")(
    "window", po::value<std::string>()->default_value("tumbling:60000"),
    "tumbling:SIZE, sliding:SIZE:SLIDE or session:GAP, in ms")(
    "bound-ms", po::value<int64_t>()->default_value(5000),
    "how late a reading may come after a newer one (out-of-orderness)")(
    "lateness-ms", po::value<int64_t>()->default_value(0),
    "allowed lateness: a fired window takes later readings for this long (updates)")(
    "join", po::value<std::string>(),
    "instead of windows, an interval join with the readings of this second file: every pair "
    "of one key with right.ts - left.ts in [--join-lower-ms, --join-upper-ms]")(
    "join-lower-ms", po::value<int64_t>()->default_value(-1000), "the join's lower bound")(
    "join-upper-ms", po::value<int64_t>()->default_value(1000), "the join's upper bound");
  cli.positional().add("input", 1);
  if (auto code = cli.parse(argc, argv)) {
    return *code;
  }
  const auto& vm = cli.values();
  if (!vm.count("input") || !vm.count("output")) {
    return cli.usage_error("needs an input file and --output FILE");
  }
  auto assigner = parse_window(vm["window"].as<std::string>());
  if (!assigner) {
    return cli.usage_error("--window must be tumbling:SIZE, sliding:SIZE:SLIDE (SLIDE <= SIZE) "
                           "or session:GAP with positive ms");
  }
  auto bound = vm["bound-ms"].as<int64_t>();
  auto lateness = vm["lateness-ms"].as<int64_t>();
  if (bound < 0 || lateness < 0) {
    return cli.usage_error("--bound-ms and --lateness-ms must not be negative");
  }
  auto input = vm["input"].as<std::string>();
  if (vm.count("join")) {
    return run_join(cli, input, vm["join"].as<std::string>(), bound);
  }
  using output = eddy::window_output<std::string, reading, int64_t>;
  auto sum = eddy::make_aggregate([] { return int64_t{0}; },
                                  [](int64_t& acc, const reading& r) { acc += r.value; },
                                  [](int64_t& into, const int64_t& from) { into += from; },
                                  [](const int64_t& acc) { return acc; });
  eddy::job_builder job{"event-windows"};
  job.partitions(cli.runtime.partitions);
  job
    .source("readings",
            input == "-" ? eddy::stdin_source<reading>() : eddy::jsonl_source<reading>(input))
    .event_time([](const reading& r) { return r.ts; }, eddy::bounded_out_of_orderness(bound))
    .key_by([](const reading& r) { return r.key; })
    .window("windows", *assigner, sum, lateness)
    .sink("output", eddy::jsonl_sink<output>(vm["output"].as<std::string>()));
  return run_graph(cli, job.build());
}
