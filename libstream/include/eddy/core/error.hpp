#pragma once

#include <cstdint>
#include <string>

#include <caf/error.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>

namespace eddy {

/// Error codes of Eddy's own failures, carried in `caf::error` with category "eddy".
enum class errc : uint8_t {
  none = 0,
  /// The job graph is malformed (names, parallelism, missing sinks, ...).
  invalid_graph,
  /// A configuration value is out of range or inconsistent with another one.
  invalid_config,
  /// A file could not be opened, read or written.
  io_failure,
  /// User code threw while processing a record.
  user_code_failed,
  /// An actor of the job exited abnormally.
  actor_failed,
  /// A state file belongs to another job, operator, partition or partition count, or was
  /// written by a newer Eddy.
  state_mismatch,
  /// A write failed because the disk (or the file system quota) is full.
  disk_full,
  /// A state journal is damaged or is not an Eddy journal at all.
  corrupt_journal,
};

/// Returns the name of `x`, e.g. "invalid_graph".
std::string to_string(errc x);

/// Makes an error of category "eddy" with a human-readable context message.
caf::error make_error(errc code, std::string message);

} // namespace eddy

CAF_ERROR_CODE_ENUM(eddy::errc, "eddy")

namespace eddy {

/// Renders any error as one line; Eddy errors as "invalid_graph: operator 'x' ...".
std::string describe(const caf::error& err);

} // namespace eddy
