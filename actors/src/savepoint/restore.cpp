#include "savepoint/restore.hpp"

#include <chrono>
#include <system_error>

#include "eddy/core/error.hpp"
#include "eddy/core/log.hpp"
#include "eddy/savepoint/restore.hpp"

namespace fs = std::filesystem;

namespace eddy::detail {

namespace {

caf::error refuse(const savepoint_manifest& m, const std::string& why) {
  return make_error(errc::state_mismatch, "cannot restore savepoint " + m.id + ": " + why);
}

/// The first difference between the job's shape and the savepoint's, or empty. Restoring
/// into another shape (rescaling, changed operators) is not built yet.
std::string shape_difference(const job_graph& g, const savepoint_manifest& m) {
  const std::string later =
    "; restoring into another shape (rescaling, added or renamed operators) is not built yet";
  if (m.partitions != g.partitions()) {
    return "it was taken with " + std::to_string(m.partitions) + " partitions and job " + g.name() +
           " runs " + std::to_string(g.partitions()) + " (--job.partitions)" + later;
  }
  const auto& nodes = g.nodes();
  for (size_t n = 0; n < nodes.size() || n < m.nodes.size(); ++n) {
    if (n >= m.nodes.size()) {
      return "job " + g.name() + " has operator '" + nodes[n].name +
             "', which the savepoint does not" + later;
    }
    const auto& sn = m.nodes[n];
    if (n >= nodes.size() || sn.name != nodes[n].name) {
      return "the savepoint has operator '" + sn.name + "' where job " + g.name() + " has " +
             (n < nodes.size() ? "'" + nodes[n].name + "'" : std::string{"none"}) + later;
    }
    if (sn.kind != to_string(nodes[n].kind) || sn.instances != g.instances(n)) {
      return "operator '" + sn.name + "' was a " + sn.kind + " of " + std::to_string(sn.instances) +
             " instances and is a " + to_string(nodes[n].kind) + " of " +
             std::to_string(g.instances(n)) + later;
    }
  }
  return {};
}

} // namespace

caf::error restore_job_state(const job_graph& g, const runtime_options& opts,
                             const fs::path& data_dir) {
  const auto& from = opts.savepoint.restore_from;
  auto check = verify_savepoint(from);
  if (!check) {
    return check.error();
  }
  const auto& m = check->manifest;
  if (!check->problems.empty()) {
    return refuse(m, "it does not verify: " + check->problems.front() +
                       " (eddy savepoint verify lists every problem)");
  }
  if (m.job != g.name()) {
    return refuse(m, "it is a savepoint of job " + m.job + ", not of job " + g.name());
  }
  if (auto why = shape_difference(g, m); !why.empty()) {
    return refuse(m, why);
  }
  for (const auto& s : m.sources) {
    if (s.input.empty()) {
      continue;
    }
    auto d = digest_file(s.input, s.input_bytes);
    if (!d || d->bytes < s.input_bytes || d->crc32c != s.input_crc32c) {
      return refuse(m, "source " + s.name + " had read " + std::to_string(s.input_bytes) +
                         " bytes of " + s.input + " at the cut, and " +
                         (!d                         ? "the file cannot be read"
                          : d->bytes < s.input_bytes ? "the file is shorter now"
                                                     : "those bytes changed since") +
                         "; the input after the cut is read from that file");
    }
  }
  for (const auto& s : m.sinks) {
    std::error_code ec;
    auto size = fs::file_size(s.path, ec);
    if (ec || size < s.length) {
      return refuse(m, "sink " + s.name + " had written " + std::to_string(s.length) +
                         " bytes to " + s.path + " at the cut, and the file " +
                         (ec ? "is missing" : "has " + std::to_string(size)) +
                         "; restore that file or point the sink at a copy of it");
    }
  }
  auto started = std::chrono::steady_clock::now();
  auto placed = place_savepoint(savepoint_dir_of(from), m, data_dir);
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (!placed) {
    return placed.error();
  }
  if (placed->already) {
    log(log_level::info, "engine",
        "job " + g.name() + " was restored from savepoint " + m.id +
          " before; it goes on from its journals (add --state.reset to restore it again)");
    return {};
  }
  log(log_level::info, "engine",
      "job " + g.name() + " restored from savepoint " + m.id + " (" +
        std::to_string(m.files.size()) + " files, " + std::to_string(m.bytes()) + " bytes in " +
        std::to_string(seconds) + " s)" +
        (placed->aside.empty() ? std::string{}
                               : "; its state before was moved to " + placed->aside.string()));
  return {};
}

} // namespace eddy::detail
