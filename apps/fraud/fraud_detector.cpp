// The fraud detector: card transactions as JSON lines -> keyed by card -> three rules over the
// card's durable history (velocity, amount, impossible travel) -> alerts, rejections and
// unblocks as JSON lines. A flagged card is blocked until an unblock command for it arrives.
// With --input http the transactions and unblocks come over HTTP instead (fraud_http.hpp);
// both modes run the same checks on the same card state (card_state.hpp).

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>

#include "card_state.hpp"
#include "eddy/actors/engine.hpp"
#include "eddy/eddy.hpp"
#include "eddy/service/serve.hpp"
#include "fraud_http.hpp"
#include "rules.hpp"

namespace {

using fraud::card_context;
using output = eddy::collector<fraud::output_record>;

/// The keyed function: one input line of one card (or an invalid line, keyed "").
void check_line(const fraud::input_line& line, const fraud::thresholds& limits, card_context& ctx,
                output& out) {
  auto parsed = fraud::classify(line.doc);
  if (auto* t = std::get_if<fraud::transaction>(&parsed)) {
    for (auto& record : fraud::check_transaction(*t, limits, ctx).records) {
      out.emit(std::move(record));
    }
  } else if (auto* c = std::get_if<fraud::unblock_command>(&parsed)) {
    out.emit(fraud::unblock(*c, ctx));
  } else {
    out.emit(fraud::rejected_record(std::get<fraud::invalid_input>(parsed)));
  }
}

/// What the output file holds: records by kind and alerts by rule.
struct output_totals {
  std::map<std::string, uint64_t> kinds;
  std::map<std::string, uint64_t> rules;
};

/// Counts the whole output file rather than what this run emitted: after a resume the file
/// also holds the output of the earlier runs, and after a restart the sink rewrote its tail.
output_totals count_output(const std::string& path) {
  output_totals totals;
  std::ifstream in{path};
  std::string line;
  while (std::getline(in, line)) {
    auto doc = nlohmann::json::parse(line, nullptr, false);
    if (!doc.is_object()) {
      continue;
    }
    ++totals.kinds[doc.value("kind", "?")];
    if (doc.contains("rule")) {
      ++totals.rules[doc.value("rule", "?")];
    }
  }
  return totals;
}

unsigned long long count_of(const std::map<std::string, uint64_t>& counts, const char* name) {
  auto i = counts.find(name);
  return i == counts.end() ? 0 : i->second;
}

/// Prints what the run did, the summary line last.
void print_summary(const eddy::job_handle& handle, const eddy::command_line& cli,
                   const std::string& output_path, double seconds) {
  uint64_t records = 0;
  uint64_t seen_before = 0;
  uint64_t resumed_after = 0;
  for (const auto& a : handle.actors()) {
    if (a.kind == eddy::node_kind::source) {
      resumed_after = a.metrics->resumed_after;
    } else if (a.kind == eddy::node_kind::keyed) {
      records += a.metrics->events_in;
      seen_before += a.metrics->duplicates_dropped;
    }
  }
  records -= std::min(records, seen_before);
  if (handle.restarts() == 0 && (resumed_after > 0 || seen_before > 0)) {
    std::printf("resumed from the state in %s after input line %llu; %llu replayed records were "
                "checked before and skipped (--state.reset starts over)\n",
                (cli.common.data_dir / "fraud").c_str(),
                static_cast<unsigned long long>(resumed_after),
                static_cast<unsigned long long>(seen_before));
  }
  if (auto malformed = handle.dead_letters().count(); malformed > 0) {
    std::printf("%llu malformed lines went to %s\n", static_cast<unsigned long long>(malformed),
                handle.dead_letters().path().c_str());
  }
  if (handle.restarts() > 0) {
    std::printf("%llu restarts: the record count includes re-checked records\n",
                static_cast<unsigned long long>(handle.restarts()));
  }
  auto totals = count_output(output_path);
  std::printf("%llu records checked in %.3f s; %s holds %llu alerts (velocity %llu, amount %llu, "
              "travel %llu), %llu rejected, %llu unblocked\n",
              static_cast<unsigned long long>(records), seconds, output_path.c_str(),
              count_of(totals.kinds, "alert"), count_of(totals.rules, "velocity"),
              count_of(totals.rules, "amount"), count_of(totals.rules, "travel"),
              count_of(totals.kinds, "rejected"), count_of(totals.kinds, "unblocked"));
}

/// Reads the `--fraud.*` options; the message names a bad one.
std::optional<std::string> read_thresholds(const boost::program_options::variables_map& vm,
                                           fraud::thresholds& limits) {
  limits.velocity_count = vm["fraud.velocity-count"].as<int64_t>();
  limits.velocity_window_ms = vm["fraud.velocity-window-ms"].as<int64_t>();
  limits.amount_factor = vm["fraud.amount-factor"].as<double>();
  limits.amount_min_history = vm["fraud.amount-min-history"].as<int64_t>();
  limits.travel_kmh = vm["fraud.travel-kmh"].as<double>();
  if (auto problem = limits.check(); !problem.empty()) {
    return problem;
  }
  return std::nullopt;
}

void add_options(eddy::command_line& cli) {
  namespace po = boost::program_options;
  fraud::thresholds defaults;
  cli.app_options().add_options()(
    "input", po::value<std::string>(),
    "JSONL transactions {\"tx\",\"card\",\"amount\",\"merchant\",\"country\",\"ts\"} and "
    "commands {\"cmd\":\"unblock\",\"card\"} (required); - reads stdin; http serves "
    "POST /transactions, POST /cards/{card}/unblock and GET /cards/{card} on --http.port");
  // --output, and the --http.* options of --input http.
  eddy::service::add_service_options(cli, "JSONL file of the alerts, rejections and unblocks "
                                          "(required)");
  cli.app_options().add_options()(
    "fraud.velocity-count", po::value<int64_t>()->default_value(defaults.velocity_count),
    "more transactions of a card than this within the window flag it")(
    "fraud.velocity-window-ms", po::value<int64_t>()->default_value(defaults.velocity_window_ms),
    "the window of the velocity rule, in ms of event time")(
    "fraud.amount-factor", po::value<double>()->default_value(defaults.amount_factor),
    "an amount above this times the card's mean amount flags it")(
    "fraud.amount-min-history", po::value<int64_t>()->default_value(defaults.amount_min_history),
    "transactions a card needs before the amount rule applies")(
    "fraud.travel-kmh", po::value<double>()->default_value(defaults.travel_kmh),
    "a change of country faster than this (km/h between centroids) flags the card");
  cli.positional().add("input", 1);
}

} // namespace

int main(int argc, char** argv) {
  eddy::command_line cli{"fraud-detector",
                         "flag card transactions by velocity, amount and impossible travel"};
  add_options(cli);
  if (auto code = cli.parse(argc, argv)) {
    return *code;
  }
  const auto& vm = cli.values();
  if (!vm.count("input")) {
    return cli.usage_error("missing --input FILE (or - for stdin)");
  }
  if (!vm.count("output")) {
    return cli.usage_error("missing --output FILE");
  }
  fraud::thresholds limits;
  if (auto problem = read_thresholds(vm, limits)) {
    return cli.usage_error(*problem);
  }
  auto input = vm["input"].as<std::string>();
  auto output_path = vm["output"].as<std::string>();
  if (input == "http") {
    return fraud::serve_http(cli, limits, output_path);
  }

  eddy::job_builder job{"fraud"};
  job.partitions(cli.runtime.partitions);
  auto keyed =
    job
      .source("transactions", input == "-" ? eddy::stdin_source<fraud::input_line>()
                                           : eddy::jsonl_source<fraud::input_line>(input))
      .key_by([](const fraud::input_line& line) { return fraud::card_key(line); });
  fraud::declare_card_state(keyed)
    .process<fraud::output_record>("check",
                                   [limits](const fraud::input_line& line, auto& ctx, auto& out) {
                                     check_line(line, limits, ctx, out);
                                   })
    .sink("output", eddy::jsonl_sink<fraud::output_record>(output_path));
  auto graph = job.build();
  if (!graph) {
    std::cerr << "fraud-detector: error: " << eddy::describe(graph.error()) << "\n";
    return 2;
  }

  // Before the start, which opens a journal per partition: a SIGINT meanwhile stops the job
  // as soon as it runs.
  eddy::install_signal_handlers();
  eddy::engine engine{cli.runtime, cli.common};
  auto begin = std::chrono::steady_clock::now();
  auto started = engine.start(std::move(*graph));
  if (!started) {
    std::cerr << "fraud-detector: error: " << eddy::describe(started.error()) << "\n";
    return 2;
  }
  auto handle = *started;
  if (auto err = handle->wait_stopping_on_signal()) {
    std::cerr << "fraud-detector: error: " << eddy::describe(err) << "\n";
    return 1;
  }
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  print_summary(*handle, cli, output_path, seconds);
  return 0;
}
