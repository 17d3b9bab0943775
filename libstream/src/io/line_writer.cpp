#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include <unistd.h>

#include "eddy/io/sinks.hpp"

namespace eddy {

line_writer::line_writer(const std::filesystem::path& path, bool keep)
  : file_(path == "-" ? stdout : std::fopen(path.c_str(), keep ? "ab" : "wb"))
  , owns_(path != "-")
  , path_(path) {
  if (file_ == nullptr) {
    throw std::runtime_error("cannot write '" + path.string() + "': " + std::strerror(errno));
  }
  if (owns_) {
    std::setvbuf(file_, nullptr, _IOFBF, 1 << 16);
  }
}

line_writer::~line_writer() {
  if (owns_) {
    std::fclose(file_);
  } else {
    std::fflush(file_);
  }
}

void line_writer::write_line(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), file_);
  std::fputc('\n', file_);
  written_ += line.size() + 1;
}

void line_writer::truncate_to(uint64_t length) {
  flush();
  std::error_code ec;
  auto size = std::filesystem::file_size(path_, ec);
  if (ec) {
    throw std::runtime_error("cannot resume '" + path_.string() + "': " + ec.message());
  }
  if (size < length) {
    throw std::runtime_error("cannot resume '" + path_.string() + "': it holds " +
                             std::to_string(size) + " bytes but " + std::to_string(length) +
                             " were committed; was it changed or replaced?");
  }
  if (::ftruncate(::fileno(file_), static_cast<off_t>(length)) != 0 ||
      std::fseek(file_, 0, SEEK_END) != 0) {
    throw std::runtime_error("cannot resume '" + path_.string() + "': " + std::strerror(errno));
  }
  written_ = length;
}

void line_writer::sync() {
  flush();
  if (owns_ && ::fsync(::fileno(file_)) != 0) {
    throw std::runtime_error("cannot sync '" + path_.string() + "': " + std::strerror(errno));
  }
}

void line_writer::flush() {
  if (std::fflush(file_) != 0) {
    throw std::runtime_error("cannot write '" + path_.string() + "': " + std::strerror(errno));
  }
}

} // namespace eddy
