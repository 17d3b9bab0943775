#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "eddy/io/sinks.hpp"

namespace eddy {

line_writer::line_writer(const std::filesystem::path& path)
  : file_(path == "-" ? stdout : std::fopen(path.c_str(), "wb"))
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
}

void line_writer::flush() {
  if (std::fflush(file_) != 0) {
    throw std::runtime_error("cannot write '" + path_.string() + "': " + std::strerror(errno));
  }
}

} // namespace eddy
