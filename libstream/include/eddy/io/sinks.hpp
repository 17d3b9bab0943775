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
  /// Opens `path` for writing (truncating); "-" is stdout. Throws std::runtime_error naming
  /// the path on failure.
  explicit line_writer(const std::filesystem::path& path);
  ~line_writer();
  line_writer(const line_writer&) = delete;
  line_writer& operator=(const line_writer&) = delete;

  void write_line(const std::string& line);
  void flush();

private:
  std::FILE* file_;
  bool owns_;
  std::filesystem::path path_;
};

template <json_codable T>
class jsonl_sink_logic final : public sink_logic {
public:
  explicit jsonl_sink_logic(const std::filesystem::path& path)
    : writer_(path) {}
  void write(record_buffer& in) override {
    for (auto& r : typed<T>(in).records) {
      writer_.write_line(to_json_line(r.value));
    }
  }
  void flush() override {
    writer_.flush();
  }

private:
  line_writer writer_;
};

/// One JSON line per record. With parallelism N > 1, instance i writes `path.i`.
template <json_codable T>
sink_def<T> jsonl_sink(std::filesystem::path path) {
  return {[path](const instance_context& ctx) -> std::unique_ptr<sink_logic> {
    auto target = path;
    if (ctx.instances > 1) {
      target += "." + std::to_string(ctx.index);
    }
    return std::make_unique<jsonl_sink_logic<T>>(target);
  }};
}

/// One JSON line per record on standard output (parallelism 1).
template <json_codable T>
sink_def<T> stdout_sink() {
  return {[](const instance_context&) -> std::unique_ptr<sink_logic> {
            return std::make_unique<jsonl_sink_logic<T>>("-");
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
