// The shopping-cart service: carts as keyed state, changed and read over HTTP.
//
//   GET    /carts/{user}                    the cart (unknown user: empty, version 0)
//   POST   /carts/{user}/items              {"sku":"A1","qty":2} adds (qty 1..1000)
//   PUT    /carts/{user}/items/{sku}        {"qty":n} sets (0 removes)
//   DELETE /carts/{user}/items/{sku}        removes
//   POST   /carts/{user}/checkout           the order; the cart is emptied (empty: 409)
//
// Every request is durable in the ingress log before it is applied, and answered after the
// cart's partition committed the change. Orders, and carts abandoned for
// --cart.abandon-after, are appended to --output as JSON lines.

#include <iostream>
#include <map>

#include "eddy/actors/engine.hpp"
#include "eddy/actors/metrics.hpp"
#include "eddy/eddy.hpp"
#include "eddy/service/http_ingress.hpp"
#include "eddy/service/serve.hpp"

namespace {

using eddy::service::http_call;
using eddy::service::rejection;
using eddy::service::request;
using eddy::service::response;

struct cart {
  std::map<std::string, int64_t> items;
  int64_t version = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(cart, items, version)

constexpr int64_t qty_max = 1000;

nlohmann::json items_json(const cart& c) {
  auto items = nlohmann::json::array();
  for (const auto& [sku, qty] : c.items) {
    items.push_back({{"sku", sku}, {"qty", qty}});
  }
  return items;
}

nlohmann::json cart_json(const std::string& user, const cart& c) {
  return {{"user", user}, {"items", items_json(c)}, {"version", c.version}};
}

response error(int status, const std::string& field, const std::string& message) {
  return response{0, status, {{"error", message}, {"field", field}}, {}};
}

/// Applies `r` to the user's cart `c`; the answer.
response apply(const request& r, const std::string& user, cart& c) {
  const auto& p = r.params;
  if (r.route == "get_cart") {
    return response{0, 200, cart_json(user, c), {}};
  }
  if (r.route == "add_item") {
    auto sku = p.at("sku").get<std::string>();
    auto i = c.items.find(sku);
    auto qty = (i == c.items.end() ? 0 : i->second) + p.at("qty").get<int64_t>();
    if (qty > qty_max) {
      return error(409, "qty", "a cart holds at most " + std::to_string(qty_max) + " of a sku");
    }
    c.items[sku] = qty;
  } else if (r.route == "set_item") {
    auto qty = p.at("qty").get<int64_t>();
    if (qty == 0) {
      c.items.erase(p.at("sku").get<std::string>());
    } else {
      c.items[p.at("sku").get<std::string>()] = qty;
    }
  } else if (r.route == "remove_item") {
    if (c.items.erase(p.at("sku").get<std::string>()) == 0) {
      return error(404, "sku", "the cart holds no " + p.at("sku").get<std::string>());
    }
  } else if (r.route == "checkout") {
    if (c.items.empty()) {
      return error(409, "items", "the cart is empty");
    }
    auto order_id = user + "-" + std::to_string(r.id);
    nlohmann::json order{{"order_id", order_id}, {"user", user}, {"items", items_json(c)}};
    auto line = order;
    line["kind"] = "order";
    line["at_ms"] = r.at_ms;
    c.items.clear();
    ++c.version;
    return response{0, 200, std::move(order), line.dump()};
  } else {
    return error(404, "route", "no route " + r.route);
  }
  ++c.version;
  return response{0, 200, cart_json(user, c), {}};
}

struct cart_settings {
  int64_t abandon_after_ms = 30 * 60'000;
  int64_t idempotency_keep_ms = 24 * 3'600'000;
};

/// The keyed function: answers every request once (Idempotency-Key), keeps the cart and
/// the timer that reports it abandoned.
auto cart_function(cart_settings s) {
  return [s](const request& r, auto& ctx, auto& out) {
    auto& state = ctx.template value<cart>("cart");
    auto c = state.get_or(cart{});
    auto before = c.version;
    auto res = eddy::service::answer_once(r, ctx, s.idempotency_keep_ms,
                                          [&] { return apply(r, ctx.key(), c); });
    if (c.version != before) {
      state.set(c);
      auto& due = ctx.template value<int64_t>("abandon_at");
      if (due.exists()) {
        ctx.delete_timer(due.get(), "abandon");
        due.clear();
      }
      if (!c.items.empty()) {
        due.set(r.at_ms + s.abandon_after_ms);
        ctx.register_timer(due.get(), "abandon");
      }
    }
    out.emit(std::move(res));
  };
}

/// A cart untouched for --cart.abandon-after: a cart_abandoned event, no answer.
auto abandon_function() {
  return [](const eddy::timer_fired& t, auto& ctx, auto& out) {
    auto& due = ctx.template value<int64_t>("abandon_at");
    auto c = ctx.template value<cart>("cart").get_or(cart{});
    if (!due.exists() || due.get() != t.at || c.items.empty()) {
      return;
    }
    due.clear();
    nlohmann::json event{{"kind", "cart_abandoned"},
                         {"user", ctx.key()},
                         {"items", items_json(c)},
                         {"version", c.version},
                         {"at_ms", t.at}};
    out.emit(response{0, 0, {}, event.dump()});
  };
}

request keyed(const http_call& call) {
  request r;
  r.key = eddy::service::require_id(call.params.at(0), "user");
  return r;
}

void add_routes(eddy::service::http_ingress& http) {
  using eddy::service::body_fields;
  using eddy::service::require_id;
  const std::string user = "/carts/([^/]+)";
  http.route("GET", user, "get_cart", keyed);
  http.route("POST", user + "/items", "add_item", [](const http_call& call) {
    auto r = keyed(call);
    body_fields body{call.body};
    r.params = {{"sku", body.id("sku")}, {"qty", body.integer("qty", 1, qty_max)}};
    return r;
  });
  http.route("PUT", user + "/items/([^/]+)", "set_item", [](const http_call& call) {
    auto r = keyed(call);
    body_fields body{call.body};
    r.params = {{"sku", require_id(call.params.at(1), "sku")},
                {"qty", body.integer("qty", 0, qty_max)}};
    return r;
  });
  http.route("DELETE", user + "/items/([^/]+)", "remove_item", [](const http_call& call) {
    auto r = keyed(call);
    r.params = {{"sku", require_id(call.params.at(1), "sku")}};
    return r;
  });
  http.route("POST", user + "/checkout", "checkout", keyed);
}

} // namespace

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  eddy::command_line cli{"cart-service", "shopping carts as keyed state, served over HTTP"};
  eddy::service::add_service_options(
    cli, "orders and cart_abandoned events as JSON lines (default: <data-dir>/cart-service.jsonl)");
  cli.app_options().add_options()(
    "cart.abandon-after", po::value<std::string>()->default_value("30min"),
    "a non-empty cart untouched this long is reported abandoned (ms, s, min, h, d)");
  if (auto code = cli.parse(argc, argv)) {
    return *code;
  }
  eddy::service::service_settings service;
  if (auto problem = eddy::service::read_service_options(cli, "cart-service", service)) {
    return cli.usage_error(*problem);
  }
  cart_settings settings;
  settings.idempotency_keep_ms = service.idempotency_keep_ms;
  auto abandon =
    eddy::service::parse_duration_ms(cli.values()["cart.abandon-after"].as<std::string>());
  if (!abandon) {
    return cli.usage_error("--cart.abandon-after must be a duration such as 30min, 90s, 1500ms");
  }
  settings.abandon_after_ms = *abandon;
  auto output = service.output;
  eddy::service::http_ingress http{service.ingress};
  add_routes(http);

  eddy::job_builder job{"cart-service"};
  job.partitions(cli.runtime.partitions);
  job.source("requests", http.source())
    .key_by([](const request& r) { return r.key; })
    .declare_state<eddy::value_state<cart>>("cart")
    .process<response>("carts", cart_function(settings), abandon_function())
    .sink("responses", http.responses(output));
  return eddy::service::serve(cli, http, "cart-service", job.build(),
                              "orders and events in " + output.string());
}
