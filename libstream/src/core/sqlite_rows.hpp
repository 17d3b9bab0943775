#pragma once

// Private to libstream: rows held in memory, read by SQL as a table. A statement names the
// table-valued function `eddy_rows(?N)` and binds `sqlite::rows{&source}` to ?N; its columns
// are c0, c1, ... (up to rows_columns_max), one row per item of the source, in its order. One
// statement then writes any number of rows: `INSERT INTO t SELECT c0, c1 FROM eddy_rows(?1)`
// is prepared once per connection, where a statement of many VALUES rows costs a long parse
// per size and binding every parameter. `sqlite::open` registers the function on every
// connection.

#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>

#include <sqlite3.h>

#include "core/sqlite_file.hpp"

namespace eddy::sqlite {

/// Columns eddy_rows has (c0 .. c7): more than any statement of Eddy reads.
inline constexpr int rows_columns_max = 8;

/// A column value that is NULL when absent and a BLOB otherwise.
struct maybe_blob {
  const std::optional<std::string>* value;
};

// The result of a column, for xColumn. Results use SQLITE_STATIC: the source outlives the
// statement's step (the caller holds both).

inline void result(sqlite3_context* out, int64_t x) {
  sqlite3_result_int64(out, x);
}

inline void result(sqlite3_context* out, blob x) {
  sqlite3_result_blob64(out, x.bytes.empty() ? "" : x.bytes.data(), x.bytes.size(), SQLITE_STATIC);
}

inline void result(sqlite3_context* out, text x) {
  sqlite3_result_text64(out, x.chars.empty() ? "" : x.chars.data(), x.chars.size(), SQLITE_STATIC,
                        SQLITE_UTF8);
}

inline void result(sqlite3_context* out, maybe_blob x) {
  if (*x.value) {
    result(out, blob{**x.value});
  } else {
    sqlite3_result_null(out);
  }
}

/// Sets column `column` of `xs` as the result (NULL past the last).
template <class... Ts>
void result_at(sqlite3_context* out, int column, const Ts&... xs) {
  int i = 0;
  bool set = false;
  ((set = set || (i++ == column && (result(out, xs), true))), ...);
  if (!set) {
    sqlite3_result_null(out);
  }
}

/// The rows of one statement's step: `size` rows, whose column values `column` sets.
class row_source {
public:
  using column_fn = std::function<void(size_t row, int column, sqlite3_context* out)>;

  row_source(size_t size, column_fn column)
    : size_(size)
    , column_(std::move(column)) {}

  [[nodiscard]] size_t size() const noexcept {
    return size_;
  }
  void column(size_t row, int column, sqlite3_context* out) const {
    column_(row, column, out);
  }

private:
  size_t size_;
  column_fn column_;
};

/// The rows of `items`: `fields(item)` returns a tuple of the row's columns (int64_t, blob,
/// text, maybe_blob), c0 first. `items` must outlive the source.
template <class T, class Fields>
row_source rows_of(std::span<const T> items, Fields fields) {
  return row_source{items.size(), [items, fields](size_t r, int c, sqlite3_context* out) {
                      std::apply([&](const auto&... xs) { result_at(out, c, xs...); },
                                 fields(items[r]));
                    }};
}

/// A parameter that hands a `row_source` to eddy_rows(?N).
struct rows {
  const row_source* source;
};

/// The pointer type eddy_rows accepts (sqlite3_bind_pointer's tag).
inline constexpr const char* rows_pointer_type = "eddy.row_source";

inline int bind_one(sqlite3_stmt* s, int i, rows x) {
  return sqlite3_bind_pointer(s, i, const_cast<row_source*>(x.source), rows_pointer_type, nullptr);
}

/// Registers eddy_rows on `db`; SQLITE_OK or the failing result code.
[[nodiscard]] int register_rows(sqlite3* db);

} // namespace eddy::sqlite
