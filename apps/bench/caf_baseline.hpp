#pragma once

#include <cstdint>

#include "eddy/config/options.hpp"
#include "work.hpp"

namespace bench {

/// What one would write with CAF alone: a producer and a consumer actor passing
/// std::vector batches of the same values as the engine's case (keyed_count when `keyed`,
/// else stateless), batches of --runtime.batch-events-max values, with the credit window of
/// the engine's channels.
run_result run_caf_baseline(bool keyed, uint64_t events, const eddy::runtime_options& rt);

} // namespace bench
