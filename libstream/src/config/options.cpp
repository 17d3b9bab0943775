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

/// The first string of an error made by `config_error`.
std::string message_of(const caf::error& err) {
  return err.context().get_as<std::string>(0);
}

/// The allowed values of a numeric option. Each range is stated here once: `take` checks a
/// flag against it, and the `validate` functions check a field a program set in code.
struct option_range {
  /// The flag without its leading "--".
  const char* name;
  int64_t lo;
  int64_t hi;
};

namespace range {
constexpr option_range node_port{"node.port", 0, 65535};
constexpr option_range http_port{"http.port", 0, 65535};
constexpr option_range heartbeat_ms{"node.heartbeat-ms", 10, 600000};
constexpr option_range heartbeat_timeout_ms{"node.timeout-ms", 20, 3600000};
constexpr option_range moves_max{"node.max-moves", 1, 64};
constexpr option_range partitions{"job.partitions", 1, partitions_max};
constexpr option_range threads{"runtime.threads", 0, 256};
constexpr option_range batch_events_max{"runtime.batch-events-max", 1, 1 << 20};
constexpr option_range credit_batches_max{"runtime.credit-batches-max", 1, 1024};
constexpr option_range linger_ms{"runtime.linger-ms", 1, 60000};
constexpr option_range source_rate{"runtime.source-rate", 0, int64_t{1} << 40};
constexpr option_range cache_mb{"state.cache-mb", 0, 1 << 20};
constexpr option_range keep_changes{"state.keep-changes", 1, 1 << 20};
constexpr option_range compact_every{"state.compact-every", 1, 1 << 30};
constexpr option_range commit_interval_ms{"state.commit-interval-ms", 0, commit_interval_ms_max};
constexpr option_range restarts_max{"supervision.max-restarts", 0, 1000};
constexpr option_range window_s{"supervision.window-s", 1, 86400};
constexpr option_range backoff_ms{"supervision.backoff-ms", 0, 600000};
constexpr option_range backoff_max_ms{"supervision.backoff-max-ms", 0, 600000};
constexpr option_range poison_attempts{"supervision.poison-attempts", 1, 100};
} // namespace range

bool in_range(const option_range& r, int64_t value) noexcept {
  return value >= r.lo && value <= r.hi;
}

/// "lo..hi".
std::string range_text(const option_range& r) {
  return std::to_string(r.lo) + ".." + std::to_string(r.hi);
}

/// Checks a field set in code; the message names the flag that sets it.
caf::error check_range(const option_range& r, int64_t value) {
  if (in_range(r, value)) {
    return {};
  }
  return config_error("--" + std::string{r.name} + " must be in " + range_text(r));
}

/// Reads a numeric option as int64 and checks its range, so that "-1" is rejected instead
/// of wrapping around in an unsigned type.
template <class T>
caf::error take(const po::variables_map& vm, const option_range& r, T& out) {
  if (!vm.count(r.name)) {
    return {};
  }
  auto v = vm[r.name].as<int64_t>();
  if (!in_range(r, v)) {
    return config_error("--" + std::string{r.name} + " is " + std::to_string(v) +
                        "; allowed: " + range_text(r));
  }
  out = static_cast<T>(v);
  return {};
}

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

/// Each item of `policies` must be node=restart|stop|escalate.
caf::error check_policies(std::string_view policies) {
  for (size_t pos = 0; pos < policies.size();) {
    auto end = std::min(policies.find(',', pos), policies.size());
    auto item = policies.substr(pos, end - pos);
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
  caf::error err;
  (err = check_range(range::restarts_max, restarts_max)) ||
    (err = check_range(range::window_s, window_s));
  if (err) {
    return err;
  }
  if (!in_range(range::backoff_ms, backoff_ms) ||
      !in_range(range::backoff_max_ms, backoff_max_ms) || backoff_ms > backoff_max_ms) {
    return config_error("--" + std::string{range::backoff_ms.name} + " must be at most --" +
                        range::backoff_max_ms.name + ", both in " + range_text(range::backoff_ms));
  }
  if (auto poison = check_range(range::poison_attempts, poison_attempts)) {
    return poison;
  }
  return check_policies(policies);
}

caf::error runtime_options::validate() const {
  caf::error err;
  (err = check_range(range::threads, threads)) ||
    (err = check_range(range::partitions, partitions)) ||
    (err = check_range(range::batch_events_max, batch_events_max)) ||
    (err = check_range(range::credit_batches_max, credit_batches_max)) ||
    (err = check_range(range::linger_ms, linger_ms));
  if (err) {
    return err;
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

namespace {

// The option declarations take their defaults from default-constructed option structs, so
// that each default is written once, beside its field.

const char* replication_name(bool standby_sync) {
  return standby_sync ? "sync" : "async";
}

const char* rebalance_name(bool rebalance_on_join) {
  return rebalance_on_join ? "on-join" : "manual";
}

void declare_common(po::options_description& desc) {
  const common_options d;
  auto add = desc.add_options();
  add("help,h", "print this help and exit");
  add("config", po::value<std::string>(), "INI file with any of these options; flags override it");
  add("data-dir", po::value<std::string>()->default_value(d.data_dir.string()),
      "where partition journals, dead letters and logs live");
  add("node.id", po::value<std::string>(), "this node's name in a cluster (default: host:port)");
  add("node.host", po::value<std::string>()->default_value(d.node_host),
      "address the CAF node listens on");
  add("node.port", po::value<int64_t>()->default_value(d.node_port),
      "CAF node port; 0 picks a free one");
  add("node.seeds", po::value<std::string>(), "host:port,... of seed nodes to join");
  add("node.heartbeat-ms", po::value<int64_t>()->default_value(d.heartbeat_ms),
      "interval of the heartbeats to every member of the cluster");
  add("node.timeout-ms", po::value<int64_t>()->default_value(d.heartbeat_timeout_ms),
      "a connected member that does not answer heartbeats for this long is unreachable");
  add("node.replication", po::value<std::string>()->default_value(replication_name(d.standby_sync)),
      "sync: a partition's commit waits for its standby copy (nothing lost when a node dies); "
      "async: it does not wait (lower latency, a failover may lose the last commits)");
  add("node.max-moves", po::value<int64_t>()->default_value(d.moves_max),
      "partitions that copy their state to another node at once during moves and rebalances");
  add("node.rebalance",
      po::value<std::string>()->default_value(rebalance_name(d.rebalance_on_join)),
      "on-join: a member that joins gets its share of the partitions (moved with a warm copy); "
      "manual: only the console's rebalance and move change the placement");
  add("inspect", "publish the inspector for `eddy console` on --node.host:--node.port (loopback "
                 "by default; another host exposes the job's state to that network)");
  add("http.host", po::value<std::string>()->default_value(d.http_host), "HTTP listen address");
  add("http.port", po::value<int64_t>()->default_value(d.http_port), "HTTP port");
  add("log.level", po::value<std::string>()->default_value(d.log_level),
      "error, warn, info or debug");
}

void declare_runtime(po::options_description& desc) {
  const runtime_options d;
  auto add = desc.add_options();
  add("job.partitions", po::value<int64_t>()->default_value(d.partitions),
      "key partitions P of every keyed operator (fixed per job)");
  add("runtime.threads", po::value<int64_t>()->default_value(d.threads),
      "scheduler threads (0: one per core)");
  add("runtime.batch-events-max", po::value<int64_t>()->default_value(d.batch_events_max),
      "records per batch at most");
  add("runtime.credit-batches-max", po::value<int64_t>()->default_value(d.credit_batches_max),
      "batches in flight per channel at most");
  add("runtime.linger-ms", po::value<int64_t>()->default_value(d.linger_ms),
      "how long a partly filled batch waits before it is sent");
  add("runtime.source-rate",
      po::value<int64_t>()->default_value(static_cast<int64_t>(d.source_rate)),
      "records per second each source instance reads at most (0: no limit)");
  add("runtime.dead-letters", po::value<std::string>(),
      "JSONL file for rejected input (default: <data-dir>/deadletters.jsonl)");
}

void declare_state(po::options_description& desc) {
  const state_options d;
  auto add = desc.add_options();
  add("state.durability", po::value<std::string>()->default_value(to_string(d.level)),
      "none (memory only), process (survives kill -9) or machine (survives power loss)");
  add("state.cache-mb", po::value<int64_t>()->default_value(d.cache_mb),
      "decoded state cached per partition, in MB; colder keys are read from the journal");
  add("state.keep-changes", po::value<int64_t>()->default_value(d.keep_changes),
      "changes of each key kept readable after compaction");
  add("state.compact-every", po::value<int64_t>()->default_value(d.compact_every),
      "commits between two compactions of a partition's journal");
  add("state.commit-interval-ms", po::value<int64_t>()->default_value(d.commit_interval_ms),
      "time between two commits of a partition's state and output (0: after each group of "
      "batches)");
  add("state.reset",
      "start afresh: move this job's state under --data-dir aside (to <job>.reset-<time>)");
  add("savepoint.dir", po::value<std::string>(),
      "where savepoints are written (default: <data-dir>/savepoints)");
  add("restore.from", po::value<std::string>(),
      "start the job's state from this savepoint (its directory or manifest.json)");
}

void declare_supervision(po::options_description& desc) {
  const supervision_options d;
  auto add = desc.add_options();
  add("supervision.max-restarts", po::value<int64_t>()->default_value(d.restarts_max),
      "restarts one failing actor may cause within the window; one more marks it failed");
  add("supervision.window-s", po::value<int64_t>()->default_value(d.window_s),
      "the window of --supervision.max-restarts, in seconds");
  add("supervision.backoff-ms", po::value<int64_t>()->default_value(d.backoff_ms),
      "delay before a restart, doubled for each further restart in the window");
  add("supervision.backoff-max-ms", po::value<int64_t>()->default_value(d.backoff_max_ms),
      "longest delay before a restart");
  add("supervision.poison-attempts", po::value<int64_t>()->default_value(d.poison_attempts),
      "consecutive failures on one record before it goes to the dead-letter journal");
  add("supervision.policy", po::value<std::string>(),
      "node=restart|stop|escalate,... overrides the failure policies set in code");
  add("supervision.replay-dead-letters",
      "re-process the job's pending dead letters (see `eddy deadletters`) when it starts");
}

/// The string options every program shares; sets the log level once it is known to be valid.
caf::error read_common(const po::variables_map& vm, common_options& common) {
  common.data_dir = vm["data-dir"].as<std::string>();
  if (vm.count("node.id")) {
    common.node_id = vm["node.id"].as<std::string>();
  }
  common.node_host = vm["node.host"].as<std::string>();
  if (vm.count("node.seeds")) {
    common.node_seeds = vm["node.seeds"].as<std::string>();
  }
  common.inspect = vm.count("inspect") > 0;
  if (auto r = vm["node.replication"].as<std::string>(); r == "sync" || r == "async") {
    common.standby_sync = r == replication_name(true);
  } else {
    return config_error("--node.replication is '" + r + "'; allowed: sync, async");
  }
  if (auto r = vm["node.rebalance"].as<std::string>(); r == "on-join" || r == "manual") {
    common.rebalance_on_join = r == rebalance_name(true);
  } else {
    return config_error("--node.rebalance is '" + r + "'; allowed: on-join, manual");
  }
  common.http_host = vm["http.host"].as<std::string>();
  common.log_level = vm["log.level"].as<std::string>();
  log_level level;
  if (!parse_log_level(common.log_level, level)) {
    return config_error("--log.level is '" + common.log_level +
                        "'; allowed: error, warn, info, debug");
  }
  set_log_level(level);
  return {};
}

/// Every numeric option, in declaration order; the first one out of range is the error.
caf::error take_numbers(const po::variables_map& vm, common_options& common, runtime_options& rt) {
  auto& state = rt.state;
  auto& sup = rt.supervision;
  caf::error err;
  (err = take(vm, range::node_port, common.node_port)) ||
    (err = take(vm, range::http_port, common.http_port)) ||
    (err = take(vm, range::heartbeat_ms, common.heartbeat_ms)) ||
    (err = take(vm, range::heartbeat_timeout_ms, common.heartbeat_timeout_ms)) ||
    (err = take(vm, range::moves_max, common.moves_max)) ||
    (err = take(vm, range::partitions, rt.partitions)) ||
    (err = take(vm, range::threads, rt.threads)) ||
    (err = take(vm, range::batch_events_max, rt.batch_events_max)) ||
    (err = take(vm, range::credit_batches_max, rt.credit_batches_max)) ||
    (err = take(vm, range::linger_ms, rt.linger_ms)) ||
    (err = take(vm, range::source_rate, rt.source_rate)) ||
    (err = take(vm, range::cache_mb, state.cache_mb)) ||
    (err = take(vm, range::keep_changes, state.keep_changes)) ||
    (err = take(vm, range::compact_every, state.compact_every)) ||
    (err = take(vm, range::commit_interval_ms, state.commit_interval_ms)) ||
    (err = take(vm, range::restarts_max, sup.restarts_max)) ||
    (err = take(vm, range::window_s, sup.window_s)) ||
    (err = take(vm, range::backoff_ms, sup.backoff_ms)) ||
    (err = take(vm, range::backoff_max_ms, sup.backoff_max_ms)) ||
    (err = take(vm, range::poison_attempts, sup.poison_attempts));
  return err;
}

/// The runtime's string and switch options; the error is a bad --state.durability.
caf::error read_runtime_choices(const po::variables_map& vm, runtime_options& rt) {
  if (vm.count("supervision.policy")) {
    rt.supervision.policies = vm["supervision.policy"].as<std::string>();
  }
  rt.supervision.replay_dead_letters = vm.count("supervision.replay-dead-letters") > 0;
  rt.state.reset = vm.count("state.reset") > 0;
  if (vm.count("savepoint.dir")) {
    rt.savepoint.dir = vm["savepoint.dir"].as<std::string>();
    if (rt.savepoint.dir.empty()) {
      return config_error("--savepoint.dir is empty; give a directory");
    }
  }
  if (vm.count("restore.from")) {
    rt.savepoint.restore_from = vm["restore.from"].as<std::string>();
    if (rt.savepoint.restore_from.empty()) {
      return config_error("--restore.from is empty; give a savepoint directory");
    }
  }
  auto name = vm["state.durability"].as<std::string>();
  for (auto level : {durability::none, durability::process, durability::machine}) {
    if (name == to_string(level)) {
      rt.state.level = level;
      return {};
    }
  }
  return config_error("--state.durability is '" + name + "'; allowed: none, process, machine");
}

/// The checks across options, once each option is known to be in its range.
caf::error check_relations(const common_options& common, const runtime_options& rt) {
  if (auto err = rt.validate()) {
    return err;
  }
  if (auto err = check_seeds(common)) {
    return err;
  }
  if (common.heartbeat_timeout_ms <= common.heartbeat_ms) {
    return config_error("--node.timeout-ms (" + std::to_string(common.heartbeat_timeout_ms) +
                        ") must be longer than --node.heartbeat-ms (" +
                        std::to_string(common.heartbeat_ms) + ")");
  }
  return {};
}

} // namespace

std::optional<int> command_line::store_values(int argc, const char* const* argv,
                                              const po::options_description& all) {
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
  return std::nullopt;
}

std::optional<int> command_line::parse(int argc, const char* const* argv) {
  po::options_description common_desc{"Common options"};
  declare_common(common_desc);
  po::options_description runtime_desc{"Runtime options"};
  declare_runtime(runtime_desc);
  po::options_description state_desc{"State options"};
  declare_state(state_desc);
  po::options_description supervision_desc{"Supervision options"};
  declare_supervision(supervision_desc);
  po::options_description all;
  all.add(common_desc).add(runtime_desc).add(state_desc).add(supervision_desc).add(app_);
  if (auto code = store_values(argc, argv, all)) {
    return code;
  }
  if (auto err = read_common(values_, common)) {
    return usage_error(message_of(err));
  }
  // The first error in reading order is reported: a number out of range before a bad
  // --state.durability.
  auto err = take_numbers(values_, common, runtime);
  if (auto choice = read_runtime_choices(values_, runtime); !err) {
    err = std::move(choice);
  }
  if (!err) {
    err = check_relations(common, runtime);
  }
  if (err) {
    return usage_error(message_of(err));
  }
  runtime.dead_letters =
    values_.count("runtime.dead-letters")
      ? std::filesystem::path{values_["runtime.dead-letters"].as<std::string>()}
      : common.data_dir / "deadletters.jsonl";
  return std::nullopt;
}

} // namespace eddy
