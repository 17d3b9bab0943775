#include "eddy/io/line_reader.hpp"

#include <poll.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace eddy {

line_reader::line_reader(const std::filesystem::path& path)
  : file_(path == "-" ? stdin : std::fopen(path.c_str(), "rb"))
  , owns_(path != "-") {
  if (file_ == nullptr) {
    throw std::runtime_error("cannot open '" + path.string() + "': " + std::strerror(errno));
  }
}

line_reader::~line_reader() {
  std::free(buf_);
  if (owns_) {
    std::fclose(file_);
  }
}

void line_reader::seek(uint64_t offset, uint64_t line_number) {
  if (!owns_ || std::fseek(file_, static_cast<long>(offset), SEEK_SET) != 0) {
    throw std::runtime_error("cannot seek to byte " + std::to_string(offset));
  }
  offset_ = offset;
  line_ = line_number;
}

bool line_reader::next(std::string& line) {
  auto n = ::getline(&buf_, &cap_, file_);
  if (n < 0) {
    return false;
  }
  offset_ += static_cast<uint64_t>(n);
  ++line_;
  size_t len = static_cast<size_t>(n);
  while (len > 0 && (buf_[len - 1] == '\n' || buf_[len - 1] == '\r')) {
    --len;
  }
  line.assign(buf_, len);
  return true;
}

bool line_reader::ready() const noexcept {
  // glibc's stdio keeps its read buffer in the FILE; bytes left there need no read(2).
  if (file_->_IO_read_ptr < file_->_IO_read_end) {
    return true;
  }
  pollfd p{::fileno(file_), POLLIN, 0};
  return ::poll(&p, 1, 0) != 0;
}

bool line_reader::wait_ready(int timeout_ms) const noexcept {
  if (file_->_IO_read_ptr < file_->_IO_read_end) {
    return true;
  }
  pollfd p{::fileno(file_), POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) != 0;
}

} // namespace eddy
