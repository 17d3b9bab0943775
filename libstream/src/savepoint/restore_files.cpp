// A savepoint's journals put in place as a job's state (see eddy/savepoint/restore.hpp).

#include <fstream>
#include <iterator>
#include <system_error>

#include "core/sqlite_file.hpp"
#include "eddy/core/error.hpp"
#include "eddy/savepoint/restore.hpp"

namespace fs = std::filesystem;

namespace eddy {

namespace {

const sqlite::file_kind& restore_kind() {
  static const sqlite::file_kind kind{
    .name = "restored file",
    .busy_timeout_ms = 0,
    .serialized_by_owner = true,
    .busy_hint = "",
    .access_hint = "",
    .corrupt_hint = "restore again",
  };
  return kind;
}

caf::error io_error(const std::string& what, const std::error_code& ec) {
  return make_error(errc::io_failure, what + ": " + ec.message());
}

/// The savepoint id a restored directory names, or empty.
std::string restored_from(const fs::path& dir) {
  std::ifstream in{dir / restored_marker_name};
  std::string id;
  std::getline(in, id);
  return id;
}

caf::error copy_synced(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to.parent_path(), ec);
  if (ec) {
    return io_error("cannot create " + to.parent_path().string(), ec);
  }
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) {
    return io_error("cannot copy " + from.string() + " to " + to.string(), ec);
  }
  return sqlite::sync_file(to, restore_kind());
}

/// The staging directory, complete: every journal, the input a service accepted, the marker.
caf::error stage(const fs::path& savepoint, const savepoint_manifest& m, const fs::path& dir,
                 const fs::path& staging) {
  std::error_code ec;
  fs::remove_all(staging, ec);
  std::vector<fs::path> copies;
  for (const auto& f : m.files) {
    copies.push_back(staging / f.path);
    if (auto err = copy_synced(savepoint / f.path, copies.back())) {
      return err;
    }
  }
  if (auto err = sqlite::sync_parents(copies, restore_kind())) {
    return err;
  }
  for (const char* log : {"ingress.db", "ingress.db-wal"}) {
    if (fs::exists(dir / log, ec)) {
      if (auto err = copy_synced(dir / log, staging / log)) {
        return err;
      }
    }
  }
  fs::create_directories(staging, ec);
  auto marker = staging / restored_marker_name;
  {
    std::ofstream out{marker, std::ios::trunc};
    out << m.id << "\n" << savepoint.string() << "\n";
    if (!out.flush()) {
      return make_error(errc::io_failure, "cannot write " + marker.string());
    }
  }
  if (auto err = sqlite::sync_file(marker, restore_kind())) {
    return err;
  }
  return sqlite::sync_parent(marker, restore_kind());
}

} // namespace

caf::expected<fs::path> move_job_state_aside(const fs::path& data_dir, const std::string& job,
                                             const std::string& tag) {
  auto dir = data_dir / job;
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    return fs::path{};
  }
  auto stamp = utc_stamp();
  auto aside = data_dir / (job + "." + tag + "-" + stamp);
  for (int n = 2; fs::exists(aside, ec); ++n) {
    aside = data_dir / (job + "." + tag + "-" + stamp + "-" + std::to_string(n));
  }
  fs::rename(dir, aside, ec);
  if (ec) {
    return io_error("moving " + dir.string() + " to " + aside.string() + " failed", ec);
  }
  return aside;
}

caf::expected<restore_outcome>
place_savepoint(const fs::path& savepoint, const savepoint_manifest& m, const fs::path& data_dir) {
  auto dir = data_dir / m.job;
  auto staging = data_dir / (m.job + ".restoring");
  std::error_code ec;
  restore_outcome out;
  bool have_dir = fs::exists(dir, ec);
  if (have_dir && restored_from(dir) == m.id) {
    out.already = true;
    return out;
  }
  // A restore cut off after the old state went aside: only the rename is left.
  bool staged = !have_dir && fs::exists(staging, ec) && restored_from(staging) == m.id;
  if (!staged) {
    if (auto err = stage(savepoint, m, dir, staging)) {
      fs::remove_all(staging, ec);
      return err;
    }
  }
  if (have_dir) {
    auto aside = move_job_state_aside(data_dir, m.job, "before-restore");
    if (!aside) {
      return aside.error();
    }
    out.aside = std::move(*aside);
  }
  fs::rename(staging, dir, ec);
  if (ec) {
    return io_error("cannot rename " + staging.string() + " to " + dir.string(), ec);
  }
  if (auto err = sqlite::sync_parent(dir, restore_kind())) {
    return err;
  }
  return out;
}

} // namespace eddy
