// `tail`: live records reaching an operator. A session taps the operator's stages (or the
// partition owning a key) through the job actor; the stages send what they see to the
// inspector (`tap`), which keeps it until the console polls.

#include "inspect/commands.hpp"
#include "limits.hpp"

namespace eddy::detail::inspect {

caf::result<std::string> tail_sessions::run(words args) {
  auto poll_id = take_option(args, "--poll");
  if (!poll_id) {
    return failed(poll_id.error());
  }
  if (*poll_id) {
    return poll(**poll_id);
  }
  auto stop_id = take_option(args, "--stop");
  if (!stop_id) {
    return failed(stop_id.error());
  }
  if (*stop_id) {
    stop(**stop_id);
    return answer("tail", json{{"stopped", **stop_id}}).dump();
  }
  return start(args);
}

void tail_sessions::tapped(const std::string& id, const std::string& actor,
                           const std::string& lines) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) {
    return;
  }
  auto& s = it->second;
  auto rows = json::parse(lines, nullptr, false);
  if (rows.is_discarded()) {
    return;
  }
  for (auto& r : rows) {
    if (s.lines.size() >= limits::tap_buffer_max) {
      s.lines.pop_front();
      ++s.dropped;
    }
    s.lines.push_back(json{{"actor", actor},
                           {"key", r.value("key", std::string{})},
                           {"record", r.value("record", std::string{})}});
  }
}

void tail_sessions::expire() {
  auto now = std::chrono::steady_clock::now();
  std::vector<std::string> stale;
  for (auto& [id, s] : sessions_) {
    if (now - s.polled > limits::tap_idle_timeout) {
      stale.push_back(id);
    }
  }
  for (auto& id : stale) {
    stop(id);
  }
}

caf::result<std::string> tail_sessions::poll(const std::string& id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) {
    auto idle_s = std::chrono::duration_cast<std::chrono::seconds>(limits::tap_idle_timeout);
    return failed(bad_request("no tail session '" + id + "' (one ends after " +
                              std::to_string(idle_s.count()) + " s without a poll)"));
  }
  auto& s = it->second;
  s.polled = std::chrono::steady_clock::now();
  json lines = json::array();
  for (auto& l : s.lines) {
    lines.push_back(std::move(l));
  }
  s.lines.clear();
  json data{{"lines", std::move(lines)}, {"dropped", s.dropped}};
  s.dropped = 0;
  return answer("tail", std::move(data)).dump();
}

caf::result<std::string> tail_sessions::start(const words& args) {
  if (args.empty() || args.size() > 2) {
    return failed(bad_request("usage: tail OPERATOR [KEY], e.g. tail count apple"));
  }
  auto ref = ctx_.find_operator(args[0]);
  if (!ref) {
    return failed(ref.error());
  }
  std::string target = ref->spec->name;
  admin_request r;
  r.command = admin_command::tap;
  if (args.size() == 2) {
    if (ref->spec->kind != node_kind::keyed) {
      return failed(bad_request("'" + target + "' (" + to_string(ref->spec->kind) +
                                ") is not keyed: tail it without a key"));
    }
    auto owner = inspect_context::owner_of(*ref, args[1]);
    if (!owner) {
      return failed(owner.error());
    }
    target = *owner;
    r.key = args[1];
  }
  auto id = "tail-" + std::to_string(++counter_);
  r.tap = id;
  sessions_[id] = session{ref->job, target, {}, 0, std::chrono::steady_clock::now()};
  return ctx_.ask(
    ref->job, target, r,
    [id, target](const std::vector<admin_answer>& answers) -> caf::expected<json> {
      size_t tapped = 0;
      for (const auto& a : answers) {
        tapped += a.reply.ok ? 1 : 0;
      }
      if (tapped == 0) {
        return bad_request("no running actor of '" + target + "' could be tapped");
      }
      return answer("tail", json{{"tail", id}, {"target", target}, {"actors", tapped}});
    });
}

void tail_sessions::stop(const std::string& id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) {
    return;
  }
  admin_request r;
  r.command = admin_command::untap;
  r.tap = id;
  ctx_.tell(*it->second.job, it->second.target, r);
  sessions_.erase(it);
}

} // namespace eddy::detail::inspect
