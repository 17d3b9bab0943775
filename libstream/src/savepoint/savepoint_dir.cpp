// Savepoint directories: listing, reading, verifying, completing and deleting them (see
// eddy/savepoint/manifest.hpp).

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "core/sqlite_file.hpp"
#include "eddy/core/error.hpp"
#include "eddy/savepoint/manifest.hpp"

namespace fs = std::filesystem;

namespace eddy {

namespace {

/// Savepoint files as the layer names them when syncing fails.
const sqlite::file_kind& savepoint_kind() {
  static const sqlite::file_kind kind{
    .name = "savepoint file",
    .busy_timeout_ms = 0,
    .serialized_by_owner = true,
    .busy_hint = "",
    .access_hint = "",
    .corrupt_hint = "take another savepoint",
  };
  return kind;
}

bool is_partial(const fs::path& dir) {
  auto name = dir.filename().string();
  return name.size() > savepoint_partial_suffix.size() && name.ends_with(savepoint_partial_suffix);
}

caf::expected<std::string> read_text(const fs::path& file) {
  std::ifstream in{file, std::ios::binary};
  if (!in) {
    return make_error(errc::invalid_savepoint, "cannot read savepoint manifest " + file.string() +
                                                 " (is " + file.parent_path().string() +
                                                 " a savepoint?)");
  }
  return std::string{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

caf::error write_synced(const fs::path& file, const std::string& text) {
  {
    std::ofstream out{file, std::ios::binary | std::ios::trunc};
    out << text;
    out.flush();
    if (!out) {
      return make_error(errc::io_failure, "cannot write " + file.string());
    }
  }
  return sqlite::sync_file(file, savepoint_kind());
}

} // namespace

fs::path savepoint_dir_of(const fs::path& path) {
  return path.filename() == savepoint_manifest_name ? path.parent_path() : path;
}

caf::expected<savepoint_manifest> read_savepoint(const fs::path& path) {
  auto file = savepoint_dir_of(path) / savepoint_manifest_name;
  auto text = read_text(file);
  if (!text) {
    return text.error();
  }
  return parse_manifest(*text, file);
}

caf::expected<std::vector<savepoint_entry>> list_savepoints(const fs::path& root) {
  std::vector<savepoint_entry> out;
  std::error_code ec;
  if (!fs::exists(root, ec)) {
    return out;
  }
  fs::directory_iterator it{root, ec};
  if (ec) {
    return make_error(errc::io_failure,
                      "cannot list savepoints in " + root.string() + ": " + ec.message());
  }
  for (const auto& e : it) {
    if (!e.is_directory(ec)) {
      continue;
    }
    savepoint_entry entry;
    entry.dir = e.path();
    if (is_partial(e.path())) {
      out.push_back(std::move(entry));
      continue;
    }
    if (!fs::exists(e.path() / savepoint_manifest_name, ec)) {
      continue;
    }
    entry.complete = true;
    if (auto m = read_savepoint(e.path())) {
      entry.manifest = std::move(*m);
    } else {
      entry.problem = describe(m.error());
    }
    out.push_back(std::move(entry));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    auto at = [](const savepoint_entry& x) {
      return x.manifest ? x.manifest->created_at_ms : 0;
    };
    return at(a) != at(b) ? at(a) < at(b) : a.dir.filename() < b.dir.filename();
  });
  return out;
}

caf::expected<savepoint_check> verify_savepoint(const fs::path& path) {
  auto dir = savepoint_dir_of(path);
  auto m = read_savepoint(dir);
  if (!m) {
    return m.error();
  }
  savepoint_check check{std::move(*m), {}};
  auto& problems = check.problems;
  for (const auto& f : check.manifest.files) {
    auto d = digest_file(dir / f.path);
    if (!d) {
      problems.push_back(f.path + ": missing or unreadable");
    } else if (d->bytes != f.bytes) {
      problems.push_back(f.path + ": " + std::to_string(d->bytes) + " bytes, the manifest says " +
                         std::to_string(f.bytes));
    } else if (d->crc32c != f.crc32c) {
      std::ostringstream s;
      s << f.path << ": CRC32C " << std::hex << d->crc32c << ", the manifest says " << f.crc32c;
      problems.push_back(s.str());
    }
  }
  return check;
}

caf::expected<fs::path> finalize_savepoint(const fs::path& partial, savepoint_manifest m) {
  if (!is_partial(partial)) {
    return make_error(errc::invalid_savepoint, "cannot finalize " + partial.string() +
                                                 ": its name does not end in " +
                                                 std::string{savepoint_partial_suffix});
  }
  std::vector<fs::path> files;
  for (auto& f : m.files) {
    auto d = digest_file(partial / f.path);
    if (!d) {
      return d.error();
    }
    f.bytes = d->bytes;
    f.crc32c = d->crc32c;
    if (auto err = sqlite::sync_file(partial / f.path, savepoint_kind())) {
      return err;
    }
    files.push_back(partial / f.path);
  }
  // The files' directory entries (count/, out/) are durable before the manifest says so.
  if (auto err = sqlite::sync_parents(files, savepoint_kind())) {
    return err;
  }
  if (auto err = write_synced(partial / savepoint_manifest_name, to_json(m))) {
    return err;
  }
  auto name = partial.filename().string();
  auto done = partial.parent_path() / name.substr(0, name.size() - savepoint_partial_suffix.size());
  std::error_code ec;
  fs::rename(partial, done, ec);
  if (ec) {
    return make_error(errc::io_failure, "cannot rename " + partial.string() + " to " +
                                          done.string() + ": " + ec.message());
  }
  if (auto err = sqlite::sync_parent(done, savepoint_kind())) {
    return err;
  }
  return done;
}

caf::error delete_savepoint(const fs::path& path) {
  auto dir = savepoint_dir_of(path);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return make_error(errc::invalid_savepoint, "no savepoint at " + dir.string());
  }
  if (!is_partial(dir) && !fs::exists(dir / savepoint_manifest_name, ec)) {
    return make_error(errc::invalid_savepoint, dir.string() + " is not a savepoint (it has no " +
                                                 std::string{savepoint_manifest_name} +
                                                 "); nothing deleted");
  }
  fs::remove_all(dir, ec);
  if (ec) {
    return make_error(errc::io_failure, "cannot delete " + dir.string() + ": " + ec.message());
  }
  return {};
}

caf::expected<size_t> remove_partial_savepoints(const fs::path& root, const std::string& job) {
  auto all = list_savepoints(root);
  if (!all) {
    return all.error();
  }
  size_t removed = 0;
  for (const auto& e : *all) {
    if (!e.complete && (job.empty() || is_partial_savepoint_of(e.dir, job))) {
      if (auto err = delete_savepoint(e.dir)) {
        return err;
      }
      ++removed;
    }
  }
  return removed;
}

std::string utc_stamp() {
  auto now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  return stamp;
}

std::string new_savepoint_id(const fs::path& root, const std::string& job) {
  auto stamp = utc_stamp();
  for (int n = 1;; ++n) {
    char suffix[16];
    std::snprintf(suffix, sizeof suffix, "-%04d", n);
    auto id = job + "-" + stamp + suffix;
    std::error_code ec;
    if (!fs::exists(root / id, ec) &&
        !fs::exists(root / (id + std::string{savepoint_partial_suffix}), ec)) {
      return id;
    }
  }
}

bool is_partial_savepoint_of(const fs::path& dir, const std::string& job) {
  auto name = dir.filename().string();
  auto prefix = job + "-";
  if (!name.starts_with(prefix) || !is_partial(dir)) {
    return false;
  }
  // The stamp, "20261208T013604Z", right after the job's name.
  auto rest = std::string_view{name}.substr(prefix.size());
  auto digit = [](char c) {
    return c >= '0' && c <= '9';
  };
  return rest.size() > 16 && std::all_of(rest.begin(), rest.begin() + 8, digit) && rest[8] == 'T' &&
         rest[15] == 'Z';
}

} // namespace eddy
