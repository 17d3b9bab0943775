#pragma once

// Private to the runtime: how a journaled stage (a key partition, a transactional sink)
// keeps a standby copy of its journal on another member's host (see host.hpp and
// "Cluster" in docs/design.md). A partition's standby is named by the assignment table;
// a sink runs on the leader, and its standby is the member that would coordinate next,
// so that the leader that takes the job over finds the sink's committed output there.

#include <chrono>
#include <filesystem>

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>

#include "eddy/core/error.hpp"
#include "limits.hpp"
#include "stage/stage.hpp"

namespace eddy::detail {

/// Bytes of a journal copy per message.
using limits::copy_chunk_bytes;

/// Sends `xs` for the stage's journal to its standby's host and, when commits wait for
/// the standby, waits for its answer: an error when none came (the stage stops, and the
/// job restarts with a standby that can keep the copy).
template <class Atom, class... Ts>
caf::error to_standby(caf::actor_system& sys, const stage_init& init, Atom atom, const Ts&... xs) {
  const auto& ctx = init.ctx;
  auto node = static_cast<uint32_t>(init.node);
  if (!init.sync_standby) {
    caf::anon_send(init.standby, atom, ctx.job, node, ctx.index, init.owner_epoch, xs...);
    return {};
  }
  caf::error failed;
  caf::scoped_actor waiter{sys};
  waiter
    ->request(init.standby, std::chrono::milliseconds(init.standby_timeout_ms), atom, ctx.job, node,
              ctx.index, init.owner_epoch, xs...)
    .receive([](uint64_t) {}, [&failed](caf::error& err) { failed = std::move(err); });
  if (failed) {
    return make_error(errc::io_failure,
                      init.who() + ": its standby copy cannot be kept (" + to_string(failed) + ")");
  }
  return {};
}

/// Sends `file`, a consistent copy of `journal`'s file, to the standby in chunks, unless
/// the standby's copy is current (the same last sequence number, input positions and no
/// newer epoch: after a move or a restart).
caf::error ship_journal(caf::actor_system& sys, const stage_init& init, journal_store& journal,
                        const std::filesystem::path& file);

/// Records the incarnation's assignment epoch in its journal: an error (errc::fenced) when
/// the journal belongs to a newer one already (this incarnation is stale: it may neither
/// commit nor emit).
caf::error claim_journal(const stage_init& init, journal_store& journal);

} // namespace eddy::detail
