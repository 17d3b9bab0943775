#pragma once

// Private to the inspector: its command families, one file each. Every command takes its
// words after the command name and answers the console's JSON text: at once, or, for the
// commands that ask actors, when their replies arrive. A mistyped word or a bad argument
// is answered {"ok": false, "error": ...} naming it.
//   job_commands.cpp      help, jobs, graph, actors, stats, deadletters, partitions
//   cluster_commands.cpp  nodes, placement, move, rebalance, moves
//   key_commands.cpp      state, timers, history, set, replay (the partition owning a key)
//   control_commands.cpp  kill, send, pause, resume, snapshot, replay-deadletters,
//                         savepoint, savepoints
//   tail.cpp              tail sessions and the records their taps send

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>

#include <caf/result.hpp>

#include "inspect/inspect_context.hpp"

namespace eddy::detail::inspect {

// job_commands.cpp

/// The counters of an operator at the last `stats`, for its rates per second.
struct sample {
  std::chrono::steady_clock::time_point at;
  uint64_t in = 0;
  uint64_t out = 0;
};

/// The last samples by "job/operator".
using samples = std::map<std::string, sample>;

json help(const words& args);
json jobs(inspect_context& ctx);
json graph(inspect_context& ctx, const words& args);
json actors(inspect_context& ctx, const words& args);
json stats(inspect_context& ctx, samples& last);
json deadletters(inspect_context& ctx, const words& args);
/// Counters from the job's handle, journal facts from the partitions (while they run).
caf::result<std::string> partitions(inspect_context& ctx, const words& args);

// cluster_commands.cpp

json nodes(inspect_context& ctx);
json placement(inspect_context& ctx);
/// `move`, `rebalance` and `moves`, answered by the job actor of the job's leader.
caf::result<std::string> relocate(inspect_context& ctx, const std::string& cmd, const words& args);

// key_commands.cpp

/// Whether `cmd` is one of the commands about one key.
bool is_key_command(const std::string& cmd);
/// state, timers, history, set, replay: asked of the partition that owns the key.
caf::result<std::string> key_command(inspect_context& ctx, const std::string& cmd, words args);

// control_commands.cpp

json kill(inspect_context& ctx, const words& args);
caf::result<std::string> send(inspect_context& ctx, const words& args);
caf::result<std::string> pause_resume(inspect_context& ctx, const std::string& cmd,
                                      const words& args);
/// snapshot [JOB] and replay-deadletters [OPERATOR]: asked of every partition.
caf::result<std::string> partitions_command(inspect_context& ctx, const std::string& cmd,
                                            const words& args);

/// savepoint [--stop] [JOB] and savepoints [JOB]: answered by the job actor.
caf::result<std::string> savepoint_command(inspect_context& ctx, const std::string& cmd,
                                           const words& args);

// tail.cpp

/// The `tail` sessions of one inspector: the records their taps sent since the console's
/// last poll, at most `limits::tap_buffer_max` (older ones are dropped and counted). A
/// session not polled for `limits::tap_idle_timeout` ends: the console went away. Owned by
/// the inspector actor; not thread-safe.
class tail_sessions {
public:
  explicit tail_sessions(inspect_context& ctx)
    : ctx_(ctx) {}

  /// tail OP [KEY] starts a session; tail --poll ID and tail --stop ID are what the console
  /// sends while it shows one.
  caf::result<std::string> run(words args);
  /// A tapped stage saw records (`lines`: a JSON array text of {"key", "record"}).
  void tapped(const std::string& id, const std::string& actor, const std::string& lines);
  /// Ends the sessions not polled for too long.
  void expire();

private:
  struct session {
    std::shared_ptr<job_handle> job;
    std::string target;
    std::deque<json> lines;
    uint64_t dropped = 0;
    std::chrono::steady_clock::time_point polled;
  };

  caf::result<std::string> poll(const std::string& id);
  caf::result<std::string> start(const words& args);
  void stop(const std::string& id);

  inspect_context& ctx_;
  std::map<std::string, session> sessions_;
  uint64_t counter_ = 0;
};

} // namespace eddy::detail::inspect
