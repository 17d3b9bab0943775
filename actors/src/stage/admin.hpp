#pragma once

// Private to the runtime: the console's requests as a stage receives them (`admin,
// admin_request, tap`, typed in eddy/actors/messages.hpp), and the controls every stage
// shares (pause, resume, tail). The inspector (inspect/) builds the requests, the job actor
// routes them to stages (job/job_admin.cpp), and each stage kind answers the ones it knows
// with an `admin_reply` (partition_admin.cpp: state, history, set, replay, timers,
// snapshot, replay-deadletters, info; source_actor.cpp: send).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/actor.hpp>

#include "eddy/actors/engine.hpp"
#include "eddy/actors/messages.hpp"
#include "eddy/flow/batch.hpp"
#include "eddy/graph/job_graph.hpp"
#include "eddy/graph/logic.hpp"

namespace eddy::detail {

/// The producer id of re-processed dead letters: their origin is (it, dead letter id).
inline constexpr uint32_t dead_letter_producer = 0xffff;

/// The answer of a stage: `data_json` is its body (JSON text).
admin_reply admin_ok(std::string data_json);
admin_reply admin_fail(std::string message);
/// An error about actor `who`: "'count/3' <what>".
admin_reply admin_fail_of(const std::string& who, std::string_view what);

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
  /// Records not sent to the tap (over `limits::tap_records_per_batch_max`, so that
  /// tailing a busy operator does not flood the console).
  uint64_t tap_skipped = 0;
};

/// Answers the requests every stage shares (pause, resume, tap, untap); the others are
/// refused naming the actor `who` and its kind. Only keyed stages filter taps by key. The
/// caller processes the parked batches after a resume.
admin_reply common_admin(stage_controls& c, actor_metrics& m, const admin_request& r,
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
