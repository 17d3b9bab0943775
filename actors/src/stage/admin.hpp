#pragma once

// Private to the runtime: the console's requests as a stage receives them (`admin, request,
// tap`), and the controls every stage shares (pause, resume, tail). The inspector
// (inspector.cpp) builds the requests, the job actor routes them to stages, and each stage
// kind answers the ones it knows (partition_actor.cpp: state, history, set, replay,
// snapshot, replay-deadletters; source_actor.cpp: send).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/actor.hpp>

#include "eddy/actors/engine.hpp"
#include "eddy/flow/batch.hpp"
#include "eddy/graph/job_graph.hpp"
#include "eddy/graph/logic.hpp"

namespace eddy::detail {

/// The producer id of re-processed dead letters: their origin is (it, dead letter id).
inline constexpr uint32_t dead_letter_producer = 0xffff;

/// Records a tapped stage sends to `tail` per batch, at most; the rest are counted as
/// skipped, so that tailing a busy operator does not flood the console.
inline constexpr size_t tap_max_per_batch = 32;

/// One console request to a stage, parsed from its JSON text
/// {"cmd": ..., "key": ..., "seq": ..., "limit": ..., "values": ..., "by": ..., "why": ...,
/// "tap": ...}.
struct admin_request {
  /// state, history, set, replay, snapshot, replay-deadletters, pause, resume, tap, untap,
  /// send.
  std::string cmd;
  std::optional<std::string> key;
  uint64_t seq = 0;
  size_t limit = 20;
  /// set: a JSON object text {"state name": new value}; send: the record as JSON text.
  std::string values;
  std::string by;
  std::string why;
  /// tap, untap: the id of the `tail` session.
  std::string tap;
};

/// Parses a request; throws std::invalid_argument naming what is wrong.
admin_request parse_admin_request(const std::string& text);

/// The answer of a stage: {"ok": true, "data": <data_json>} or {"ok": false, "error": ...}.
std::string admin_ok(std::string_view data_json);
std::string admin_fail(std::string_view message);
/// An error about actor `who`: "'count/3' <what>".
std::string admin_fail_of(const std::string& who, std::string_view what);

/// What every stage keeps for the console: whether it is paused, the batches that arrived
/// meanwhile (their credit is owed until they are processed, so upstream stops too), and
/// the `tail` session tapping it.
struct stage_controls {
  bool paused = false;
  std::vector<batch> parked;
  caf::actor tap;
  std::string tap_id;
  /// Only records of this key (keyed operators).
  std::optional<std::string> tap_key;
  /// Records not sent to the tap (over `tap_max_per_batch`).
  uint64_t tap_skipped = 0;
};

/// Answers the requests every stage shares (pause, resume, tap, untap); the others are
/// refused naming the actor `who` and its kind. Only keyed stages filter taps by key. The
/// caller processes the parked batches after a resume.
std::string common_admin(stage_controls& c, actor_metrics& m, const admin_request& r,
                         const caf::actor& tap, const std::string& who, node_kind kind);

/// The actor ("lines/0") whose records carry producer id `producer` in a durable job of
/// graph `g`: plan.cpp numbers source instances and partitions from 1 in graph order.
/// dead_letter_producer names re-processed dead letters.
std::string producer_name(const job_graph& g, uint32_t producer);

/// Sends records [from, in.size()) of `in`, rendered by `describe`, to the tap (if any):
/// those whose key (rendered by `logic`, when given) matches the tap's key filter.
void tap_records(stage_controls& c, const std::string& who, const record_buffer& in, size_t from,
                 record_describer describe, const transform_logic* logic);

} // namespace eddy::detail
