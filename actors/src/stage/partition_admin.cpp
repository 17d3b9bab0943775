// The console's requests to a key partition (see admin.hpp) and re-processing its dead
// letters; the partition's other files are listed in partition.hpp.

#include <map>

#include <nlohmann/json.hpp>

#include "stage/partition.hpp"

namespace eddy::detail::partition_ops {

/// With `--supervision.replay-dead-letters`: processes this partition's pending dead
/// letters before any input, commits, and marks them replayed. Exactly once: the id of the
/// last one goes into the same commit as the state changes they made, and a restart skips
/// what that id covers. A dead letter that fails again is handled like any poison record
/// and stays pending. Returns false if the partition quit. `forced`: asked from the console,
/// whatever the option says; `replayed` counts the re-processed records.
bool replay_dead_letters(self_ptr self, bool forced, size_t* replayed) {
  auto& st = self->state;
  auto& init = *st.init;
  if ((!forced && !init.opts.supervision.replay_dead_letters) || !init.dead_letters ||
      !st.journal || init.failed()) {
    return true;
  }
  failed_record_query q;
  q.job = init.ctx.job;
  q.op = init.ctx.node;
  auto letters = init.dead_letters->list(q);
  if (!letters) {
    self->quit(letters.error());
    return false;
  }
  const auto& spec = st.graph_node();
  const auto& input = init.graph->node(*spec.input);
  auto records = input.make_output_buffer(letters->size());
  auto one = input.make_output_buffer(1);
  std::vector<int64_t> done;
  int64_t last = 0;
  for (const auto& l : *letters) {
    if (l.partition != init.ctx.index) {
      continue;
    }
    if (static_cast<uint64_t>(l.id) <= st.committed_replayed_upto) {
      // Re-processed and committed before a crash; only the mark was lost.
      done.push_back(l.id);
      continue;
    }
    if (l.payload.empty()) {
      log(log_level::warn, "partition",
          who(st) + ": dead letter " + std::to_string(l.id) + " has no payload to replay");
      continue;
    }
    one->clear();
    input.decode_output(l.payload, *one);
    // Replayed records carry their dead letter's id, so that one failing again is known.
    uint64_t position = static_cast<uint64_t>(l.id) - 1;
    one->stamp_origins(dead_letter_producer, position);
    if (drop_poison(init, *one) > 0) {
      continue;
    }
    one->move_into(*records);
    done.push_back(l.id);
    last = l.id;
  }
  if (records->size() > 0) {
    process_reporting(init, *st.logic, *records, *st.scratch);
    take_output(st);
    st.replayed_upto = static_cast<uint64_t>(last);
    if (!commit_now(self)) {
      return false;
    }
    log(log_level::info, "partition",
        who(st) + " re-processed " + std::to_string(records->size()) + " dead letters");
    if (replayed != nullptr) {
      *replayed = records->size();
    }
  }
  if (!done.empty()) {
    if (auto err = init.dead_letters->mark_replayed(done)) {
      log(log_level::warn, "partition", who(st) + ": " + describe(err));
    }
  }
  return true;
}

/// `set`: an audited edit of a key's state, applied as the keyed function would apply it
/// and committed through the journal as one change whose origin says who, why and what the
/// old values were; `history` shows it. All the named states change or none.
admin_reply admin_set(self_ptr self, const admin_request& r) {
  auto& st = self->state;
  if (st.init->failed()) {
    return admin_fail_of(who(st), "has failed; its state can be read but not changed");
  }
  auto values = nlohmann::json::parse(r.values, nullptr, false);
  if (values.is_discarded() || !values.is_object() || values.empty()) {
    return admin_fail("set takes the new states as a JSON object, e.g. {\"count\": 42} (state "
                      "shows the current ones)");
  }
  // Changes made by batches since the last commit go in their own commit first.
  if (!commit_now(self)) {
    return admin_fail_of(who(st), "could not commit its pending changes");
  }
  nlohmann::json old = nlohmann::json::object();
  std::vector<std::pair<std::string, std::string>> undo;
  try {
    for (auto& [name, value] : values.items()) {
      auto before = st.logic->admin_set(*r.key, name, value.dump());
      undo.emplace_back(name, before);
      old[name] = nlohmann::json::parse(before);
    }
  } catch (const std::exception& e) {
    for (auto i = undo.rbegin(); i != undo.rend(); ++i) {
      (void) st.logic->admin_set(*r.key, i->first, i->second);
    }
    return admin_fail(e.what());
  }
  nlohmann::json origin{{"admin", "set"}, {"by", r.by}, {"why", r.why}, {"old", old}};
  if (!commit_now(self, origin.dump())) {
    return admin_fail_of(who(st), "could not commit the edit to its journal");
  }
  release(self);
  log(log_level::warn, "partition",
      who(st) + ": key '" + *r.key + "' set from the console by " + r.by + ": " + values.dump());
  nlohmann::json data{{"actor", who(st)}, {"key", *r.key}, {"old", old}, {"new", values}};
  if (st.journal) {
    data["seq"] = st.journal->last_seq();
  } else {
    data["seq"] = nullptr;
    data["note"] = "in-memory state: the edit is not journaled and history cannot show it";
  }
  return admin_ok(data.dump());
}

/// `partitions`: what the journal holds (stored keys, kept changes, last sequence number)
/// and the input positions applied, per producer ("lines/0@120").
nlohmann::json partition_info(partition_state& st) {
  nlohmann::json info{{"durable", st.journal != nullptr}};
  if (!st.journal) {
    return info;
  }
  auto keys = st.journal->key_count();
  auto entries = st.journal->journal_length();
  info["seq"] = st.journal->last_seq();
  info["keys_stored"] = keys ? *keys : 0;
  info["journal_entries"] = entries ? *entries : 0;
  std::map<uint32_t, uint64_t> by_producer;
  for (auto& [key, position] : st.filter.positions()) {
    auto& p = by_producer[replay_filter::producer_of(key)];
    p = std::max(p, position);
  }
  std::string positions;
  for (auto& [producer, position] : by_producer) {
    if (!positions.empty()) {
      positions += ' ';
    }
    positions.append(producer_name(*st.init->graph, producer))
      .append("@")
      .append(std::to_string(position));
  }
  info["input_positions"] = positions;
  return info;
}

/// The console requests only partitions answer; nullopt for the others.
std::optional<admin_reply> partition_admin(self_ptr self, const admin_request& r) {
  auto& st = self->state;
  bool keyed_cmd = r.command == admin_command::state || r.command == admin_command::history ||
                   r.command == admin_command::set || r.command == admin_command::replay ||
                   r.command == admin_command::timers;
  if (!keyed_cmd && r.command != admin_command::snapshot &&
      r.command != admin_command::replay_dead_letters && r.command != admin_command::info) {
    return std::nullopt;
  }
  if (keyed_cmd && !r.key) {
    return admin_fail(to_string(r.command) + " needs a key");
  }
  if (!ensure_recovered(self)) {
    return admin_fail_of(who(st), "could not read its journal");
  }
  // The journal's history and the states it replays end at the last commit, which a commit
  // interval may leave behind what `state` shows: they start with a commit.
  bool reads_journal = r.command == admin_command::history || r.command == admin_command::replay;
  if (reads_journal && st.journal) {
    if (!commit_now(self)) {
      return admin_fail_of(who(st), "could not commit its journal");
    }
    release(self);
  }
  try {
    switch (r.command) {
      case admin_command::state:
        return admin_ok(st.logic->inspect_state(*r.key));
      case admin_command::history:
        return admin_ok(st.logic->inspect_history(*r.key, r.limit));
      case admin_command::timers:
        return admin_ok(st.logic->inspect_timers(*r.key));
      case admin_command::replay:
        return admin_ok(st.logic->replay_state(*r.key, r.seq, st.init->opts.state.keep_changes));
      case admin_command::set:
        return admin_set(self, r);
      case admin_command::info:
        return admin_ok(partition_info(st).dump());
      default:
        break;
    }
    if (!st.journal) {
      return admin_fail(to_string(r.command) +
                        " needs durable state (--state.durability process or machine)");
    }
    if (r.command == admin_command::snapshot) {
      if (!commit_now(self) || !compact(self)) {
        return admin_fail_of(who(st), "could not commit and compact its journal");
      }
      release(self);
      auto keys = st.journal->key_count();
      auto entries = st.journal->journal_length();
      nlohmann::json data{{"actor", who(st)},
                          {"seq", st.journal->last_seq()},
                          {"keys", keys ? *keys : 0},
                          {"journal_entries", entries ? *entries : 0},
                          {"file", st.journal->file().string()}};
      return admin_ok(data.dump());
    }
    size_t replayed = 0;
    if (!replay_dead_letters(self, true, &replayed)) {
      return admin_fail_of(who(st), "failed while re-processing its dead letters");
    }
    release(self);
    return admin_ok(nlohmann::json{{"actor", who(st)}, {"replayed", replayed}}.dump());
  } catch (const std::exception& e) {
    return admin_fail(e.what());
  }
}

} // namespace eddy::detail::partition_ops
