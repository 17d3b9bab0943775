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
#include <chrono>
#include <functional>
#include <map>
#include <sstream>

#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <nlohmann/json.hpp>

#include "eddy/actors/engine.hpp"
#include "eddy/actors/messages.hpp"
#include "eddy/core/error.hpp"
#include "eddy/core/log.hpp"
#include "eddy/io/dead_letter_store.hpp"

namespace eddy {

namespace {

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
  {"nodes", "", "the nodes of the cluster with their jobs and actors", "nodes"},
  {"jobs", "", "the jobs on this node: state, actors, restarts, uptime", "jobs"},
  {"graph", "[JOB] [--dot]", "a job's dataflow graph (--dot: Graphviz)", "graph --dot"},
  {"actors", "[OPERATOR]", "every actor: kind, operator, status, counters", "actors count"},
  {"stats", "",
   "per operator: events in/out and per second since the last stats, queued "
   "batches, restarts, dead letters",
   "stats"},
  {"deadletters", "[OPERATOR]", "pending records whose processing failed", "deadletters count"},
  {"partitions", "OPERATOR",
   "a keyed operator's partitions: placement, status, keys in memory, events, journal bytes",
   "partitions count"},
  {"kill", "ACTOR", "make an actor fail, to watch supervision restart it", "kill count/3"},
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
  inspector(jobs_fn jobs, std::string host, std::shared_ptr<std::atomic<uint16_t>> port)
    : jobs_(std::move(jobs))
    , host_(std::move(host))
    , port_(std::move(port)) {}

  json run(const std::string& line) {
    std::istringstream in{line};
    std::vector<std::string> words;
    for (std::string w; in >> w;) {
      words.push_back(w);
    }
    if (words.empty()) {
      return fail("empty command (help lists the commands)");
    }
    const auto& cmd = words[0];
    std::vector<std::string> args(words.begin() + 1, words.end());
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
    if (cmd == "partitions") {
      return partitions(args);
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

private:
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

  json nodes() {
    size_t actors = 0;
    auto all = jobs_();
    for (const auto& j : all) {
      actors += j->actors().size();
    }
    json row{{"node", host_ + ":" + std::to_string(port_->load())},
             {"pid", static_cast<int64_t>(::getpid())},
             {"state", "up"},
             {"jobs", all.size()},
             {"actors", actors}};
    return answer("nodes", json::array({row}));
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
                            {"failure", a.failure}});
      }
    }
    return answer("actors", std::move(rows));
  }

  json stats() {
    auto now = std::chrono::steady_clock::now();
    json rows = json::array();
    for (const auto& j : jobs_()) {
      std::map<std::string, std::vector<actor_info>> by_op;
      for (auto& a : j->actors()) {
        by_op[a.node].push_back(a);
      }
      for (const auto& spec : j->graph().nodes()) {
        const auto& list = by_op[spec.name];
        uint64_t in = 0;
        uint64_t out = 0;
        uint64_t queued = 0;
        uint64_t restarts = 0;
        uint64_t dead = 0;
        size_t failed = 0;
        for (const auto& a : list) {
          const auto& m = *a.metrics;
          in += m.events_in;
          out += m.events_out;
          queued += m.queued_batches;
          restarts += m.restarts;
          dead += m.dead_lettered;
          failed += m.status == actor_status::failed ? 1 : 0;
        }
        auto key = j->name() + "/" + spec.name;
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
                            {"operator", spec.name},
                            {"kind", to_string(spec.kind)},
                            {"actors", list.size()},
                            {"events_in", in},
                            {"in_per_s", rate(in, in_before)},
                            {"events_out", out},
                            {"out_per_s", rate(out, out_before)},
                            {"queued", queued},
                            {"restarts", restarts},
                            {"dead_letters", dead},
                            {"failed", failed}});
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

  json partitions(const std::vector<std::string>& args) {
    if (args.size() != 1) {
      return fail("partitions takes a keyed operator, e.g. partitions count (graph lists them)");
    }
    std::string problem;
    if (!known_operator(args[0], problem)) {
      return fail(problem);
    }
    json rows = json::array();
    for (const auto& j : jobs_()) {
      const auto& g = j->graph();
      auto spec = std::find_if(g.nodes().begin(), g.nodes().end(),
                               [&](const node_spec& n) { return n.name == args[0]; });
      if (spec == g.nodes().end()) {
        continue;
      }
      if (spec->kind != node_kind::keyed) {
        return fail("'" + args[0] + "' (" + to_string(spec->kind) +
                    ") is not a keyed operator: it has no partitions (actors " + args[0] +
                    " lists its instances)");
      }
      for (const auto& a : j->actors()) {
        if (a.node != args[0]) {
          continue;
        }
        const auto& m = *a.metrics;
        auto file = j->data_dir() / j->name() / a.node / ("p" + std::to_string(a.index) + ".db");
        rows.push_back(json{{"partition", a.index},
                            {"job", j->name()},
                            {"node", host_ + ":" + std::to_string(port_->load())},
                            {"role", "primary"},
                            {"status", to_string(m.status.load())},
                            {"keys_in_memory", m.keys.load()},
                            {"events_in", m.events_in.load()},
                            {"duplicates_dropped", m.duplicates_dropped.load()},
                            {"journal_bytes", journal_bytes(file)},
                            {"restarts", m.restarts.load()}});
      }
    }
    return answer("partitions", std::move(rows));
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

  jobs_fn jobs_;
  std::string host_;
  /// Set once the middleman bound the port.
  std::shared_ptr<std::atomic<uint16_t>> port_;
  std::map<std::string, sample> samples_;
};

caf::behavior inspector_actor(jobs_fn jobs, std::string host,
                              std::shared_ptr<std::atomic<uint16_t>> port) {
  auto state = std::make_shared<inspector>(std::move(jobs), std::move(host), std::move(port));
  return {
    [state](inspect_atom, const std::string& line) -> std::string {
      try {
        return state->run(line).dump();
      } catch (const std::exception& e) {
        return fail(std::string{"the inspector failed: "} + e.what()).dump();
      }
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
  auto actor = sys_->spawn(inspector_actor, jobs, common_.node_host, bound);
  auto port = sys_->middleman().publish(actor, common_.node_port, common_.node_host.c_str(), true);
  if (!port) {
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    return make_error(errc::invalid_config, "cannot publish the inspector on " + common_.node_host +
                                              ":" + std::to_string(common_.node_port) + ": " +
                                              caf::to_string(port.error()));
  }
  inspector_port_ = *port;
  inspector_ = caf::actor_cast<caf::strong_actor_ptr>(actor);
  bound->store(*port);
  log(log_level::info, "engine",
      "inspector listening on " + common_.node_host + ":" + std::to_string(*port) +
        " (eddy console " + common_.node_host + ":" + std::to_string(*port) + ")");
  return {};
}

} // namespace eddy
