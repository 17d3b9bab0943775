#pragma once

// What the service programs share: durations in options ("30min", "90s", "1500ms", "2h",
// "1d"), the ingress options from the common ones, and running a service until SIGINT or
// SIGTERM with /metrics and /health (see "Services" in docs/design.md).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <caf/expected.hpp>

#include "eddy/config/options.hpp"
#include "eddy/graph/job_graph.hpp"
#include "eddy/service/http_ingress.hpp"

namespace eddy::service {

/// Milliseconds of `text` (a positive integer and a unit: ms, s, min, h, d); nullopt when
/// it is not one.
std::optional<int64_t> parse_duration_ms(const std::string& text);

/// The options every service has, read from the command line.
struct service_settings {
  /// The service's output: JSON lines of its events (see the service).
  std::filesystem::path output;
  /// Default: 24 h (--http.idempotency-keep).
  int64_t idempotency_keep_ms = 24 * 3'600'000;
  ingress_options ingress;
};

/// Adds --output (described as `output_what`), --http.idempotency-keep and
/// --http.max-pending.
void add_service_options(eddy::command_line& cli, const std::string& output_what);

/// The options of service `name` (its ingress log in <data-dir>/<name>/ingress.db, its
/// output by default in <data-dir>/<name>.jsonl); a message naming a bad option.
std::optional<std::string> read_service_options(const eddy::command_line& cli,
                                                const std::string& name, service_settings& s);

/// Runs service `name`: the job `graph` fed and answered by `http`, which also serves
/// /metrics (the HTTP and the job's counters) and /health, until SIGINT or SIGTERM. The
/// program's exit code (2: it could not start).
int serve(eddy::command_line& cli, http_ingress& http, const std::string& name,
          caf::expected<eddy::job_graph> graph, const std::string& outputs);

} // namespace eddy::service
