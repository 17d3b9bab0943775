#pragma once

// A savepoint on disk: a directory `<savepoint-dir>/<id>/` holding copies of a job's journals
// and `manifest.json`, which describes them (the job's shape, its sources' offsets and sinks'
// lengths at the cut, each file's size and CRC32C). A savepoint is written under
// `<id>.partial/` and renamed into place once its manifest is synced, so a directory with a
// manifest is complete and anything else is a partial one to ignore and clean up
// (docs/design.md, "Savepoints").

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

namespace eddy {

/// The manifest format this Eddy writes and the newest it reads.
inline constexpr uint32_t savepoint_format_version = 1;

/// The name of a savepoint's manifest inside its directory.
inline constexpr std::string_view savepoint_manifest_name = "manifest.json";

/// The suffix of a savepoint directory being written.
inline constexpr std::string_view savepoint_partial_suffix = ".partial";

/// One copied file: a partition journal or a transactional sink's journal.
struct savepoint_file {
  /// Relative to the savepoint directory ("count/p0.db").
  std::string path;
  uint64_t bytes = 0;
  uint32_t crc32c = 0;
  /// Keys with state and the newest change's sequence number (0 for a sink's journal).
  uint64_t keys = 0;
  uint64_t last_seq = 0;
};

/// A state a keyed operator declared: its name and its cell type ("value<int64_t>").
struct savepoint_state {
  std::string name;
  std::string type;
};

/// One node of the job graph at the cut.
struct savepoint_node {
  std::string name;
  /// "source", "operator", "keyed" or "sink".
  std::string kind;
  uint32_t instances = 0;
  /// Keyed nodes only: the key type, the state version and the declared states.
  std::string key_type;
  uint32_t state_version = 0;
  std::vector<savepoint_state> states;
};

/// Where a source stood at the cut.
struct savepoint_source {
  std::string name;
  /// One offset for all instances when aligned, else one per instance.
  bool aligned = true;
  std::vector<uint64_t> offsets;
  /// The largest event time read before the cut, if any.
  std::optional<int64_t> max_ts;
  /// The input it read (a path, or empty) and the size and CRC32C of its bytes before the cut.
  std::string input;
  uint64_t input_bytes = 0;
  uint32_t input_crc32c = 0;
};

/// A sink's committed output at the cut.
struct savepoint_sink {
  std::string name;
  std::string path;
  uint64_t length = 0;
};

struct savepoint_manifest {
  uint32_t format = savepoint_format_version;
  std::string id;
  std::string job;
  std::string eddy_version;
  int64_t created_at_ms = 0;
  /// What took it: "console", "stop", "rescale", "bootstrap".
  std::string trigger;
  /// How long the job's sources were held for the cut.
  double pause_ms = 0;
  uint32_t partitions = 0;
  std::vector<savepoint_node> nodes;
  std::vector<savepoint_source> sources;
  std::vector<savepoint_sink> sinks;
  std::vector<savepoint_file> files;

  /// Bytes of all files.
  [[nodiscard]] uint64_t bytes() const noexcept;
};

/// The manifest as JSON (indented, fields in a fixed order; CRCs as 8 hex digits).
[[nodiscard]] std::string to_json(const savepoint_manifest& m);

/// Reads a manifest; an invalid_savepoint error names `where` and the first field that is
/// missing or of the wrong type, or a format newer than this Eddy reads.
[[nodiscard]] caf::expected<savepoint_manifest> parse_manifest(std::string_view json,
                                                               const std::filesystem::path& where);

/// CRC32C (Castagnoli) of `bytes`, continuing from `crc` (0 to start).
[[nodiscard]] uint32_t crc32c(std::string_view bytes, uint32_t crc = 0) noexcept;

/// The size and CRC32C of a file's contents.
struct file_digest {
  uint64_t bytes = 0;
  uint32_t crc32c = 0;
};
/// The size and CRC32C of a file's contents, of its first `limit` bytes at most.
[[nodiscard]] caf::expected<file_digest> digest_file(const std::filesystem::path& file,
                                                     uint64_t limit = UINT64_MAX);

// -- savepoint directories -------------------------------------------------------------------

/// A directory found under a savepoint dir: complete (with its manifest) or partial.
struct savepoint_entry {
  std::filesystem::path dir;
  bool complete = false;
  /// Complete ones: the manifest, or why it could not be read.
  std::optional<savepoint_manifest> manifest;
  std::string problem;
};

/// The savepoints under `root`, complete and partial, oldest first (by creation time, then
/// name). A missing `root` holds none.
[[nodiscard]] caf::expected<std::vector<savepoint_entry>>
list_savepoints(const std::filesystem::path& root);

/// The manifest of the savepoint at `path`: its directory or its manifest.json.
[[nodiscard]] caf::expected<savepoint_manifest> read_savepoint(const std::filesystem::path& path);

/// The directory of the savepoint at `path` (its directory or its manifest.json).
[[nodiscard]] std::filesystem::path savepoint_dir_of(const std::filesystem::path& path);

/// A savepoint's manifest and what checking its files found.
struct savepoint_check {
  savepoint_manifest manifest;
  /// One line per problem ("count/p0.db: CRC32C 1a2b3c4d, the manifest says 5e6f7a8b");
  /// none when it verifies.
  std::vector<std::string> problems;
};

/// Checks every file the manifest lists against its size and CRC32C.
[[nodiscard]] caf::expected<savepoint_check> verify_savepoint(const std::filesystem::path& path);

/// Completes the savepoint written into `partial` (a directory named `<id>.partial`): fills
/// each listed file's size and CRC32C, writes and syncs the manifest, syncs the files and
/// renames the directory to `<id>`. Returns the complete directory.
[[nodiscard]] caf::expected<std::filesystem::path>
finalize_savepoint(const std::filesystem::path& partial, savepoint_manifest m);

/// Removes the savepoint at `path`; refuses a directory that is not a savepoint (neither a
/// manifest nor the partial suffix), so that a mistyped path deletes nothing.
[[nodiscard]] caf::error delete_savepoint(const std::filesystem::path& path);

/// Removes the partial savepoints under `root` (what a crash while writing one left): those
/// of job `job` (`is_partial_savepoint_of`), or every one when `job` is empty; the number
/// removed.
[[nodiscard]] caf::expected<size_t> remove_partial_savepoints(const std::filesystem::path& root,
                                                              const std::string& job = {});

// -- savepoint ids ---------------------------------------------------------------------------

/// The current UTC time as savepoint ids and moved-aside directories spell it
/// ("20261208T013604Z").
[[nodiscard]] std::string utc_stamp();

/// A new savepoint id `<job>-<utc_stamp>-<nnnn>`, the first not taken under `root` (complete
/// or partial).
[[nodiscard]] std::string new_savepoint_id(const std::filesystem::path& root,
                                           const std::string& job);

/// Whether `dir` is a partial savepoint of job `job` (`<id>.partial` of a `new_savepoint_id`
/// of it; a job whose name extends this one's, "wc-2" for "wc", is another job).
[[nodiscard]] bool is_partial_savepoint_of(const std::filesystem::path& dir,
                                           const std::string& job);

} // namespace eddy
