#pragma once

// A job's state directory `<data-dir>/<job>/` replaced by a savepoint's journals (see
// "Savepoints" in docs/design.md), and moved aside instead of deleted (`--state.reset`).

#include <filesystem>
#include <string>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "eddy/savepoint/manifest.hpp"

namespace eddy {

/// The file in a restored job's directory that names the savepoint it came from.
inline constexpr std::string_view restored_marker_name = "RESTORED";

/// Renames `<data_dir>/<job>` to `<data_dir>/<job>.<tag>-<UTC time>[-n]` (a name not taken);
/// answers the new path, or empty when there was nothing to move.
[[nodiscard]] caf::expected<std::filesystem::path>
move_job_state_aside(const std::filesystem::path& data_dir, const std::string& job,
                     const std::string& tag);

/// What `place_savepoint` did.
struct restore_outcome {
  /// The job's directory holds this savepoint's state already (a restart of a restored job
  /// with the same --restore.from): nothing was changed.
  bool already = false;
  /// Where the state that was there went (empty: there was none).
  std::filesystem::path aside;
};

/// Makes the journals of the verified savepoint `m` at `savepoint` the state of its job under
/// `data_dir`: they are copied into `<job>.restoring/` and synced, with a `RESTORED` file
/// naming the savepoint written last; then a current `<job>/` is moved aside
/// (`<job>.before-restore-<time>`, after its ingress log, a service's accepted requests, was
/// copied over: they are the job's input, not its state) and the copy renamed into place.
/// A crash leaves either the old directory (and a `.restoring` one that the next attempt
/// replaces) or a complete restore.
[[nodiscard]] caf::expected<restore_outcome> place_savepoint(const std::filesystem::path& savepoint,
                                                             const savepoint_manifest& m,
                                                             const std::filesystem::path& data_dir);

} // namespace eddy
