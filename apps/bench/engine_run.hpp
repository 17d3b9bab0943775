#pragma once

#include <cstdint>
#include <optional>

#include "cases.hpp"
#include "eddy/config/options.hpp"
#include "work.hpp"

namespace bench {

/// Runs variant `v` of case `c` on the engine over `events` events (restart: keys; run
/// `run_index` of the case) and reads its counters. Prints the error and returns nullopt when
/// the job cannot be built, fails, or restarts another number of times than `v.failures`.
std::optional<run_result> run_engine(const case_info& c, const variant_info& v, uint64_t events,
                                     uint32_t run_index, eddy::runtime_options rt,
                                     const eddy::common_options& common);

} // namespace bench
