#include "core/sqlite_file.hpp"
#include "core/sqlite_rows.hpp"

#include <array>
#include <set>
#include <string>
#include <system_error>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include "eddy/core/error.hpp"

namespace fs = std::filesystem;

namespace eddy::sqlite {

namespace {

/// fsyncs `path` (a file or a directory, by `flags`); an io_failure saying "cannot sync "
/// `what` otherwise.
caf::error fsync_path(const fs::path& path, int flags, const std::string& what) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    auto err = make_error(errc::io_failure, "cannot sync " + what + ": " + std::strerror(errno));
    if (fd >= 0) {
      ::close(fd);
    }
    return err;
  }
  ::close(fd);
  return {};
}

/// By sync_mode.
constexpr std::array<const char*, 3> synchronous_sql = {
  "PRAGMA synchronous=OFF",
  "PRAGMA synchronous=NORMAL",
  "PRAGMA synchronous=FULL",
};

} // namespace

std::string row::string_at(int i) const {
  // sqlite3_column_blob() before sqlite3_column_bytes(), as SQLite asks.
  const auto* data = static_cast<const char*>(sqlite3_column_blob(s_, i));
  auto size = static_cast<size_t>(sqlite3_column_bytes(s_, i));
  return data == nullptr ? std::string{} : std::string{data, size};
}

std::optional<std::string> row::optional_at(int i) const {
  if (is_null(i)) {
    return std::nullopt;
  }
  return string_at(i);
}

void closer::operator()(sqlite3* db) const noexcept {
  sqlite3_close_v2(db);
}

void closer::operator()(sqlite3_stmt* s) const noexcept {
  sqlite3_finalize(s);
}

std::string lock_wait_hint(std::string_view holder, int timeout_ms) {
  return " (another " + std::string{holder} + " held its lock for more than " +
         std::to_string(timeout_ms) + " ms)";
}

std::string writable_hint(std::string_view file) {
  return " (the " + std::string{file} +
         " and its directory must be writable: SQLite keeps -wal and -shm files beside it)";
}

caf::error create_parent(const fs::path& file, const file_kind& kind) {
  auto dir = file.parent_path();
  if (dir.empty()) {
    return {};
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return make_error(errc::io_failure, "cannot create directory " + dir.string() + " for " +
                                          std::string{kind.name} + " " + file.string() + ": " +
                                          ec.message());
  }
  return {};
}

caf::error sync_file(const fs::path& file, const file_kind& kind) {
  return fsync_path(file, O_RDONLY, std::string{kind.name} + " " + file.string());
}

caf::error sync_parent(const fs::path& file, const file_kind& kind) {
  auto dir = file.parent_path().empty() ? fs::path{"."} : file.parent_path();
  return fsync_path(dir, O_RDONLY | O_DIRECTORY,
                    "directory " + dir.string() + " of " + std::string{kind.name} + " " +
                      file.string());
}

caf::error sync_parents(const std::vector<fs::path>& files, const file_kind& kind) {
  std::set<fs::path> done;
  for (const auto& f : files) {
    if (done.insert(f.parent_path()).second) {
      if (auto err = sync_parent(f, kind)) {
        return err;
      }
    }
  }
  return {};
}

caf::expected<connection> open(const fs::path& file, const file_kind& kind) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  if (kind.serialized_by_owner) {
    flags |= SQLITE_OPEN_NOMUTEX;
  }
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(file.c_str(), &raw, flags, nullptr);
  // SQLite allocates a handle even when opening fails; it carries the message.
  connection db{raw};
  if (rc != SQLITE_OK) {
    return file_ref{db.get(), file, kind}.error(rc, "open");
  }
  if (sqlite3_db_readonly(db.get(), "main") == 1) {
    return make_error(errc::io_failure, std::string{kind.name} + " " + file.string() +
                                          " is readonly (its file or file system is not "
                                          "writable); fix its permissions or use another "
                                          "--data-dir");
  }
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), kind.busy_timeout_ms);
  if (rc = register_rows(db.get()); rc != SQLITE_OK) {
    return file_ref{db.get(), file, kind}.error(rc, "open");
  }
  return db;
}

caf::error file_ref::error(int rc, std::string_view what) const {
  std::string detail = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return make_error(errc::disk_full, "disk full writing " + path_->string() + ": " + detail);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return corrupt(detail);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      detail += kind_->busy_hint;
      break;
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
      detail += kind_->access_hint;
      break;
    default:
      // SQLITE_IOERR and anything unexpected.
      break;
  }
  return make_error(errc::io_failure, "cannot " + std::string{what} + " " +
                                        std::string{kind_->name} + " " + path_->string() + ": " +
                                        detail);
}

caf::error file_ref::corrupt(std::string_view detail) const {
  return make_error(errc::corrupt_journal, path_->string() + " is not a valid Eddy " +
                                             std::string{kind_->name} +
                                             " (corrupted or not SQLite): " + std::string{detail} +
                                             "; " + std::string{kind_->corrupt_hint});
}

caf::error file_ref::exec(std::string_view what, const char* sql) const {
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? caf::error{} : error(rc, what);
}

caf::expected<statement> file_ref::prepare(const char* sql) const {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  statement s{raw};
  if ((rc & 0xff) == SQLITE_ERROR) {
    return corrupt(sqlite3_errmsg(db_));
  }
  if (rc != SQLITE_OK) {
    return error(rc, "open");
  }
  return s;
}

caf::expected<statement> file_ref::prepare_once(std::string_view what, const char* sql) const {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql, -1, &raw, nullptr);
  statement s{raw};
  if (rc != SQLITE_OK) {
    return error(rc, what);
  }
  return s;
}

caf::error file_ref::use_wal(sync_mode mode) const {
  std::string journal_mode;
  auto on_mode = [&](row r) {
    journal_mode = r.string_at(0);
  };
  if (auto err = query_once("open", "PRAGMA journal_mode=WAL", on_mode)) {
    return err;
  }
  if (journal_mode != "wal") {
    return make_error(errc::io_failure, "cannot open " + std::string{kind_->name} + " " +
                                          path_->string() +
                                          ": the file system does not support WAL mode");
  }
  return set_sync(mode);
}

caf::error file_ref::set_sync(sync_mode mode) const {
  return exec("open", synchronous_sql.at(static_cast<size_t>(mode)));
}

void file_ref::rollback() const noexcept {
  if (sqlite3_get_autocommit(db_) == 0) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

caf::error file_ref::begin_transaction(std::string_view what, sqlite3_stmt* stmt) const {
  return stmt != nullptr ? run(stmt, what) : exec(what, "BEGIN IMMEDIATE");
}

caf::error file_ref::end_transaction(std::string_view what, sqlite3_stmt* stmt,
                                     caf::error err) const {
  if (!err) {
    err = stmt != nullptr ? run(stmt, what) : exec(what, "COMMIT");
  }
  if (err) {
    rollback();
  }
  return err;
}

} // namespace eddy::sqlite
