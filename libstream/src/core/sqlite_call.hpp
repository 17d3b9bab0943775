#pragma once

// Private to libstream: the SQLite calls every SQLite file of Eddy makes (the partition
// journals, the dead-letter journal): binding parameters, stepping a statement to its end,
// reading columns. Each file kind maps result codes to its own errors.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <sqlite3.h>

#include "eddy/core/assert.hpp"

namespace eddy::sqlite {

/// A parameter bound as a BLOB (arbitrary bytes).
struct blob {
  std::string_view bytes;
};

/// A parameter bound as TEXT.
struct text {
  std::string_view chars;
};

inline int bind_one(sqlite3_stmt* s, int i, int64_t x) {
  return sqlite3_bind_int64(s, i, x);
}

inline int bind_one(sqlite3_stmt* s, int i, blob x) {
  // SQLITE_STATIC: the caller's data outlives the step; the statement is reset before return.
  // An empty string_view may have a null data(), which SQLite would store as NULL.
  return sqlite3_bind_blob64(s, i, x.bytes.empty() ? "" : x.bytes.data(), x.bytes.size(),
                             SQLITE_STATIC);
}

inline int bind_one(sqlite3_stmt* s, int i, text x) {
  return sqlite3_bind_text64(s, i, x.chars.data(), x.chars.size(), SQLITE_STATIC, SQLITE_UTF8);
}

inline int bind_one(sqlite3_stmt* s, int i, const std::optional<std::string>& x) {
  return x ? bind_one(s, i, blob{*x}) : sqlite3_bind_null(s, i);
}

template <class... Ts>
int bind_all([[maybe_unused]] sqlite3_stmt* s, const Ts&... xs) {
  [[maybe_unused]] int i = 0;
  int rc = SQLITE_OK;
  ((rc = rc == SQLITE_OK ? bind_one(s, ++i, xs) : rc), ...);
  return rc;
}

inline int64_t to_int64(uint64_t x) {
  EDDY_ASSERT(x <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
  return static_cast<int64_t>(x);
}

/// A LIMIT parameter: SIZE_MAX and anything past int64 mean "no limit".
inline int64_t limit_param(size_t limit) {
  return static_cast<int64_t>(
    std::min<uint64_t>(limit, static_cast<uint64_t>(std::numeric_limits<int64_t>::max())));
}

inline std::string column_string(sqlite3_stmt* s, int i) {
  // sqlite3_column_blob() before sqlite3_column_bytes(), as SQLite asks.
  const auto* data = static_cast<const char*>(sqlite3_column_blob(s, i));
  auto size = static_cast<size_t>(sqlite3_column_bytes(s, i));
  return data == nullptr ? std::string{} : std::string{data, size};
}

inline std::optional<std::string> column_optional(sqlite3_stmt* s, int i) {
  if (sqlite3_column_type(s, i) == SQLITE_NULL) {
    return std::nullopt;
  }
  return column_string(s, i);
}

struct finalizer {
  void operator()(sqlite3_stmt* s) const noexcept {
    sqlite3_finalize(s);
  }
};

/// Binds `xs` to `s`, steps it to completion calling `on_row(s)` for each row, and resets
/// it however that ends. Returns SQLITE_OK or the failing result code; the connection's
/// error message still describes it.
template <class F, class... Ts>
int step_all(sqlite3_stmt* s, F&& on_row, const Ts&... xs) {
  struct reset_guard {
    sqlite3_stmt* stmt;
    ~reset_guard() {
      sqlite3_reset(stmt);
    }
  } guard{s};
  if (int rc = bind_all(s, xs...); rc != SQLITE_OK) {
    return rc;
  }
  for (;;) {
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
      return SQLITE_OK;
    }
    if (rc != SQLITE_ROW) {
      return rc;
    }
    on_row(s);
  }
}

/// Like `step_all` for a statement used once: prepares and finalizes it.
template <class F, class... Ts>
int step_once(sqlite3* db, const char* sql, F&& on_row, const Ts&... xs) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &raw, nullptr);
  std::unique_ptr<sqlite3_stmt, finalizer> s{raw};
  return rc != SQLITE_OK ? rc : step_all(s.get(), std::forward<F>(on_row), xs...);
}

} // namespace eddy::sqlite
