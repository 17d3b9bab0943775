#include "geo.hpp"

#include <algorithm>
#include <array>
#include <cmath>

namespace fraud {

namespace {

// Approximate centroids. A centroid stands for the whole country, so distances between
// neighbours are rough; the travel rule only needs them to separate continents clearly.
constexpr std::array<country, 35> table{{
  {"AE", 23.42, 53.85},  {"AR", -38.42, -63.62}, {"AT", 47.52, 14.55},   {"AU", -25.27, 133.78},
  {"BE", 50.50, 4.47},   {"BR", -14.24, -51.93}, {"CA", 56.13, -106.35}, {"CH", 46.82, 8.23},
  {"CN", 35.86, 104.20}, {"DE", 51.17, 10.45},   {"DK", 56.26, 9.50},    {"EG", 26.82, 30.80},
  {"ES", 40.46, -3.75},  {"FI", 61.92, 25.75},   {"FR", 46.23, 2.21},    {"GB", 55.38, -3.44},
  {"GR", 39.07, 21.82},  {"IE", 53.41, -8.24},   {"IN", 20.59, 78.96},   {"IT", 41.87, 12.57},
  {"JP", 36.20, 138.25}, {"KR", 35.91, 127.77},  {"MX", 23.63, -102.55}, {"NG", 9.08, 8.68},
  {"NL", 52.13, 5.29},   {"NO", 60.47, 8.47},    {"NZ", -40.90, 174.89}, {"PL", 51.92, 19.15},
  {"PT", 39.40, -8.22},  {"RU", 61.52, 105.32},  {"SE", 60.13, 18.64},   {"SG", 1.35, 103.82},
  {"TR", 38.96, 35.24},  {"US", 37.09, -95.71},  {"ZA", -30.56, 22.94},
}};

constexpr double earth_radius_km = 6371.0;
constexpr double pi = 3.14159265358979323846;

double radians(double deg) noexcept {
  return deg * pi / 180.0;
}

} // namespace

std::span<const country> countries() noexcept {
  return table;
}

const country* find_country(std::string_view code) noexcept {
  for (const auto& c : table) {
    if (c.code == code) {
      return &c;
    }
  }
  return nullptr;
}

double distance_km(const country& a, const country& b) noexcept {
  auto dlat = radians(b.lat_deg - a.lat_deg);
  auto dlon = radians(b.lon_deg - a.lon_deg);
  auto h = std::sin(dlat / 2) * std::sin(dlat / 2) + std::cos(radians(a.lat_deg)) *
                                                       std::cos(radians(b.lat_deg)) *
                                                       std::sin(dlon / 2) * std::sin(dlon / 2);
  // min() guards asin against rounding just above 1 for antipodal points.
  return 2 * earth_radius_km * std::asin(std::sqrt(std::min(1.0, h)));
}

} // namespace fraud
