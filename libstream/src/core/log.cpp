#include "eddy/core/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace eddy {

namespace {

std::atomic<int> max_level{static_cast<int>(log_level::info)};

const char* name_of(log_level level) noexcept {
  switch (level) {
    case log_level::error:
      return "error";
    case log_level::warn:
      return "warn";
    case log_level::info:
      return "info";
    case log_level::debug:
      return "debug";
  }
  return "?";
}

} // namespace

bool parse_log_level(std::string_view text, log_level& out) noexcept {
  for (auto level : {log_level::error, log_level::warn, log_level::info, log_level::debug}) {
    if (text == name_of(level)) {
      out = level;
      return true;
    }
  }
  return false;
}

void set_log_level(log_level level) noexcept {
  max_level = static_cast<int>(level);
}

bool log_enabled(log_level level) noexcept {
  return static_cast<int>(level) <= max_level.load(std::memory_order_relaxed);
}

void log(log_level level, std::string_view component, std::string_view message) {
  if (!log_enabled(level)) {
    return;
  }
  using namespace std::chrono;
  auto now = system_clock::now();
  auto secs = system_clock::to_time_t(now);
  auto millis = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&secs, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  std::string line;
  line.reserve(64 + message.size());
  line += stamp;
  line += '.';
  line += static_cast<char>('0' + millis / 100);
  line += static_cast<char>('0' + millis / 10 % 10);
  line += static_cast<char>('0' + millis % 10);
  line += "Z level=";
  line += name_of(level);
  line += " component=";
  line += component;
  line += " msg=\"";
  for (char c : message) {
    if (c == '"' || c == '\\') {
      line += '\\';
    }
    line += c == '\n' ? ' ' : c;
  }
  line += "\"\n";
  // One fwrite per line: stdio locks the stream, so lines never interleave.
  std::fwrite(line.data(), 1, line.size(), stderr);
}

} // namespace eddy
