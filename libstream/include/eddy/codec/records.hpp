#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>

#include "eddy/codec/framing.hpp"
#include "eddy/flow/record.hpp"
#include "eddy/state/keyed_state.hpp"

namespace eddy {

/// Appends record `r` to `out` in the format of `encode_records`.
template <class T>
void append_record(const record<T>& r, std::string& out, std::string& field) {
  detail::encode_state(r.value, field);
  append_field(out, field);
  append_u64(out, static_cast<uint64_t>(r.time));
  append_u64(out, r.origin);
}

/// Encodes the records of `in` (values through `encode_value`, with their time and origin)
/// into `out`: the payload of a partition's outbox entry.
template <class T>
void encode_records(const record_buffer& in, std::string& out) {
  out.clear();
  std::string field;
  for (const auto& r : typed<T>(in).records) {
    append_record(r, out, field);
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

/// A `record_describer`: record `i` as JSON text when T has a JSON codec (else its type),
/// and alone in the format of `encode_records` when T has a state codec (else empty).
template <class T>
void describe_record(const record_buffer& in, size_t i, std::string& text, std::string& payload) {
  const auto& r = typed<T>(in).records.at(i);
  if constexpr (json_codable<T>) {
    try {
      text = to_json_line(r.value);
    } catch (const std::exception& e) {
      text = std::string{"<cannot render as JSON: "} + e.what() + ">";
    }
  } else {
    text = std::string{"<"} + typeid(T).name() + ">";
  }
  payload.clear();
  if constexpr (state_codable<T>) {
    std::string field;
    append_record(r, payload, field);
  }
}

/// A `record_parser`: appends the T that `json` holds to `out`, without event time or
/// origin; throws std::invalid_argument with the reason when it holds none.
template <json_codable T>
void parse_record(std::string_view json, record_buffer& out) {
  std::string reason;
  auto value = parse_json<T>(json, reason);
  if (!value) {
    throw std::invalid_argument(reason);
  }
  typed<T>(out).records.push_back(record<T>{std::move(*value), no_time, 0});
}

} // namespace eddy
