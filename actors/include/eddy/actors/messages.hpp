#pragma once

#include <cstdint>
#include <string>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/type_id.hpp>
#include <caf/typed_actor.hpp>

#include "eddy/flow/batch.hpp"

/// All of Eddy's message types and atoms, registered in one place.
CAF_BEGIN_TYPE_ID_BLOCK(eddy, caf::first_custom_type_id)

CAF_ADD_TYPE_ID(eddy, (eddy::batch))
CAF_ADD_TYPE_ID(eddy, (eddy::recycled_buffer))

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
/// Inspector -> job: `admin, target, request` runs a console request (JSON text, see
/// admin.hpp) on the stages named by `target` ("count/3", "count" for every instance, "*"
/// for all) and returns their answers as a JSON array text. Job -> stage: `admin, request,
/// tap` runs it on one stage (`tap`: where `tail` sends the records it sees).
CAF_ADD_ATOM(eddy, eddy, admin_atom, "admin")
/// Stage -> inspector: `tap, tap id, actor, lines` carries records seen by a tapped stage
/// (`tail`): a JSON array text of {"key", "record"}.
CAF_ADD_ATOM(eddy, eddy, tap_atom, "tap")
/// Node -> node (membership.cpp): `join, id, address` answers the members it knows as a
/// JSON array text of {"id", "address"}.
CAF_ADD_ATOM(eddy, eddy, join_atom, "node_join")
/// Node -> node: `member, id, address` tells of a member that joined.
CAF_ADD_ATOM(eddy, eddy, member_atom, "member")
/// Node -> node: `heartbeat, from id` answers the receiver's id.
CAF_ADD_ATOM(eddy, eddy, heartbeat_atom, "heartbeat")
/// Coordinator -> node: `assignment, table JSON` answers the table the node keeps then (see
/// eddy/cluster/assignment.hpp): the newer one when it had a newer one.
CAF_ADD_ATOM(eddy, eddy, assignment_atom, "assignment")

CAF_END_TYPE_ID_BLOCK(eddy)

namespace eddy {

/// The one interface of every stage of a job (source, operator, partition, sink), so that
/// the runtime wires any stage to any other. Sources never receive batches, sinks never
/// receive credit, only partitions receive acks; their handlers for those ignore them.
using stage_actor =
  caf::typed_actor<caf::reacts_to<batch>,
                   caf::reacts_to<credit_atom, channel_id, uint32_t, recycled_buffer>,
                   caf::reacts_to<start_atom>, caf::reacts_to<stop_atom>, caf::reacts_to<tick_atom>,
                   caf::reacts_to<pull_atom>, caf::reacts_to<ack_atom, channel_id, uint64_t>,
                   caf::reacts_to<sync_atom>, caf::reacts_to<timer_atom>,
                   caf::replies_to<admin_atom, std::string, caf::actor>::with<std::string>>;

} // namespace eddy
