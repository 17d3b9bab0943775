#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <caf/error.hpp>

#include "eddy/core/durability.hpp"

namespace eddy {

/// The options every Eddy program shares (see "Common options" in docs/design.md).
struct common_options {
  std::string config_file;
  // Default: ./data
  std::filesystem::path data_dir = "./data";
  // Default: host:port
  std::string node_id;
  // Default: 127.0.0.1
  std::string node_host = "127.0.0.1";
  // Default: 4710 (0 picks a free port)
  uint16_t node_port = 4710;
  // Default: none (single node)
  std::string node_seeds;
  // Default: 500 ms between two heartbeats to every member
  uint32_t heartbeat_ms = 500;
  // Default: 3000 ms without a heartbeat answer mark a connected member unreachable
  uint32_t heartbeat_timeout_ms = 3000;
  // Default: true (sync); a partition's commit waits until its standby applied it, so a
  // node failure loses nothing; false (async) does not wait: lower latency, and a failover
  // may lose the last commits
  bool standby_sync = true;
  // Default: 1 partition copying its journal to a new node at a time (moves, rebalances)
  uint32_t moves_max = 1;
  // Default: true; a member that joins gets its share of the partitions (a rebalance)
  bool rebalance_on_join = true;
  // Default: false; true publishes the inspector for `eddy console` on node.host:node.port
  bool inspect = false;
  // Default: 127.0.0.1
  std::string http_host = "127.0.0.1";
  // Default: 8080
  uint16_t http_port = 8080;
  // Default: info (error, warn, info, debug)
  std::string log_level = "info";

  /// The items of `node_seeds` in configured order (an empty one after a stray comma
  /// included, so that checking them finds it); empty without seeds.
  [[nodiscard]] std::vector<std::string> seed_list() const;
};

/// Durable state: journals, cache, compaction.
struct state_options {
  // Default: process
  durability level = durability::process;
  // Default: 16 MB of decoded state cached per partition; colder keys are read from SQLite
  uint32_t cache_mb = 16;
  // Default: 4 changes of each key kept readable after compaction
  uint32_t keep_changes = 4;
  // Default: 1000 commits between two compactions of a partition's journal
  uint32_t compact_every = 1000;
  // Default: 100 ms between two commits of a partition (state in memory in between; its
  // output and acknowledgements wait for the commit that covers them); 0 commits after
  // each group of batches. Services default to 0 (see serve.cpp)
  uint32_t commit_interval_ms = 100;
  // Default: false; true moves the job's state under --data-dir aside (<job>.reset-<time>)
  // before it starts
  bool reset = false;
};

/// Savepoints and restores (see "Savepoints" in docs/design.md).
struct savepoint_options {
  // Default: empty, which is <data-dir>/savepoints
  std::filesystem::path dir;
  // Default: empty; a savepoint (its directory or manifest.json) the job's state starts from
  std::filesystem::path restore_from;
};

/// Supervision: restarts, their backoff and limits, poison records (see "Supervision" in
/// docs/design.md).
struct supervision_options {
  // Default: 5 restarts caused by one actor within the window; one more marks it failed
  uint32_t restarts_max = 5;
  // Default: 10 s
  uint32_t window_s = 10;
  // Default: 100 ms before the first restart, doubled for each further one in the window
  uint32_t backoff_ms = 100;
  // Default: 10000 ms at most
  uint32_t backoff_max_ms = 10000;
  // Default: 3 consecutive failures on the same record send it to the dead-letter journal
  uint32_t poison_attempts = 3;
  // Default: empty; "node=restart|stop|escalate,..." overrides the policies set in code
  std::string policies;
  // Default: false; true re-processes the job's pending dead letters when it starts
  bool replay_dead_letters = false;

  /// Checks ranges and the syntax of `policies`; the error names the option.
  [[nodiscard]] caf::error validate() const;
};

/// Limits and sizes of the dataflow runtime; every one is bounded and checked at startup.
struct runtime_options {
  // Default: 0 (one scheduler thread per core)
  uint32_t threads = 0;
  // Default: 128 key partitions per keyed operator
  uint32_t partitions = 128;
  // Default: 1024 records per batch
  uint32_t batch_events_max = 1024;
  // Default: 8 batches in flight per channel
  uint32_t credit_batches_max = 8;
  // Default: 5 ms before a partly filled batch is sent anyway
  uint32_t linger_ms = 5;
  // Default: 0 (as fast as possible); else records per second each source instance reads
  // at most (load tests, demos)
  uint64_t source_rate = 0;
  // Default: <data-dir>/deadletters.jsonl
  std::filesystem::path dead_letters;
  state_options state;
  savepoint_options savepoint;
  supervision_options supervision;

  /// Checks ranges and relations between the limits; the error names the option.
  [[nodiscard]] caf::error validate() const;
};

/// Parses the command line and the INI file of an Eddy program. Declares the common and
/// runtime options once, so programs only add their own. Flags override the file.
class command_line {
public:
  command_line(std::string program, std::string summary);

  /// The program's own options; add to it before `parse`.
  boost::program_options::options_description& app_options() noexcept {
    return app_;
  }
  /// Positional arguments, mapped onto named app options (e.g. "input").
  boost::program_options::positional_options_description& positional() noexcept {
    return positional_;
  }

  /// Parses argv and the `--config` file. Returns an exit code when the program should stop
  /// now: 0 after `--help`, 2 after printing "program: error: <what is wrong>" to stderr.
  [[nodiscard]] std::optional<int> parse(int argc, const char* const* argv);

  [[nodiscard]] const boost::program_options::variables_map& values() const noexcept {
    return values_;
  }
  /// Prints "program: error: message" and returns 2, for app-level usage errors.
  int usage_error(const std::string& message) const;

  common_options common;
  runtime_options runtime;

private:
  /// Stores argv and the `--config` file in `values_`; an exit code as for `parse`.
  [[nodiscard]] std::optional<int>
  store_values(int argc, const char* const* argv,
               const boost::program_options::options_description& all);

  std::string program_;
  std::string summary_;
  boost::program_options::options_description app_;
  boost::program_options::positional_options_description positional_;
  boost::program_options::variables_map values_;
};

} // namespace eddy
