#pragma once

#include <cstdint>

#include "cases.hpp"
#include "eddy/config/options.hpp"

namespace bench {

/// The child side of `--run-one CASE VARIANT`: runs variant `v` of case `c` once and prints
/// one line of key=value fields (what it measured, its peak RSS) for the parent. Returns the
/// exit code: 0, or 1 after printing the error.
int run_one(const case_info& c, const variant_info& v, uint64_t events, uint32_t run_index,
            const eddy::command_line& cli);

} // namespace bench
