#pragma once

// The ingress log of a service: every request the HTTP ingress accepts is appended here,
// durable before the client hears anything, and the job reads it as a replayable source
// (the sequence number is the position), so that an acknowledged request survives a
// crash and is applied exactly once (see "Services" in the README).

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <caf/expected.hpp>

#include "eddy/core/durability.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace eddy::service {

/// An append-only SQLite log of request bodies, numbered 1, 2, ... Not thread-safe.
class ingress_log {
public:
  /// Opens (creates) the log at `file`. With durability::machine every append is fsynced
  /// (power-loss safe); with process it survives a crash of the process (kill -9).
  static caf::expected<ingress_log> open(const std::filesystem::path& file, durability level);
  /// Writes a consistent copy of the log at `file`, as it is now, to `target` (one file,
  /// synced), while a service may go on appending to it: what a savepoint keeps of a
  /// service's input.
  [[nodiscard]] static caf::error copy_live(const std::filesystem::path& file,
                                            const std::filesystem::path& target);

  ingress_log(ingress_log&& other) noexcept;
  ingress_log& operator=(ingress_log&& other) noexcept;
  ingress_log(const ingress_log&) = delete;
  ingress_log& operator=(const ingress_log&) = delete;
  ~ingress_log();

  /// Appends one entry after the last one in the file (also one another connection wrote:
  /// a copy kept by this node's host becomes the log when this node leads); it is durable
  /// once this returns. Its sequence number.
  caf::expected<uint64_t> append(std::string_view body);
  /// The number the next `append` gives (reading the file, as `append` does).
  caf::expected<uint64_t> next_seq();
  /// Keeps entry `seq` of another node's log (a copy): appended when it follows the last
  /// one, ignored when it is there already. Returns the last sequence number held: less
  /// than `seq - 1` tells the sender which earlier entries are missing.
  caf::expected<uint64_t> keep(uint64_t seq, std::string_view body);
  /// Up to `max` entries after sequence number `seq`, in order.
  caf::expected<std::vector<std::pair<uint64_t, std::string>>> read_after(uint64_t seq, size_t max);
  /// The sequence number of the last entry (0: none).
  [[nodiscard]] uint64_t last_seq() const noexcept {
    return last_;
  }
  /// Drops the entries up to `seq` (every consumer committed them).
  caf::error truncate_through(uint64_t seq);

private:
  ingress_log() = default;
  void close() noexcept;
  caf::error fail(const std::string& what) const;
  caf::error refresh_last();
  caf::error insert(uint64_t seq, std::string_view body);

  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* select_ = nullptr;
  sqlite3_stmt* last_stmt_ = nullptr;
  uint64_t last_ = 0;
  std::filesystem::path file_;
};

} // namespace eddy::service
