#pragma once

// Private to the runtime: `--restore.from` at the start of a job (see "Savepoints" in
// docs/design.md). The savepoint is verified and compared with the job before anything on
// disk changes; then its journals become the job's state (eddy/savepoint/restore.hpp) and the
// job starts from them as after a crash: sources resume after the cut, sinks are cut back to
// their length at the cut.

#include <filesystem>

#include <caf/error.hpp>

#include "eddy/config/options.hpp"
#include "eddy/graph/job_graph.hpp"

namespace eddy::detail {

/// Restores `opts.savepoint.restore_from` into `data_dir` for job `g`, or refuses naming what
/// does not match (another job, another shape, a damaged file, a sink file shorter than its
/// committed output).
[[nodiscard]] caf::error restore_job_state(const job_graph& g, const runtime_options& opts,
                                           const std::filesystem::path& data_dir);

} // namespace eddy::detail
