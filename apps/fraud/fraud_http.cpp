#include "fraud_http.hpp"

#include <string>
#include <variant>

#include "card_state.hpp"
#include "eddy/actors/engine.hpp"
#include "eddy/service/http_ingress.hpp"
#include "eddy/service/serve.hpp"

namespace fraud {

namespace {

using eddy::service::http_call;
using eddy::service::rejection;
using eddy::service::request;
using eddy::service::response;
using nlohmann::json;

/// The service's name: its job, its state and its ingress log in <data-dir>/fraud-detector.
constexpr const char* service_name = "fraud-detector";

response error(int status, const std::string& field, const std::string& message) {
  return response{0, status, {{"error", message}, {"field", field}}, {}};
}

/// The records as lines of the output file: one per record, joined by '\n' (the responses
/// sink writes the string as it is and a newline, so each record is a line of its own, the
/// same line the file mode writes).
std::string output_lines(const std::vector<output_record>& records) {
  std::string lines;
  for (const auto& r : records) {
    if (!lines.empty()) {
      lines += '\n';
    }
    lines += eddy::to_json_line(r);
  }
  return lines;
}

/// POST /transactions: the body checked as the file mode checks a line (the first problem
/// names the field), and the tx id also as an id; the card is the key.
request parse_transaction(const http_call& call) {
  auto doc = json::parse(call.body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    throw rejection{400, "body",
                    "the body must be a JSON object: "
                    "{\"tx\",\"card\",\"amount\",\"merchant\",\"country\",\"ts\"}"};
  }
  auto parsed = classify_transaction(doc);
  if (const auto* bad = std::get_if<invalid_input>(&parsed)) {
    throw rejection{400, bad->field, bad->reason};
  }
  const auto& t = std::get<transaction>(parsed);
  if (!eddy::service::valid_id(t.tx)) {
    throw rejection{400, "tx", "field 'tx' must match [A-Za-z0-9_.-]{1,64}"};
  }
  request r;
  r.key = t.card;
  r.params = {{"tx", t.tx},           {"card", t.card},
              {"amount", t.amount},   {"merchant", t.merchant},
              {"country", t.country}, {"ts", t.ts}};
  return r;
}

request card_request(const http_call& call) {
  request r;
  r.key = eddy::service::require_id(call.params.at(0), "card");
  return r;
}

void add_routes(eddy::service::http_ingress& http) {
  http.route("POST", "/transactions", "transaction", parse_transaction);
  http.route("POST", "/cards/([^/]+)/unblock", "unblock", card_request);
  http.route("GET", "/cards/([^/]+)", "get_card", card_request);
}

response check(const request& r, const thresholds& limits, card_context& ctx) {
  auto parsed = classify_transaction(r.params);
  const auto* t = std::get_if<transaction>(&parsed);
  if (t == nullptr) {
    // Not from the route, which checked it: an ingress log written by another version.
    const auto& bad = std::get<invalid_input>(parsed);
    return error(400, bad.field, bad.reason);
  }
  auto result = check_transaction(*t, limits, ctx);
  json body{{"tx", t->tx},
            {"card", t->card},
            {"decision", to_string(result.verdict)},
            {"alerts", json::array()}};
  for (const auto& record : result.records) {
    if (record.kind == "alert") {
      body["alerts"].push_back({{"rule", record.rule}, {"evidence", record.evidence}});
    } else if (record.kind == "rejected") {
      body["reason"] = record.reason;
    }
  }
  return response{0, 200, std::move(body), output_lines(result.records)};
}

/// Applies `r` to the card `ctx.key()`; the answer and the output lines.
response apply(const request& r, const thresholds& limits, card_context& ctx) {
  if (r.route == "transaction") {
    return check(r, limits, ctx);
  }
  if (r.route == "unblock") {
    // The time the service accepted the request stands for the command's event time.
    auto record = unblock(unblock_command{ctx.key(), r.at_ms}, ctx);
    auto line = output_lines({record});
    if (record.kind != "unblocked") {
      auto res = error(409, "card", record.reason);
      res.output = std::move(line);
      return res;
    }
    return response{0, 200, {{"card", ctx.key()}, {"unblocked", true}}, std::move(line)};
  }
  if (r.route == "get_card") {
    return response{0, 200, card_json(ctx), {}};
  }
  return error(404, "route", "no route " + r.route);
}

} // namespace

int serve_http(eddy::command_line& cli, const thresholds& limits,
               const std::filesystem::path& output) {
  eddy::service::service_settings service;
  if (auto problem = eddy::service::read_service_options(cli, service_name, service)) {
    return cli.usage_error(*problem);
  }
  service.output = output;
  eddy::service::http_ingress http{service.ingress};
  add_routes(http);

  eddy::job_builder job{service_name};
  job.partitions(cli.runtime.partitions);
  auto keyed = job.source("requests", http.source()).key_by([](const request& r) { return r.key; });
  auto keep_ms = service.idempotency_keep_ms;
  declare_card_state(keyed)
    .process<response>("check",
                       [limits, keep_ms](const request& r, card_context& ctx, auto& out) {
                         out.emit(eddy::service::answer_once(
                           r, ctx, keep_ms, [&] { return apply(r, limits, ctx); }));
                       })
    .sink("responses", http.responses(output));
  return eddy::service::serve(cli, http, service_name, job.build(), "alerts in " + output.string());
}

} // namespace fraud
