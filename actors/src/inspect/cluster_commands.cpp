// The commands about the cluster: its members and the assignment table as this node sees
// them (cluster_view), and the moves of partitions, passed on to the job actor of the job's
// leader and its relocation actor (see cluster/relocation.hpp).

#include <unistd.h>

#include <caf/response_promise.hpp>

#include "eddy/core/error.hpp"
#include "inspect/commands.hpp"
#include "limits.hpp"

namespace eddy::detail::inspect {

namespace {

/// The relocation actor's answer (a JSON object or array text) as the console's answer.
std::string relocation_answer(const std::string& cmd, const std::string& text) {
  auto rows = json::parse(text, nullptr, false);
  if (rows.is_object()) {
    rows = json::array({rows});
  }
  return rows.is_array() ? answer(cmd, std::move(rows)).dump()
                         : fail("the job sent an answer that is not JSON").dump();
}

/// The mode of `rebalance` or `moves` given `args`: "run", "dry-run", "abort" or "status".
caf::expected<std::string> rebalance_mode(const std::string& cmd, const words& args) {
  std::string mode = cmd == "moves" ? "status" : "run";
  for (const auto& a : args) {
    if (cmd == "rebalance" && (a == "--dry-run" || a == "--abort")) {
      mode = a.substr(2);
    } else {
      return bad_request(cmd == "moves" ? "usage: moves"
                                        : "usage: rebalance [--dry-run | --abort]");
    }
  }
  return mode;
}

} // namespace

/// The members of the cluster as this node sees them (itself first); jobs, actors and
/// pid are known for this node only.
json nodes(inspect_context& ctx) {
  size_t actors = 0;
  auto all = ctx.jobs();
  for (const auto& j : all) {
    actors += j->actors().size();
  }
  auto coordinator = ctx.view().coordinator();
  json rows = json::array();
  for (const auto& m : ctx.view().members()) {
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

json placement(inspect_context& ctx) {
  auto table = ctx.view().table();
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

caf::result<std::string> relocate(inspect_context& ctx, const std::string& cmd, const words& args) {
  auto job = ctx.find_job("");
  if (!job) {
    return failed(job.error());
  }
  auto sup = caf::actor_cast<caf::actor>((*job)->supervisor());
  if (!sup || (*job)->done()) {
    return fail("job '" + (*job)->name() + "' has finished: nothing to move").dump();
  }
  std::optional<uint32_t> partition;
  caf::expected<std::string> mode{std::string{}};
  if (cmd == "move") {
    partition = args.size() == 2 ? parse_partition(args[0]) : std::nullopt;
    if (!partition) {
      return failed(bad_request(
        "usage: move PARTITION NODE, e.g. move 2 n3 (placement lists partitions and nodes)"));
    }
  } else if (mode = rebalance_mode(cmd, args); !mode) {
    return failed(mode.error());
  }
  auto rp = ctx.self()->make_response_promise<std::string>();
  auto on_answer = [rp, cmd](std::string& text) mutable {
    rp.deliver(relocation_answer(cmd, text));
  };
  auto on_error = [rp](caf::error& err) mutable {
    rp.deliver(fail(describe(err)).dump());
  };
  if (partition) {
    ctx.self()
      ->request(sup, limits::inspector_move_timeout, move_atom::value, *partition, args[1])
      .then(std::move(on_answer), std::move(on_error));
  } else {
    ctx.self()
      ->request(sup, limits::inspector_move_timeout, rebalance_atom::value, *mode)
      .then(std::move(on_answer), std::move(on_error));
  }
  return rp;
}

} // namespace eddy::detail::inspect
