#pragma once

#include <cstdint>
#include <stdexcept>
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
  /// In a cluster: a partition's journal or standby copy belongs to a newer owner (a newer
  /// epoch of the assignment table); the stale one may not write it.
  fenced,
  /// A console request is malformed or names what does not exist (a mistyped command,
  /// operator or key, a missing or bad argument); its message says which.
  invalid_request,
  /// A savepoint is incomplete, damaged, of a newer format, or not a savepoint at all; its
  /// message names the directory and what is wrong.
  invalid_savepoint,
};

/// Thrown when a job's stored state cannot be used (a row of another state version, bytes
/// that do not decode, a journal read that fails): a fault of the state, not of the record
/// being processed, so supervision neither retries the record nor dead-letters it.
/// Returns the name of `x`, e.g. "invalid_graph".
std::string to_string(errc x);

/// Makes an error of category "eddy" with a human-readable context message.
caf::error make_error(errc code, std::string message);

} // namespace eddy

CAF_ERROR_CODE_ENUM(eddy::errc, "eddy")

namespace eddy {

/// Thrown when a job's stored state cannot be used (a row of another state version, bytes
/// that do not decode, a journal read that fails): a fault of the state, not of the record
/// being processed, so supervision neither retries the record nor dead-letters it.
class state_error : public std::runtime_error {
public:
  state_error(errc code, const std::string& what)
    : std::runtime_error(what)
    , code_(code) {}
  [[nodiscard]] errc code() const noexcept {
    return code_;
  }

private:
  errc code_;
};

/// Renders any error as one line; Eddy errors as "invalid_graph: operator 'x' ...".
std::string describe(const caf::error& err);

} // namespace eddy
