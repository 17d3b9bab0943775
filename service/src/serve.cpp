#include "eddy/service/serve.hpp"

#include <iostream>

#include "eddy/actors/engine.hpp"
#include "eddy/actors/metrics.hpp"
#include "eddy/core/error.hpp"
#include "eddy/eddy.hpp"

namespace eddy::service {

std::optional<int64_t> parse_duration_ms(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
    ++digits;
  }
  if (digits == 0 || digits > 12) {
    return std::nullopt;
  }
  auto n = std::stoll(text.substr(0, digits));
  auto unit = text.substr(digits);
  int64_t scale = unit == "ms"    ? 1
                  : unit == "s"   ? 1000
                  : unit == "min" ? 60'000
                  : unit == "h"   ? 3'600'000
                  : unit == "d"   ? 86'400'000
                                  : 0;
  if (scale == 0 || n <= 0) {
    return std::nullopt;
  }
  return n * scale;
}

void add_service_options(eddy::command_line& cli, const std::string& output_what) {
  namespace po = boost::program_options;
  cli.app_options().add_options()("output", po::value<std::string>(), output_what.c_str())(
    "http.idempotency-keep", po::value<std::string>()->default_value("24h"),
    "how long a request's Idempotency-Key is remembered (ms, s, min, h, d)")(
    "http.max-pending", po::value<int>()->default_value(1024),
    "requests waiting for their answer at most; more get 503 with Retry-After");
}

std::optional<std::string> read_service_options(const eddy::command_line& cli,
                                                const std::string& name, service_settings& s) {
  const auto& vm = cli.values();
  auto keep = parse_duration_ms(vm["http.idempotency-keep"].as<std::string>());
  if (!keep) {
    return "--http.idempotency-keep must be a duration such as 24h, 10min";
  }
  s.idempotency_keep_ms = *keep;
  auto pending_max = vm["http.max-pending"].as<int>();
  if (pending_max < 1 || pending_max > 1'000'000) {
    return "--http.max-pending must be in 1..1000000";
  }
  const auto& data_dir = cli.common.data_dir;
  s.output = vm.count("output") ? std::filesystem::path{vm["output"].as<std::string>()}
                                : data_dir / (name + ".jsonl");
  auto& io = s.ingress;
  io.log_file = data_dir / name / "ingress.db";
  io.level = cli.runtime.state.level;
  io.host = cli.common.http_host;
  io.port = cli.common.http_port;
  io.pending_max = static_cast<size_t>(pending_max);
  return std::nullopt;
}

int serve(eddy::command_line& cli, http_ingress& http, const std::string& name,
          caf::expected<eddy::job_graph> graph, const std::string& outputs) {
  if (!graph) {
    std::cerr << name << ": error: " << eddy::describe(graph.error()) << "\n";
    return 2;
  }
  // A service answers one request at a time per client: a partly filled batch waits 1 ms,
  // not the 5 ms that suit throughput (docs/benchmarks.md), unless the user chose.
  if (cli.values()["runtime.linger-ms"].defaulted()) {
    cli.runtime.linger_ms = 1;
  }
  // A request is answered after the commit that holds its change (durable before the 2xx):
  // its partition commits the group it came in, not after an interval, unless the user
  // chose one.
  if (cli.values()["state.commit-interval-ms"].defaulted()) {
    cli.runtime.state.commit_interval_ms = 0;
  }
  eddy::install_signal_handlers();
  eddy::engine engine{cli.runtime, cli.common};
  auto started = engine.start(std::move(*graph));
  if (!started) {
    std::cerr << name << ": error: " << eddy::describe(started.error()) << "\n";
    return 2;
  }
  auto handle = *started;
  http.direct("GET", "/metrics", [&http, handle](const eddy::service::http_call&) {
    return http_ingress::direct_answer{200, "text/plain; version=0.0.4",
                                       http.metrics_text() + eddy::prometheus_text(*handle)};
  });
  http.direct("GET", "/health", [](const eddy::service::http_call&) {
    return http_ingress::direct_answer{200, "application/json", R"({"ok":true})"};
  });
  if (!cli.common.node_seeds.empty()) {
    // Any member takes any request: the leader's ingress serves it, with a copy of its
    // log on the member that would lead next.
    http.in_cluster([&engine] { return engine.route_http(); },
                    [&engine, name](const std::vector<std::pair<uint64_t, std::string>>& entries) {
                      return engine.replicate_ingress(name, entries);
                    });
  }
  if (auto err = http.start()) {
    std::cerr << name << ": error: " << eddy::describe(err) << "\n";
    handle->stop();
    return 2;
  }
  engine.set_http_address(cli.common.http_host + ":" + std::to_string(http.port()));
  std::cerr << name << ": listening on http://" << cli.common.http_host << ":" << http.port()
            << " (state in " << cli.common.data_dir.string() << ", " << outputs << ")" << std::endl;
  auto err = handle->wait_stopping_on_signal();
  http.stop();
  if (err) {
    std::cerr << name << ": error: " << eddy::describe(err) << "\n";
    return 1;
  }
  return 0;
}

} // namespace eddy::service
