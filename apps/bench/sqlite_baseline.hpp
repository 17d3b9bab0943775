#pragma once

#include <cstdint>
#include <filesystem>

#include "eddy/core/durability.hpp"
#include "work.hpp"

namespace bench {

/// The keyed_count events written with plain SQLite: one table in WAL mode, a prepared
/// upsert per event, 1000 events per transaction. `level` picks the synchronous mode
/// (process: NORMAL, machine: FULL). Timed from opening the new file in `dir` to closing it
/// (the close checkpoints the WAL), as the engine's journals are opened in `engine::start`
/// and closed before `job_handle::wait` returns.
run_result run_sqlite_baseline(uint64_t events, eddy::durability level,
                               const std::filesystem::path& dir);

} // namespace bench
