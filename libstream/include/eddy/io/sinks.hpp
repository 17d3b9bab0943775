#pragma once

#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "eddy/codec/json.hpp"
#include "eddy/graph/logic.hpp"

namespace eddy {

/// Writes lines to a C stream with a large buffer. Owned by one sink instance.
class line_writer {
public:
  /// Opens `path` for writing, truncating it unless `keep` (then appending); "-" is stdout.
  /// Throws std::runtime_error naming the path on failure.
  explicit line_writer(const std::filesystem::path& path, bool keep = false);
  ~line_writer();
  line_writer(const line_writer&) = delete;
  line_writer& operator=(const line_writer&) = delete;

  void write_line(const std::string& line);
  void flush();
  /// Flushes and fsyncs (power-loss safe).
  void sync();
  /// Cuts the file back to `length` bytes (its committed length after a crash) and goes on
  /// writing there. Throws std::runtime_error if the file is shorter.
  void truncate_to(uint64_t length);
  /// Bytes in the file: its length at open (appending) or truncation, plus what was written.
  [[nodiscard]] uint64_t length() const noexcept {
    return written_;
  }
  [[nodiscard]] const std::filesystem::path& path() const noexcept {
    return path_;
  }

private:
  std::FILE* file_;
  uint64_t written_ = 0;
  bool owns_;
  std::filesystem::path path_;
};

/// A sink writing lines to a file through a line_writer. Transactional when asked: the
/// runtime records its committed length with its input positions, and after a crash cuts
/// the file back to that length before the replay, so that no line is lost or written
/// twice. Derived sinks write their records' lines with `writer()`.
class line_sink_logic : public sink_logic {
public:
  line_sink_logic(const std::filesystem::path& path, bool transactional)
    : writer_(path, transactional)
    , transactional_(transactional) {}
  void flush() override {
    writer_.flush();
  }
  bool transactional() const noexcept override {
    return transactional_;
  }
  void resume(uint64_t length) override {
    writer_.truncate_to(length);
  }
  uint64_t length() const noexcept override {
    return writer_.length();
  }
  void sync() override {
    writer_.sync();
  }
  std::string target() const override {
    return writer_.path().string();
  }

protected:
  line_writer& writer() noexcept {
    return writer_;
  }

private:
  line_writer writer_;
  bool transactional_;
};

/// Writes JSON lines (transactional with durable state, see line_sink_logic).
template <json_codable T>
class jsonl_sink_logic final : public line_sink_logic {
public:
  using line_sink_logic::line_sink_logic;
  void write(record_buffer& in) override {
    for (auto& r : typed<T>(in).records) {
      writer().write_line(to_json_line(r.value));
    }
  }
};

/// One JSON line per record. With parallelism N > 1, instance i writes `path.i`.
template <json_codable T>
sink_def<T> jsonl_sink(std::filesystem::path path) {
  return {[path](const instance_context& ctx) -> std::unique_ptr<sink_logic> {
    auto target = path;
    if (ctx.instances > 1) {
      target += "." + std::to_string(ctx.index);
    }
    return std::make_unique<jsonl_sink_logic<T>>(target, ctx.durable);
  }};
}

/// One JSON line per record on standard output (parallelism 1).
template <json_codable T>
sink_def<T> stdout_sink() {
  return {[](const instance_context&) -> std::unique_ptr<sink_logic> {
            return std::make_unique<jsonl_sink_logic<T>>("-", false);
          },
          1};
}

/// Records gathered in memory by `collector_sink`, readable from any thread.
template <class T>
class collected {
public:
  void append(std::vector<record<T>>& records) {
    std::lock_guard guard{mtx_};
    for (auto& r : records) {
      values_.push_back(std::move(r.value));
    }
  }
  /// A copy of everything collected so far, in arrival order per sink instance.
  [[nodiscard]] std::vector<T> values() const {
    std::lock_guard guard{mtx_};
    return values_;
  }

private:
  mutable std::mutex mtx_;
  std::vector<T> values_;
};

template <class T>
class collector_sink_logic final : public sink_logic {
public:
  explicit collector_sink_logic(std::shared_ptr<collected<T>> into)
    : into_(std::move(into)) {}
  void write(record_buffer& in) override {
    into_->append(typed<T>(in).records);
  }

private:
  std::shared_ptr<collected<T>> into_;
};

/// Collects every record in memory (tests, embedding).
template <class T>
sink_def<T> collector_sink(std::shared_ptr<collected<T>> into) {
  return {[into](const instance_context&) -> std::unique_ptr<sink_logic> {
    return std::make_unique<collector_sink_logic<T>>(into);
  }};
}

} // namespace eddy
