#include "eddy/io/dead_letters.hpp"

#include <cerrno>
#include <cstring>
#include <numeric>

#include <nlohmann/json.hpp>

namespace eddy {

dead_letter_log::dead_letter_log(std::filesystem::path path)
  : path_(std::move(path)) {}

dead_letter_log::~dead_letter_log() {
  if (file_ != nullptr) {
    std::fclose(file_);
  }
}

void dead_letter_log::add(const dead_letter& letter) {
  nlohmann::json j{{"source", letter.source},
                   {"line", letter.line},
                   {"raw", letter.raw},
                   {"reason", letter.reason}};
  // Replace invalid UTF-8 so that any raw bytes can be recorded.
  auto text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::lock_guard guard{mtx_};
  ++counts_[letter.source];
  if (file_ == nullptr && !open_failed_) {
    std::error_code ec;
    if (path_.has_parent_path()) {
      std::filesystem::create_directories(path_.parent_path(), ec);
    }
    file_ = std::fopen(path_.c_str(), "ab");
    if (file_ == nullptr) {
      open_failed_ = true;
      std::fprintf(stderr, "eddy: cannot write dead letters to '%s': %s\n", path_.c_str(),
                   std::strerror(errno));
    }
  }
  if (file_ != nullptr) {
    std::fprintf(file_, "%s\n", text.c_str());
  }
}

uint64_t dead_letter_log::count() const {
  std::lock_guard guard{mtx_};
  return std::accumulate(counts_.begin(), counts_.end(), uint64_t{0},
                         [](uint64_t sum, const auto& kv) { return sum + kv.second; });
}

uint64_t dead_letter_log::count(std::string_view source) const {
  std::lock_guard guard{mtx_};
  auto i = counts_.find(source);
  return i == counts_.end() ? 0 : i->second;
}

void dead_letter_log::flush() {
  std::lock_guard guard{mtx_};
  if (file_ != nullptr) {
    std::fflush(file_);
  }
}

} // namespace eddy
