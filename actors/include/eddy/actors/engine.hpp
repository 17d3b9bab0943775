#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor_control_block.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "eddy/config/options.hpp"
#include "eddy/graph/job_graph.hpp"
#include "eddy/io/dead_letters.hpp"

namespace caf {
class actor_system;
class actor_system_config;
} // namespace caf

namespace eddy {

namespace detail {
class host_registry;
class cluster_view;
} // namespace detail

/// Where an actor of a job stands, as `actor_metrics::status` holds it.
enum class actor_status : int {
  running = 0,
  finished = 1,
  /// Failed for good (restart limit, policy stop): it runs no user code, its input goes to
  /// the dead-letter journal. Also: the actor that failed a job.
  failed = 2,
  /// Waiting for the supervisor to restart it.
  restarting = 3,
  /// Stopped by the supervisor because another actor failed the job.
  stopped = 4,
  /// Paused from the console: it takes no input until resumed (its upstream backs up).
  paused = 5,
};

/// The name of an `actor_status` value: "running", "finished", "failed", "restarting",
/// "stopped", "paused".
const char* to_string(actor_status status) noexcept;

/// A latency histogram with Prometheus' cumulative-bucket reading in mind: counts per
/// bucket (upper bounds in microseconds, the last one +Inf), their sum and count. Written
/// by one actor (relaxed atomics), read by anyone.
struct latency_histogram {
  static constexpr std::array<uint64_t, 12> bounds_us{100,   250,   500,   1000,   2500,   5000,
                                                      10000, 25000, 50000, 100000, 250000, 1000000};
  std::array<std::atomic<uint64_t>, bounds_us.size() + 1> buckets{};
  std::atomic<uint64_t> sum_us{0};
  std::atomic<uint64_t> count{0};

  void record(uint64_t us) noexcept {
    size_t i = 0;
    while (i < bounds_us.size() && us > bounds_us[i]) {
      ++i;
    }
    buckets[i].fetch_add(1, std::memory_order_relaxed);
    sum_us.fetch_add(us, std::memory_order_relaxed);
    count.fetch_add(1, std::memory_order_relaxed);
  }
};

/// Live counters of one stage actor, written by the actor (relaxed atomics) and read by
/// anyone: the runtime's reports, the console and /metrics.
struct actor_metrics {
  std::atomic<uint64_t> events_in{0};
  std::atomic<uint64_t> events_out{0};
  /// Batches taken from the mailbox, replayed duplicates included (so that the batches sent
  /// to an actor minus these are the ones waiting for it).
  std::atomic<uint64_t> batches_in{0};
  std::atomic<uint64_t> batches_out{0};
  std::atomic<uint64_t> duplicates_dropped{0};
  /// Sealed batches waiting for credit, now and at most.
  std::atomic<uint64_t> queued_batches{0};
  std::atomic<uint64_t> queued_batches_peak{0};
  /// Records held by the actor's output side (queued and partly filled batches), at most.
  std::atomic<uint64_t> buffered_events_peak{0};
  std::atomic<uint64_t> keys{0};
  /// Sources: the position they resumed after (0: from the start).
  std::atomic<uint64_t> resumed_after{0};
  /// Restarts of the job this actor's failures caused.
  std::atomic<uint64_t> restarts{0};
  /// Records of this actor sent to the dead-letter journal.
  std::atomic<uint64_t> dead_lettered{0};
  /// Batches the receivers let it send now (output credit), summed over its channels.
  std::atomic<uint64_t> credit{0};
  std::atomic<actor_status> status{actor_status::running};
  /// Partitions: from the start of a commit until it is durable (and, with a waiting
  /// standby, applied there).
  latency_histogram commit_latency;
  /// Event time: the actor's watermark (no_time: none; see eddy/time/watermark.hpp).
  std::atomic<int64_t> watermark{no_time};
};

/// One actor of a running job, as the runtime reports it.
struct actor_info {
  /// "node/index", e.g. "count/17".
  std::string name;
  std::string node;
  node_kind kind;
  uint32_t index;
  std::shared_ptr<const actor_metrics> metrics;
  /// Why the actor failed for good (empty while it has not).
  std::string failure;
};

class job_handle;

/// The single-node runtime: owns a CAF actor system and runs job graphs on it, every
/// source, operator instance, key partition and sink as an actor. Thread-safe to `start`
/// jobs from one thread; destroy only after every job finished.
class engine {
public:
  explicit engine(runtime_options opts, common_options common = {});
  ~engine();
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  /// Spawns the actors of `graph` and starts its sources. Fails when the graph is invalid
  /// or the logic of an instance cannot be created (a file that cannot be opened).
  [[nodiscard]] caf::expected<std::shared_ptr<job_handle>> start(job_graph graph);

  /// Starts `graph` and waits for it to finish. With `handle_signals`, the first SIGINT or
  /// SIGTERM stops the sources so that the job drains and ends normally.
  [[nodiscard]] caf::error run(job_graph graph, bool handle_signals = false);

  [[nodiscard]] caf::actor_system& system() noexcept;
  [[nodiscard]] const runtime_options& options() const noexcept {
    return opts_;
  }

  /// Every job started on this engine, running or done, oldest first.
  [[nodiscard]] std::vector<std::shared_ptr<job_handle>> jobs() const;
  /// With `--inspect`, the port the inspector listens on (0 before the first job starts or
  /// without `--inspect`).
  [[nodiscard]] uint16_t inspector_port() const noexcept {
    return inspector_port_;
  }

  // Services in a cluster (see eddy/service/http_ingress.hpp): the leader of the jobs
  // (the coordinator) runs the ingress; the other members forward requests to it.

  /// Publishes this node's HTTP address (host:port) to the other members.
  void set_http_address(const std::string& host_port);
  /// Where a request to this node's service goes: nullopt to serve it here (no cluster, or
  /// this node leads), the leader's HTTP address, or "" while no leader is known.
  [[nodiscard]] std::optional<std::string> route_http() const;
  /// Keeps `entries` (sequence number, body) of job `job`'s ingress log on the member that
  /// would lead next, and waits until they are durable there, so that a takeover finds every
  /// accepted request. The last sequence number that copy holds (without a cluster or such
  /// a member: the last of `entries`, nothing to keep).
  caf::expected<uint64_t>
  replicate_ingress(const std::string& job,
                    const std::vector<std::pair<uint64_t, std::string>>& entries);

private:
  /// Publishes the inspector on node.host:node.port (see inspector.cpp).
  caf::error publish_inspector();

  /// The jobs started on this engine; shared with the inspector.
  struct registry {
    std::mutex mtx;
    std::vector<std::shared_ptr<job_handle>> jobs;
  };

  runtime_options opts_;
  common_options common_;
  std::shared_ptr<registry> registry_ = std::make_shared<registry>();
  std::unique_ptr<caf::actor_system_config> cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  /// The published inspector (an untyped caf::actor, held as a strong pointer so that this
  /// header needs no CAF actor headers), stopped by the destructor.
  caf::strong_actor_ptr inspector_;
  /// The published node actor (membership, the console's entry; see cluster/node_actor.hpp).
  caf::strong_actor_ptr node_;
  uint16_t inspector_port_ = 0;
  /// In a cluster (--node.seeds): the node's host actor and its jobs (see host.hpp) and
  /// the membership as the node actor sees it.
  caf::strong_actor_ptr host_;
  /// The host of the member that keeps the copy of the ingress logs, by member id.
  std::mutex ingress_mtx_;
  std::string ingress_successor_;
  caf::strong_actor_ptr ingress_host_;
  std::shared_ptr<detail::host_registry> hosted_;
  std::shared_ptr<detail::cluster_view> view_;
};

/// A running job: its actors and its completion. Thread-safe.
class job_handle {
public:
  struct shared;
  explicit job_handle(std::shared_ptr<shared> state)
    : state_(std::move(state)) {}

  /// Every actor of the job with its live counters and, for failed ones, the cause: the
  /// status query of the console.
  [[nodiscard]] std::vector<actor_info> actors() const;
  /// Restarts of the job so far.
  [[nodiscard]] uint64_t restarts() const;
  [[nodiscard]] const std::string& name() const;
  [[nodiscard]] const job_graph& graph() const;
  /// Where its state lives (the engine's --data-dir).
  [[nodiscard]] const std::filesystem::path& data_dir() const;
  /// Seconds since the job started.
  [[nodiscard]] double uptime_s() const;
  /// True once every actor exited; `error` is its failure then, if any.
  [[nodiscard]] bool done() const;
  [[nodiscard]] caf::error error() const;
  /// Rejected input of this job.
  [[nodiscard]] const dead_letter_log& dead_letters() const;
  /// Asks the sources to stop; the job then drains and completes normally.
  void stop();
  /// Takes a savepoint of the running job (then stops it when `stop`) and waits, at most
  /// `timeout_ms`, until it is complete: its summary as JSON text {"id", "path",
  /// "pause_ms", "files", "bytes", "keys", "seconds"} (see "Savepoints" in docs/design.md).
  [[nodiscard]] caf::expected<std::string> savepoint(bool stop = false,
                                                     uint32_t timeout_ms = 600'000);
  /// @private The job actor, for the inspector's requests (see admin.hpp).
  [[nodiscard]] caf::strong_actor_ptr supervisor() const;
  /// Makes actor `actor` ("count/3") exit abnormally, to watch supervision handle it.
  /// Fails if the job has no such actor.
  caf::error kill(const std::string& actor);
  /// Blocks until every actor exited; returns the first failure, if any.
  [[nodiscard]] caf::error wait();
  /// Like `wait`, but the first SIGINT or SIGTERM caught by `install_signal_handlers`
  /// stops the sources, so that the job drains and completes normally.
  [[nodiscard]] caf::error wait_stopping_on_signal();
  /// Waits at most `timeout_ms`; returns true if the job completed.
  [[nodiscard]] bool wait_for(uint32_t timeout_ms);

private:
  std::shared_ptr<shared> state_;
};

/// Set by the signal handler installed by `engine::run(..., true)`.
bool stop_requested() noexcept;
/// Installs SIGINT/SIGTERM handlers: the first sets `stop_requested`, the second exits at
/// once with status 130.
void install_signal_handlers();

} // namespace eddy
