// `eddy savepoint`: the savepoints of a savepoint directory, offline (no job needs to run).
//   list [DIR]      every savepoint under DIR (default ./data/savepoints), complete or partial
//   info PATH       one savepoint's manifest: the job's shape, sources, sinks and files
//   verify PATH     every file against its size and CRC32C
//   delete PATH     removes one savepoint (never a directory that is not one)
// PATH is a savepoint's directory or its manifest.json.

#include "savepoint.hpp"

#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "eddy/core/error.hpp"
#include "eddy/savepoint/manifest.hpp"

namespace fs = std::filesystem;

namespace eddy::savepoint_cli {

namespace {

using namespace eddy::cli;

constexpr std::string_view help = "eddy savepoint --help";

std::string megabytes(uint64_t bytes) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << static_cast<double>(bytes) / 1e6 << " MB";
  return s.str();
}

int list(const fs::path& root, bool json) {
  auto all = list_savepoints(root);
  if (!all) {
    return failure(describe(all.error()));
  }
  if (json) {
    auto a = nlohmann::ordered_json::array();
    for (const auto& e : *all) {
      nlohmann::ordered_json j{{"path", e.dir.string()},
                               {"status", !e.complete  ? "partial"
                                          : e.manifest ? "complete"
                                                       : "unreadable"}};
      if (e.manifest) {
        j["id"] = e.manifest->id;
        j["job"] = e.manifest->job;
        j["created_at_ms"] = e.manifest->created_at_ms;
        j["bytes"] = e.manifest->bytes();
      } else if (!e.problem.empty()) {
        j["problem"] = e.problem;
      }
      a.push_back(j);
    }
    std::cout << a.dump() << "\n";
    return exit_ok;
  }
  if (all->empty()) {
    std::cout << "no savepoints in " << root.string() << "\n";
    return exit_ok;
  }
  for (const auto& e : *all) {
    if (!e.complete) {
      std::cout << e.dir.filename().string()
                << "  partial (a savepoint being written, or left by a crash)\n";
    } else if (!e.manifest) {
      std::cout << e.dir.filename().string() << "  unreadable: " << e.problem << "\n";
    } else {
      const auto& m = *e.manifest;
      std::cout << m.id << "  job " << m.job << "  " << iso_utc(m.created_at_ms) << "  "
                << m.trigger << "  P " << m.partitions << "  " << m.files.size() << " files, "
                << megabytes(m.bytes()) << "\n";
    }
  }
  return exit_ok;
}

void print_info(const savepoint_manifest& m) {
  std::cout << "savepoint  " << m.id << "\njob        " << m.job << "\ncreated    "
            << iso_utc(m.created_at_ms) << " (" << m.trigger << ", sources held " << m.pause_ms
            << " ms)\neddy       " << m.eddy_version << "\npartitions " << m.partitions
            << "\n\nnodes:\n";
  for (const auto& n : m.nodes) {
    std::cout << "  " << n.name << "  " << n.kind << " x" << n.instances;
    if (n.kind == "keyed") {
      std::cout << "  key " << n.key_type << "  state version " << n.state_version;
      for (const auto& s : n.states) {
        std::cout << "  " << s.name << ": " << s.type;
      }
    }
    std::cout << "\n";
  }
  std::cout << "sources:\n";
  for (const auto& s : m.sources) {
    std::cout << "  " << s.name << "  " << (s.aligned ? "offset" : "offsets per instance");
    for (auto o : s.offsets) {
      std::cout << " " << o;
    }
    if (!s.input.empty()) {
      std::cout << "  of " << s.input << " (" << s.input_bytes << " bytes read)";
    }
    std::cout << "\n";
  }
  std::cout << "sinks:\n";
  for (const auto& s : m.sinks) {
    std::cout << "  " << s.name << "  " << s.path << " at " << s.length << " bytes\n";
  }
  std::cout << "files: " << m.files.size() << ", " << megabytes(m.bytes()) << "\n";
  for (const auto& f : m.files) {
    std::cout << "  " << f.path << "  " << f.bytes << " bytes  " << f.keys << " keys\n";
  }
}

int info(const fs::path& path, bool json) {
  auto m = read_savepoint(path);
  if (!m) {
    return failure(describe(m.error()));
  }
  if (json) {
    std::cout << to_json(*m);
  } else {
    print_info(*m);
  }
  return exit_ok;
}

int verify(const fs::path& path) {
  auto check = verify_savepoint(path);
  if (!check) {
    return failure(describe(check.error()));
  }
  const auto& m = check->manifest;
  const auto& problems = check->problems;
  if (problems.empty()) {
    std::cout << "savepoint " << m.id << " verifies: " << m.files.size() << " files, "
              << megabytes(m.bytes()) << "\n";
    return exit_ok;
  }
  std::cerr << "eddy: error: savepoint " << m.id << " does not verify (" << problems.size()
            << (problems.size() == 1 ? " file" : " files") << "):\n";
  for (const auto& p : problems) {
    std::cerr << "  " << p << "\n";
  }
  return exit_failure;
}

int delete_one(const fs::path& path) {
  if (auto err = delete_savepoint(path)) {
    return failure(describe(err));
  }
  std::cout << "deleted " << savepoint_dir_of(path).string() << "\n";
  return exit_ok;
}

void print_help() {
  std::cout << "usage: eddy savepoint list [DIR] [--json]\n"
               "       eddy savepoint info PATH [--json]\n"
               "       eddy savepoint verify PATH\n"
               "       eddy savepoint delete PATH\n\n"
               "Reads savepoint directories offline, one directory per savepoint with a\n"
               "manifest.json (taking savepoints from a running job is not built yet).\n"
               "PATH is a savepoint's directory or its manifest.json; DIR defaults to\n"
               "./data/savepoints. verify exits 1 when a file differs from the manifest;\n"
               "delete refuses a directory that is not a savepoint.\n";
}

} // namespace

int main(const std::vector<std::string>& argv) {
  std::vector<std::string> args;
  bool json = false;
  for (const auto& a : argv) {
    if (a == "--help" || a == "-h") {
      print_help();
      return exit_ok;
    }
    if (a == "--json") {
      json = true;
    } else if (a.starts_with("-")) {
      return usage_error("unknown option '" + a + "'", help);
    } else {
      args.push_back(a);
    }
  }
  if (args.empty()) {
    return usage_error("missing subcommand (list, info, verify or delete)", help);
  }
  const auto& sub = args[0];
  auto operands = args.size() - 1;
  if (sub == "list") {
    if (operands > 1) {
      return usage_error("list takes at most one directory", help);
    }
    return list(operands == 1 ? fs::path{args[1]} : fs::path{"./data/savepoints"}, json);
  }
  if (sub != "info" && sub != "verify" && sub != "delete") {
    return usage_error("unknown subcommand '" + sub + "' (list, info, verify or delete)", help);
  }
  if (operands != 1) {
    return usage_error(sub + " takes one savepoint (its directory or manifest.json)", help);
  }
  if (json && sub != "info") {
    return usage_error("--json goes with list and info", help);
  }
  fs::path path{args[1]};
  if (sub == "info") {
    return info(path, json);
  }
  return sub == "verify" ? verify(path) : delete_one(path);
}

} // namespace eddy::savepoint_cli
