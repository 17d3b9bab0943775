// The job actor's part of savepoints (see "Savepoints" in docs/design.md): `savepoint`
// opens a session for a new cut and asks every source for it; the stages align and report
// to the session (stage/cut.hpp), whose copier writes the savepoint (savepoint/session.hpp)
// and answers here. A restart or the end of the job aborts the savepoint under way.

#include <chrono>
#include <system_error>

#include <nlohmann/json.hpp>

#include "eddy/core/error.hpp"
#include "eddy/core/log.hpp"
#include "job/job_actor.hpp"

#ifndef EDDY_VERSION
#define EDDY_VERSION "unknown"
#endif

namespace fs = std::filesystem;

namespace eddy::detail {

namespace {

/// How long the job actor waits for a source to answer a cut.
constexpr auto source_cut_timeout = std::chrono::seconds(30);
/// How long every stage may take to reach a cut before the savepoint is given up (a stage
/// that cannot take input, a source that never reads on); the copy after it is not bounded.
constexpr auto align_timeout = std::chrono::seconds(60);

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

/// Why no savepoint can be taken now, or empty.
std::string cannot_take(const job_state& st) {
  if (!st.env.durable) {
    return "job " + st.env.graph->name() +
           " keeps its state in memory (--state.durability none): there are no journals to save";
  }
  if (!st.env.unreplayable_source.empty()) {
    // A restore reads the input again from the cut.
    return "job " + st.env.graph->name() + " cannot be restored from a savepoint: source '" +
           st.env.unreplayable_source + "' cannot replay its input (stdin is read once)";
  }
  if (st.env.cluster) {
    return "savepoints of a job on a cluster are not built yet; stop the cluster and run the job "
           "on one node to take one";
  }
  if (st.stop_requested || st.shared->error) {
    return "job " + st.env.graph->name() + " is stopping";
  }
  if (st.restarting || !st.building.empty()) {
    return "job " + st.env.graph->name() + " is restarting; try again once it runs";
  }
  if (st.savepoint) {
    return "savepoint " + st.savepoint->id() + " is under way (savepoints shows it)";
  }
  return {};
}

/// The manifest's job shape.
savepoint_manifest skeleton(const job_state& st, const std::string& id, bool stop) {
  const auto& g = *st.env.graph;
  savepoint_manifest m;
  m.id = id;
  m.job = g.name();
  m.eddy_version = EDDY_VERSION;
  m.created_at_ms = now_ms();
  m.trigger = stop ? "stop" : "console";
  m.partitions = g.partitions();
  for (size_t n = 0; n < g.nodes().size(); ++n) {
    const auto& spec = g.node(n);
    savepoint_node node;
    node.name = spec.name;
    node.kind = to_string(spec.kind);
    node.instances = g.instances(n);
    m.nodes.push_back(std::move(node));
  }
  return m;
}

/// A source instance's answer to a cut.
struct cut_answer {
  uint64_t position = 0;
  int64_t max_ts = no_time;
  uint64_t input_offset = 0;
  std::string input;
};

/// Where the sources stood, one entry per source node, from their answers in job order.
std::vector<savepoint_source> sources_of(const job_state& st,
                                         const std::vector<cut_answer>& answers) {
  std::vector<savepoint_source> out;
  size_t next = 0;
  const auto& g = *st.env.graph;
  for (size_t n = 0; n < g.nodes().size(); ++n) {
    const auto& spec = g.node(n);
    if (spec.kind != node_kind::source) {
      continue;
    }
    savepoint_source s;
    s.name = spec.name;
    auto instances = g.instances(n);
    s.aligned = instances == 1;
    for (uint32_t i = 0; i < instances && next < answers.size(); ++i, ++next) {
      const auto& a = answers[next];
      s.offsets.push_back(a.position);
      if (a.max_ts != no_time) {
        s.max_ts = s.max_ts ? std::min(*s.max_ts, a.max_ts) : a.max_ts;
      }
      // Parallel instances read the same file: the bytes before the cut are those of the
      // instance that read furthest. Their checksum is the copier's work.
      s.input = a.input;
      s.input_bytes = std::max(s.input_bytes, a.input_offset);
    }
    out.push_back(std::move(s));
  }
  return out;
}

/// The savepoint's answer to the console.
void answer_all(job_state& st, const caf::error& err, const std::string& summary) {
  for (auto& rp : st.savepoint_waiting) {
    if (err) {
      rp.deliver(err);
    } else {
      rp.deliver(summary);
    }
  }
  st.savepoint_waiting.clear();
}

} // namespace

fs::path savepoint_root(const job_env& env) {
  return env.opts.savepoint.dir.empty() ? env.data_dir / "savepoints" : env.opts.savepoint.dir;
}

caf::result<std::string> take_savepoint(job_ptr self, bool stop) {
  auto& st = self->state;
  if (auto why = cannot_take(st); !why.empty()) {
    return make_error(errc::invalid_config, why);
  }
  auto root = savepoint_root(st.env);
  auto id = new_savepoint_id(root, st.env.graph->name());
  savepoint_plan plan;
  std::error_code ec;
  plan.manifest = skeleton(st, id, stop);
  plan.partial = root / (id + std::string{savepoint_partial_suffix});
  plan.keep_changes = st.env.opts.state.keep_changes;
  if (auto log = st.env.data_dir / st.env.graph->name() / "ingress.db"; fs::exists(log, ec)) {
    plan.ingress_log = log;
  }
  // The sources in graph order (the job spawns them downstream first).
  std::vector<stage_actor> sources;
  for (size_t k = 0; k < st.inits.size(); ++k) {
    if (st.env.graph->node(st.inits[k]->node).kind == node_kind::source) {
      sources.push_back(st.stages[k]);
    }
  }
  plan.reports_expected = st.stages.size() - sources.size();
  fs::create_directories(plan.partial, ec);
  if (ec) {
    return make_error(errc::io_failure, "cannot create the savepoint directory " +
                                          plan.partial.string() + ": " + ec.message() +
                                          " (--savepoint.dir)");
  }
  auto cut = ++st.cuts_taken;
  st.savepoint =
    std::make_shared<savepoint_session>(cut, std::move(plan), caf::actor_cast<caf::actor>(self));
  st.env.cuts->open(cut, st.savepoint);
  log(log_level::info, "savepoint",
      "job " + st.env.graph->name() + ": savepoint " + id + " begins (cut " + std::to_string(cut) +
        (stop ? ", then the job stops" : "") + ")");
  // The journaled stages open the connections of their pins before the markers reach them
  // (the others ignore it).
  for (size_t k = 0; k < st.inits.size(); ++k) {
    if (st.env.graph->node(st.inits[k]->node).kind != node_kind::source) {
      self->send(st.stages[k], pin_atom::value, cut);
    }
  }
  // The sources answer in the order asked; the answers are gathered in that order.
  auto answers = std::make_shared<std::vector<cut_answer>>(sources.size());
  auto left = std::make_shared<size_t>(sources.size());
  auto session = st.savepoint;
  for (size_t i = 0; i < sources.size(); ++i) {
    self->request(sources[i], source_cut_timeout, cut_atom::value, cut, stop)
      .then(
        [self, answers, left, session, i](uint64_t position, int64_t max_ts, uint64_t offset,
                                          std::string& input) {
          (*answers)[i] = {position, max_ts, offset, std::move(input)};
          if (--*left == 0 && self->state.savepoint == session) {
            session->sources_known(sources_of(self->state, *answers));
          }
        },
        [self, session](caf::error& err) {
          if (self->state.savepoint == session) {
            abort_savepoint(self, "a source did not answer the cut: " + to_string(err));
          }
        });
  }
  if (stop) {
    st.stop_requested = true;
    resume_stages(self);
  }
  self->delayed_send(self, align_timeout, savepoint_atom::value, cut);
  auto rp = self->make_response_promise<std::string>();
  st.savepoint_waiting.push_back(rp);
  return rp;
}

namespace {

/// Ends the session under way: no more reports, its copier stopped (with `why`, if it still
/// runs) and joined; the console's requests get `err` or `summary`.
void close_session(job_ptr self, const std::string& why, const caf::error& err,
                   const std::string& summary) {
  auto& st = self->state;
  st.env.cuts->close();
  st.savepoint->abort(why);
  st.savepoint.reset();
  answer_all(st, err, summary);
}

} // namespace

void savepoint_done(job_ptr self, uint64_t cut, const std::string& error,
                    const std::string& summary) {
  auto& st = self->state;
  if (!st.savepoint || st.savepoint->cut() != cut) {
    return;
  }
  auto id = st.savepoint->id();
  if (!error.empty()) {
    log(log_level::warn, "savepoint",
        "job " + st.env.graph->name() + ": savepoint " + id + " failed: " + error);
  }
  close_session(self, error,
                error.empty()
                  ? caf::error{}
                  : make_error(errc::io_failure, "savepoint " + id + " failed: " + error),
                summary);
  if (st.finish_after_savepoint) {
    finish_job(self);
  }
}

void check_alignment(job_ptr self, uint64_t cut) {
  auto& st = self->state;
  if (!st.savepoint || st.savepoint->cut() != cut) {
    return;
  }
  auto p = st.savepoint->progress();
  if (p.reports < p.reports_expected) {
    abort_savepoint(self, std::to_string(p.reports_expected - p.reports) + " of " +
                            std::to_string(p.reports_expected) +
                            " stages did not reach the cut within " +
                            std::to_string(align_timeout.count()) + " s");
  }
}

void abort_savepoint(job_ptr self, const std::string& why) {
  auto& st = self->state;
  if (!st.savepoint) {
    return;
  }
  auto id = st.savepoint->id();
  log(log_level::warn, "savepoint",
      "job " + st.env.graph->name() + ": savepoint " + id + " aborted: " + why);
  close_session(self, why, make_error(errc::actor_failed, "savepoint " + id + " aborted: " + why),
                {});
}

bool savepoint_holds_finish(job_ptr self) {
  auto& st = self->state;
  if (!st.savepoint || st.shared->error) {
    return false;
  }
  auto p = st.savepoint->progress();
  if (p.reports < p.reports_expected) {
    // Stages ended before their cut: the savepoint cannot complete.
    abort_savepoint(self, "the job ended before every stage reached the cut");
    return false;
  }
  st.finish_after_savepoint = true;
  return true;
}

std::string savepoints_json(job_ptr self) {
  auto& st = self->state;
  nlohmann::json rows = nlohmann::json::array();
  auto root = savepoint_root(st.env);
  auto listed = list_savepoints(root);
  if (listed) {
    for (const auto& e : *listed) {
      nlohmann::json row{{"id", e.dir.filename().string()}, {"path", e.dir.string()}};
      if (e.manifest) {
        row["state"] = "complete";
        row["created_at_ms"] = e.manifest->created_at_ms;
        row["bytes"] = e.manifest->bytes();
        row["files"] = e.manifest->files.size();
        row["pause_ms"] = e.manifest->pause_ms;
        row["trigger"] = e.manifest->trigger;
      } else if (e.complete) {
        row["state"] = "unreadable";
        row["problem"] = e.problem;
      } else if (!st.savepoint ||
                 e.dir.filename() != st.savepoint->id() + std::string{savepoint_partial_suffix}) {
        row["state"] = "partial";
      } else {
        continue;
      }
      rows.push_back(std::move(row));
    }
  }
  nlohmann::json out{{"dir", root.string()}, {"savepoints", std::move(rows)}};
  if (st.savepoint) {
    auto p = st.savepoint->progress();
    out["under_way"] = nlohmann::json{{"id", p.id},
                                      {"phase", p.phase},
                                      {"reports", p.reports},
                                      {"reports_expected", p.reports_expected},
                                      {"files_copied", p.files_copied},
                                      {"bytes_copied", p.bytes_copied},
                                      {"elapsed_s", p.elapsed_s}};
  }
  if (!listed) {
    out["error"] = describe(listed.error());
  }
  return out.dump();
}

} // namespace eddy::detail
