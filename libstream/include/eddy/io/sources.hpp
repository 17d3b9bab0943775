#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "eddy/codec/json.hpp"
#include "eddy/graph/logic.hpp"
#include "eddy/io/dead_letters.hpp"
#include "eddy/io/line_reader.hpp"

namespace eddy {

/// Reads JSON lines into T. Instance i of N takes the lines whose 0-based number is i mod N,
/// so parallel instances split a file without coordination. Malformed or mistyped lines go
/// to the dead-letter log with the line number and the reason; blank lines are skipped.
template <json_codable T>
class jsonl_source_logic final : public source_logic {
public:
  /// How long a poll on stdin waits for input before it returns empty-handed.
  static constexpr int stdin_wait_ms = 200;

  jsonl_source_logic(const std::filesystem::path& path, const instance_context& ctx, bool blocking)
    : reader_(path)
    , path_(path)
    , ctx_(ctx)
    , blocking_(blocking) {}

  bool poll(record_buffer& out, size_t max) override {
    auto& dst = typed<T>(out).records;
    std::string reason;
    for (size_t n = 0; n < max;) {
      // On stdin, hand over what arrived rather than wait for a full batch, and come back
      // to the actor's mailbox (console requests) at least every stdin_wait_ms.
      if (blocking_ && !reader_.wait_ready(n > 0 ? 0 : stdin_wait_ms)) {
        return true;
      }
      if (!reader_.next(line_)) {
        return false;
      }
      auto number = reader_.line_number();
      if ((number - 1) % ctx_.instances != ctx_.index || is_blank(line_)) {
        continue;
      }
      if (auto value = parse_json<T>(line_, reason)) {
        auto origin = replayable() ? make_origin(ctx_.producer, number) : origin_t{0};
        dst.push_back(record<T>{std::move(*value), no_time, origin});
        ++n;
      } else {
        ctx_.dead_letters->add(dead_letter{ctx_.node, number, line_, reason});
      }
    }
    return true;
  }

  bool blocking() const noexcept override {
    return blocking_;
  }

  uint64_t read_position() const noexcept override {
    return replayable() ? reader_.line_number() : 0;
  }

  bool seek(uint64_t position) override {
    if (!replayable()) {
      return false;
    }
    while (reader_.line_number() < position && reader_.next(line_)) {
    }
    return true;
  }

  std::string position() const override {
    return "line " + std::to_string(reader_.line_number()) + ", byte " +
           std::to_string(reader_.offset());
  }

  bool replayable() const noexcept override {
    return !blocking_ && ctx_.producer != 0;
  }

  std::string input() const override {
    return blocking_ ? std::string{} : path_.string();
  }

  uint64_t input_offset() const noexcept override {
    return reader_.offset();
  }

private:
  static bool is_blank(const std::string& s) noexcept {
    return s.find_first_not_of(" \t\r") == std::string::npos;
  }

  line_reader reader_;
  std::filesystem::path path_;
  instance_context ctx_;
  bool blocking_;
  std::string line_;
};

/// A JSONL file source; `path` must exist when the job starts.
template <json_codable T>
source_def<T> jsonl_source(std::filesystem::path path) {
  return {[path](const instance_context& ctx) -> std::unique_ptr<source_logic> {
    return std::make_unique<jsonl_source_logic<T>>(path, ctx, false);
  }};
}

/// JSON lines from standard input (parallelism 1; runs on its own thread because reads block).
template <json_codable T>
source_def<T> stdin_source() {
  return {[](const instance_context& ctx) -> std::unique_ptr<source_logic> {
            return std::make_unique<jsonl_source_logic<T>>("-", ctx, true);
          },
          1};
}

/// The observer of a generator that observes nothing.
struct no_poll_observer {
  template <class T>
  void operator()(const std::vector<record<T>>&, size_t) const noexcept {}
};

/// A deterministic generator: emits `make(i)` for i = 0 .. count-1 (count 0: unbounded).
/// Instance j of N emits the i with i mod N == j, so the union is independent of N.
/// After each poll, `observe(records, first)` sees the records from index `first` on (the
/// ones this poll added; a benchmark notes when which event time went out).
template <class T, class F, class Observe = no_poll_observer>
class generator_logic final : public source_logic {
public:
  generator_logic(uint64_t count, F make, const instance_context& ctx, Observe observe = {})
    : count_(count)
    , make_(std::move(make))
    , observe_(std::move(observe))
    , next_(ctx.index)
    , step_(ctx.instances)
    , producer_(ctx.producer) {}

  bool poll(record_buffer& out, size_t max) override {
    auto& dst = typed<T>(out).records;
    auto first = dst.size();
    for (size_t n = 0; n < max && (count_ == 0 || next_ < count_); ++n) {
      dst.push_back(record<T>{make_(next_), no_time, make_origin(producer_, next_ + 1)});
      next_ += step_;
    }
    observe_(std::as_const(dst), first);
    return count_ == 0 || next_ < count_;
  }

  std::string position() const override {
    return "sequence " + std::to_string(next_);
  }

  /// Every i below next_ was emitted: positions up to next_ (positions are i + 1).
  uint64_t read_position() const noexcept override {
    return count_ != 0 && next_ > count_ ? count_ : next_;
  }

  bool replayable() const noexcept override {
    return true;
  }

  /// Positions are i + 1: skips every i below `position`.
  bool seek(uint64_t position) override {
    while (next_ < position) {
      next_ += step_;
    }
    return true;
  }

private:
  uint64_t count_;
  F make_;
  Observe observe_;
  uint64_t next_;
  uint64_t step_;
  uint32_t producer_;
};

/// A source of `make(i)` for i = 0 .. count-1 (see generator_logic); `observe` (a copy per
/// instance) sees what each poll made.
template <class F, class Observe = no_poll_observer>
auto generator_source(uint64_t count, F make, Observe observe = {}) {
  using T = std::decay_t<std::invoke_result_t<F&, uint64_t>>;
  return source_def<T>{
    [count, make, observe](const instance_context& ctx) -> std::unique_ptr<source_logic> {
      return std::make_unique<generator_logic<T, F, Observe>>(count, make, ctx, observe);
    }};
}

} // namespace eddy
