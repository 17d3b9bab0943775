// A journal pinned for a savepoint's copy, and the copy folded to stand alone (see
// journal_pin in eddy/state/journal_store.hpp).

#include "core/sqlite_snapshot.hpp"
#include "eddy/state/journal_store.hpp"
#include "journal_sql.hpp"

namespace fs = std::filesystem;

namespace eddy {

using journal_sql::kind;

struct journal_pin::impl {
  sqlite::snapshot snap;
  journal_meta meta;
  fs::path file;
};

journal_pin::journal_pin(std::unique_ptr<impl> p) noexcept
  : p_(std::move(p)) {}
journal_pin::journal_pin(journal_pin&&) noexcept = default;
journal_pin& journal_pin::operator=(journal_pin&&) noexcept = default;
journal_pin::~journal_pin() = default;

caf::expected<bool> journal_pin::copy_step(const fs::path& target, int pages, bool synced) {
  return p_->snap.copy_step(target, pages, synced);
}

int journal_pin::remaining() const noexcept {
  return p_->snap.remaining();
}

int journal_pin::page_count() const noexcept {
  return p_->snap.page_count();
}

const journal_meta& journal_pin::meta() const noexcept {
  return p_->meta;
}

const fs::path& journal_pin::file() const noexcept {
  return p_->file;
}

caf::error journal_store::prepare_pin() {
  if (spare_) {
    return {};
  }
  auto db = sqlite::snapshot::open_warm(file_, kind());
  if (!db) {
    return db.error();
  }
  spare_.reset(db->release());
  return {};
}

caf::expected<journal_pin> journal_store::pin() {
  auto snap = spare_ ? sqlite::snapshot::pin(sqlite::connection{spare_.release()}, file_, kind())
                     : sqlite::snapshot::pin(file_, kind());
  if (!snap) {
    return snap.error();
  }
  return journal_pin{
    std::make_unique<journal_pin::impl>(journal_pin::impl{std::move(*snap), meta_, file_})};
}

caf::expected<journal_copy_facts>
normalize_journal_copy(const fs::path& file, const journal_meta& meta, size_t keep_per_key) {
  auto copy = journal_store::open(file, meta, durability::none, keep_per_key);
  if (!copy) {
    return copy.error();
  }
  auto keys = copy->key_count();
  if (!keys) {
    return keys.error();
  }
  return journal_copy_facts{*keys, copy->last_seq()};
}

} // namespace eddy
