#pragma once

#include <span>
#include <string_view>

/// Where countries are, roughly: enough to tell a trip of 500 km from one of 9000 km, which is
/// all the impossible-travel rule and the generator need. Constant data; thread-safe.
namespace fraud {

/// A country by its ISO 3166 alpha-2 code and the latitude/longitude of its centroid.
struct country {
  std::string_view code;
  double lat_deg;
  double lon_deg;
};

/// The built-in countries (about 35), in a fixed order.
[[nodiscard]] std::span<const country> countries() noexcept;

/// The country with `code` ("DE"), or null when it is not in the table.
[[nodiscard]] const country* find_country(std::string_view code) noexcept;

/// Great-circle distance between two centroids in km (haversine, mean earth radius).
[[nodiscard]] double distance_km(const country& a, const country& b) noexcept;

} // namespace fraud
