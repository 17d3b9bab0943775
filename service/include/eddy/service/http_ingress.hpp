#pragma once

// The HTTP ingress of a service (cpp-httplib): routes turn requests into events for a
// keyed function, which answers them. A request is accepted only once its event is durable
// in the ingress log, which the job reads as a replayable source; the client waits for the
// keyed function's answer, which comes after the partition committed the change
// (read-your-writes). Any keyed function over `request` that emits `response` can be
// served this way:
//
//   eddy::service::http_ingress http{options};
//   http.route("POST", R"(/carts/([^/]+)/items)", "add_item", parse_add_item);
//   job.source("requests", http.source())
//     .key_by([](const request& r) { return r.key; })
//     .process<response>("carts", handle)
//     .sink("responses", http.responses("orders.jsonl"));
//   http.start();  // after engine.start(...)
//
// Limits: a body over `body_bytes_max` is refused (413), a request when `pending_max` wait for
// their answer is refused with 503 and Retry-After (the ingress never queues without
// bound), an unknown route is 404; every error is a JSON object naming what is wrong.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "eddy/core/durability.hpp"
#include "eddy/graph/logic.hpp"
#include "eddy/service/request.hpp"

namespace eddy::service {

struct ingress_options {
  /// The ingress log, e.g. <data-dir>/<service>/ingress.db.
  std::filesystem::path log_file;
  durability level = durability::process;
  std::string host = "127.0.0.1";
  /// 0: any free port (see `port()`).
  uint16_t port = 8080;
  /// Bytes of a request body at most; more get 413. Default: 64 KiB.
  size_t body_bytes_max = 64 * 1024;
  /// Requests waiting for their answer at most; more get 503 (--http.max-pending). Each
  /// holds a worker thread of the server, which has this many and a few spare ones.
  /// Default: 1024.
  size_t pending_max = 1024;
  /// How long a client waits for the answer; after it gets 202 (the request is durable and
  /// will be applied). Default: 10 s.
  uint32_t answer_timeout_ms = 10000;
};

/// What a route sees of an HTTP request.
struct http_call {
  /// The pattern's capture groups, in order.
  std::vector<std::string> params;
  std::string body;
};

/// Counters of the ingress, for /metrics.
struct ingress_counters {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> answered{0};
  std::atomic<uint64_t> timed_out{0};
  std::atomic<uint64_t> rejected{0};
  std::atomic<uint64_t> overloaded{0};
};

class http_ingress {
public:
  /// Turns a call into the request's key and parameters; throws `rejection` when the
  /// call is malformed (nothing is logged then).
  using parse_fn = std::function<request(const http_call&)>;
  /// Answers a call directly, without the job: a status, a content type and a body.
  struct direct_answer {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
  };
  using direct_fn = std::function<direct_answer(const http_call&)>;

  explicit http_ingress(ingress_options opts);
  ~http_ingress();
  http_ingress(const http_ingress&) = delete;
  http_ingress& operator=(const http_ingress&) = delete;

  /// A route through the job: METHOD and a regular expression matched against the whole
  /// path; `name` becomes the request's `route`.
  void route(const std::string& method, const std::string& pattern, std::string name,
             parse_fn parse);
  /// A route answered here (health, metrics).
  void direct(const std::string& method, const std::string& pattern, direct_fn answer);

  /// In a cluster the leader of the job runs the ingress's source and sink; every member
  /// serves HTTP. `route` says where a request goes: nullopt to serve it here, the
  /// leader's host:port to forward it to, "" while no leader is known (503). `replicate`
  /// keeps log entries on the member that would lead next and answers the last sequence
  /// number it holds (the entries it lacks are sent again), so that a takeover finds every
  /// accepted request. Call before `start`.
  using route_fn = std::function<std::optional<std::string>()>;
  using replicate_fn = std::function<caf::expected<uint64_t>(
    const std::vector<std::pair<uint64_t, std::string>>& entries)>;
  void in_cluster(route_fn route, replicate_fn replicate);

  /// The source of the accepted requests (parallelism 1), replayable from the log.
  source_def<request> source();
  /// The sink that answers the waiting clients and appends every response's `output`
  /// line to `output` (transactional: exactly once across crashes).
  sink_def<response> responses(std::filesystem::path output);

  /// Opens the log and serves on its own threads; an error names what failed (the log,
  /// the address).
  caf::error start();
  /// Stops serving: waiting clients get 503.
  void stop();
  /// The port it listens on (after start).
  [[nodiscard]] uint16_t port() const noexcept;
  [[nodiscard]] const ingress_counters& counters() const noexcept;
  /// Requests by route and status, as Prometheus text lines of `eddy_http_requests_total`.
  [[nodiscard]] std::string metrics_text() const;

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace eddy::service
