#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace eddy {

/// One rejected input record.
struct dead_letter {
  std::string source;
  uint64_t line = 0;
  std::string raw;
  std::string reason;
};

/// Appends rejected input to a JSONL file (`{"source","line","raw","reason"}` per line) and
/// counts it per source. The file is created on the first dead letter. Shared by all
/// source actors of a job; thread-safe (rejections are rare, a mutex is enough).
class dead_letter_log {
public:
  explicit dead_letter_log(std::filesystem::path path);
  ~dead_letter_log();
  dead_letter_log(const dead_letter_log&) = delete;
  dead_letter_log& operator=(const dead_letter_log&) = delete;

  /// Records `letter`. Failing to write the file is reported once on stderr; the count
  /// still grows so the loss is visible.
  void add(const dead_letter& letter);

  [[nodiscard]] uint64_t count() const;
  [[nodiscard]] uint64_t count(std::string_view source) const;
  [[nodiscard]] const std::filesystem::path& path() const noexcept {
    return path_;
  }
  void flush();

private:
  std::filesystem::path path_;
  mutable std::mutex mtx_;
  std::FILE* file_ = nullptr;
  bool open_failed_ = false;
  std::map<std::string, uint64_t, std::less<>> counts_;
};

} // namespace eddy
