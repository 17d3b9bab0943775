#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "eddy/codec/framing.hpp"
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
    append_field(out, field);
    append_u64(out, static_cast<uint64_t>(r.time));
    append_u64(out, r.origin);
  }
}

/// Appends the records `encode_records` wrote to `out`; throws std::runtime_error on bad
/// bytes.
template <class T>
void decode_records(std::string_view in, record_buffer& out) {
  auto& dst = typed<T>(out).records;
  for (size_t pos = 0; pos < in.size();) {
    record<T> r;
    detail::decode_state(next_field(in, pos), r.value);
    r.time = static_cast<time_ms>(next_u64(in, pos));
    r.origin = next_u64(in, pos);
    dst.push_back(std::move(r));
  }
}

} // namespace eddy
