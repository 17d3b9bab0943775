// The inspector: one actor per engine (node), published over CAF's middleman for
// `eddy console`. It answers `inspect, "command args..."` with a JSON text:
//   {"ok": true, "command": "actors", "data": ...}   or   {"ok": false, "error": "..."}
// Tables are arrays of objects whose keys keep their order (nlohmann::ordered_json), so the
// console renders any command without knowing it. This file is the actor and the dispatch
// of a command line to its family (commands.hpp); the families share inspect_context.

#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>

#include "cluster/host.hpp"
#include "cluster/node_actor.hpp"
#include "eddy/actors/engine.hpp"
#include "eddy/actors/messages.hpp"
#include "eddy/core/error.hpp"
#include "eddy/core/log.hpp"
#include "inspect/commands.hpp"

namespace eddy {

namespace {

using namespace detail::inspect;

/// The inspector's state: the shared context, the `tail` sessions and the counters of the
/// last `stats`. Owned by the inspector actor; not thread-safe.
class inspector {
public:
  inspector(caf::event_based_actor* self, jobs_fn jobs, std::string host,
            std::shared_ptr<std::atomic<uint16_t>> port, std::shared_ptr<detail::cluster_view> view)
    : ctx_(self, std::move(jobs), std::move(host), std::move(port), std::move(view))
    , tails_(ctx_) {}

  /// Answers one command line: at once from the jobs' handles, or, for the commands that
  /// ask the actors themselves, when their answers arrive.
  caf::result<std::string> run(const std::string& line) {
    tails_.expire();
    auto split = split_words(line);
    if (!split) {
      return failed(split.error());
    }
    if (split->empty()) {
      return fail("empty command (help lists the commands)").dump();
    }
    const auto cmd = split->front();
    words args(split->begin() + 1, split->end());
    if (auto live = run_live(cmd, args)) {
      return std::move(*live);
    }
    return run_now(cmd, args).dump();
  }

  void tapped(const std::string& id, const std::string& actor, const std::string& lines) {
    tails_.tapped(id, actor, lines);
  }

private:
  /// The commands that ask actors; nullopt for the others.
  std::optional<caf::result<std::string>> run_live(const std::string& cmd, words& args) {
    if (is_key_command(cmd)) {
      return key_command(ctx_, cmd, std::move(args));
    }
    if (cmd == "tail") {
      return tails_.run(std::move(args));
    }
    if (cmd == "partitions") {
      return partitions(ctx_, args);
    }
    if (cmd == "send") {
      return send(ctx_, args);
    }
    if (cmd == "pause" || cmd == "resume") {
      return pause_resume(ctx_, cmd, args);
    }
    if (cmd == "snapshot" || cmd == "replay-deadletters") {
      return partitions_command(ctx_, cmd, args);
    }
    if (cmd == "savepoint" || cmd == "savepoints") {
      return savepoint_command(ctx_, cmd, args);
    }
    if (cmd == "move" || cmd == "rebalance" || cmd == "moves") {
      return relocate(ctx_, cmd, args);
    }
    return std::nullopt;
  }

  /// The commands answered at once, and the answer to an unknown command.
  json run_now(const std::string& cmd, const words& args) {
    if (cmd == "help") {
      return help(args);
    }
    if (cmd == "nodes") {
      return nodes(ctx_);
    }
    if (cmd == "jobs") {
      return jobs(ctx_);
    }
    if (cmd == "graph") {
      return graph(ctx_, args);
    }
    if (cmd == "actors") {
      return actors(ctx_, args);
    }
    if (cmd == "stats") {
      return stats(ctx_, samples_);
    }
    if (cmd == "deadletters") {
      return deadletters(ctx_, args);
    }
    if (cmd == "kill") {
      return kill(ctx_, args);
    }
    if (cmd == "placement") {
      return placement(ctx_);
    }
    std::vector<std::string> names;
    for (const auto& c : commands()) {
      names.emplace_back(c.name);
    }
    return fail("unknown command '" + cmd + "'" + did_you_mean(cmd, names) +
                " (help lists the commands)");
  }

  inspect_context ctx_;
  tail_sessions tails_;
  samples samples_;
};

caf::behavior inspector_actor(caf::event_based_actor* self, jobs_fn jobs, std::string host,
                              std::shared_ptr<std::atomic<uint16_t>> port,
                              std::shared_ptr<detail::cluster_view> view) {
  auto state = std::make_shared<inspector>(self, std::move(jobs), std::move(host), std::move(port),
                                           std::move(view));
  return {
    [state](inspect_atom, const std::string& line) -> caf::result<std::string> {
      // Console errors are values; this is the last resort that keeps exceptions from
      // leaving the behavior: the JSON library throws on text that is not UTF-8.
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
