// The inspector: one actor per engine (node), published over CAF's middleman for
// `eddy console`. It answers `inspect, "command args..."` with a JSON text:
//   {"ok": true, "command": "actors", "data": ...}   or   {"ok": false, "error": "..."}
// Tables are arrays of objects whose keys keep their order (nlohmann::ordered_json), so the
// console renders any command without knowing it. Facts come from the engine's jobs: their
// graphs, the actors' live counters and the dead-letter journal; the inspector never
// touches an actor's state behind its back.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <ctime>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/response_promise.hpp>
#include <nlohmann/json.hpp>

#include "cluster/host.hpp"
#include "cluster/node_actor.hpp"
#include "eddy/actors/engine.hpp"
#include "eddy/actors/messages.hpp"
#include "eddy/actors/metrics.hpp"
#include "eddy/core/error.hpp"
#include "eddy/core/log.hpp"
#include "eddy/io/dead_letter_store.hpp"
#include "stage/admin.hpp"

namespace eddy {

namespace {

/// A watermark for the console: null when there is none, "idle", "end", or the time.
nlohmann::json watermark_json(int64_t watermark) {
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

using json = nlohmann::ordered_json;
using jobs_fn = std::function<std::vector<std::shared_ptr<job_handle>>()>;

struct command_info {
  const char* name;
  const char* args;
  const char* summary;
  const char* example;
};

constexpr command_info commands[] = {
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

/// The closest of `names` to `word`, if close enough to be a typo.
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

/// Splits a command line into words. A word in double or single quotes may hold spaces
/// ("new york"); a word starting with { or [ runs to its matching bracket, so that JSON
/// values need no quoting. Throws std::invalid_argument for an unclosed quote or bracket.
std::vector<std::string> split_words(std::string_view line) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < line.size()) {
    if (line[i] == ' ' || line[i] == '\t') {
      ++i;
      continue;
    }
    if (line[i] == '"' || line[i] == '\'') {
      auto end = line.find(line[i], i + 1);
      if (end == std::string_view::npos) {
        throw std::invalid_argument("unclosed quote in the command");
      }
      words.emplace_back(line.substr(i + 1, end - i - 1));
      i = end + 1;
      continue;
    }
    if (line[i] == '{' || line[i] == '[') {
      int depth = 0;
      bool in_string = false;
      size_t j = i;
      for (; j < line.size(); ++j) {
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
          break;
        }
      }
      if (j >= line.size()) {
        throw std::invalid_argument("unclosed JSON value in the command");
      }
      words.emplace_back(line.substr(i, j - i + 1));
      i = j + 1;
      continue;
    }
    auto end = line.find_first_of(" \t", i);
    end = end == std::string_view::npos ? line.size() : end;
    words.emplace_back(line.substr(i, end - i));
    i = end;
  }
  return words;
}

/// Removes `--name VALUE` from `args`; returns VALUE (nullopt when absent). Throws
/// std::invalid_argument when the value is missing.
std::optional<std::string> take_option(std::vector<std::string>& args, const std::string& name) {
  auto it = std::find(args.begin(), args.end(), name);
  if (it == args.end()) {
    return std::nullopt;
  }
  if (it + 1 == args.end()) {
    throw std::invalid_argument(name + " needs a value");
  }
  auto value = *(it + 1);
  args.erase(it, it + 2);
  return value;
}

/// Milliseconds since the epoch as UTC "2026-11-29T10:00:00.123Z".
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

json fail(const std::string& message) {
  return json{{"ok", false}, {"error", message}};
}

json answer(const std::string& command, json data) {
  return json{{"ok", true}, {"command", command}, {"data", std::move(data)}};
}

std::string state_of(const job_handle& job) {
  if (!job.done()) {
    return "running";
  }
  return job.error() ? "failed" : "finished";
}

/// The inspector's memory between requests: the counters of the last `stats`.
struct sample {
  std::chrono::steady_clock::time_point at;
  uint64_t in = 0;
  uint64_t out = 0;
};

class inspector {
public:
  inspector(caf::event_based_actor* self, jobs_fn jobs, std::string host,
            std::shared_ptr<std::atomic<uint16_t>> port, std::shared_ptr<detail::cluster_view> view)
    : self_(self)
    , jobs_(std::move(jobs))
    , host_(std::move(host))
    , port_(std::move(port))
    , view_(std::move(view)) {}

  /// Answers one command line: at once from the jobs' handles, or, for the commands that
  /// ask the actors themselves, when their answers arrive.
  caf::result<std::string> run(const std::string& line) {
    expire_taps();
    std::vector<std::string> words;
    try {
      words = split_words(line);
    } catch (const std::exception& e) {
      return fail(e.what()).dump();
    }
    if (words.empty()) {
      return fail("empty command (help lists the commands)").dump();
    }
    const auto cmd = words[0];
    std::vector<std::string> args(words.begin() + 1, words.end());
    try {
      if (auto live = run_live(cmd, args)) {
        return *live;
      }
      return run_now(cmd, args).dump();
    } catch (const std::invalid_argument& e) {
      return fail(e.what()).dump();
    }
  }

  /// A tapped stage saw records: kept for the next `tail --poll`.
  void tapped(const std::string& id, const std::string& actor, const std::string& lines) {
    auto it = taps_.find(id);
    if (it == taps_.end()) {
      return;
    }
    auto& tap = it->second;
    auto rows = json::parse(lines, nullptr, false);
    if (rows.is_discarded()) {
      return;
    }
    for (auto& r : rows) {
      if (tap.lines.size() >= tap_buffer_max) {
        tap.lines.pop_front();
        ++tap.dropped;
      }
      tap.lines.push_back(json{{"actor", actor},
                               {"key", r.value("key", std::string{})},
                               {"record", r.value("record", std::string{})}});
    }
  }

private:
  json run_now(const std::string& cmd, const std::vector<std::string>& args) {
    if (cmd == "help") {
      return help(args);
    }
    if (cmd == "nodes") {
      return nodes();
    }
    if (cmd == "jobs") {
      return jobs();
    }
    if (cmd == "graph") {
      return graph(args);
    }
    if (cmd == "actors") {
      return actors(args);
    }
    if (cmd == "stats") {
      return stats();
    }
    if (cmd == "deadletters") {
      return deadletters(args);
    }
    if (cmd == "kill") {
      return kill(args);
    }
    if (cmd == "placement") {
      return placement();
    }
    std::vector<std::string> names;
    for (const auto& c : commands) {
      names.emplace_back(c.name);
    }
    auto near = suggestion(cmd, names);
    return fail("unknown command '" + cmd + "'" +
                (near.empty() ? "" : "; did you mean '" + near + "'?") +
                " (help lists the commands)");
  }

  json help(const std::vector<std::string>& args) {
    json rows = json::array();
    for (const auto& c : commands) {
      if (args.empty() || args[0] == c.name) {
        rows.push_back(json{{"command", std::string{c.name} + (*c.args ? " " : "") + c.args},
                            {"what", c.summary},
                            {"example", c.example}});
      }
    }
    if (rows.empty()) {
      return fail("no command '" + args[0] + "' (help lists the commands)");
    }
    return answer("help", std::move(rows));
  }

  /// The members of the cluster as this node sees them (itself first); jobs, actors and
  /// pid are known for this node only.
  json nodes() {
    size_t actors = 0;
    auto all = jobs_();
    for (const auto& j : all) {
      actors += j->actors().size();
    }
    auto members = view_->members();
    auto coordinator = view_->coordinator();
    json rows = json::array();
    for (const auto& m : members) {
      rows.push_back(json{{"node", m.id},
                          {"address", m.address},
                          {"state", detail::to_string(m.state)},
                          {"role", m.id == coordinator ? "coordinator" : "member"},
                          {"pid", m.self ? json(static_cast<int64_t>(::getpid())) : json{}},
                          {"jobs", m.self ? json(all.size()) : json{}},
                          {"actors", m.self ? json(actors) : json{}},
                          {"silent_ms", m.self ? json{} : json(m.silent_ms)},
                          {"self", m.self ? "*" : ""}});
    }
    return answer("nodes", std::move(rows));
  }

  json placement() {
    auto table = view_->table();
    if (table.partitions.empty()) {
      return fail("no assignment table on this node yet: it is not in a cluster "
                  "(--node.seeds), or the coordinator has not sent one");
    }
    json rows = json::array();
    for (size_t p = 0; p < table.partitions.size(); ++p) {
      rows.push_back(json{{"partition", p},
                          {"primary", table.partitions[p].primary},
                          {"standby", table.partitions[p].standby},
                          {"epoch", table.epoch},
                          {"coordinator", table.coordinator}});
    }
    return answer("placement", std::move(rows));
  }

  json jobs() {
    json rows = json::array();
    for (const auto& j : jobs_()) {
      auto err = j->error();
      rows.push_back(json{{"job", j->name()},
                          {"state", state_of(*j)},
                          {"actors", j->actors().size()},
                          {"restarts", j->restarts()},
                          {"uptime_s", static_cast<int64_t>(j->uptime_s())},
                          {"error", err ? describe(err) : std::string{}}});
    }
    return answer("jobs", std::move(rows));
  }

  /// The job named by `name`, or the only/most recent one when `name` is empty.
  std::shared_ptr<job_handle> find_job(const std::string& name, std::string& problem) {
    auto all = jobs_();
    if (all.empty()) {
      problem = "no job runs on this node";
      return nullptr;
    }
    if (name.empty()) {
      return all.back();
    }
    for (const auto& j : all) {
      if (j->name() == name) {
        return j;
      }
    }
    std::vector<std::string> names;
    for (const auto& j : all) {
      names.push_back(j->name());
    }
    auto near = suggestion(name, names);
    problem =
      "no job '" + name + "' on this node" + (near.empty() ? "" : "; did you mean '" + near + "'?");
    return nullptr;
  }

  json graph(const std::vector<std::string>& args) {
    bool dot = std::find(args.begin(), args.end(), "--dot") != args.end();
    std::string name;
    for (const auto& a : args) {
      if (a != "--dot") {
        name = a;
      }
    }
    std::string problem;
    auto job = find_job(name, problem);
    if (!job) {
      return fail(problem);
    }
    const auto& g = job->graph();
    if (dot) {
      std::string text = "digraph \"" + g.name() + "\" {\n  rankdir=LR;\n";
      for (size_t n = 0; n < g.nodes().size(); ++n) {
        const auto& spec = g.node(n);
        text += "  \"" + spec.name + "\" [label=\"" + spec.name + "\\n" + to_string(spec.kind) +
                " x" + std::to_string(g.instances(n)) + "\"];\n";
        if (spec.input) {
          text += "  \"" + g.node(*spec.input).name + "\" -> \"" + spec.name + "\"" +
                  (spec.kind == node_kind::keyed ? " [label=\"by key\"]" : "") + ";\n";
        }
      }
      text += "}\n";
      return answer("graph", json{{"dot", text}});
    }
    json rows = json::array();
    for (size_t n = 0; n < g.nodes().size(); ++n) {
      const auto& spec = g.node(n);
      rows.push_back(json{{"operator", spec.name},
                          {"kind", to_string(spec.kind)},
                          {"instances", g.instances(n)},
                          {"input", spec.input ? g.node(*spec.input).name : std::string{}},
                          {"edge", !spec.input                     ? ""
                                   : spec.kind == node_kind::keyed ? "by key"
                                                                   : "forward"},
                          {"on_failure", to_string(spec.on_failure)}});
    }
    return answer("graph", std::move(rows));
  }

  /// Fails naming the operators when `op` is not one of any job's.
  bool known_operator(const std::string& op, std::string& problem) {
    std::vector<std::string> names;
    for (const auto& j : jobs_()) {
      for (const auto& spec : j->graph().nodes()) {
        if (spec.name == op) {
          return true;
        }
        names.push_back(spec.name);
      }
    }
    auto near = suggestion(op, names);
    problem = "no operator '" + op + "'" + (near.empty() ? "" : "; did you mean '" + near + "'?");
    return false;
  }

  json actors(const std::vector<std::string>& args) {
    std::string problem;
    if (!args.empty() && !known_operator(args[0], problem)) {
      return fail(problem);
    }
    json rows = json::array();
    for (const auto& j : jobs_()) {
      for (const auto& a : j->actors()) {
        if (!args.empty() && a.node != args[0]) {
          continue;
        }
        const auto& m = *a.metrics;
        rows.push_back(json{{"actor", a.name},
                            {"job", j->name()},
                            {"kind", to_string(a.kind)},
                            {"status", to_string(m.status.load())},
                            {"events_in", m.events_in.load()},
                            {"events_out", m.events_out.load()},
                            {"queued", m.queued_batches.load()},
                            {"keys", m.keys.load()},
                            {"restarts", m.restarts.load()},
                            {"dead_letters", m.dead_lettered.load()},
                            {"watermark", watermark_json(m.watermark.load())},
                            {"failure", a.failure}});
      }
    }
    return answer("actors", std::move(rows));
  }

  json stats() {
    auto now = std::chrono::steady_clock::now();
    json rows = json::array();
    for (const auto& j : jobs_()) {
      for (const auto& t : totals_by_operator(*j)) {
        auto in = t.events_in;
        auto out = t.events_out;
        json lag = t.has_input ? json(t.lag) : json{};
        json mailbox = t.has_input ? json(t.mailbox) : json{};
        auto key = j->name() + "/" + t.op;
        auto [it, fresh] = samples_.try_emplace(key);
        double seconds =
          fresh ? j->uptime_s() : std::chrono::duration<double>(now - it->second.at).count();
        uint64_t in_before = fresh ? 0 : it->second.in;
        uint64_t out_before = fresh ? 0 : it->second.out;
        auto rate = [seconds](uint64_t now_v, uint64_t before) {
          return seconds > 0 && now_v >= before
                   ? static_cast<int64_t>(static_cast<double>(now_v - before) / seconds)
                   : int64_t{0};
        };
        rows.push_back(json{{"job", j->name()},
                            {"operator", t.op},
                            {"kind", to_string(t.kind)},
                            {"actors", t.actors},
                            {"events_in", in},
                            {"in_per_s", rate(in, in_before)},
                            {"events_out", out},
                            {"out_per_s", rate(out, out_before)},
                            {"lag", lag},
                            {"mailbox", mailbox},
                            {"credit", t.credit},
                            {"queued", t.queued},
                            {"restarts", t.restarts},
                            {"dead_letters", t.dead_letters},
                            {"watermark", watermark_json(t.watermark)},
                            {"failed", t.failed}});
        it->second = sample{now, in, out};
      }
    }
    return answer("stats", std::move(rows));
  }

  json deadletters(const std::vector<std::string>& args) {
    std::string problem;
    if (!args.empty() && !known_operator(args[0], problem)) {
      return fail(problem);
    }
    json rows = json::array();
    std::map<std::filesystem::path, std::vector<std::string>> dirs;
    for (const auto& j : jobs_()) {
      dirs[j->data_dir()].push_back(j->name());
    }
    for (const auto& [dir, names] : dirs) {
      auto file = dead_letter_store::path_in(dir);
      if (!std::filesystem::exists(file)) {
        continue;
      }
      auto store = dead_letter_store::open(file);
      if (!store) {
        return fail(describe(store.error()));
      }
      for (const auto& name : names) {
        failed_record_query q;
        q.job = name;
        q.op = args.empty() ? std::string{} : args[0];
        auto list = (*store)->list(q);
        if (!list) {
          return fail(describe(list.error()));
        }
        for (const auto& r : *list) {
          rows.push_back(json{{"id", r.id},
                              {"job", r.job},
                              {"actor", r.op + "/" + std::to_string(r.partition)},
                              {"key", r.key},
                              {"attempts", r.attempts},
                              {"error", r.error},
                              {"record", r.record}});
        }
      }
    }
    return answer("deadletters", std::move(rows));
  }

  /// Bytes of a journal on disk: the SQLite file and its WAL (read with stat, never opened).
  static uint64_t journal_bytes(const std::filesystem::path& file) {
    uint64_t total = 0;
    for (const auto& f : {file, std::filesystem::path{file.string() + "-wal"}}) {
      std::error_code ec;
      auto size = std::filesystem::file_size(f, ec);
      total += ec ? 0 : size;
    }
    return total;
  }

  /// The rows of `partitions`: each partition's counters, merged with what it said about
  /// its journal (`infos` by actor name; empty once the job finished).
  json partition_rows(const job_handle& j, const std::string& op, const json& infos) {
    json rows = json::array();
    for (const auto& a : j.actors()) {
      if (a.node != op) {
        continue;
      }
      const auto& m = *a.metrics;
      auto file = j.data_dir() / j.name() / a.node / ("p" + std::to_string(a.index) + ".db");
      const auto& info = infos.contains(a.name) ? infos[a.name] : json::object();
      rows.push_back(json{{"partition", a.index},
                          {"job", j.name()},
                          {"node", host_ + ":" + std::to_string(port_->load())},
                          {"role", "primary"},
                          {"status", to_string(m.status.load())},
                          {"keys_in_memory", m.keys.load()},
                          {"keys_stored", info.value("keys_stored", json{})},
                          {"events_in", m.events_in.load()},
                          {"duplicates_dropped", m.duplicates_dropped.load()},
                          {"journal_bytes", journal_bytes(file)},
                          {"journal_entries", info.value("journal_entries", json{})},
                          {"seq", info.value("seq", json{})},
                          {"input_positions", info.value("input_positions", json{})},
                          {"watermark", watermark_json(m.watermark.load())},
                          {"restarts", m.restarts.load()}});
    }
    return rows;
  }

  /// partitions OPERATOR: counters from the job's handle, journal facts from the
  /// partitions themselves (while they run).
  caf::result<std::string> partitions(const std::vector<std::string>& args) {
    if (args.size() != 1) {
      throw std::invalid_argument(
        "partitions takes a keyed operator, e.g. partitions count (graph lists them)");
    }
    auto ref = find_operator(args[0]);
    if (ref.spec->kind != node_kind::keyed) {
      throw std::invalid_argument("'" + args[0] + "' (" + to_string(ref.spec->kind) +
                                  ") is not a keyed operator: it has no partitions (actors " +
                                  args[0] + " lists its instances)");
    }
    if (ref.job->done()) {
      return answer("partitions", partition_rows(*ref.job, args[0], json::object())).dump();
    }
    auto job = ref.job;
    auto op = args[0];
    return ask(job, op, json{{"cmd", "info"}}, [this, job, op](const json& replies) {
      json infos = json::object();
      for (const auto& r : replies) {
        if (r["reply"].value("ok", false)) {
          infos[r.value("actor", std::string{})] = r["reply"]["data"];
        }
      }
      return answer("partitions", partition_rows(*job, op, infos));
    });
  }

  json kill(const std::vector<std::string>& args) {
    if (args.size() != 1) {
      return fail("kill takes one actor, e.g. kill count/3 (actors lists them)");
    }
    std::vector<std::string> names;
    for (const auto& j : jobs_()) {
      if (j->done()) {
        continue;
      }
      for (const auto& a : j->actors()) {
        if (a.name == args[0]) {
          if (auto err = j->kill(a.name)) {
            return fail(describe(err));
          }
          return answer(
            "kill",
            json::array({json{{"actor", a.name},
                              {"job", j->name()},
                              {"then", "the supervisor handles the failure (see actors, jobs)"}}}));
        }
        names.push_back(a.name);
      }
    }
    auto near = suggestion(args[0], names);
    return fail("no running actor '" + args[0] + "'" +
                (near.empty() ? "" : "; did you mean '" + near + "'?"));
  }

  // The commands that ask actors (through their job actor, see admin.hpp).

  /// Records a `tail` session keeps between polls, at most (older ones are dropped).
  static constexpr size_t tap_buffer_max = 2000;
  /// A `tail` session not polled for this long ends (the console went away).
  static constexpr auto tap_idle = std::chrono::seconds(10);

  /// A `tail` session: the records its taps sent since the last poll.
  struct tap_session {
    std::shared_ptr<job_handle> job;
    std::string target;
    std::deque<json> lines;
    uint64_t dropped = 0;
    std::chrono::steady_clock::time_point polled;
  };

  /// An operator of a job.
  struct op_ref {
    std::shared_ptr<job_handle> job;
    const node_spec* spec = nullptr;
    size_t index = 0;
  };

  std::optional<caf::result<std::string>> run_live(const std::string& cmd,
                                                   std::vector<std::string> args) {
    if (cmd == "state" || cmd == "history" || cmd == "set" || cmd == "replay" || cmd == "timers") {
      return key_command(cmd, std::move(args));
    }
    if (cmd == "tail") {
      return tail(std::move(args));
    }
    if (cmd == "partitions") {
      return partitions(args);
    }
    if (cmd == "send") {
      return send(args);
    }
    if (cmd == "pause" || cmd == "resume") {
      return pause_resume(cmd, args);
    }
    if (cmd == "snapshot" || cmd == "replay-deadletters") {
      return partitions_command(cmd, args);
    }
    if (cmd == "move" || cmd == "rebalance" || cmd == "moves") {
      return relocate(cmd, args);
    }
    return std::nullopt;
  }

  /// `move`, `rebalance` and `moves`, answered by the job actor of the job's leader (see
  /// relocation.hpp).
  caf::result<std::string> relocate(const std::string& cmd, const std::vector<std::string>& args) {
    std::string problem;
    auto job = find_job("", problem);
    if (!job) {
      throw std::invalid_argument(problem);
    }
    auto sup = caf::actor_cast<caf::actor>(job->supervisor());
    if (!sup || job->done()) {
      return fail("job '" + job->name() + "' has finished: nothing to move").dump();
    }
    auto rp = self_->make_response_promise<std::string>();
    auto on_answer = [rp, cmd](std::string& text) mutable {
      auto rows = json::parse(text, nullptr, false);
      if (rows.is_object()) {
        rows = json::array({rows});
      }
      rp.deliver(rows.is_array() ? answer(cmd, std::move(rows)).dump()
                                 : fail("the job sent an answer that is not JSON").dump());
    };
    auto on_error = [rp](caf::error& err) mutable {
      rp.deliver(fail(describe(err)).dump());
    };
    constexpr auto timeout = std::chrono::seconds(15);
    if (cmd == "move") {
      uint32_t partition = 0;
      if (args.size() != 2 || !parse_partition(args[0], partition)) {
        throw std::invalid_argument(
          "usage: move PARTITION NODE, e.g. move 2 n3 (placement lists partitions and nodes)");
      }
      self_->request(sup, timeout, move_atom::value, partition, args[1])
        .then(std::move(on_answer), std::move(on_error));
      return rp;
    }
    std::string mode = cmd == "moves" ? "status" : "run";
    for (const auto& a : args) {
      if (cmd == "rebalance" && (a == "--dry-run" || a == "--abort")) {
        mode = a.substr(2);
      } else {
        throw std::invalid_argument(cmd == "moves" ? "usage: moves"
                                                   : "usage: rebalance [--dry-run | --abort]");
      }
    }
    self_->request(sup, timeout, rebalance_atom::value, mode)
      .then(std::move(on_answer), std::move(on_error));
    return rp;
  }

  static bool parse_partition(const std::string& text, uint32_t& out) {
    if (text.empty() || text.size() > 9 ||
        !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return false;
    }
    out = static_cast<uint32_t>(std::stoul(text));
    return true;
  }

  /// The operator named `name`: in a running job if one has it, else in the newest job.
  /// Throws std::invalid_argument naming the operators when there is none.
  op_ref find_operator(const std::string& name) {
    std::string problem;
    if (!known_operator(name, problem)) {
      throw std::invalid_argument(problem);
    }
    op_ref found;
    for (const auto& j : jobs_()) {
      const auto& nodes = j->graph().nodes();
      for (size_t n = 0; n < nodes.size(); ++n) {
        if (nodes[n].name == name && (!found.job || !j->done())) {
          found = op_ref{j, &nodes[n], n};
        }
      }
    }
    return found;
  }

  op_ref find_keyed(const std::string& name, const std::string& cmd) {
    auto ref = find_operator(name);
    if (ref.spec->kind != node_kind::keyed) {
      throw std::invalid_argument("'" + name + "' (" + to_string(ref.spec->kind) +
                                  ") is not a keyed operator: only keyed operators keep state "
                                  "for " +
                                  cmd + " (graph lists them)");
    }
    return ref;
  }

  /// The partition actor that owns `key` ("count/3").
  static std::string owner_of(const op_ref& ref, const std::string& key) {
    if (ref.spec->partition_of_key == nullptr) {
      throw std::invalid_argument("'" + ref.spec->name + "' cannot map keys to partitions");
    }
    try {
      auto p = ref.spec->partition_of_key(key, ref.job->graph().partitions());
      return ref.spec->name + "/" + std::to_string(p);
    } catch (const std::exception& e) {
      throw std::invalid_argument("'" + key + "' is not a key of '" + ref.spec->name +
                                  "': " + e.what());
    }
  }

  /// Sends `request` to the stages `target` names through the job actor; `render` turns
  /// their answers (a JSON array of {"actor", "reply"}) into the console's answer, and may
  /// throw std::invalid_argument to answer with an error.
  caf::result<std::string> ask(const std::shared_ptr<job_handle>& job, const std::string& target,
                               const json& request, std::function<json(const json&)> render) {
    auto sup = caf::actor_cast<caf::actor>(job->supervisor());
    if (!sup || job->done()) {
      return fail("job '" + job->name() + "' has finished: its actors are gone").dump();
    }
    auto rp = self_->make_response_promise<std::string>();
    self_->request(sup, std::chrono::seconds(5), admin_atom::value, target, request.dump())
      .then(
        [rp, render](std::string& text) mutable {
          auto replies = json::parse(text, nullptr, false);
          try {
            if (replies.is_discarded() || !replies.is_array()) {
              throw std::invalid_argument("the job sent an answer that is not JSON");
            }
            rp.deliver(render(replies).dump());
          } catch (const std::exception& e) {
            rp.deliver(fail(e.what()).dump());
          }
        },
        [rp, name = job->name()](caf::error& err) mutable {
          rp.deliver(fail("job '" + name + "' did not answer: " + caf::to_string(err)).dump());
        });
    return rp;
  }

  /// The data of the only answer; throws std::invalid_argument with its error.
  static json only_data(const json& replies) {
    if (replies.empty()) {
      throw std::invalid_argument("no such actor is running");
    }
    const auto& r = replies[0]["reply"];
    if (!r.value("ok", false)) {
      throw std::invalid_argument(replies[0].value("actor", std::string{}) + ": " +
                                  r.value("error", std::string{"failed"}));
    }
    return r["data"];
  }

  /// state, history, set, replay: asked of the partition that owns the key.
  caf::result<std::string> key_command(const std::string& cmd, std::vector<std::string> args) {
    auto limit = take_option(args, "--limit");
    auto to = take_option(args, "--to");
    auto why = take_option(args, "--why");
    auto by = take_option(args, "--by");
    size_t want = cmd == "set" ? 3 : 2;
    if (args.size() != want || (cmd == "replay" && !to)) {
      std::string usage;
      for (const auto& c : commands) {
        if (cmd == c.name) {
          usage = std::string{c.name} + " " + c.args + ", e.g. " + c.example;
        }
      }
      throw std::invalid_argument("usage: " + usage);
    }
    auto ref = find_keyed(args[0], cmd);
    const auto& key = args[1];
    auto actor = owner_of(ref, key);
    json request{{"cmd", cmd}, {"key", key}};
    if (limit) {
      request["limit"] = parse_number(*limit, "--limit");
    }
    if (to) {
      request["seq"] = parse_number(*to, "--to");
    }
    if (cmd == "set") {
      request["values"] = args[2];
      request["by"] = by.value_or("console");
      request["why"] = why.value_or("");
    }
    auto op = ref.spec->name;
    auto seq = request.value("seq", uint64_t{0});
    return ask(ref.job, actor, request, [cmd, key, op, actor, seq](const json& replies) {
      auto data = only_data(replies);
      json rows = json::array();
      if (cmd == "state" || cmd == "replay") {
        for (auto& [name, value] : data.items()) {
          json row{{"key", key}, {"actor", actor}, {"state", name}, {"value", value}};
          if (cmd == "replay") {
            row["as_of_seq"] = seq;
          }
          rows.push_back(std::move(row));
        }
        if (rows.empty()) {
          throw std::invalid_argument(cmd == "state" ? "no state for key '" + key + "' in '" + op +
                                                         "' (" + actor + " owns it and holds none)"
                                                     : "key '" + key + "' had no state at seq " +
                                                         std::to_string(seq));
        }
      } else if (cmd == "timers") {
        for (auto& t : data) {
          auto at = t.value("at", int64_t{0});
          rows.push_back(json{{"key", key},
                              {"actor", actor},
                              {"kind", t.value("kind", std::string{})},
                              {"at", at},
                              {"at_utc", utc_text(at)},
                              {"tag", t.value("tag", std::string{})}});
        }
        if (rows.empty()) {
          throw std::invalid_argument("no timer of key '" + key + "' in '" + op + "' (" + actor +
                                      " owns it)");
        }
      } else if (cmd == "history") {
        for (auto& e : data) {
          rows.push_back(json{{"seq", e.value("seq", uint64_t{0})},
                              {"at", utc_text(e.value("at_ms", int64_t{0}))},
                              {"state", e.value("state", std::string{})},
                              {"value", e.contains("value") ? e["value"] : json{}},
                              {"origin", e.value("origin", std::string{})}});
        }
        if (rows.empty()) {
          throw std::invalid_argument("no journaled change of key '" + key + "' in '" + op + "' (" +
                                      actor + " owns it)");
        }
      } else {
        for (auto& [name, value] : data["new"].items()) {
          rows.push_back(json{{"key", key},
                              {"actor", actor},
                              {"state", name},
                              {"old", data["old"].value(name, json{})},
                              {"new", value},
                              {"seq", data["seq"]}});
        }
      }
      return answer(cmd, std::move(rows));
    });
  }

  static uint64_t parse_number(const std::string& text, const std::string& what) {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size()) {
      throw std::invalid_argument(what + " takes a number, not '" + text + "'");
    }
    return v;
  }

  /// tail OP [KEY] starts a session; tail --poll ID and tail --stop ID are what the console
  /// sends while it shows one.
  caf::result<std::string> tail(std::vector<std::string> args) {
    if (auto id = take_option(args, "--poll")) {
      auto it = taps_.find(*id);
      if (it == taps_.end()) {
        throw std::invalid_argument("no tail session '" + *id + "' (one ends after " +
                                    std::to_string(tap_idle.count()) + " s without a poll)");
      }
      auto& tap = it->second;
      tap.polled = std::chrono::steady_clock::now();
      json lines = json::array();
      for (auto& l : tap.lines) {
        lines.push_back(std::move(l));
      }
      tap.lines.clear();
      json data{{"lines", std::move(lines)}, {"dropped", tap.dropped}};
      tap.dropped = 0;
      return answer("tail", std::move(data)).dump();
    }
    if (auto id = take_option(args, "--stop")) {
      stop_tap(*id);
      return answer("tail", json{{"stopped", *id}}).dump();
    }
    if (args.empty() || args.size() > 2) {
      throw std::invalid_argument("usage: tail OPERATOR [KEY], e.g. tail count apple");
    }
    auto ref = find_operator(args[0]);
    std::string target = ref.spec->name;
    json request{{"cmd", "tap"}};
    if (args.size() == 2) {
      if (ref.spec->kind != node_kind::keyed) {
        throw std::invalid_argument("'" + target + "' (" + to_string(ref.spec->kind) +
                                    ") is not keyed: tail it without a key");
      }
      target = owner_of(ref, args[1]);
      request["key"] = args[1];
    }
    auto id = "tail-" + std::to_string(++tap_counter_);
    request["tap"] = id;
    taps_[id] = tap_session{ref.job, target, {}, 0, std::chrono::steady_clock::now()};
    return ask(ref.job, target, request, [id, target](const json& replies) {
      size_t tapped = 0;
      for (const auto& r : replies) {
        tapped += r["reply"].value("ok", false) ? 1 : 0;
      }
      if (tapped == 0) {
        throw std::invalid_argument("no running actor of '" + target + "' could be tapped");
      }
      return answer("tail", json{{"tail", id}, {"target", target}, {"actors", tapped}});
    });
  }

  void stop_tap(const std::string& id) {
    auto it = taps_.find(id);
    if (it == taps_.end()) {
      return;
    }
    if (auto sup = caf::actor_cast<caf::actor>(it->second.job->supervisor());
        sup && !it->second.job->done()) {
      self_
        ->request(sup, std::chrono::seconds(5), admin_atom::value, it->second.target,
                  json{{"cmd", "untap"}, {"tap", id}}.dump())
        .then([](std::string&) {}, [](caf::error&) {});
    }
    taps_.erase(it);
  }

  void expire_taps() {
    auto now = std::chrono::steady_clock::now();
    std::vector<std::string> stale;
    for (auto& [id, tap] : taps_) {
      if (now - tap.polled > tap_idle) {
        stale.push_back(id);
      }
    }
    for (auto& id : stale) {
      stop_tap(id);
    }
  }

  caf::result<std::string> send(const std::vector<std::string>& args) {
    if (args.size() != 2) {
      throw std::invalid_argument("usage: send SOURCE JSON, e.g. send lines {\"text\": \"a b\"}");
    }
    auto ref = find_operator(args[0]);
    if (ref.spec->kind != node_kind::source) {
      throw std::invalid_argument("'" + args[0] + "' (" + to_string(ref.spec->kind) +
                                  ") is not a source (graph lists the sources)");
    }
    json request{{"cmd", "send"}, {"values", args[1]}};
    return ask(ref.job, args[0] + "/0", request, [](const json& replies) {
      auto data = only_data(replies);
      return answer("send", json::array({data}));
    });
  }

  caf::result<std::string> pause_resume(const std::string& cmd,
                                        const std::vector<std::string>& args) {
    if (args.size() != 1) {
      throw std::invalid_argument("usage: " + cmd + " OPERATOR[/PARTITION], e.g. " + cmd +
                                  " count/3");
    }
    auto slash = args[0].find('/');
    auto ref = find_operator(args[0].substr(0, slash));
    if (slash != std::string::npos) {
      auto index = parse_number(args[0].substr(slash + 1), "the instance after '/'");
      auto count = ref.job->graph().instances(ref.index);
      if (index >= count) {
        throw std::invalid_argument("'" + ref.spec->name + "' has instances 0.." +
                                    std::to_string(count - 1) + ", not " + std::to_string(index));
      }
    }
    return ask(ref.job, args[0], json{{"cmd", cmd}}, [cmd](const json& replies) {
      json rows = json::array();
      for (const auto& r : replies) {
        const auto& reply = r["reply"];
        bool ok = reply.value("ok", false);
        rows.push_back(
          json{{"actor", r.value("actor", std::string{})},
               {"status", ok ? reply["data"].value("status", std::string{}) : std::string{"-"}},
               {"note", ok ? (cmd == "pause" ? "takes no input until resume" : "")
                           : reply.value("error", std::string{})}});
      }
      return answer(cmd, std::move(rows));
    });
  }

  /// snapshot [JOB] and replay-deadletters [OPERATOR]: asked of every partition.
  caf::result<std::string> partitions_command(const std::string& cmd,
                                              const std::vector<std::string>& args) {
    if (args.size() > 1) {
      throw std::invalid_argument("usage: " + cmd + (cmd == "snapshot" ? " [JOB]" : " [OPERATOR]"));
    }
    std::shared_ptr<job_handle> job;
    std::string target = "*";
    if (cmd == "replay-deadletters" && !args.empty()) {
      auto ref = find_keyed(args[0], cmd);
      job = ref.job;
      target = ref.spec->name;
    } else {
      std::string problem;
      job = find_job(args.empty() ? std::string{} : args[0], problem);
      if (!job) {
        throw std::invalid_argument(problem);
      }
    }
    std::set<std::string> keyed;
    for (const auto& spec : job->graph().nodes()) {
      if (spec.kind == node_kind::keyed) {
        keyed.insert(spec.name);
      }
    }
    if (keyed.empty()) {
      throw std::invalid_argument("job '" + job->name() + "' has no keyed operators");
    }
    return ask(job, target, json{{"cmd", cmd}}, [cmd, keyed](const json& replies) {
      json rows = json::array();
      std::string error;
      uint64_t replayed = 0;
      for (const auto& r : replies) {
        auto actor = r.value("actor", std::string{});
        if (keyed.count(actor.substr(0, actor.find('/'))) == 0) {
          continue;
        }
        const auto& reply = r["reply"];
        if (!reply.value("ok", false)) {
          error = actor + ": " + reply.value("error", std::string{});
          continue;
        }
        const auto& d = reply["data"];
        if (cmd == "snapshot") {
          rows.push_back(json{{"actor", actor},
                              {"seq", d.value("seq", uint64_t{0})},
                              {"keys", d.value("keys", uint64_t{0})},
                              {"journal_entries", d.value("journal_entries", uint64_t{0})}});
        } else if (d.value("replayed", uint64_t{0}) > 0) {
          replayed += d.value("replayed", uint64_t{0});
          rows.push_back(json{{"actor", actor}, {"replayed", d.value("replayed", uint64_t{0})}});
        }
      }
      if (rows.empty() && !error.empty()) {
        throw std::invalid_argument(error);
      }
      if (cmd == "replay-deadletters" && rows.empty()) {
        rows.push_back(json{{"actor", "(all)"}, {"replayed", 0}});
      }
      return answer(cmd, std::move(rows));
    });
  }

  caf::event_based_actor* self_;
  std::map<std::string, tap_session> taps_;
  uint64_t tap_counter_ = 0;
  jobs_fn jobs_;
  std::string host_;
  /// Set once the middleman bound the port.
  std::shared_ptr<std::atomic<uint16_t>> port_;
  /// The membership as the node actor sees it.
  std::shared_ptr<detail::cluster_view> view_;
  std::map<std::string, sample> samples_;
};

caf::behavior inspector_actor(caf::event_based_actor* self, jobs_fn jobs, std::string host,
                              std::shared_ptr<std::atomic<uint16_t>> port,
                              std::shared_ptr<detail::cluster_view> view) {
  auto state = std::make_shared<inspector>(self, std::move(jobs), std::move(host), std::move(port),
                                           std::move(view));
  return {
    [state](inspect_atom, const std::string& line) -> caf::result<std::string> {
      try {
        return state->run(line);
      } catch (const std::exception& e) {
        return fail(std::string{"the inspector failed: "} + e.what()).dump();
      }
    },
    [state](tap_atom, const std::string& id, const std::string& actor, const std::string& lines) {
      state->tapped(id, actor, lines);
    },
  };
}

} // namespace

caf::error engine::publish_inspector() {
  auto reg = registry_;
  jobs_fn jobs = [reg] {
    std::lock_guard guard{reg->mtx};
    return reg->jobs;
  };
  auto bound = std::make_shared<std::atomic<uint16_t>>(0);
  auto view = std::make_shared<detail::cluster_view>();
  view_ = view;
  auto actor = sys_->spawn(inspector_actor, jobs, common_.node_host, bound, view);
  detail::membership_config mc;
  mc.id = common_.node_id;
  mc.host = common_.node_host;
  mc.seeds = common_.seed_list();
  mc.partitions = opts_.partitions;
  mc.table_file = common_.data_dir / "cluster" / "assignment.json";
  mc.heartbeat_ms = common_.heartbeat_ms;
  mc.timeout_ms = common_.heartbeat_timeout_ms;
  if (!common_.node_seeds.empty()) {
    hosted_ = std::make_shared<detail::host_registry>();
    mc.host_actor = detail::spawn_host(*sys_, hosted_);
    host_ = caf::actor_cast<caf::strong_actor_ptr>(mc.host_actor);
  }
  // The node actor is what the port serves: the console's requests reach the inspector
  // through it, and other nodes join through it.
  auto node = detail::spawn_node_actor(*sys_, std::move(mc), actor, view);
  auto port = sys_->middleman().publish(node, common_.node_port, common_.node_host.c_str(), true);
  if (!port) {
    caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    return make_error(errc::invalid_config, "cannot publish the inspector on " + common_.node_host +
                                              ":" + std::to_string(common_.node_port) + ": " +
                                              caf::to_string(port.error()));
  }
  inspector_port_ = *port;
  inspector_ = caf::actor_cast<caf::strong_actor_ptr>(actor);
  node_ = caf::actor_cast<caf::strong_actor_ptr>(node);
  bound->store(*port);
  caf::anon_send(node, start_atom::value, *port);
  log(log_level::info, "engine",
      "inspector listening on " + common_.node_host + ":" + std::to_string(*port) +
        " (eddy console " + common_.node_host + ":" + std::to_string(*port) + ")");
  return {};
}

} // namespace eddy
