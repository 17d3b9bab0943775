#include "eddy/config/options.hpp"

#include <fstream>
#include <iostream>

#include "eddy/core/error.hpp"
#include "eddy/core/log.hpp"
#include "eddy/graph/job_graph.hpp"

namespace po = boost::program_options;

namespace eddy {

namespace {

caf::error config_error(std::string message) {
  return make_error(errc::invalid_config, std::move(message));
}

/// Reads a numeric option as int64 and checks its range, so that "-1" is rejected instead
/// of wrapping around in an unsigned type.
template <class T>
caf::error take(const po::variables_map& vm, const char* name, int64_t lo, int64_t hi, T& out) {
  if (!vm.count(name)) {
    return {};
  }
  auto v = vm[name].as<int64_t>();
  if (v < lo || v > hi) {
    return config_error("--" + std::string{name} + " is " + std::to_string(v) +
                        "; allowed: " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  out = static_cast<T>(v);
  return {};
}

} // namespace

const char* to_string(durability d) noexcept {
  switch (d) {
    case durability::none:
      return "none";
    case durability::process:
      return "process";
    case durability::machine:
      return "machine";
  }
  return "?";
}

caf::error supervision_options::validate() const {
  if (restarts_max > 1000) {
    return config_error("--supervision.max-restarts must be in 0..1000");
  }
  if (window_s < 1 || window_s > 86400) {
    return config_error("--supervision.window-s must be in 1..86400");
  }
  if (backoff_ms > 600000 || backoff_max_ms > 600000 || backoff_ms > backoff_max_ms) {
    return config_error("--supervision.backoff-ms must be at most --supervision.backoff-max-ms, "
                        "both in 0..600000");
  }
  if (poison_attempts < 1 || poison_attempts > 100) {
    return config_error("--supervision.poison-attempts must be in 1..100");
  }
  for (size_t pos = 0; pos < policies.size();) {
    auto end = std::min(policies.find(',', pos), policies.size());
    auto item = std::string_view{policies}.substr(pos, end - pos);
    auto eq = item.find('=');
    if (eq == 0 || eq == std::string_view::npos ||
        !parse_failure_policy(item.substr(eq + 1)).has_value()) {
      return config_error("--supervision.policy item '" + std::string{item} +
                          "' is not node=restart|stop|escalate");
    }
    pos = end + 1;
  }
  return {};
}

caf::error runtime_options::validate() const {
  if (threads > 256) {
    return config_error("--runtime.threads must be in 0..256");
  }
  if (partitions < 1 || partitions > partitions_max) {
    return config_error("--job.partitions must be in 1.." + std::to_string(partitions_max));
  }
  if (batch_events_max < 1 || batch_events_max > (1u << 20)) {
    return config_error("--runtime.batch-events-max must be in 1..1048576");
  }
  if (credit_batches_max < 1 || credit_batches_max > 1024) {
    return config_error("--runtime.credit-batches-max must be in 1..1024");
  }
  if (linger_ms < 1 || linger_ms > 60000) {
    return config_error("--runtime.linger-ms must be in 1..60000");
  }
  return supervision.validate();
}

command_line::command_line(std::string program, std::string summary)
  : program_(std::move(program))
  , summary_(std::move(summary))
  , app_(program_ + " options") {}

int command_line::usage_error(const std::string& message) const {
  std::cerr << program_ << ": error: " << message << " (see --help)\n";
  return 2;
}

namespace {

/// Each item of --node.seeds must be HOST:PORT with a port in 1..65535.
caf::error check_seeds(const common_options& common) {
  for (const auto& item : common.seed_list()) {
    auto colon = item.rfind(':');
    bool ok = colon != std::string::npos && colon > 0 && colon + 1 < item.size() &&
              item.find_first_not_of("0123456789", colon + 1) == std::string::npos &&
              item.size() - colon - 1 <= 5 && std::stoul(item.substr(colon + 1)) >= 1 &&
              std::stoul(item.substr(colon + 1)) <= 65535;
    if (!ok) {
      return config_error("--node.seeds item '" + item + "' is not HOST:PORT");
    }
  }
  return {};
}

} // namespace

std::vector<std::string> common_options::seed_list() const {
  std::vector<std::string> items;
  if (node_seeds.empty()) {
    return items;
  }
  for (size_t pos = 0; pos <= node_seeds.size();) {
    auto end = std::min(node_seeds.find(',', pos), node_seeds.size());
    items.push_back(node_seeds.substr(pos, end - pos));
    pos = end + 1;
  }
  return items;
}

std::optional<int> command_line::parse(int argc, const char* const* argv) {
  po::options_description common_desc{"Common options"};
  common_desc.add_options()("help,h", "print this help and exit")(
    "config", po::value<std::string>(), "INI file with any of these options; flags override it")(
    "data-dir", po::value<std::string>()->default_value("./data"),
    "where partition journals, dead letters and logs live")(
    "node.id", po::value<std::string>(), "this node's name in a cluster (default: host:port)")(
    "node.host", po::value<std::string>()->default_value("127.0.0.1"),
    "address the CAF node listens on")("node.port", po::value<int64_t>()->default_value(4710),
                                       "CAF node port; 0 picks a free one")(
    "node.seeds", po::value<std::string>(), "host:port,... of seed nodes to join")(
    "node.heartbeat-ms", po::value<int64_t>()->default_value(500),
    "interval of the heartbeats to every member of the cluster")(
    "node.timeout-ms", po::value<int64_t>()->default_value(3000),
    "a connected member that does not answer heartbeats for this long is unreachable")(
    "node.replication", po::value<std::string>()->default_value("sync"),
    "sync: a partition's commit waits for its standby copy (nothing lost when a node dies); "
    "async: it does not wait (lower latency, a failover may lose the last commits)")(
    "node.max-moves", po::value<int64_t>()->default_value(1),
    "partitions that copy their state to another node at once during moves and rebalances")(
    "node.rebalance", po::value<std::string>()->default_value("on-join"),
    "on-join: a member that joins gets its share of the partitions (moved with a warm copy); "
    "manual: only the console's rebalance and move change the placement")(
    "inspect", "publish the inspector for `eddy console` on --node.host:--node.port (loopback "
               "by default; another host exposes the job's state to that network)")(
    "http.host", po::value<std::string>()->default_value("127.0.0.1"),
    "HTTP listen address")("http.port", po::value<int64_t>()->default_value(8080), "HTTP port")(
    "log.level", po::value<std::string>()->default_value("info"), "error, warn, info or debug");

  po::options_description rt{"Runtime options"};
  rt.add_options()("job.partitions", po::value<int64_t>()->default_value(128),
                   "key partitions P of every keyed operator (fixed per job)")(
    "runtime.threads", po::value<int64_t>()->default_value(0),
    "scheduler threads (0: one per core)")("runtime.batch-events-max",
                                           po::value<int64_t>()->default_value(1024),
                                           "records per batch at most")(
    "runtime.credit-batches-max", po::value<int64_t>()->default_value(8),
    "batches in flight per channel at most")(
    "runtime.linger-ms", po::value<int64_t>()->default_value(5),
    "how long a partly filled batch waits before it is sent")(
    "runtime.source-rate", po::value<int64_t>()->default_value(0),
    "records per second each source instance reads at most (0: no limit)")(
    "runtime.dead-letters", po::value<std::string>(),
    "JSONL file for rejected input (default: <data-dir>/deadletters.jsonl)");

  po::options_description state_desc{"State options"};
  state_desc.add_options()("state.durability", po::value<std::string>()->default_value("process"),
                           "none (memory only), process (survives kill -9) or machine "
                           "(survives power loss)")(
    "state.cache-mb", po::value<int64_t>()->default_value(16),
    "decoded state cached per partition, in MB; colder keys are read from the journal")(
    "state.keep-changes", po::value<int64_t>()->default_value(4),
    "changes of each key kept readable after compaction")(
    "state.compact-every", po::value<int64_t>()->default_value(1000),
    "committed batches between two compactions of a partition's journal")(
    "state.reset", "delete this job's state under --data-dir before starting");

  po::options_description sup_desc{"Supervision options"};
  sup_desc.add_options()("supervision.max-restarts", po::value<int64_t>()->default_value(5),
                         "restarts one failing actor may cause within the window; one more "
                         "marks it failed")("supervision.window-s",
                                            po::value<int64_t>()->default_value(10),
                                            "the window of --supervision.max-restarts, in seconds")(
    "supervision.backoff-ms", po::value<int64_t>()->default_value(100),
    "delay before a restart, doubled for each further restart in the window")(
    "supervision.backoff-max-ms", po::value<int64_t>()->default_value(10000),
    "longest delay before a restart")("supervision.poison-attempts",
                                      po::value<int64_t>()->default_value(3),
                                      "consecutive failures on one record before it goes to "
                                      "the dead-letter journal")(
    "supervision.policy", po::value<std::string>(),
    "node=restart|stop|escalate,... overrides the failure policies set in code")(
    "supervision.replay-dead-letters",
    "re-process the job's pending dead letters (see `eddy deadletters`) when it starts");

  po::options_description all;
  all.add(common_desc).add(rt).add(state_desc).add(sup_desc).add(app_);
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional_).run(),
              values_);
    if (values_.count("help")) {
      std::cout << program_ << ": " << summary_ << "\n\n" << all << "\n";
      return 0;
    }
    if (values_.count("config")) {
      auto path = values_["config"].as<std::string>();
      std::ifstream in{path};
      if (!in || !std::filesystem::is_regular_file(path)) {
        return usage_error("cannot read config file '" + path + "'");
      }
      // Values already stored from flags win over the file.
      po::store(po::parse_config_file(in, all, false), values_);
      common.config_file = path;
    }
    po::notify(values_);
  } catch (const po::error& e) {
    return usage_error(e.what());
  }

  common.data_dir = values_["data-dir"].as<std::string>();
  if (values_.count("node.id")) {
    common.node_id = values_["node.id"].as<std::string>();
  }
  common.node_host = values_["node.host"].as<std::string>();
  if (values_.count("node.seeds")) {
    common.node_seeds = values_["node.seeds"].as<std::string>();
  }
  common.inspect = values_.count("inspect") > 0;
  if (auto r = values_["node.replication"].as<std::string>(); r == "sync" || r == "async") {
    common.standby_sync = r == "sync";
  } else {
    return usage_error("--node.replication is '" + r + "'; allowed: sync, async");
  }
  if (auto r = values_["node.rebalance"].as<std::string>(); r == "on-join" || r == "manual") {
    common.rebalance_on_join = r == "on-join";
  } else {
    return usage_error("--node.rebalance is '" + r + "'; allowed: on-join, manual");
  }
  common.http_host = values_["http.host"].as<std::string>();
  common.log_level = values_["log.level"].as<std::string>();
  log_level level;
  if (!parse_log_level(common.log_level, level)) {
    return usage_error("--log.level is '" + common.log_level +
                       "'; allowed: error, warn, info, debug");
  }
  set_log_level(level);
  caf::error err;
  (err = take(values_, "node.port", 0, 65535, common.node_port)) ||
    (err = take(values_, "http.port", 0, 65535, common.http_port)) ||
    (err = take(values_, "node.heartbeat-ms", 10, 600000, common.heartbeat_ms)) ||
    (err = take(values_, "node.timeout-ms", 20, 3600000, common.heartbeat_timeout_ms)) ||
    (err = take(values_, "node.max-moves", 1, 64, common.moves_max)) ||
    (err = take(values_, "job.partitions", 1, partitions_max, runtime.partitions)) ||
    (err = take(values_, "runtime.threads", 0, 256, runtime.threads)) ||
    (err = take(values_, "runtime.batch-events-max", 1, 1 << 20, runtime.batch_events_max)) ||
    (err = take(values_, "runtime.credit-batches-max", 1, 1024, runtime.credit_batches_max)) ||
    (err = take(values_, "runtime.linger-ms", 1, 60000, runtime.linger_ms)) ||
    (err = take(values_, "runtime.source-rate", 0, int64_t{1} << 40, runtime.source_rate)) ||
    (err = take(values_, "state.cache-mb", 0, 1 << 20, runtime.state.cache_mb)) ||
    (err = take(values_, "state.keep-changes", 1, 1 << 20, runtime.state.keep_changes)) ||
    (err = take(values_, "state.compact-every", 1, 1 << 30, runtime.state.compact_every)) ||
    (err = take(values_, "supervision.max-restarts", 0, 1000, runtime.supervision.restarts_max)) ||
    (err = take(values_, "supervision.window-s", 1, 86400, runtime.supervision.window_s)) ||
    (err = take(values_, "supervision.backoff-ms", 0, 600000, runtime.supervision.backoff_ms)) ||
    (err = take(values_, "supervision.backoff-max-ms", 0, 600000,
                runtime.supervision.backoff_max_ms)) ||
    (err =
       take(values_, "supervision.poison-attempts", 1, 100, runtime.supervision.poison_attempts));
  if (values_.count("supervision.policy")) {
    runtime.supervision.policies = values_["supervision.policy"].as<std::string>();
  }
  runtime.supervision.replay_dead_letters = values_.count("supervision.replay-dead-letters") > 0;
  auto durability_name = values_["state.durability"].as<std::string>();
  if (durability_name == "none") {
    runtime.state.level = durability::none;
  } else if (durability_name == "process") {
    runtime.state.level = durability::process;
  } else if (durability_name == "machine") {
    runtime.state.level = durability::machine;
  } else if (!err) {
    err = config_error("--state.durability is '" + durability_name +
                       "'; allowed: none, process, machine");
  }
  runtime.state.reset = values_.count("state.reset") > 0;
  if (!err) {
    err = runtime.validate();
  }
  if (!err) {
    err = check_seeds(common);
  }
  if (!err && common.heartbeat_timeout_ms <= common.heartbeat_ms) {
    err = config_error("--node.timeout-ms (" + std::to_string(common.heartbeat_timeout_ms) +
                       ") must be longer than --node.heartbeat-ms (" +
                       std::to_string(common.heartbeat_ms) + ")");
  }
  if (err) {
    return usage_error(err.context().get_as<std::string>(0));
  }
  runtime.dead_letters =
    values_.count("runtime.dead-letters")
      ? std::filesystem::path{values_["runtime.dead-letters"].as<std::string>()}
      : common.data_dir / "deadletters.jsonl";
  return std::nullopt;
}

} // namespace eddy
