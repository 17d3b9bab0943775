#pragma once

// Every fixed timeout and bound of the HTTP ingress, in one place; what users configure
// (--http.max-pending, the body limit, the answer timeout) is in ingress_options
// (eddy/service/http_ingress.hpp). Names put the qualifier last.

#include <chrono>
#include <cstddef>

namespace eddy::service::limits {

using namespace std::chrono_literals;

/// Worker threads beyond `pending_max` (each waiting request holds one): for the routes
/// answered directly (/health, /metrics) and the 503s that refuse requests over the bound.
inline constexpr size_t spare_workers = 4;
/// How long a member waits to connect to the leader it forwards a request to.
inline constexpr auto forward_connect_timeout = std::chrono::seconds{2s};
/// How much longer than the answer timeout a member waits for the leader's answer: the
/// leader answers 202 itself once its own answer timeout passed.
inline constexpr auto forward_answer_slack = std::chrono::seconds{5s};
/// How long the ingress source blocks waiting for a request before it returns to its
/// actor's mailbox (stop, console requests).
inline constexpr auto source_wait = std::chrono::milliseconds{20ms};

static_assert(spare_workers >= 2, "/health and /metrics must answer while requests wait");
static_assert(forward_answer_slack > forward_connect_timeout);
static_assert(source_wait < 1s, "a stop must not wait on an idle ingress");

} // namespace eddy::service::limits
