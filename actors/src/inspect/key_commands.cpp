// The commands about one key of a keyed operator (state, timers, history, set, replay):
// asked of the partition that owns the key (`owner_of`), whose reply is rendered as rows.

#include "inspect/commands.hpp"

namespace eddy::detail::inspect {

namespace {

/// What a key command asked, for rendering the partition's reply.
struct key_query {
  std::string cmd;
  std::string key;
  std::string op;
  std::string actor;
  uint64_t seq = 0;
};

/// state and replay: one row per state of the key.
caf::expected<json> state_rows(const key_query& q, const json& data) {
  json rows = json::array();
  for (auto& [name, value] : data.items()) {
    json row{{"key", q.key}, {"actor", q.actor}, {"state", name}, {"value", value}};
    if (q.cmd == "replay") {
      row["as_of_seq"] = q.seq;
    }
    rows.push_back(std::move(row));
  }
  if (rows.empty()) {
    return bad_request(q.cmd == "state"
                         ? "no state for key '" + q.key + "' in '" + q.op + "' (" + q.actor +
                             " owns it and holds none)"
                         : "key '" + q.key + "' had no state at seq " + std::to_string(q.seq));
  }
  return rows;
}

caf::expected<json> timer_rows(const key_query& q, const json& data) {
  json rows = json::array();
  for (auto& t : data) {
    auto at = t.value("at", int64_t{0});
    rows.push_back(json{{"key", q.key},
                        {"actor", q.actor},
                        {"kind", t.value("kind", std::string{})},
                        {"at", at},
                        {"at_utc", utc_text(at)},
                        {"tag", t.value("tag", std::string{})}});
  }
  if (rows.empty()) {
    return bad_request("no timer of key '" + q.key + "' in '" + q.op + "' (" + q.actor +
                       " owns it)");
  }
  return rows;
}

caf::expected<json> history_rows(const key_query& q, const json& data) {
  json rows = json::array();
  for (auto& e : data) {
    rows.push_back(json{{"seq", e.value("seq", uint64_t{0})},
                        {"at", utc_text(e.value("at_ms", int64_t{0}))},
                        {"state", e.value("state", std::string{})},
                        {"value", e.contains("value") ? e["value"] : json{}},
                        {"origin", e.value("origin", std::string{})}});
  }
  if (rows.empty()) {
    return bad_request("no journaled change of key '" + q.key + "' in '" + q.op + "' (" + q.actor +
                       " owns it)");
  }
  return rows;
}

/// set: one row per state changed, with its old and new value.
json set_rows(const key_query& q, json& data) {
  json rows = json::array();
  for (auto& [name, value] : data["new"].items()) {
    rows.push_back(json{{"key", q.key},
                        {"actor", q.actor},
                        {"state", name},
                        {"old", data["old"].value(name, json{})},
                        {"new", value},
                        {"seq", data["seq"]}});
  }
  return rows;
}

/// The console's answer to key command `q` from the owner's replies.
caf::expected<json> render_key_answer(const key_query& q,
                                      const std::vector<admin_answer>& answers) {
  auto data = only_data(answers);
  if (!data) {
    return data.error();
  }
  caf::expected<json> rows{json{}};
  if (q.cmd == "state" || q.cmd == "replay") {
    rows = state_rows(q, *data);
  } else if (q.cmd == "timers") {
    rows = timer_rows(q, *data);
  } else if (q.cmd == "history") {
    rows = history_rows(q, *data);
  } else {
    rows = set_rows(q, *data);
  }
  if (!rows) {
    return rows.error();
  }
  return answer(q.cmd, std::move(*rows));
}

/// The options of a key command, taken out of its words.
struct key_options {
  std::optional<std::string> limit;
  std::optional<std::string> to;
  std::optional<std::string> why;
  std::optional<std::string> by;
};

caf::expected<key_options> take_key_options(words& args) {
  key_options opts;
  for (auto [name, slot] : {std::pair{"--limit", &opts.limit}, std::pair{"--to", &opts.to},
                            std::pair{"--why", &opts.why}, std::pair{"--by", &opts.by}}) {
    auto value = take_option(args, name);
    if (!value) {
      return value.error();
    }
    *slot = std::move(*value);
  }
  return opts;
}

/// The request of key command `cmd` on `key` with `opts`; fails for a bad number.
caf::expected<admin_request> key_request(const std::string& cmd, const words& args,
                                         const key_options& opts) {
  admin_request r;
  r.command = *admin_command_of(cmd);
  r.key = args[1];
  if (opts.limit) {
    auto limit = parse_number(*opts.limit, "--limit");
    if (!limit) {
      return limit.error();
    }
    r.limit = *limit;
  }
  if (opts.to) {
    auto seq = parse_number(*opts.to, "--to");
    if (!seq) {
      return seq.error();
    }
    r.seq = *seq;
  }
  if (cmd == "set") {
    r.values = args[2];
    r.by = opts.by.value_or("console");
    r.why = opts.why.value_or("");
  }
  return r;
}

} // namespace

bool is_key_command(const std::string& cmd) {
  return cmd == "state" || cmd == "history" || cmd == "set" || cmd == "replay" || cmd == "timers";
}

caf::result<std::string> key_command(inspect_context& ctx, const std::string& cmd, words args) {
  auto opts = take_key_options(args);
  if (!opts) {
    return failed(opts.error());
  }
  size_t want = cmd == "set" ? 3 : 2;
  if (args.size() != want || (cmd == "replay" && !opts->to)) {
    return failed(bad_request(usage_of(cmd)));
  }
  auto ref = ctx.find_keyed(args[0], cmd);
  if (!ref) {
    return failed(ref.error());
  }
  auto actor = inspect_context::owner_of(*ref, args[1]);
  if (!actor) {
    return failed(actor.error());
  }
  auto request = key_request(cmd, args, *opts);
  if (!request) {
    return failed(request.error());
  }
  key_query q{cmd, args[1], ref->spec->name, *actor, request->seq};
  return ctx.ask(ref->job, *actor, *request, [q](const std::vector<admin_answer>& answers) {
    return render_key_answer(q, answers);
  });
}

} // namespace eddy::detail::inspect
