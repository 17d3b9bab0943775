// A pinned snapshot and its online backup (see sqlite_snapshot.hpp).

#include "core/sqlite_snapshot.hpp"

#include <string>
#include <system_error>
#include <utility>

#include "eddy/core/error.hpp"

namespace fs = std::filesystem;

namespace eddy::sqlite {

struct snapshot::state {
  fs::path file;
  const file_kind* kind = nullptr;
  /// Holds the read transaction that pins the snapshot.
  connection source;
  fs::path target;
  connection copy;
  sqlite3_backup* backup = nullptr;
  int pages = 0;
  int left = 0;

  /// Ends a copy in progress, and removes its file unless it completed.
  void end_copy(bool complete) noexcept {
    if (backup != nullptr) {
      sqlite3_backup_finish(backup);
      backup = nullptr;
    }
    copy.reset();
    if (!complete && !target.empty()) {
      std::error_code ec;
      fs::remove(target, ec);
    }
  }

  ~state() {
    end_copy(left == 0 && pages > 0);
  }
};

snapshot::snapshot(std::unique_ptr<state> s) noexcept
  : s_(std::move(s)) {}

snapshot::snapshot(snapshot&&) noexcept = default;
snapshot& snapshot::operator=(snapshot&&) noexcept = default;
snapshot::~snapshot() = default;

caf::expected<connection> snapshot::open_warm(const fs::path& file, const file_kind& kind) {
  if (std::error_code ec; !fs::exists(file, ec)) {
    return make_error(errc::io_failure, "cannot pin " + std::string{kind.name} + " " +
                                          file.string() + ": it does not exist");
  }
  auto db = open(file, kind);
  if (!db) {
    return db.error();
  }
  file_ref f{db->get(), file, kind};
  if (auto err = f.query_once("pin", "SELECT count(*) FROM sqlite_master", [](row) {})) {
    return err;
  }
  return std::move(*db);
}

caf::expected<snapshot> snapshot::pin(const fs::path& file, const file_kind& kind) {
  auto db = open_warm(file, kind);
  if (!db) {
    return db.error();
  }
  return pin(std::move(*db), file, kind);
}

caf::expected<snapshot> snapshot::pin(connection db, const fs::path& file, const file_kind& kind) {
  auto s = std::make_unique<state>();
  s->file = file;
  s->kind = &kind;
  s->source = std::move(db);
  file_ref f{s->source.get(), s->file, kind};
  // A deferred transaction takes its snapshot at its first read, and keeps it until it ends.
  if (auto err = f.exec("pin", "BEGIN")) {
    return err;
  }
  if (auto err = f.query_once("pin", "SELECT count(*) FROM sqlite_master", [](row) {})) {
    return err;
  }
  return snapshot{std::move(s)};
}

caf::expected<bool> snapshot::copy_step(const fs::path& target, int pages, bool synced) {
  auto& s = *s_;
  if (s.backup == nullptr) {
    if (s.pages > 0 && s.left == 0 && target == s.target) {
      return true;
    }
    s.end_copy(false);
    s.target = target;
    std::error_code ec;
    fs::remove(target, ec);
    auto db = open(target, *s.kind);
    if (!db) {
      return db.error();
    }
    s.copy = std::move(*db);
    file_ref t{s.copy.get(), s.target, *s.kind};
    // The copy is synced whole when it completes: no journal and no syncs while it is written.
    if (auto err = t.exec("copy to", "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF")) {
      s.end_copy(false);
      return err;
    }
    s.backup = sqlite3_backup_init(s.copy.get(), "main", s.source.get(), "main");
    if (s.backup == nullptr) {
      auto err = t.error(sqlite3_errcode(s.copy.get()), "copy to");
      s.end_copy(false);
      return err;
    }
  }
  int rc = sqlite3_backup_step(s.backup, pages);
  s.pages = sqlite3_backup_pagecount(s.backup);
  s.left = sqlite3_backup_remaining(s.backup);
  if (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
    return false;
  }
  file_ref t{s.copy.get(), s.target, *s.kind};
  if (rc != SQLITE_DONE) {
    auto err = t.error(rc, "copy to");
    s.end_copy(false);
    return err;
  }
  rc = sqlite3_backup_finish(s.backup);
  s.backup = nullptr;
  if (rc != SQLITE_OK) {
    auto err = t.error(rc, "copy to");
    s.end_copy(false);
    return err;
  }
  s.left = 0;
  s.copy.reset();
  if (auto err = synced ? sync_file(s.target, *s.kind) : caf::error{}) {
    s.end_copy(false);
    return err;
  }
  return true;
}

caf::error snapshot::copy_to(const fs::path& target, int pages) {
  for (;;) {
    auto done = copy_step(target, pages);
    if (!done) {
      return done.error();
    }
    if (*done) {
      return {};
    }
  }
}

int snapshot::page_count() const noexcept {
  return s_->pages;
}

int snapshot::remaining() const noexcept {
  return s_->left;
}

} // namespace eddy::sqlite
