// The commands about jobs: answered from the jobs' handles (graphs, live counters, the
// dead-letter journal), and `partitions`, which also asks the partitions about their
// journals. The inspector never touches an actor's state behind its back.

#include <algorithm>
#include <filesystem>
#include <map>

#include "eddy/actors/metrics.hpp"
#include "eddy/core/error.hpp"
#include "eddy/io/dead_letter_store.hpp"
#include "inspect/commands.hpp"

namespace eddy::detail::inspect {

namespace {

std::string state_of(const job_handle& job) {
  if (!job.done()) {
    return "running";
  }
  return job.error() ? "failed" : "finished";
}

std::string graph_dot(const job_graph& g) {
  std::string text = "digraph \"" + g.name() + "\" {\n  rankdir=LR;\n";
  for (size_t n = 0; n < g.nodes().size(); ++n) {
    const auto& spec = g.node(n);
    text += "  \"" + spec.name + "\" [label=\"" + spec.name + "\\n" + to_string(spec.kind) + " x" +
            std::to_string(g.instances(n)) + "\"];\n";
    if (spec.input) {
      text += "  \"" + g.node(*spec.input).name + "\" -> \"" + spec.name + "\"" +
              (spec.kind == node_kind::keyed ? " [label=\"by key\"]" : "") + ";\n";
    }
  }
  return text + "}\n";
}

/// The rate per second of a counter that went from `before` to `now` in `seconds`.
int64_t rate(uint64_t now, uint64_t before, double seconds) {
  return seconds > 0 && now >= before
           ? static_cast<int64_t>(static_cast<double>(now - before) / seconds)
           : int64_t{0};
}

/// The row of `stats` for operator totals `t` of job `j`; updates its sample.
json stats_row(const job_handle& j, const operator_totals& t, samples& last,
               std::chrono::steady_clock::time_point now) {
  auto [it, fresh] = last.try_emplace(j.name() + "/" + t.op);
  double seconds =
    fresh ? j.uptime_s() : std::chrono::duration<double>(now - it->second.at).count();
  uint64_t in_before = fresh ? 0 : it->second.in;
  uint64_t out_before = fresh ? 0 : it->second.out;
  it->second = sample{now, t.events_in, t.events_out};
  return json{{"job", j.name()},
              {"operator", t.op},
              {"kind", to_string(t.kind)},
              {"actors", t.actors},
              {"events_in", t.events_in},
              {"in_per_s", rate(t.events_in, in_before, seconds)},
              {"events_out", t.events_out},
              {"out_per_s", rate(t.events_out, out_before, seconds)},
              {"lag", t.has_input ? json(t.lag) : json{}},
              {"mailbox", t.has_input ? json(t.mailbox) : json{}},
              {"credit", t.credit},
              {"queued", t.queued},
              {"restarts", t.restarts},
              {"dead_letters", t.dead_letters},
              {"watermark", watermark_json(t.watermark)},
              {"failed", t.failed}};
}

/// The pending dead letters of jobs `names`, kept in directory `dir`, of operator `op`
/// (empty: all), appended to `rows`.
caf::error dead_letter_rows(const std::filesystem::path& dir, const std::vector<std::string>& names,
                            const std::string& op, json& rows) {
  auto file = dead_letter_store::path_in(dir);
  if (!std::filesystem::exists(file)) {
    return caf::none;
  }
  auto store = dead_letter_store::open(file);
  if (!store) {
    return store.error();
  }
  for (const auto& name : names) {
    failed_record_query q;
    q.job = name;
    q.op = op;
    auto list = (*store)->list(q);
    if (!list) {
      return list.error();
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
  return caf::none;
}

/// Bytes of a journal on disk: the SQLite file and its WAL (read with stat, never opened).
uint64_t journal_bytes(const std::filesystem::path& file) {
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
json partition_rows(const job_handle& j, const std::string& op, const std::string& node,
                    const json& infos) {
  json rows = json::array();
  for (const auto& a : j.actors()) {
    if (a.node != op) {
      continue;
    }
    const auto& m = *a.metrics;
    std::string leaf = "p"; // appended, not "p" + ...: GCC 12 -O2 warns falsely on that here
    leaf += std::to_string(a.index);
    leaf += ".db";
    auto file = j.data_dir() / j.name() / a.node / leaf;
    const auto& info = infos.contains(a.name) ? infos[a.name] : json::object();
    rows.push_back(json{{"partition", a.index},
                        {"job", j.name()},
                        {"node", node},
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

} // namespace

json help(const words& args) {
  json rows = json::array();
  for (const auto& c : commands()) {
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

json jobs(inspect_context& ctx) {
  json rows = json::array();
  for (const auto& j : ctx.jobs()) {
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

json graph(inspect_context& ctx, const words& args) {
  bool dot = std::find(args.begin(), args.end(), "--dot") != args.end();
  std::string name;
  for (const auto& a : args) {
    if (a != "--dot") {
      name = a;
    }
  }
  auto job = ctx.find_job(name);
  if (!job) {
    return fail(message_of(job.error()));
  }
  const auto& g = (*job)->graph();
  if (dot) {
    return answer("graph", json{{"dot", graph_dot(g)}});
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

json actors(inspect_context& ctx, const words& args) {
  if (!args.empty()) {
    if (auto err = ctx.known_operator(args[0])) {
      return fail(message_of(err));
    }
  }
  json rows = json::array();
  for (const auto& j : ctx.jobs()) {
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

json stats(inspect_context& ctx, samples& last) {
  auto now = std::chrono::steady_clock::now();
  json rows = json::array();
  for (const auto& j : ctx.jobs()) {
    for (const auto& t : totals_by_operator(*j)) {
      rows.push_back(stats_row(*j, t, last, now));
    }
  }
  return answer("stats", std::move(rows));
}

json deadletters(inspect_context& ctx, const words& args) {
  if (!args.empty()) {
    if (auto err = ctx.known_operator(args[0])) {
      return fail(message_of(err));
    }
  }
  std::map<std::filesystem::path, std::vector<std::string>> dirs;
  for (const auto& j : ctx.jobs()) {
    dirs[j->data_dir()].push_back(j->name());
  }
  json rows = json::array();
  for (const auto& [dir, names] : dirs) {
    if (auto err = dead_letter_rows(dir, names, args.empty() ? std::string{} : args[0], rows)) {
      return fail(describe(err));
    }
  }
  return answer("deadletters", std::move(rows));
}

caf::result<std::string> partitions(inspect_context& ctx, const words& args) {
  if (args.size() != 1) {
    return failed(
      bad_request("partitions takes a keyed operator, e.g. partitions count (graph lists them)"));
  }
  auto ref = ctx.find_operator(args[0]);
  if (!ref) {
    return failed(ref.error());
  }
  if (ref->spec->kind != node_kind::keyed) {
    return failed(bad_request("'" + args[0] + "' (" + to_string(ref->spec->kind) +
                              ") is not a keyed operator: it has no partitions (actors " + args[0] +
                              " lists its instances)"));
  }
  auto job = ref->job;
  const auto& op = args[0];
  auto node = ctx.address();
  if (job->done()) {
    return answer("partitions", partition_rows(*job, op, node, json::object())).dump();
  }
  admin_request info;
  info.command = admin_command::info;
  return ctx.ask(job, op, info, [job, op, node](const std::vector<admin_answer>& answers) {
    json infos = json::object();
    for (const auto& a : answers) {
      if (a.reply.ok) {
        infos[a.actor] = data_of(a.reply);
      }
    }
    return caf::expected<json>{answer("partitions", partition_rows(*job, op, node, infos))};
  });
}

} // namespace eddy::detail::inspect
