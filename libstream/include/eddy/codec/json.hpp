#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace eddy {

/// The JSON codec layer: user types read from and written to JSONL through nlohmann-json's
/// ADL hooks (`to_json`/`from_json`, e.g. NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE).
template <class T>
concept json_codable = requires(const nlohmann::json& j, T& v) {
  j.get_to(v);
  nlohmann::json(v);
};

/// Parses one JSON text into a T. On failure returns nullopt and sets `reason` to a
/// one-line explanation naming what is wrong (syntax position, missing field, wrong type).
template <json_codable T>
std::optional<T> parse_json(std::string_view text, std::string& reason) {
  auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded()) {
    reason = "not valid JSON";
    try {
      [[maybe_unused]] auto again = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      reason = e.what();
    }
    return std::nullopt;
  }
  try {
    return doc.template get<T>();
  } catch (const nlohmann::json::exception& e) {
    reason = e.what();
    return std::nullopt;
  }
}

/// Encodes `value` as one line of JSON (no trailing newline).
template <json_codable T>
std::string to_json_line(const T& value) {
  return nlohmann::json(value).dump();
}

} // namespace eddy
