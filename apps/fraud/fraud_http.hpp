#pragma once

// fraud-detector --input http: the same checks as on a file, on transactions that clients
// POST, each answered with its decision.
//
//   POST /transactions            {"tx","card","amount","merchant","country","ts"}: 200
//                                 {"tx","card","decision":"accepted"|"flagged"|"rejected",
//                                 "alerts":[{"rule","evidence"}...],"reason" (rejected)}
//   POST /cards/{card}/unblock    200 {"card","unblocked":true}; 409 if not blocked
//   GET  /cards/{card}            200 {"card","blocked_by" (null: not blocked),"recent",
//                                 "count","mean"}
//   GET  /metrics, GET /health
//
// A transaction is validated by the route, before it is logged: a missing or wrong field, an
// amount <= 0, a tx or card id not matching [A-Za-z0-9_.-]{1,64} is a 400 {"error","field"}.
// The output file gets the records the file mode would write for the same transactions and
// unblocks, exactly once: the alerts, the rejections and the unblocks.

#include <filesystem>

#include "eddy/eddy.hpp"
#include "rules.hpp"

namespace fraud {

/// Serves the API until SIGINT or SIGTERM, the job's state and the ingress log in
/// <data-dir>/fraud-detector; the program's exit code (2: a usage error, or it could not
/// start).
int serve_http(eddy::command_line& cli, const thresholds& limits,
               const std::filesystem::path& output);

} // namespace fraud
