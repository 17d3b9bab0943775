#pragma once

#include <string>
#include <string_view>

namespace eddy {

enum class log_level : int { error = 0, warn = 1, info = 2, debug = 3 };

/// Parses "error", "warn", "info" or "debug"; returns false for anything else.
bool parse_log_level(std::string_view text, log_level& out) noexcept;

/// Sets the most verbose level that is printed (default: info). Thread-safe.
void set_log_level(log_level level) noexcept;

/// True if messages of `level` are printed.
bool log_enabled(log_level level) noexcept;

/// Prints one structured line to stderr:
/// `2026-11-28T03:31:07.123Z level=info component=engine msg="job wordcount started"`.
/// Thread-safe; lines from different threads never interleave.
void log(log_level level, std::string_view component, std::string_view message);

} // namespace eddy
