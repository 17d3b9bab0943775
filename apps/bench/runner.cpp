// Child processes of eddy-bench (see runner.hpp).

#include "runner.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <system_error>

#include <sys/wait.h>
#include <unistd.h>

namespace bench {
namespace {

fields parse_fields(const std::string& line) {
  fields result;
  std::istringstream in{line};
  std::string token;
  while (in >> token) {
    if (auto eq = token.find('='); eq != std::string::npos) {
      result[token.substr(0, eq)] = token.substr(eq + 1);
    }
  }
  return result;
}

/// In the forked child: stdout into the pipe, then this executable with `args`.
[[noreturn]] void exec_child(const std::vector<std::string>& args, int fds[2]) {
  dup2(fds[1], STDOUT_FILENO);
  close(fds[0]);
  close(fds[1]);
  std::vector<char*> argv;
  for (const auto& a : args) {
    argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);
  execv("/proc/self/exe", argv.data());
  std::perror("eddy-bench: exec /proc/self/exe");
  _exit(127);
}

/// Everything readable from `fd` until its end.
std::string read_all(int fd) {
  std::string output;
  char buf[4096];
  for (;;) {
    auto n = read(fd, buf, sizeof(buf));
    if (n > 0) {
      output.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  return output;
}

} // namespace

double number(const fields& f, const std::string& key) {
  return std::stod(f.at(key));
}

scratch_dir::scratch_dir(const std::filesystem::path& root)
  : root_(root)
  , created_root_(std::filesystem::create_directories(root)) {
  auto pattern = (root / "eddy-bench-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  }
  path_ = pattern;
}

scratch_dir::~scratch_dir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
  if (created_root_) {
    // Only if empty: a default ./data made for the benchmark does not stay behind.
    std::filesystem::remove(root_, ignored);
  }
}

std::optional<fields> run_child(const std::vector<std::string>& args) {
  int fds[2];
  if (pipe(fds) != 0) {
    std::perror("eddy-bench: pipe");
    return std::nullopt;
  }
  auto pid = fork();
  if (pid < 0) {
    std::perror("eddy-bench: fork");
    return std::nullopt;
  }
  if (pid == 0) {
    exec_child(args, fds);
  }
  close(fds[1]);
  auto output = read_all(fds[0]);
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::cerr << "eddy-bench: error: child '" << args[2] << " " << args[3] << "' failed\n";
    return std::nullopt;
  }
  while (!output.empty() && output.back() == '\n') {
    output.pop_back();
  }
  auto last = output.rfind('\n');
  return parse_fields(last == std::string::npos ? output : output.substr(last + 1));
}

std::vector<std::string> child_args(const case_info& c, const variant_info& v, uint64_t events,
                                    uint32_t run_index, const std::filesystem::path& data_dir,
                                    const eddy::command_line& cli) {
  const auto& rt = cli.runtime;
  std::vector<std::string> args = {
    "eddy-bench", "--run-one", c.name, v.name, "--run-index", std::to_string(run_index), "--events",
    std::to_string(events), "--runtime.threads", std::to_string(rt.threads), "--job.partitions",
    std::to_string(rt.partitions), "--runtime.batch-events-max",
    std::to_string(rt.batch_events_max), "--runtime.credit-batches-max",
    std::to_string(rt.credit_batches_max), "--runtime.linger-ms", std::to_string(rt.linger_ms),
    "--runtime.source-rate", std::to_string(rt.source_rate), "--state.cache-mb",
    std::to_string(rt.state.cache_mb), "--state.keep-changes",
    std::to_string(rt.state.keep_changes), "--state.compact-every",
    std::to_string(rt.state.compact_every), "--state.commit-interval-ms",
    std::to_string(rt.state.commit_interval_ms), "--data-dir", data_dir.string(),
    // The children's "job starting" lines would interleave with the report.
    "--log.level",
    cli.values()["log.level"].defaulted() ? std::string{"warn"} : cli.common.log_level};
  if (cli.values().count("runtime.dead-letters")) {
    args.insert(args.end(), {"--runtime.dead-letters", rt.dead_letters.string()});
  }
  return args;
}

std::optional<fields> run_fresh(const case_info& c, const variant_info& v, uint64_t events,
                                const eddy::command_line& cli) {
  try {
    scratch_dir dir{cli.common.data_dir};
    return run_child(child_args(c, v, events, 0, dir.path(), cli));
  } catch (const std::exception& e) {
    std::cerr << "eddy-bench: error: " << e.what() << "\n";
    return std::nullopt;
  }
}

} // namespace bench
