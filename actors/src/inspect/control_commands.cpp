// The commands that change a running job: kill an actor (through its job actor), send a
// record into a source, pause and resume stages, snapshot the partitions' journals and
// re-process dead letters.

#include <set>

#include "eddy/core/error.hpp"
#include "inspect/commands.hpp"
#include "limits.hpp"

namespace eddy::detail::inspect {

namespace {

/// `pause` and `resume`: one row per stage asked.
json pause_rows(const std::string& cmd, const std::vector<admin_answer>& answers) {
  json rows = json::array();
  for (const auto& a : answers) {
    bool ok = a.reply.ok;
    rows.push_back(
      json{{"actor", a.actor},
           {"status", ok ? data_of(a.reply).value("status", std::string{}) : std::string{"-"}},
           {"note", ok ? (cmd == "pause" ? "takes no input until resume" : "") : a.reply.error}});
  }
  return rows;
}

/// Checks OPERATOR[/PARTITION] of pause and resume; the operator.
caf::expected<op_ref> stage_of(inspect_context& ctx, const std::string& target) {
  auto slash = target.find('/');
  auto ref = ctx.find_operator(target.substr(0, slash));
  if (!ref || slash == std::string::npos) {
    return ref;
  }
  auto index = parse_number(target.substr(slash + 1), "the instance after '/'");
  if (!index) {
    return index.error();
  }
  auto count = ref->job->graph().instances(ref->index);
  if (*index >= count) {
    return bad_request("'" + ref->spec->name + "' has instances 0.." + std::to_string(count - 1) +
                       ", not " + std::to_string(*index));
  }
  return ref;
}

/// The job of snapshot [JOB] or replay-deadletters [OPERATOR], and the stages asked.
caf::expected<std::pair<std::shared_ptr<job_handle>, std::string>>
partitions_target(inspect_context& ctx, const std::string& cmd, const words& args) {
  if (cmd == "replay-deadletters" && !args.empty()) {
    auto ref = ctx.find_keyed(args[0], cmd);
    if (!ref) {
      return ref.error();
    }
    return std::pair{ref->job, ref->spec->name};
  }
  auto job = ctx.find_job(args.empty() ? std::string{} : args[0]);
  if (!job) {
    return job.error();
  }
  return std::pair{*job, std::string{"*"}};
}

/// The rows of snapshot and replay-deadletters from the replies of the partitions of the
/// operators `keyed` (the other stages refuse).
caf::expected<json> partitions_rows(const std::string& cmd, const std::set<std::string>& keyed,
                                    const std::vector<admin_answer>& answers) {
  json rows = json::array();
  std::string error;
  for (const auto& a : answers) {
    if (keyed.count(a.actor.substr(0, a.actor.find('/'))) == 0) {
      continue;
    }
    if (!a.reply.ok) {
      error = a.actor + ": " + a.reply.error;
      continue;
    }
    auto d = data_of(a.reply);
    if (cmd == "snapshot") {
      rows.push_back(json{{"actor", a.actor},
                          {"seq", d.value("seq", uint64_t{0})},
                          {"keys", d.value("keys", uint64_t{0})},
                          {"journal_entries", d.value("journal_entries", uint64_t{0})}});
    } else if (auto replayed = d.value("replayed", uint64_t{0}); replayed > 0) {
      rows.push_back(json{{"actor", a.actor}, {"replayed", replayed}});
    }
  }
  if (rows.empty() && !error.empty()) {
    return bad_request(error);
  }
  if (cmd == "replay-deadletters" && rows.empty()) {
    rows.push_back(json{{"actor", "(all)"}, {"replayed", 0}});
  }
  return answer(cmd, std::move(rows));
}

/// The rows of `savepoints` from the job actor's JSON text.
json savepoint_rows(const std::string& text) {
  auto j = json::parse(text, nullptr, false);
  json rows = json::array();
  if (j.is_discarded()) {
    return rows;
  }
  if (j.contains("under_way")) {
    const auto& u = j["under_way"];
    rows.push_back(
      json{{"id", u.value("id", "")},
           {"state", u.value("phase", "") + " (" + std::to_string(u.value("reports", 0)) + "/" +
                       std::to_string(u.value("reports_expected", 0)) + " stages, " +
                       std::to_string(u.value("files_copied", 0)) + " journals copied)"},
           {"created", "-"},
           {"pause_ms", "-"},
           {"files", u.value("files_copied", 0)},
           {"bytes", u.value("bytes_copied", uint64_t{0})},
           {"path", "-"}});
  }
  for (const auto& r : j.value("savepoints", json::array())) {
    bool complete = r.value("state", "") == "complete";
    rows.push_back(json{
      {"id", r.value("id", "")},
      {"state", r.value("state", "")},
      {"created", complete ? utc_text(r.value("created_at_ms", int64_t{0})) : std::string{"-"}},
      {"pause_ms", complete ? json(r.value("pause_ms", 0.0)) : json("-")},
      {"files", r.value("files", 0)},
      {"bytes", r.value("bytes", uint64_t{0})},
      {"path", r.value("path", "")}});
  }
  return rows;
}

} // namespace

caf::result<std::string> savepoint_command(inspect_context& ctx, const std::string& cmd,
                                           const words& args) {
  bool stop = false;
  std::string name;
  for (const auto& a : args) {
    if (cmd == "savepoint" && a == "--stop") {
      stop = true;
    } else if (!a.empty() && a[0] != '-' && name.empty()) {
      name = a;
    } else {
      return failed(bad_request("usage: " + cmd +
                                (cmd == "savepoint" ? " [--stop] [JOB]" : std::string{" [JOB]"})));
    }
  }
  auto job = ctx.find_job(name);
  if (!job) {
    return failed(job.error());
  }
  auto sup = caf::actor_cast<caf::actor>((*job)->supervisor());
  if (!sup || (*job)->done()) {
    return fail("job '" + (*job)->name() + "' has finished: savepoints need a running job").dump();
  }
  auto rp = ctx.self()->make_response_promise<std::string>();
  auto on_error = [rp](caf::error& err) mutable {
    rp.deliver(failed(err));
  };
  if (cmd == "savepoints") {
    ctx.self()
      ->request(sup, limits::inspector_move_timeout, savepoints_atom::value)
      .then(
        [rp](std::string& text) mutable {
          rp.deliver(answer("savepoints", savepoint_rows(text)).dump());
        },
        std::move(on_error));
    return rp;
  }
  ctx.self()
    ->request(sup, limits::inspector_savepoint_timeout, savepoint_atom::value, stop)
    .then(
      [rp](std::string& text) mutable {
        auto j = json::parse(text, nullptr, false);
        rp.deliver(answer("savepoint", json::array({j.is_discarded() ? json{} : j})).dump());
      },
      std::move(on_error));
  return rp;
}

json kill(inspect_context& ctx, const words& args) {
  if (args.size() != 1) {
    return fail("kill takes one actor, e.g. kill count/3 (actors lists them)");
  }
  std::vector<std::string> names;
  for (const auto& j : ctx.jobs()) {
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
  return fail("no running actor '" + args[0] + "'" + did_you_mean(args[0], names));
}

caf::result<std::string> send(inspect_context& ctx, const words& args) {
  if (args.size() != 2) {
    return failed(bad_request("usage: send SOURCE JSON, e.g. send lines {\"text\": \"a b\"}"));
  }
  auto ref = ctx.find_operator(args[0]);
  if (!ref) {
    return failed(ref.error());
  }
  if (ref->spec->kind != node_kind::source) {
    return failed(bad_request("'" + args[0] + "' (" + to_string(ref->spec->kind) +
                              ") is not a source (graph lists the sources)"));
  }
  admin_request r;
  r.command = admin_command::send;
  r.values = args[1];
  return ctx.ask(ref->job, args[0] + "/0", r,
                 [](const std::vector<admin_answer>& answers) -> caf::expected<json> {
                   auto data = only_data(answers);
                   if (!data) {
                     return data.error();
                   }
                   return answer("send", json::array({std::move(*data)}));
                 });
}

caf::result<std::string> pause_resume(inspect_context& ctx, const std::string& cmd,
                                      const words& args) {
  if (args.size() != 1) {
    return failed(bad_request("usage: " + cmd + " OPERATOR[/PARTITION], e.g. " + cmd + " count/3"));
  }
  auto ref = stage_of(ctx, args[0]);
  if (!ref) {
    return failed(ref.error());
  }
  admin_request r;
  r.command = *admin_command_of(cmd);
  return ctx.ask(ref->job, args[0], r, [cmd](const std::vector<admin_answer>& answers) {
    return caf::expected<json>{answer(cmd, pause_rows(cmd, answers))};
  });
}

caf::result<std::string> partitions_command(inspect_context& ctx, const std::string& cmd,
                                            const words& args) {
  if (args.size() > 1) {
    return failed(bad_request("usage: " + cmd + (cmd == "snapshot" ? " [JOB]" : " [OPERATOR]")));
  }
  auto target = partitions_target(ctx, cmd, args);
  if (!target) {
    return failed(target.error());
  }
  auto& [job, stages] = *target;
  std::set<std::string> keyed;
  for (const auto& spec : job->graph().nodes()) {
    if (spec.kind == node_kind::keyed) {
      keyed.insert(spec.name);
    }
  }
  if (keyed.empty()) {
    return failed(bad_request("job '" + job->name() + "' has no keyed operators"));
  }
  admin_request r;
  r.command = *admin_command_of(cmd);
  return ctx.ask(job, stages, r, [cmd, keyed](const std::vector<admin_answer>& answers) {
    return partitions_rows(cmd, keyed, answers);
  });
}

} // namespace eddy::detail::inspect
