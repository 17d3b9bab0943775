#pragma once

// What a service's keyed function sees of an HTTP request and answers (see http_ingress.hpp),
// the checks a route applies before a request is accepted, and answering a retried request
// (Idempotency-Key) once.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace eddy::service {

/// An accepted request, as the job reads it back from the ingress log.
struct request {
  /// Its sequence number in the ingress log: the id its answer carries.
  uint64_t id = 0;
  /// The name of the route it came through, e.g. "add_item".
  std::string route;
  /// The key of the partition that handles it (a user, a playlist).
  std::string key;
  /// The path's parameters and the body's fields, checked by the route.
  nlohmann::json params;
  /// The client's Idempotency-Key header (empty: none).
  std::string idempotency_key;
  /// When the ingress accepted it (ms since the epoch): the time the function sees, also
  /// when the request is replayed after a crash.
  int64_t at_ms = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(request, id, route, key, params, idempotency_key, at_ms)

/// The answer to a request (id 0: no request waits, e.g. a timer's event), and a line for
/// the service's output (orders, events; empty: none).
struct response {
  uint64_t id = 0;
  int status = 200;
  nlohmann::json body;
  std::string output;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(response, id, status, body, output)

/// A request the ingress refuses before it is logged: thrown by a route's parse function.
struct rejection {
  int status = 400;
  /// The field at fault ("qty", "user", "body").
  std::string field;
  std::string message;
};

/// True for ids of 1 to 64 characters of [A-Za-z0-9_.-].
bool valid_id(std::string_view s) noexcept;

/// `s` when it is a valid id, else a rejection naming `field`.
std::string require_id(std::string_view s, const std::string& field);

/// The fields of a JSON request body, each checked as it is read: a rejection names the
/// first field that is missing or has the wrong type or range.
class body_fields {
public:
  /// Parses `body` (an empty body is an empty object); a rejection if it is not a JSON
  /// object.
  explicit body_fields(std::string_view body);
  /// A required integer in [lo, hi].
  int64_t integer(const std::string& field, int64_t lo, int64_t hi) const;
  /// An optional integer in [lo, hi]; `fallback` when absent.
  int64_t integer_or(const std::string& field, int64_t lo, int64_t hi, int64_t fallback) const;
  /// A required id (see valid_id).
  std::string id(const std::string& field) const;

private:
  nlohmann::json doc_;
};

/// What a keyed function remembers of a request answered with an Idempotency-Key.
struct remembered {
  int status = 0;
  nlohmann::json body;
  int64_t at_ms = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(remembered, status, body, at_ms)

/// Answers `r` by `apply()` (which changes the key's state and returns the answer), once
/// per Idempotency-Key: a retry within `keep_ms` of the first gets the first answer again
/// and changes nothing. Kept in the key's map state "idempotency"; older entries are
/// dropped as requests come. Times are the requests' own, so a replay decides the same.
template <class Ctx, class F>
response answer_once(const request& r, Ctx& ctx, int64_t keep_ms, F&& apply) {
  if (r.idempotency_key.empty()) {
    response res = apply();
    res.id = r.id;
    return res;
  }
  auto& seen = ctx.template map<std::string, remembered>("idempotency");
  std::vector<std::string> expired;
  for (const auto& [k, m] : seen.entries()) {
    if (r.at_ms - m.at_ms > keep_ms) {
      expired.push_back(k);
    }
  }
  for (const auto& k : expired) {
    seen.remove(k);
  }
  if (const auto* m = seen.find(r.idempotency_key)) {
    return response{r.id, m->status, m->body, {}};
  }
  response res = apply();
  res.id = r.id;
  seen.put(r.idempotency_key, remembered{res.status, res.body, r.at_ms});
  return res;
}

} // namespace eddy::service
