// The console's command language (see command_line.hpp).

#include "inspect/command_line.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>

#include "eddy/core/error.hpp"
#include "eddy/flow/record.hpp"
#include "eddy/time/watermark.hpp"

namespace eddy::detail::inspect {

namespace {

constexpr command_info command_table[] = {
  {"help", "[COMMAND]", "list the commands, or describe one", "help actors"},
  {"nodes", "",
   "the members of the cluster: state (up, unreachable, down), coordinator, ms since the last "
   "heartbeat answer; jobs and actors of this node (*)",
   "nodes"},
  {"jobs", "", "the jobs on this node: state, actors, restarts, uptime", "jobs"},
  {"graph", "[JOB] [--dot]", "a job's dataflow graph (--dot: Graphviz)", "graph --dot"},
  {"actors", "[OPERATOR]", "every actor: kind, operator, status, counters", "actors count"},
  {"stats", "[--watch]",
   "per operator: events in/out and per second since the last stats, lag (records sent to it "
   "not yet taken in), mailbox (batches waiting for it), output credit, queued batches, "
   "restarts, dead letters "
   "(--watch: every second)",
   "stats --watch"},
  {"deadletters", "[OPERATOR]", "pending records whose processing failed", "deadletters count"},
  {"partitions", "OPERATOR",
   "a keyed operator's partitions: placement, role, status, keys in memory and stored, "
   "events, journal bytes and entries, last sequence number, input positions",
   "partitions count"},
  {"kill", "ACTOR", "make an actor fail, to watch supervision restart it", "kill count/3"},
  {"placement", "",
   "the coordinator's assignment table as this node has it: partition, primary, standby, epoch",
   "placement"},
  {"move", "PARTITION NODE",
   "move a partition's primary to another member while the job runs: its state is copied "
   "there first (warm), then the job switches; moves shows the progress",
   "move 2 n3"},
  {"rebalance", "[--dry-run | --abort]",
   "balance the partitions over the members that are up: the plan with a reason for every "
   "move (--dry-run: only print it; --abort: drop the moves not started)",
   "rebalance --dry-run"},
  {"moves", "",
   "moves under way and done: phase, bytes copied of all, commits waiting, elapsed, ETA, the "
   "job's pause at the switch",
   "moves"},
  {"state", "OPERATOR KEY", "a key's current state, read by its partition", "state count apple"},
  {"timers", "OPERATOR KEY", "a key's pending timers (processing and event time), by time",
   "timers windows sensor-7"},
  {"history", "OPERATOR KEY [--limit N]",
   "a key's last journaled changes with sequence numbers and origin", "history count apple"},
  {"set", "OPERATOR KEY JSON [--why TEXT]",
   "an audited edit of a key's states, journaled with who, when, why and the old values",
   "set count apple {\"count\": 42} --why \"fix a miscount\""},
  {"replay", "OPERATOR KEY --to SEQ",
   "the key's state as of journal sequence number SEQ, rebuilt aside from the live partition",
   "replay count apple --to 12"},
  {"tail", "OPERATOR [KEY]", "live records reaching an operator (Enter or Ctrl-C stops)",
   "tail count apple"},
  {"send", "SOURCE JSON", "inject a record into a running source's output",
   "send lines {\"text\": \"a b\"}"},
  {"pause", "OPERATOR[/PARTITION]", "stop taking input (upstream backs up) until resume",
   "pause count/3"},
  {"resume", "OPERATOR[/PARTITION]", "take input again after pause", "resume count"},
  {"snapshot", "[JOB]", "commit and compact every partition's journal; their sequence numbers",
   "snapshot"},
  {"savepoint", "[--stop] [JOB]",
   "take a savepoint of the running job while it runs (--stop: then stop it): every journal "
   "at one aligned cut, copied aside, with a manifest; answers once it is complete",
   "savepoint"},
  {"savepoints", "[JOB]", "the savepoint under way and those in the savepoint directory",
   "savepoints"},
  {"replay-deadletters", "[OPERATOR]",
   "re-process the pending dead letters of the running partitions, exactly once",
   "replay-deadletters count"},
};

/// Edit distance counting a swap of two neighbours as one edit (optimal string alignment),
/// for "did you mean": "actros" is one edit from "actors".
size_t distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) {
    d[i][0] = i;
  }
  for (size_t j = 0; j <= b.size(); ++j) {
    d[0][j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

/// The end of the JSON value that starts at `line[i]` ({ or [): the index of its closing
/// bracket, or npos when it is not closed.
size_t json_value_end(std::string_view line, size_t i) {
  int depth = 0;
  bool in_string = false;
  for (size_t j = i; j < line.size(); ++j) {
    char c = line[j];
    if (in_string) {
      if (c == '\\') {
        ++j;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      return j;
    }
  }
  return std::string_view::npos;
}

} // namespace

std::span<const command_info> commands() {
  return command_table;
}

std::string usage_of(std::string_view name) {
  std::string usage;
  for (const auto& c : command_table) {
    if (name == c.name) {
      usage = std::string{c.name} + " " + c.args + ", e.g. " + c.example;
    }
  }
  return "usage: " + usage;
}

std::string suggestion(std::string_view word, const std::vector<std::string>& names) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const auto& n : names) {
    auto d = distance(word, n);
    if (d < best_d) {
      best_d = d;
      best = n;
    }
  }
  return best_d <= std::max<size_t>(1, word.size() / 3) ? best : std::string{};
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& names) {
  auto near = suggestion(word, names);
  return near.empty() ? std::string{} : "; did you mean '" + near + "'?";
}

caf::expected<words> split_words(std::string_view line) {
  words result;
  size_t i = 0;
  while (i < line.size()) {
    if (line[i] == ' ' || line[i] == '\t') {
      ++i;
      continue;
    }
    if (line[i] == '"' || line[i] == '\'') {
      auto end = line.find(line[i], i + 1);
      if (end == std::string_view::npos) {
        return bad_request("unclosed quote in the command");
      }
      result.emplace_back(line.substr(i + 1, end - i - 1));
      i = end + 1;
      continue;
    }
    if (line[i] == '{' || line[i] == '[') {
      auto end = json_value_end(line, i);
      if (end == std::string_view::npos) {
        return bad_request("unclosed JSON value in the command");
      }
      result.emplace_back(line.substr(i, end - i + 1));
      i = end + 1;
      continue;
    }
    auto end = line.find_first_of(" \t", i);
    end = end == std::string_view::npos ? line.size() : end;
    result.emplace_back(line.substr(i, end - i));
    i = end;
  }
  return result;
}

caf::expected<std::optional<std::string>> take_option(words& args, const std::string& name) {
  auto it = std::find(args.begin(), args.end(), name);
  if (it == args.end()) {
    return std::optional<std::string>{};
  }
  if (it + 1 == args.end()) {
    return bad_request(name + " needs a value");
  }
  auto value = *(it + 1);
  args.erase(it, it + 2);
  return std::optional<std::string>{std::move(value)};
}

caf::expected<uint64_t> parse_number(const std::string& text, const std::string& what) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    return bad_request(what + " takes a number, not '" + text + "'");
  }
  return v;
}

std::optional<uint32_t> parse_partition(const std::string& text) {
  if (text.empty() || text.size() > 9 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return static_cast<uint32_t>(std::stoul(text));
}

std::string utc_text(int64_t ms) {
  auto secs = static_cast<time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[40];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

json watermark_json(int64_t watermark) {
  if (watermark == no_time) {
    return nullptr;
  }
  if (watermark == idle_watermark) {
    return "idle";
  }
  if (watermark == end_watermark) {
    return "end";
  }
  return watermark;
}

json fail(const std::string& message) {
  return json{{"ok", false}, {"error", message}};
}

json answer(const std::string& command, json data) {
  return json{{"ok", true}, {"command", command}, {"data", std::move(data)}};
}

caf::error bad_request(std::string message) {
  return make_error(errc::invalid_request, std::move(message));
}

std::string message_of(const caf::error& err) {
  const auto& ctx = err.context();
  if (err.category() == caf::atom("eddy") && ctx.size() == 1 && ctx.match_element<std::string>(0)) {
    return ctx.get_as<std::string>(0);
  }
  return describe(err);
}

std::string failed(const caf::error& err) {
  return fail(message_of(err)).dump();
}

} // namespace eddy::detail::inspect
