#include "eddy/codec/framing.hpp"

#include <cstdint>
#include <stdexcept>

namespace eddy {

namespace {

void put_le(std::string& out, uint64_t x, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    out.push_back(static_cast<char>((x >> (8 * i)) & 0xff));
  }
}

uint64_t get_le(std::string_view in, size_t& pos, int bytes) {
  if (in.size() - pos < static_cast<size_t>(bytes)) {
    throw std::runtime_error("truncated encoding: it ends inside a length or number");
  }
  uint64_t x = 0;
  for (int i = bytes - 1; i >= 0; --i) {
    x = (x << 8) | static_cast<unsigned char>(in[pos + static_cast<size_t>(i)]);
  }
  pos += static_cast<size_t>(bytes);
  return x;
}

} // namespace

void append_u64(std::string& out, uint64_t x) {
  put_le(out, x, 8);
}

uint64_t next_u64(std::string_view in, size_t& pos) {
  return get_le(in, pos, 8);
}

void append_field(std::string& out, std::string_view bytes) {
  if (bytes.size() > UINT32_MAX) {
    throw std::length_error("a field of " + std::to_string(bytes.size()) +
                            " bytes is over the 4 GiB a field can hold");
  }
  put_le(out, bytes.size(), 4);
  out.append(bytes);
}

std::string_view next_field(std::string_view in, size_t& pos) {
  auto n = get_le(in, pos, 4);
  if (in.size() - pos < n) {
    throw std::runtime_error("truncated encoding: it ends inside a field");
  }
  auto field = in.substr(pos, n);
  pos += n;
  return field;
}

} // namespace eddy
