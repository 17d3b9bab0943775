// eddy_rows: an eponymous table-valued function over a bound `row_source` (see
// sqlite_rows.hpp). The virtual table has the columns c0 .. c7 and a hidden column `source`,
// the function's argument; a plan is only possible with that argument given.

#include "core/sqlite_rows.hpp"

#include <new>

namespace eddy::sqlite {

namespace {

constexpr int source_column = rows_columns_max;

struct rows_cursor {
  sqlite3_vtab_cursor base{};
  const row_source* source = nullptr;
  size_t row = 0;
};

int rows_connect(sqlite3* db, void*, int, const char* const*, sqlite3_vtab** out, char**) {
  int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(c0, c1, c2, c3, c4, c5, c6, c7, "
                                    "source HIDDEN)");
  if (rc != SQLITE_OK) {
    return rc;
  }
  auto* vtab = static_cast<sqlite3_vtab*>(sqlite3_malloc(sizeof(sqlite3_vtab)));
  if (vtab == nullptr) {
    return SQLITE_NOMEM;
  }
  *vtab = sqlite3_vtab{};
  *out = vtab;
  sqlite3_vtab_config(db, SQLITE_VTAB_INNOCUOUS);
  return SQLITE_OK;
}

int rows_disconnect(sqlite3_vtab* vtab) {
  sqlite3_free(vtab);
  return SQLITE_OK;
}

int rows_best_index(sqlite3_vtab*, sqlite3_index_info* info) {
  for (int i = 0; i < info->nConstraint; ++i) {
    const auto& c = info->aConstraint[i];
    if (c.iColumn == source_column && c.op == SQLITE_INDEX_CONSTRAINT_EQ) {
      if (c.usable == 0) {
        return SQLITE_CONSTRAINT;
      }
      info->aConstraintUsage[i].argvIndex = 1;
      info->aConstraintUsage[i].omit = 1;
      info->estimatedCost = 1;
      info->estimatedRows = 32;
      return SQLITE_OK;
    }
  }
  // Without its argument the table has no rows to give: no plan.
  return SQLITE_CONSTRAINT;
}

int rows_open(sqlite3_vtab*, sqlite3_vtab_cursor** out) {
  auto* cursor = new (std::nothrow) rows_cursor{};
  if (cursor == nullptr) {
    return SQLITE_NOMEM;
  }
  *out = &cursor->base;
  return SQLITE_OK;
}

rows_cursor& cursor_of(sqlite3_vtab_cursor* c) {
  // base is the first member of the standard-layout rows_cursor.
  return *reinterpret_cast<rows_cursor*>(c);
}

int rows_close(sqlite3_vtab_cursor* c) {
  delete &cursor_of(c);
  return SQLITE_OK;
}

int rows_filter(sqlite3_vtab_cursor* c, int, const char*, int argc, sqlite3_value** argv) {
  auto& cursor = cursor_of(c);
  cursor.row = 0;
  cursor.source =
    argc > 0 ? static_cast<const row_source*>(sqlite3_value_pointer(argv[0], rows_pointer_type))
             : nullptr;
  return SQLITE_OK;
}

int rows_next(sqlite3_vtab_cursor* c) {
  ++cursor_of(c).row;
  return SQLITE_OK;
}

int rows_eof(sqlite3_vtab_cursor* c) {
  const auto& cursor = cursor_of(c);
  return cursor.source == nullptr || cursor.row >= cursor.source->size() ? 1 : 0;
}

int rows_column(sqlite3_vtab_cursor* c, sqlite3_context* out, int column) {
  const auto& cursor = cursor_of(c);
  if (column >= source_column) {
    sqlite3_result_null(out);
  } else {
    cursor.source->column(cursor.row, column, out);
  }
  return SQLITE_OK;
}

int rows_rowid(sqlite3_vtab_cursor* c, sqlite3_int64* out) {
  *out = static_cast<sqlite3_int64>(cursor_of(c).row);
  return SQLITE_OK;
}

sqlite3_module make_module() {
  sqlite3_module m{};
  // Eponymous only: no xCreate, so `CREATE VIRTUAL TABLE ... USING eddy_rows` is refused.
  m.xConnect = rows_connect;
  m.xBestIndex = rows_best_index;
  m.xDisconnect = rows_disconnect;
  m.xOpen = rows_open;
  m.xClose = rows_close;
  m.xFilter = rows_filter;
  m.xNext = rows_next;
  m.xEof = rows_eof;
  m.xColumn = rows_column;
  m.xRowid = rows_rowid;
  return m;
}

const sqlite3_module rows_module = make_module();

} // namespace

int register_rows(sqlite3* db) {
  return sqlite3_create_module(db, "eddy_rows", &rows_module, nullptr);
}

} // namespace eddy::sqlite
