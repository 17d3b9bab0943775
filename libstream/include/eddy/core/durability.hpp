#pragma once

#include <cstdint>

namespace eddy {

/// What a partition's state survives (see "State and its journal" in docs/design.md).
enum class durability : uint8_t {
  /// State in memory only; nothing survives the process.
  none,
  /// Survives kill -9: SQLite journals with synchronous=NORMAL.
  process,
  /// Survives power loss: synchronous=FULL, with group commit.
  machine,
};

/// "none", "process", "machine".
const char* to_string(durability d) noexcept;

} // namespace eddy
