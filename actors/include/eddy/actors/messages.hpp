#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/type_id.hpp>
#include <caf/typed_actor.hpp>

#include <map>
#include <utility>
#include <vector>

#include "eddy/flow/batch.hpp"
#include "eddy/state/journal_store.hpp"

namespace eddy {

/// A batch on its way to another node (see "Cluster" in docs/design.md): the records
/// encoded with the sender's output codec, decoded by the receiver, which knows its input
/// type. Sequence number and credit work as on a local channel.
struct remote_batch {
  channel_id channel = 0;
  uint64_t seq = 0;
  time_ms watermark = no_time;
  bool last = false;
  bool has_ends = false;
  frontier ends;
  uint64_t cut = 0;
  std::string records;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, remote_batch& x) {
  return f(x.channel, x.seq, x.watermark, x.last, x.has_ends, x.ends, x.cut, x.records);
}

/// Job actor -> host of a partition on another node: open the partition's journal and
/// answer its positions (see host.cpp).
struct host_prepare {
  std::string job;
  uint32_t node = 0;
  uint32_t index = 0;
  uint32_t producer = 0;
  std::string failed_cause;
  std::vector<uint64_t> poison;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, host_prepare& x) {
  return f(x.job, x.node, x.index, x.producer, x.failed_cause, x.poison);
}

/// Job actor -> host: spawn the prepared partition with these channels; answers its actor.
struct host_spawn {
  std::string job;
  uint32_t node = 0;
  uint32_t index = 0;
  std::vector<caf::actor> outputs;
  std::vector<channel_id> channels;
  uint32_t input_count = 0;
  uint64_t resume_after = 0;
  std::vector<channel_id> ack_channels;
  std::map<channel_id, uint64_t> acked;
  /// The host of the standby copy (none: no standby), and whether a commit waits for it.
  caf::actor standby;
  bool sync_standby = true;
  /// How long a commit waits for the standby (--node.timeout-ms of the leader).
  uint32_t standby_timeout_ms = 3000;
  /// The epoch of the assignment table the incarnation was placed by (fencing).
  uint64_t epoch = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, host_spawn& x) {
  return f(x.job, x.node, x.index, x.outputs, x.channels, x.input_count, x.resume_after,
           x.ack_channels, x.acked, x.standby, x.sync_standby, x.standby_timeout_ms, x.epoch);
}

// A committed journal transaction travels to the standby as it is (see host.cpp).

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, state_change& x) {
  bool has_value = x.value.has_value();
  std::string value = x.value.value_or(std::string{});
  auto load = caf::meta::load_callback([&]() -> caf::error {
    x.value = has_value ? std::optional<std::string>{std::move(value)} : std::nullopt;
    return caf::none;
  });
  return f(x.key, x.name, has_value, value, load);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, outbox_entry& x) {
  return f(x.first, x.last, x.payload);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, timer_entry& x) {
  return f(x.kind, x.at_ms, x.key, x.tag);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, commit_batch& x) {
  return f(x.changes, x.positions, x.outbox_added, x.outbox_acked, x.timers_added, x.timers_removed,
           x.timers_fired, x.origin, x.deferred, x.at_ms);
}

// -- The console's requests to stages (see actors/src/stage/admin.hpp) --------------------

/// What the console asks of a stage. Partitions answer `state` ... `info`, sources `send`;
/// every stage answers `pause`, `resume`, `tap` and `untap` (the taps of `tail`).
enum class admin_command : uint8_t {
  state,
  history,
  set,
  replay,
  timers,
  snapshot,
  replay_dead_letters,
  info,
  pause,
  resume,
  tap,
  untap,
  send,
};

/// Every admin_command, in declaration order.
inline constexpr admin_command admin_commands[] = {
  admin_command::state,
  admin_command::history,
  admin_command::set,
  admin_command::replay,
  admin_command::timers,
  admin_command::snapshot,
  admin_command::replay_dead_letters,
  admin_command::info,
  admin_command::pause,
  admin_command::resume,
  admin_command::tap,
  admin_command::untap,
  admin_command::send,
};

/// The command's name as the console spells it ("replay-deadletters").
inline std::string to_string(admin_command x) {
  switch (x) {
    case admin_command::state:
      return "state";
    case admin_command::history:
      return "history";
    case admin_command::set:
      return "set";
    case admin_command::replay:
      return "replay";
    case admin_command::timers:
      return "timers";
    case admin_command::snapshot:
      return "snapshot";
    case admin_command::replay_dead_letters:
      return "replay-deadletters";
    case admin_command::info:
      return "info";
    case admin_command::pause:
      return "pause";
    case admin_command::resume:
      return "resume";
    case admin_command::tap:
      return "tap";
    case admin_command::untap:
      return "untap";
    case admin_command::send:
      return "send";
  }
  return "unknown";
}

/// The command the console spells `name`; nullopt when there is none.
inline std::optional<admin_command> admin_command_of(std::string_view name) {
  for (auto c : admin_commands) {
    if (to_string(c) == name) {
      return c;
    }
  }
  return std::nullopt;
}

/// Inspector -> job actor -> stage: one console request. It crosses nodes when a
/// partition runs on another member, so every field serializes.
struct admin_request {
  admin_command command = admin_command::info;
  /// state, history, set, replay, timers: the key, spelled as `encode_key` spells it; tap:
  /// only records of this key (keyed operators).
  std::optional<std::string> key;
  /// replay: the journal sequence number to rebuild the state as of.
  uint64_t seq = 0;
  /// history: the newest changes shown, at most.
  uint64_t limit = 20;
  /// set: a JSON object text {"state name": new value}; send: the record as JSON text.
  std::string values;
  /// set: who edits and why (the journal keeps both).
  std::string by;
  std::string why;
  /// tap, untap: the id of the `tail` session.
  std::string tap;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, admin_request& x) {
  bool has_key = x.key.has_value();
  std::string key = x.key.value_or(std::string{});
  auto load = caf::meta::load_callback([&]() -> caf::error {
    x.key = has_key ? std::optional<std::string>{std::move(key)} : std::nullopt;
    return caf::none;
  });
  return f(caf::meta::type_name("admin_request"), x.command, has_key, key, x.seq, x.limit, x.values,
           x.by, x.why, x.tap, load);
}

/// Stage -> job actor: the answer to one admin_request. `data` is the answer's body as
/// JSON text (state values are JSON), `error` says what went wrong when not `ok`.
struct admin_reply {
  bool ok = false;
  std::string error;
  std::string data;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, admin_reply& x) {
  return f(caf::meta::type_name("admin_reply"), x.ok, x.error, x.data);
}

/// Job actor -> inspector: the reply of one stage a request went to ("count/3").
struct admin_answer {
  std::string actor;
  admin_reply reply;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, admin_answer& x) {
  return f(caf::meta::type_name("admin_answer"), x.actor, x.reply);
}

} // namespace eddy

/// All of Eddy's message types and atoms, registered in one place.
CAF_BEGIN_TYPE_ID_BLOCK(eddy, caf::first_custom_type_id)

CAF_ADD_TYPE_ID(eddy, (eddy::batch))
CAF_ADD_TYPE_ID(eddy, (eddy::recycled_buffer))
CAF_ADD_TYPE_ID(eddy, (eddy::remote_batch))
CAF_ADD_TYPE_ID(eddy, (eddy::host_prepare))
CAF_ADD_TYPE_ID(eddy, (eddy::host_spawn))
CAF_ADD_TYPE_ID(eddy, (eddy::commit_batch))
CAF_ADD_TYPE_ID(eddy, (std::vector<std::pair<uint64_t, uint64_t>>) )
CAF_ADD_TYPE_ID(eddy, (std::vector<eddy::commit_batch>) )
CAF_ADD_TYPE_ID(eddy, (std::vector<std::pair<uint64_t, std::string>>) )
CAF_ADD_TYPE_ID(eddy, (eddy::admin_request))
CAF_ADD_TYPE_ID(eddy, (eddy::admin_reply))
CAF_ADD_TYPE_ID(eddy, (eddy::admin_answer))
CAF_ADD_TYPE_ID(eddy, (std::vector<eddy::admin_answer>) )

/// Receiver -> sender: `credit, channel, batches, recycled` returns credit on a channel,
/// with an emptied buffer of a consumed batch when there is one.
CAF_ADD_ATOM(eddy, eddy, credit_atom, "credit")
/// Job -> source: begin reading.
CAF_ADD_ATOM(eddy, eddy, start_atom, "start")
/// Job -> source: stop reading, flush and finish the stream (graceful shutdown).
CAF_ADD_ATOM(eddy, eddy, stop_atom, "stop")
/// Self: the linger time of a partly filled batch is over.
CAF_ADD_ATOM(eddy, eddy, tick_atom, "tick")
/// Self: a source reads its next batches.
CAF_ADD_ATOM(eddy, eddy, pull_atom, "pull")
/// Durable consumer -> partition: `ack, channel, position`: the consumer committed every
/// record of the partition up to `position` arriving on its input `channel`, so the
/// partition may drop them from its outbox.
CAF_ADD_ATOM(eddy, eddy, ack_atom, "ack")
/// Self: a partition at durability machine commits the batches processed since its last
/// commit in one transaction (group commit).
CAF_ADD_ATOM(eddy, eddy, sync_atom, "sync")
/// Self: a partition's earliest processing-time timer may be due.
CAF_ADD_ATOM(eddy, eddy, timer_atom, "timer")
/// Supervisor -> itself: build the job's next incarnation (the backoff is over).
CAF_ADD_ATOM(eddy, eddy, restart_atom, "restart")
/// `eddy console` -> a node's inspector: `inspect, command line` returns the answer as JSON
/// text (see inspector.cpp).
CAF_ADD_ATOM(eddy, eddy, inspect_atom, "inspect")
/// Console -> supervisor: `kill, "count/3"` makes that actor fail.
CAF_ADD_ATOM(eddy, eddy, kill_atom, "kill")
/// Inspector -> job: `admin, target, admin_request` runs a console request on the stages
/// named by `target` ("count/3", "count" for every instance, "*" for all) and returns
/// their answers, a `std::vector<admin_answer>` in the job's order. Job -> stage: `admin,
/// admin_request, tap` runs it on one stage and returns its `admin_reply` (`tap`: where
/// `tail` sends the records it sees).
CAF_ADD_ATOM(eddy, eddy, admin_atom, "admin")
/// Stage -> inspector: `tap, tap id, actor, lines` carries records seen by a tapped stage
/// (`tail`): a JSON array text of {"key", "record"}.
CAF_ADD_ATOM(eddy, eddy, tap_atom, "tap")
/// Node -> node (cluster/node_actor.cpp): `join, id, address` answers the members it knows as a
/// JSON array text of {"id", "address"}.
CAF_ADD_ATOM(eddy, eddy, join_atom, "node_join")
/// Node -> node: `member, id, address` tells of a member that joined.
CAF_ADD_ATOM(eddy, eddy, member_atom, "member")
/// Node -> node: `heartbeat, from id` answers the receiver's id, whether it coordinates,
/// and the HTTP address of its service (empty: none).
CAF_ADD_ATOM(eddy, eddy, heartbeat_atom, "heartbeat")
/// Coordinator -> node: `assignment, table JSON` answers the table the node keeps then (see
/// eddy/cluster/assignment.hpp): the newer one when it had a newer one.
CAF_ADD_ATOM(eddy, eddy, assignment_atom, "assignment")

/// Job actor / partition -> node actor: `host, member id` answers the host actor of that
/// member (host.cpp), which hosts partitions and standby copies for other nodes.
CAF_ADD_ATOM(eddy, eddy, host_atom, "host")
/// Job actor -> host: `prepare, host_prepare` answers the partition's journal positions.
CAF_ADD_ATOM(eddy, eddy, prepare_atom, "prepare")
/// Job actor -> host: `spawn, host_spawn` answers the partition actor.
CAF_ADD_ATOM(eddy, eddy, spawn_atom, "spawn")
/// Partition -> standby's host: `replica, partition path, offset, bytes, last` is a chunk
/// of a consistent copy of the partition's journal file; answers the bytes received.
CAF_ADD_ATOM(eddy, eddy, replica_atom, "replica")
/// Partition -> standby's host: `replicate, partition path, commit` applies a committed
/// transaction to the standby copy; answers the copy's last sequence number.
CAF_ADD_ATOM(eddy, eddy, replicate_atom, "replicate")
/// Job actor -> hosts: `done, job, error text` the job ended (empty error: completed).
CAF_ADD_ATOM(eddy, eddy, done_atom, "done")
/// Job actor -> partition: `standby, host` makes that host the partition's standby while
/// the partition keeps running: a snapshot of its journal goes there in chunks, then the
/// commits made meanwhile; answers a JSON text {"bytes", "entries"} once the copy is
/// current (a warm copy, the first step of a move).
CAF_ADD_ATOM(eddy, eddy, standby_atom, "standby")
/// Partition -> job actor: `progress, actor name, bytes sent, bytes in all, commits
/// waiting` while it copies its journal to a new standby.
CAF_ADD_ATOM(eddy, eddy, progress_atom, "progress")
/// Inspector -> job actor: `move, partition, member id` moves a partition's primary there
/// (a warm copy, then the switch); answers a JSON text of what it does.
CAF_ADD_ATOM(eddy, eddy, move_atom, "move")
/// Inspector -> job actor: `rebalance, dry run` answers the plan as JSON text, and runs it
/// unless `dry run`; `rebalance, "abort"` drops the moves not started.
CAF_ADD_ATOM(eddy, eddy, rebalance_atom, "rebalance")
/// Job actor -> its own host: `release, job, partitions` closes the standby copies of those
/// partitions before they run on this node.
CAF_ADD_ATOM(eddy, eddy, release_atom, "release")
/// Job actor -> its node actor: `lead, job actor` this node leads that job (a member that
/// leaves is drained by it).
CAF_ADD_ATOM(eddy, eddy, lead_atom, "lead")
/// `leave, member id`: that member leaves gracefully. Its job actor -> its node actor ->
/// the coordinator's node actor -> the leading job actors -> their relocation actors, which
/// move its partitions and standby copies away and answer once it is drained.
CAF_ADD_ATOM(eddy, eddy, leave_atom, "leave")
/// Leader -> host of the member that would lead next: `ingress, job, entries` keeps the
/// entries (sequence number, body) of the job's ingress log (a service's accepted
/// requests) in its copy of the log, and answers the last sequence number the copy holds.
CAF_ADD_ATOM(eddy, eddy, ingress_atom, "ingress")

/// Job actor -> source: `cut, id, stop` seals what the source read and sends the marker of
/// savepoint cut `id` on every channel (then ends its stream when `stop`); answers the
/// position of its last record read, its highest event time, and the bytes it read of the
/// file it reads with that file (empty: none; see stage/cut.hpp).
CAF_ADD_ATOM(eddy, eddy, cut_atom, "cut")
/// Job actor -> journaled stage: `pin, id` cut `id` is coming: open the connection of the
/// journal's pin now, off the cut's path.
CAF_ADD_ATOM(eddy, eddy, pin_atom, "pin")
/// Inspector -> job actor: `savepoint, stop` takes a savepoint of the running job (then stops
/// it) and answers a JSON text of it once it is complete. Savepoint session -> job actor:
/// `savepoint, cut, error, JSON text` the savepoint of that cut completed or failed.
CAF_ADD_ATOM(eddy, eddy, savepoint_atom, "savepoint")
/// Inspector -> job actor: `savepoints` answers a JSON text of the savepoint under way and
/// those in the savepoint directory.
CAF_ADD_ATOM(eddy, eddy, savepoints_atom, "savepoints")

CAF_END_TYPE_ID_BLOCK(eddy)

namespace eddy {

/// The one interface of every stage of a job (source, operator, partition, sink), so that
/// the runtime wires any stage to any other. Sources never receive batches, sinks never
/// receive credit, only partitions receive acks and standbys; their handlers for those
/// ignore them (a standby request is answered with an error).
using stage_actor = caf::typed_actor<
  caf::reacts_to<batch>, caf::reacts_to<remote_batch>,
  caf::reacts_to<credit_atom, channel_id, uint32_t, recycled_buffer>, caf::reacts_to<start_atom>,
  caf::reacts_to<stop_atom>, caf::reacts_to<tick_atom>, caf::reacts_to<pull_atom>,
  caf::reacts_to<ack_atom, channel_id, uint64_t>, caf::reacts_to<sync_atom>,
  caf::reacts_to<timer_atom>,
  caf::replies_to<admin_atom, admin_request, caf::actor>::with<admin_reply>,
  caf::replies_to<cut_atom, uint64_t, bool>::with<uint64_t, int64_t, uint64_t, std::string>,
  caf::replies_to<standby_atom, caf::actor>::with<std::string>, caf::reacts_to<pin_atom, uint64_t>>;

} // namespace eddy
