// The `eddy` tool: operator commands over a data directory, one subcommand each.
//   eddy deadletters   lists the dead-letter journal (<data-dir>/deadletters.db)
//   eddy console       inspects a running node (console.cpp)
//   eddy savepoint     lists, shows, verifies and deletes savepoints (savepoint.cpp)
// Usage errors print one line "eddy: error: ..." on stderr and exit 2; other failures
// (a journal that cannot be read) exit 1.

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "console.hpp"
#include "eddy/core/error.hpp"
#include "eddy/io/dead_letter_store.hpp"
#include "savepoint.hpp"

namespace fs = std::filesystem;
namespace po = boost::program_options;

using namespace eddy::cli;

namespace {

/// An origin as "producer:position"; 0 means unknown.
std::string origin_text(uint64_t origin) {
  if (origin == 0) {
    return "unknown";
  }
  constexpr uint64_t position_mask = (uint64_t{1} << 48) - 1;
  return std::to_string(origin >> 48) + ":" + std::to_string(origin & position_mask);
}

/// `s` safe for a terminal: control characters (but newlines) as \xNN, continuation lines
/// indented by `indent`.
std::string printable(std::string_view s, std::string_view indent) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += '\n';
      out += indent;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

/// One dead letter as a block of lines.
void print_text(const eddy::failed_record& r) {
  constexpr std::string_view indent = "            ";
  std::cout << "#" << r.id << "  " << iso_utc(r.at_ms) << "  job " << printable(r.job, indent)
            << "  operator " << printable(r.op, indent) << "/" << r.partition << "  attempts "
            << r.attempts << (r.replayed ? "  replayed" : "  pending") << "\n";
  if (!r.key.empty()) {
    std::cout << "    key     " << printable(r.key, indent) << "\n";
  }
  std::cout << "    origin  " << origin_text(r.origin) << "\n";
  std::cout << "    error   " << printable(r.error, indent) << "\n";
  std::cout << "    record  " << printable(r.record, indent) << "\n\n";
}

/// One dead letter as one JSON object on one line: every field but the payload.
void print_json(const eddy::failed_record& r) {
  nlohmann::ordered_json j;
  j["id"] = r.id;
  j["at_ms"] = r.at_ms;
  j["time"] = iso_utc(r.at_ms);
  j["job"] = r.job;
  j["op"] = r.op;
  j["partition"] = r.partition;
  j["origin"] = r.origin;
  j["key"] = r.key;
  j["record"] = r.record;
  j["error"] = r.error;
  j["attempts"] = r.attempts;
  j["replayed"] = r.replayed;
  // Invalid UTF-8 (user code may throw any bytes) is replaced rather than fatal.
  std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

std::string plural(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

struct deadletters_args {
  fs::path data_dir;
  eddy::failed_record_query query;
  bool json = false;
};

/// Lists the journal; the data directory and its journal exist.
int list_dead_letters(const deadletters_args& args, const fs::path& file) {
  auto store = eddy::dead_letter_store::open(file);
  if (!store) {
    return failure(eddy::describe(store.error()));
  }
  auto list = (*store)->list(args.query);
  if (!list) {
    return failure(eddy::describe(list.error()));
  }
  for (const auto& r : *list) {
    if (args.json) {
      print_json(r);
    } else {
      print_text(r);
    }
  }
  if (args.json) {
    return exit_ok;
  }
  // The summary counts every dead letter the job and operator filters select.
  auto q = args.query;
  q.limit = SIZE_MAX;
  q.pending_only = false;
  auto total = (*store)->count(q);
  if (!total) {
    return failure(eddy::describe(total.error()));
  }
  q.pending_only = true;
  auto pending = (*store)->count(q);
  if (!pending) {
    return failure(eddy::describe(pending.error()));
  }
  std::cout << plural(*total, "dead letter", "dead letters") << " (" << *pending << " pending)";
  auto listed = args.query.pending_only ? *pending : *total;
  if (list->size() < listed) {
    std::cout << ", the oldest " << list->size() << " listed (--limit)";
  }
  std::cout << "\n";
  return exit_ok;
}

int run_deadletters(const deadletters_args& args) {
  std::error_code ec;
  auto status = fs::status(args.data_dir, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return failure("cannot read data directory " + args.data_dir.string() + ": " + ec.message());
  }
  auto where = args.json ? &std::cerr : &std::cout;
  if (!fs::exists(status)) {
    *where << "no dead letters in " << args.data_dir.string() << " (no such directory)\n";
    return exit_ok;
  }
  if (!fs::is_directory(status)) {
    return failure("data directory " + args.data_dir.string() + " is not a directory");
  }
  auto file = eddy::dead_letter_store::path_in(args.data_dir);
  // Listing never creates the journal: a job creates it when it starts.
  if (!fs::exists(file, ec)) {
    if (ec) {
      return failure("cannot read " + file.string() + ": " + ec.message());
    }
    *where << "no dead letters in " << args.data_dir.string() << "\n";
    return exit_ok;
  }
  return list_dead_letters(args, file);
}

int deadletters_main(const std::vector<std::string>& argv) {
  constexpr std::string_view help = "eddy deadletters --help";
  po::options_description desc{"Options"};
  desc.add_options()("help,h", "print this help and exit")(
    "data-dir", po::value<std::string>()->default_value("./data"),
    "the data directory of the jobs (holds deadletters.db)")("job", po::value<std::string>(),
                                                             "only the dead letters of this job")(
    "operator", po::value<std::string>(),
    "only the dead letters of this operator")("all", "include the dead letters already replayed")(
    "json", "one JSON object per line (every field but the payload)")(
    "limit", po::value<int64_t>(), "list at most N dead letters, the oldest first");
  // Arguments that are no option land here, to be named in the error.
  po::options_description all;
  all.add(desc).add_options()("stray", po::value<std::vector<std::string>>());
  po::positional_options_description stray;
  stray.add("stray", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argv).options(all).positional(stray).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return usage_error(e.what(), help);
  }
  if (vm.count("stray")) {
    return usage_error(
      "unexpected argument '" + vm["stray"].as<std::vector<std::string>>()[0] + "'", help);
  }
  if (vm.count("help")) {
    std::cout << "usage: eddy deadletters [options]\n\n"
                 "Lists the records whose processing failed (poison records, records that\n"
                 "reached a failed actor), kept in <data-dir>/deadletters.db; pending ones\n"
                 "only unless --all. Oldest first.\n\n"
              << desc << "\n";
    return exit_ok;
  }
  deadletters_args args;
  args.data_dir = vm["data-dir"].as<std::string>();
  if (vm.count("job")) {
    args.query.job = vm["job"].as<std::string>();
  }
  if (vm.count("operator")) {
    args.query.op = vm["operator"].as<std::string>();
  }
  args.query.pending_only = vm.count("all") == 0;
  args.json = vm.count("json") > 0;
  if (vm.count("limit")) {
    auto limit = vm["limit"].as<int64_t>();
    if (limit < 1) {
      return usage_error("--limit must be at least 1, not " + std::to_string(limit), help);
    }
    args.query.limit = static_cast<size_t>(limit);
  }
  return run_deadletters(args);
}

/// A subcommand: `eddy <name> [its options]`.
struct command {
  std::string_view name;
  std::string_view summary;
  int (*main)(const std::vector<std::string>& argv);
};

constexpr std::array commands = {
  command{"deadletters", "list the records whose processing failed", deadletters_main},
  command{"console", "inspect a running node (HOST:PORT of a program run with --inspect)",
          eddy::console::main},
  command{"savepoint", "list, show, verify and delete savepoints", eddy::savepoint_cli::main},
};

void print_usage() {
  std::cout << "usage: eddy <command> [options]\n"
               "       eddy <command> --help\n\n"
               "Commands:\n";
  for (const auto& c : commands) {
    std::cout << "  " << std::left << std::setw(14) << c.name << " " << c.summary << "\n";
  }
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + std::min(argc, 1), argv + argc);
  if (args.empty()) {
    return usage_error("missing command", "eddy --help");
  }
  const auto& name = args.front();
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage();
    return exit_ok;
  }
  if (name.starts_with("-")) {
    return usage_error("unknown option '" + name + "'; options follow the command", "eddy --help");
  }
  for (const auto& c : commands) {
    if (c.name == name) {
      return c.main({args.begin() + 1, args.end()});
    }
  }
  return usage_error("unknown command '" + name + "'", "eddy --help");
}
