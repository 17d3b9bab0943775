// `eddy console HOST:PORT`: the interactive inspection console. It connects to a node's
// inspector over CAF's middleman (see actors/src/inspect/inspector.cpp), sends each command line
// and renders the JSON answer: arrays of objects as tables, in the order of their keys, so
// that new inspector commands need nothing here. Line editing, history and tab completion
// come from libedit; `-c "command"` runs one command for scripts, `--json` prints the answer
// as it came.

#include "console.hpp"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <editline/readline.h>
#include <nlohmann/json.hpp>

#include "eddy/actors/messages.hpp"

namespace eddy::console {

namespace {

namespace po = boost::program_options;
using json = nlohmann::ordered_json;

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

struct options {
  std::string host;
  uint16_t port = 0;
  std::optional<std::string> command;
  bool json_output = false;
  uint32_t timeout_ms = 5000;
  std::string history;
};

int usage_error(const std::string& message) {
  std::cerr << "eddy: error: " << message << " (see eddy console --help)\n";
  return exit_usage;
}

/// A connection to one node's inspector.
class session {
public:
  explicit session(const options& opts)
    : opts_(opts) {
    cfg_.add_message_types<caf::id_block::eddy>();
    cfg_.load<caf::io::middleman>();
    sys_.emplace(cfg_);
  }

  /// Connects; on failure returns the reason, naming the address tried.
  std::optional<std::string> connect() {
    auto node = sys_->middleman().remote_actor(opts_.host, opts_.port);
    if (!node) {
      return "cannot reach the inspector at " + address() + ": " + caf::to_string(node.error()) +
             " (is the program running with --inspect?)";
    }
    node_ = *node;
    return std::nullopt;
  }

  /// Sends `line`; returns the answer's JSON text, or nullopt with `problem` set when the
  /// node did not answer (connection lost, timeout).
  std::optional<std::string> ask(const std::string& line, std::string& problem) {
    std::optional<std::string> result;
    caf::scoped_actor self{*sys_};
    self->request(node_, std::chrono::milliseconds(opts_.timeout_ms), inspect_atom::value, line)
      .receive([&](const std::string& reply) { result = reply; },
               [&](const caf::error& err) {
                 problem = "no answer from " + address() + ": " + caf::to_string(err);
               });
    return result;
  }

  [[nodiscard]] std::string address() const {
    return opts_.host + ":" + std::to_string(opts_.port);
  }

private:
  const options& opts_;
  caf::actor_system_config cfg_;
  std::optional<caf::actor_system> sys_;
  caf::actor node_;
};

std::string cell_text(const json& v) {
  if (v.is_string()) {
    return v.get<std::string>();
  }
  if (v.is_null()) {
    return "";
  }
  return v.dump();
}

/// Prints an array of objects as a table with a header of their keys.
void print_table(const json& rows) {
  if (rows.empty()) {
    std::cout << "(none)\n";
    return;
  }
  std::vector<std::string> keys;
  for (const auto& [k, v] : rows.front().items()) {
    keys.push_back(k);
  }
  std::vector<size_t> width;
  for (const auto& k : keys) {
    width.push_back(k.size());
  }
  for (const auto& row : rows) {
    for (size_t c = 0; c < keys.size(); ++c) {
      width[c] = std::max(width[c], cell_text(row.value(keys[c], json{})).size());
    }
  }
  auto line = [&](const std::vector<std::string>& cells, const std::vector<bool>& right) {
    std::string text;
    for (size_t c = 0; c < cells.size(); ++c) {
      auto pad = std::string(width[c] - cells[c].size(), ' ');
      text += (c == 0 ? "" : "  ") + (right[c] ? pad + cells[c] : cells[c] + pad);
    }
    while (!text.empty() && text.back() == ' ') {
      text.pop_back();
    }
    std::cout << text << "\n";
  };
  line(keys, std::vector<bool>(keys.size(), false));
  for (const auto& row : rows) {
    std::vector<std::string> cells;
    std::vector<bool> right;
    for (const auto& k : keys) {
      const auto& v = row.value(k, json{});
      cells.push_back(cell_text(v));
      right.push_back(v.is_number());
    }
    line(cells, right);
  }
}

/// Renders one answer; returns false for an error answer.
bool render(const std::string& reply, bool json_output) {
  auto doc = json::parse(reply, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    std::cerr << "eddy: error: the node sent an answer that is not JSON\n";
    return false;
  }
  if (!doc.value("ok", false)) {
    std::cerr << "error: " << doc.value("error", std::string{"unknown error"}) << "\n";
    return false;
  }
  const auto& data = doc["data"];
  if (json_output) {
    std::cout << data.dump() << "\n";
  } else if (data.is_array()) {
    print_table(data);
  } else if (data.is_object() && data.contains("dot")) {
    std::cout << data["dot"].get<std::string>();
  } else {
    std::cout << data.dump(2) << "\n";
  }
  return true;
}

/// Words for tab completion: the commands the node knows, its jobs and operators.
std::vector<std::string> completion_words;

char* next_completion(const char* text, int state) {
  static size_t index = 0;
  if (state == 0) {
    index = 0;
  }
  std::string_view prefix{text};
  while (index < completion_words.size()) {
    const auto& w = completion_words[index++];
    if (w.starts_with(prefix)) {
      return ::strdup(w.c_str());
    }
  }
  return nullptr;
}

char** complete(const char* text, int start, int end) {
  (void) start;
  (void) end;
  rl_attempted_completion_over = 1;
  return rl_completion_matches(text, next_completion);
}

void learn_words(session& s) {
  completion_words = {"quit", "exit"};
  std::string problem;
  if (auto help = s.ask("help", problem)) {
    auto doc = json::parse(*help, nullptr, false);
    if (!doc.is_discarded() && doc.value("ok", false)) {
      for (const auto& row : doc["data"]) {
        auto command = row.value("command", std::string{});
        completion_words.push_back(command.substr(0, command.find(' ')));
      }
    }
  }
  if (auto actors = s.ask("actors", problem)) {
    auto doc = json::parse(*actors, nullptr, false);
    if (!doc.is_discarded() && doc.value("ok", false)) {
      for (const auto& row : doc["data"]) {
        completion_words.push_back(row.value("actor", std::string{}));
      }
    }
  }
  if (auto graph = s.ask("graph", problem)) {
    auto doc = json::parse(*graph, nullptr, false);
    if (!doc.is_discarded() && doc.value("ok", false)) {
      for (const auto& row : doc["data"]) {
        completion_words.push_back(row.value("operator", std::string{}));
      }
    }
  }
  std::sort(completion_words.begin(), completion_words.end());
  completion_words.erase(std::unique(completion_words.begin(), completion_words.end()),
                         completion_words.end());
}

/// True if a line is waiting on stdin within `ms` (consumes it).
bool key_pressed(int ms) {
  pollfd p{STDIN_FILENO, POLLIN, 0};
  if (::poll(&p, 1, ms) > 0) {
    if ((p.revents & POLLIN) == 0) {
      // Hung up or closed: nobody can press a key any more.
      return true;
    }
    std::string ignored;
    std::getline(std::cin, ignored);
    return true;
  }
  return false;
}

/// Set by SIGINT while `tail` runs: Ctrl-C ends the tail, not the console.
volatile std::sig_atomic_t interrupted = 0;

/// `tail`: starts a session on the node, then prints what it polls every 250 ms until
/// Enter, Ctrl-C or the end of stdin. The job goes on; only the taps end.
bool run_tail(session& s, const std::string& line, bool json_output, std::string& lost) {
  auto reply = s.ask(line, lost);
  if (!reply) {
    return false;
  }
  auto doc = json::parse(*reply, nullptr, false);
  if (doc.is_discarded() || !doc.value("ok", false)) {
    return render(*reply, json_output);
  }
  auto id = doc["data"].value("tail", std::string{});
  if (!json_output) {
    std::cout << "tailing " << doc["data"].value("target", std::string{}) << " on "
              << doc["data"].value("actors", 0) << " actors (Enter or Ctrl-C stops)\n"
              << std::flush;
  }
  interrupted = 0;
  auto previous = std::signal(SIGINT, [](int) { interrupted = 1; });
  bool ok = true;
  while (!interrupted) {
    auto polled = s.ask("tail --poll " + id, lost);
    if (!polled) {
      ok = false;
      break;
    }
    auto answer = json::parse(*polled, nullptr, false);
    if (answer.is_discarded() || !answer.value("ok", false)) {
      ok = render(*polled, json_output);
      break;
    }
    for (const auto& l : answer["data"]["lines"]) {
      if (json_output) {
        std::cout << l.dump() << "\n";
      } else {
        auto key = l.value("key", std::string{});
        std::cout << l.value("actor", std::string{}) << "  " << (key.empty() ? "" : key + "  ")
                  << l.value("record", std::string{}) << "\n";
      }
    }
    if (auto dropped = answer["data"].value("dropped", uint64_t{0}); dropped > 0 && !json_output) {
      std::cout << "(" << dropped << " records not shown: the tail fell behind)\n";
    }
    std::cout.flush();
    if (key_pressed(250)) {
      break;
    }
  }
  std::signal(SIGINT, previous);
  std::string ignored;
  (void) s.ask("tail --stop " + id, ignored);
  return ok;
}

/// The name the console signs audited edits with: user@host.
std::string signature() {
  const char* user = std::getenv("USER");
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string{user != nullptr ? user : "unknown"} + "@" + host;
}

/// Runs one command line; `watch` repeats it every second until Enter is pressed.
bool run_line(session& s, std::string line, bool json_output, std::string& lost) {
  if (line.starts_with("tail ") && line.find("--poll") == std::string::npos &&
      line.find("--stop") == std::string::npos) {
    return run_tail(s, line, json_output, lost);
  }
  if (line.starts_with("set ") && line.find(" --by ") == std::string::npos) {
    line += " --by '" + signature() + "'";
  }
  bool watch = false;
  if (auto at = line.find(" --watch"); at != std::string::npos) {
    watch = true;
    line.erase(at, 8);
  }
  do {
    std::string problem;
    auto reply = s.ask(line, problem);
    if (!reply) {
      lost = problem;
      return false;
    }
    if (watch) {
      std::cout << "\033[H\033[2J" << line << " every 1 s (Enter stops)\n";
    }
    if (!render(*reply, json_output)) {
      return false;
    }
    std::cout.flush();
  } while (watch && !key_pressed(1000));
  return true;
}

std::string trim(std::string s) {
  auto b = s.find_first_not_of(" \t");
  auto e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string{} : s.substr(b, e - b + 1);
}

int interactive(session& s, const options& opts) {
  learn_words(s);
  rl_attempted_completion_function = complete;
  if (!opts.history.empty()) {
    read_history(opts.history.c_str());
  }
  std::cout << "connected to " << s.address() << "; help lists the commands, quit leaves\n";
  int status = exit_ok;
  while (char* raw = readline("eddy> ")) {
    auto line = trim(raw);
    std::free(raw);
    if (line.empty()) {
      continue;
    }
    add_history(line.c_str());
    if (line == "quit" || line == "exit") {
      break;
    }
    std::string lost;
    if (!run_line(s, line, opts.json_output, lost) && !lost.empty()) {
      std::cerr << "error: " << lost << "\n";
      std::cout << "reconnect to " << s.address() << "? [Y/n] " << std::flush;
      std::string answer;
      if (!std::getline(std::cin, answer) ||
          (!answer.empty() && answer[0] != 'y' && answer[0] != 'Y')) {
        status = exit_failure;
        break;
      }
      if (auto problem = s.connect()) {
        std::cerr << "error: " << *problem << "\n";
        status = exit_failure;
        break;
      }
      std::cout << "reconnected\n";
    }
  }
  if (!opts.history.empty()) {
    write_history(opts.history.c_str());
  }
  return status;
}

} // namespace

int main(const std::vector<std::string>& argv) {
  po::options_description desc{"eddy console HOST:PORT [options]"};
  desc.add_options()("help,h", "print this help")("command,c", po::value<std::string>(),
                                                  "run one command and exit (for scripts)")(
    "json", "print answers as JSON")("timeout-ms", po::value<int64_t>()->default_value(5000),
                                     "how long to wait for an answer")(
    "history", po::value<std::string>(), "history file (default ~/.eddy_history; empty: none)")(
    "address", po::value<std::string>(), "HOST:PORT of a node started with --inspect");
  po::positional_options_description pos;
  pos.add("address", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argv).options(desc).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return usage_error(e.what());
  }
  if (vm.count("help")) {
    std::cout << "eddy console: inspect a running Eddy node (started with --inspect)\n\n"
              << desc << "\nCommands are listed by `help` once connected.\n";
    return exit_ok;
  }
  if (!vm.count("address")) {
    return usage_error("missing HOST:PORT");
  }
  options opts;
  auto address = vm["address"].as<std::string>();
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return usage_error("'" + address + "' is not HOST:PORT");
  }
  opts.host = address.substr(0, colon);
  try {
    size_t used = 0;
    auto port = std::stoul(address.substr(colon + 1), &used);
    if (used != address.size() - colon - 1 || port == 0 || port > 65535) {
      throw std::out_of_range("port");
    }
    opts.port = static_cast<uint16_t>(port);
  } catch (const std::exception&) {
    std::string text{address.substr(colon + 1)};
    text.insert(text.begin(), '\'');
    text += "' is not a port in 1..65535";
    return usage_error(text);
  }
  auto timeout = vm["timeout-ms"].as<int64_t>();
  if (timeout < 1 || timeout > 600000) {
    return usage_error("--timeout-ms must be in 1..600000");
  }
  opts.timeout_ms = static_cast<uint32_t>(timeout);
  opts.json_output = vm.count("json") > 0;
  if (vm.count("command")) {
    opts.command = vm["command"].as<std::string>();
  }
  if (vm.count("history")) {
    opts.history = vm["history"].as<std::string>();
  } else if (const char* home = std::getenv("HOME")) {
    opts.history = std::string{home} + "/.eddy_history";
  }

  session s{opts};
  if (auto problem = s.connect()) {
    std::cerr << "eddy: error: " << *problem << "\n";
    return exit_failure;
  }
  if (opts.command) {
    std::string lost;
    if (!run_line(s, *opts.command, opts.json_output, lost)) {
      if (!lost.empty()) {
        std::cerr << "eddy: error: " << lost << "\n";
      }
      return exit_failure;
    }
    return exit_ok;
  }
  return interactive(s, opts);
}

} // namespace eddy::console
