#pragma once

#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

#include "eddy/flow/record.hpp"
#include "eddy/state/keyed_state.hpp"

namespace eddy {

/// Encodes the records of `in` (values through `encode_value`, with their time and origin)
/// into `out`: the payload of a partition's outbox entry.
template <class T>
void encode_records(const record_buffer& in, std::string& out) {
  out.clear();
  std::string field;
  for (const auto& r : static_cast<const record_buffer_of<T>&>(in).records) {
    detail::encode_state(r.value, field);
    detail::append_field(out, field);
    char tail[16];
    std::memcpy(tail, &r.time, 8);
    std::memcpy(tail + 8, &r.origin, 8);
    out.append(tail, 16);
  }
}

/// Appends the records `encode_records` wrote to `out`; throws std::runtime_error on bad
/// bytes.
template <class T>
void decode_records(std::string_view in, record_buffer& out) {
  auto& dst = typed<T>(out).records;
  for (size_t pos = 0; pos < in.size();) {
    record<T> r;
    detail::decode_state(detail::next_field(in, pos), r.value);
    if (in.size() - pos < 16) {
      throw std::runtime_error("cannot decode an outbox entry: truncated record");
    }
    std::memcpy(&r.time, in.data() + pos, 8);
    std::memcpy(&r.origin, in.data() + pos + 8, 8);
    pos += 16;
    dst.push_back(std::move(r));
  }
}

} // namespace eddy
