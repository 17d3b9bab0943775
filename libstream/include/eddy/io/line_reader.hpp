#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

namespace eddy {

/// Reads a file (or stdin) line by line, tracking the line number and the byte offset of
/// the next line: the replay position of a JSONL source. Owned by one source; not
/// thread-safe.
class line_reader {
public:
  /// Opens `path`; "-" reads stdin. Throws std::runtime_error naming the path on failure.
  explicit line_reader(const std::filesystem::path& path);
  ~line_reader();
  line_reader(const line_reader&) = delete;
  line_reader& operator=(const line_reader&) = delete;

  /// Reads the next line without its newline (a trailing '\r' is kept out too). Returns
  /// false at end of input or when a signal interrupted a blocking read.
  bool next(std::string& line);

  /// Continues reading at a position saved earlier from `offset()` and `line_number()`
  /// (replay after a restart). Throws std::runtime_error for stdin or a failed seek.
  void seek(uint64_t offset, uint64_t line_number);

  /// True if `next` would not block: input is buffered, waiting on the descriptor, or at
  /// its end. Lets a source on stdin hand over what arrived instead of waiting for more.
  [[nodiscard]] bool ready() const noexcept;
  /// Waits up to `timeout_ms` for `ready`; returns it.
  [[nodiscard]] bool wait_ready(int timeout_ms) const noexcept;

  /// Number of the line last returned (1-based).
  [[nodiscard]] uint64_t line_number() const noexcept {
    return line_;
  }
  /// Byte offset where the next line starts.
  [[nodiscard]] uint64_t offset() const noexcept {
    return offset_;
  }

private:
  std::FILE* file_;
  bool owns_;
  uint64_t line_ = 0;
  uint64_t offset_ = 0;
  char* buf_ = nullptr;
  size_t cap_ = 0;
};

} // namespace eddy
