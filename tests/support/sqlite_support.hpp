#pragma once

// Helpers of the suites of the SQLite layer (libstream/src/core/sqlite_*): a kind of file whose
// words the tests find in messages, and calls that fail the test with the layer's message.

#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>

#include "core/sqlite_file.hpp"
#include "eddy/core/error.hpp"

namespace eddy::test {

/// A kind of file whose words the tests can find in messages.
inline const sqlite::file_kind& test_kind() {
  static const sqlite::file_kind kind{
    .name = "test file",
    .busy_timeout_ms = 50,
    .serialized_by_owner = true,
    .busy_hint = " (busy hint)",
    .access_hint = " (access hint)",
    .corrupt_hint = "use another file",
  };
  return kind;
}

/// The error of `x` as text, empty when it holds a value.
template <class T>
std::string failure_of(const caf::expected<T>& x) {
  return x ? std::string{} : describe(x.error());
}

inline sqlite::connection connect_ok(const std::filesystem::path& file) {
  auto db = sqlite::open(file, test_kind());
  REQUIRE_MESSAGE(db, failure_of(db));
  return std::move(*db);
}

/// The first column of the only row of `sql`, as text.
inline std::string text_of(sqlite::file_ref f, const char* sql) {
  std::string result;
  auto err = f.query_once("read", sql, [&](sqlite::row r) { result = r.string_at(0); });
  REQUIRE_MESSAGE(!err, describe(err));
  return result;
}

/// The first column of the only row of `sql`, as a number.
inline int64_t int_of(sqlite::file_ref f, const char* sql) {
  int64_t result = -1;
  auto err = f.query_once("read", sql, [&](sqlite::row r) { result = r.int64_at(0); });
  REQUIRE_MESSAGE(!err, describe(err));
  return result;
}

} // namespace eddy::test
