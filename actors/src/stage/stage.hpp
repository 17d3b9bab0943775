#pragma once

// Private to the runtime: what every stage actor is made of. The output side (`emitter`)
// owns the channels to downstream stages with their credit; the input side (`inputs`)
// tracks sequence numbers, end of stream and the credit owed to each upstream sender.

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "eddy/actors/engine.hpp"
#include "eddy/actors/messages.hpp"
#include "eddy/core/assert.hpp"
#include "eddy/core/error.hpp"
#include "eddy/flow/replay_filter.hpp"
#include "eddy/graph/job_graph.hpp"
#include "eddy/io/dead_letter_store.hpp"
#include "eddy/state/journal_store.hpp"
#include "stage/admin.hpp"
#include "stage/cut.hpp"

namespace eddy::detail {

/// One outgoing channel as wired by the runtime.
struct output_target {
  stage_actor dest;
  channel_id channel;
};

/// What a stage tells its supervisor about the record its user code threw on. Written by
/// the stage before it exits, read by the supervisor after the down message.
struct failure_report {
  bool set = false;
  origin_t origin = 0;
  std::string key;
  std::string record;
  std::string payload;
  std::string error;
};

/// Everything a stage actor needs to start; built by the job actor, read-only afterwards.
struct stage_init {
  std::shared_ptr<const job_graph> graph;
  size_t node = 0;
  instance_context ctx;
  runtime_options opts;
  std::vector<output_target> outputs;
  /// Number of incoming channels; the stage finishes after the last batch of each.
  uint32_t input_count = 0;
  std::shared_ptr<actor_metrics> metrics;
  /// The instance's logic, created by the runtime before spawning so that errors (a file
  /// that cannot be opened) surface when the job starts. Exactly one is set.
  std::unique_ptr<source_logic> source;
  std::unique_ptr<transform_logic> transform;
  std::unique_ptr<sink_logic> sink;

  // Durable state and exactly-once replay (see "State and its journal" in the design
  // notes), set by the engine when the job is durable.

  /// The journal of a partition or a transactional sink, opened before spawning.
  std::unique_ptr<journal_store> journal;
  /// Until then a partition commits after each group of batches whatever its commit
  /// interval: set for the supervision window after a failure restarted the job, so that
  /// the replay saves its progress at once and a transient failure cannot hit the same
  /// record on every replay of one long epoch (and turn it into a poison record).
  std::chrono::steady_clock::time_point eager_commits_until{};
  /// The positions committed in it.
  std::map<uint64_t, uint64_t> positions;
  /// Sources skip, and partitions re-send from their outbox, what follows this position:
  /// the least position committed by the durable consumers they reach.
  uint64_t resume_after = 0;
  /// Partitions: keep outputs in the outbox until these input channels of durable
  /// consumers acknowledged them (empty: no durable consumer, no outbox).
  std::vector<channel_id> ack_channels;
  /// Their acknowledged positions at start.
  std::map<channel_id, uint64_t> acked;
  /// Transactional sinks: the stages by producer id, to send acknowledgements to; filled
  /// by the job actor once every stage is spawned.
  std::shared_ptr<std::vector<stage_actor>> producers;

  // Supervision (see job/engine.cpp and job/failure_policy.cpp).

  /// Filled when user code throws on a record.
  std::shared_ptr<failure_report> failure = std::make_shared<failure_report>();
  /// Input records (by origin) the supervisor sent to the dead-letter journal as poison:
  /// dropped before user code sees them.
  std::shared_ptr<const std::set<origin_t>> skip;
  /// Non-empty: this actor failed for good, for this reason. It runs no user code: its
  /// input goes to the dead-letter journal, its outputs end, the rest of the job goes on.
  std::string failed_cause;
  /// The dead-letter journal (set when the job is durable).
  std::shared_ptr<dead_letter_store> dead_letters;

  /// Savepoints: where the stage reports its part of a cut (see cut.hpp).
  std::shared_ptr<cut_registry> cuts;

  // Cluster (see cluster/host.cpp).

  /// The member that hosts this partition when it is not this node (the job actor's
  /// placeholder of a remote partition); empty here.
  std::string host;
  /// The host of the partition's standby copy (none: no standby), and whether a commit
  /// waits until the standby applied it before the output goes out.
  caf::actor standby;
  bool sync_standby = true;
  /// How long it waits for the standby's answer: a standby whose node died stops the
  /// partition after this long at the latest (then the job fails over).
  uint32_t standby_timeout_ms = 3000;
  /// In a cluster: the epoch of the assignment table this incarnation was placed by. The
  /// partition records it in its journal when it starts, and sends it with every copy and
  /// commit to its standby, which refuses those of an older epoch (fencing).
  uint64_t owner_epoch = 0;

  /// "node/index", e.g. "count/17".
  [[nodiscard]] std::string who() const {
    return ctx.node + "/" + std::to_string(ctx.index);
  }
  [[nodiscard]] bool failed() const noexcept {
    return !failed_cause.empty();
  }
};

/// Renders the records a stage receives: its input node's describer.
inline record_describer input_describer(const stage_init& init) {
  const auto& spec = init.graph->node(init.node);
  return spec.input ? init.graph->node(*spec.input).describe_output : nullptr;
}

/// A logic that does nothing, for a failed actor whose own logic cannot be created.
std::unique_ptr<transform_logic> make_inert_logic();

/// A batch that came from another node, decoded with the stage's input codec.
batch from_remote(const stage_init& init, remote_batch& rb);

/// Drops the records the supervisor dead-lettered as poison; returns how many.
size_t drop_poison(const stage_init& init, record_buffer& in);

/// Runs `logic.process(in, out)`; when user code throws, fills the failure report with the
/// record it threw on and rethrows.
void process_reporting(stage_init& init, transform_logic& logic, record_buffer& in,
                       record_buffer& out);

/// A failed actor's input: every record of `in` goes to the dead-letter journal with the
/// actor's failure as the error. `logic` (may be null) renders keys.
caf::error dead_letter_input(const stage_init& init, const record_buffer& in,
                             const transform_logic* logic);

/// The output side of a stage. Logic writes into `buffer()`; `commit` routes what was
/// written into per-channel batches. Owned by one actor; not thread-safe.
class emitter {
public:
  emitter(const stage_init& init);

  /// Where the logic appends its output for a step that produces about `incoming`
  /// records: a batch that would overflow is sealed first.
  record_buffer& buffer(size_t incoming = 0) {
    if (router_) {
      return *scratch_;
    }
    if (channels_[current_].make_room(incoming)) {
      current_ = (current_ + 1) % channels_.size();
    }
    return channels_[current_].builder();
  }
  /// Routes the buffer's records and seals full batches.
  void commit();
  /// Seals partly filled batches (linger timer), and an empty batch on channels whose
  /// watermark advanced without records.
  void seal_partial();
  /// Event time: the watermark the next batches carry.
  void set_watermark(time_ms watermark) {
    for (auto& ch : channels_) {
      ch.set_watermark(watermark);
    }
  }
  /// Savepoints: seals what every channel holds, then a marker of cut `cut` on it.
  void mark(uint64_t cut);
  /// Seals every channel's last batch, telling the receivers what was forwarded.
  void close(std::shared_ptr<const frontier> ends = nullptr);
  void grant(channel_id channel, uint32_t batches, std::shared_ptr<record_buffer> recycled);

  /// Sends what credit allows, then updates the metrics.
  template <class Self>
  void send_ready(Self* self) {
    batch b;
    for (size_t i = 0; i < channels_.size(); ++i) {
      while (channels_[i].pop_sendable(b)) {
        metrics_->events_out.fetch_add(b.size(), std::memory_order_relaxed);
        metrics_->batches_out.fetch_add(1, std::memory_order_relaxed);
        if (targets_[i].dest.node() == self->node()) {
          self->send(targets_[i].dest, std::move(b));
        } else {
          self->send(targets_[i].dest, to_remote(b));
        }
      }
    }
    update_metrics();
  }

  /// True while sealed batches wait for credit: the stage must not take more input.
  [[nodiscard]] bool blocked() const noexcept;
  [[nodiscard]] bool has_partial() const noexcept;
  /// True once every channel's last batch is out (trivially true without outputs).
  [[nodiscard]] bool finished() const noexcept;

private:
  void update_metrics();
  /// `b` encoded for a receiver on another node.
  remote_batch to_remote(batch& b);

  const node_spec* spec_;
  std::vector<output_target> targets_;
  std::vector<output_channel> channels_;
  std::unordered_map<channel_id, size_t> index_of_;
  std::unique_ptr<router> router_;
  std::unique_ptr<record_buffer> scratch_;
  size_t current_ = 0;
  uint32_t batch_events_max_;
  /// The credit every channel starts with (--runtime.credit-batches-max).
  uint32_t credit_batches_max_;
  std::shared_ptr<actor_metrics> metrics_;
};

/// The input side of a stage: one `input_channel` per incoming channel plus the sender to
/// return credit to. Owned by one actor; not thread-safe.
class inputs {
public:
  struct state {
    input_channel gate;
    caf::strong_actor_ptr sender;
    uint32_t owed = 0;
    /// Emptied buffers of batches consumed while blocked; at most `owed` of them.
    std::vector<std::shared_ptr<record_buffer>> held;
  };

  explicit inputs(uint32_t expected)
    : expected_(expected)
    , watermarks_(expected) {}

  /// Event time: takes the watermark `b` carries (the end of its channel when it is the
  /// last batch); returns the stage's watermark (see watermark_tracker).
  time_ms observe_watermark(const batch& b) {
    if (b.last) {
      return watermarks_.update(b.channel, end_watermark);
    }
    return b.watermark == no_time ? watermarks_.current()
                                  : watermarks_.update(b.channel, b.watermark);
  }
  [[nodiscard]] const watermark_tracker& watermarks() const noexcept {
    return watermarks_;
  }

  state& of(channel_id channel, const caf::strong_actor_ptr& sender) {
    auto& s = channels_[channel];
    if (!s.sender) {
      s.sender = sender;
    }
    return s;
  }
  /// Admits `b` from the current sender: counts it and returns its channel state, or
  /// returns null for a replayed duplicate, whose credit goes straight back.
  template <class Self>
  state* admit(Self* self, const batch& b, actor_metrics& m) {
    auto& ch = of(b.channel, self->current_sender());
    m.batches_in.fetch_add(1, std::memory_order_relaxed);
    if (ch.gate.admit(b.seq, b.last) == input_channel::verdict::duplicate) {
      m.duplicates_dropped.fetch_add(1, std::memory_order_relaxed);
      consumed(self, b.channel, ch, false, nullptr);
      return nullptr;
    }
    m.events_in.fetch_add(b.size(), std::memory_order_relaxed);
    return &ch;
  }
  /// Counts a channel's last batch and merges what it says was forwarded.
  void mark_finished(const batch& last) {
    ++finished_;
    if (last.ends) {
      merge_frontier(ends_, *last.ends);
    }
  }
  /// What every finished input forwarded, merged.
  [[nodiscard]] const frontier& ends() const noexcept {
    return ends_;
  }
  [[nodiscard]] bool all_finished() const noexcept {
    return finished_ == expected_;
  }
  [[nodiscard]] uint32_t finished_count() const noexcept {
    return finished_;
  }
  [[nodiscard]] uint32_t expected() const noexcept {
    return expected_;
  }

  /// Returns one credit for a consumed batch, with its emptied buffer for reuse, or owes
  /// the credit (keeping the buffer) while the stage is blocked.
  template <class Self>
  void consumed(Self* self, channel_id channel, state& s, bool blocked,
                std::shared_ptr<record_buffer> buffer) {
    if (buffer) {
      buffer->clear();
    }
    if (blocked) {
      ++s.owed;
      if (buffer) {
        s.held.push_back(std::move(buffer));
      }
      return;
    }
    self->send(caf::actor_cast<stage_actor>(s.sender), credit_atom::value, channel, uint32_t{1},
               recycled_buffer{std::move(buffer)});
  }

  /// Pays the credit owed while the stage was blocked, handing the held buffers back.
  template <class Self>
  void pay_owed(Self* self) {
    for (auto& [channel, s] : channels_) {
      auto dest = caf::actor_cast<stage_actor>(s.sender);
      // Every held buffer is one owed credit: paying more would grant credit never taken.
      EDDY_ASSERT(s.held.size() <= s.owed);
      for (auto& buffer : s.held) {
        self->send(dest, credit_atom::value, channel, uint32_t{1},
                   recycled_buffer{std::move(buffer)});
        --s.owed;
      }
      s.held.clear();
      if (s.owed > 0) {
        self->send(dest, credit_atom::value, channel, s.owed, recycled_buffer{});
        s.owed = 0;
      }
    }
  }

private:
  std::unordered_map<channel_id, state> channels_;
  uint32_t expected_;
  watermark_tracker watermarks_;
  uint32_t finished_ = 0;
  frontier ends_;
};

/// State of a source actor: its reader and the output side. Lifecycle: spawned idle, reads
/// after `start` as far as credit allows, and after the input ends (or `stop`) sends the
/// last batch on every channel and quits once they are all out.
struct source_state {
  static constexpr const char* name = "source";
  std::shared_ptr<stage_init> init;
  std::unique_ptr<source_logic> logic;
  std::unique_ptr<emitter> out;
  bool started = false;
  bool pull_pending = false;
  bool exhausted = false;
  bool tick_pending = false;
  stage_controls ctl;
  /// --runtime.source-rate: records read since `rate_since`.
  uint64_t rate_read = 0;
  std::chrono::steady_clock::time_point rate_since;
  /// Event time: the highest timestamp read, and when the last record came (idleness).
  time_ms max_ts = no_time;
  std::chrono::steady_clock::time_point last_read = std::chrono::steady_clock::now();
};

/// State of a sink actor. Lifecycle: writes every batch it receives and returns credit at
/// once; after the last batch of every input channel it flushes and quits.
struct sink_state {
  static constexpr const char* name = "sink";
  std::shared_ptr<stage_init> init;
  std::unique_ptr<sink_logic> logic;
  std::unique_ptr<inputs> in;
  /// Transactional sinks: drops what was written before a crash.
  replay_filter filter;
  uint64_t committed_length = 0;
  /// In a cluster: the journal was claimed and its standby copy made (standby.hpp).
  bool standby_started = false;
  stage_controls ctl;
  cut_alignment align;
};

/// Schedules one linger tick if partly filled batches wait and none is scheduled yet.
template <class Self, class State>
void schedule_linger(Self* self, State& st) {
  if (!st.tick_pending && st.out->has_partial()) {
    st.tick_pending = true;
    self->delayed_send(self, std::chrono::milliseconds(st.init->opts.linger_ms), tick_atom::value);
  }
}

/// Turns an exception escaping user or I/O code into the actor's exit reason, naming the
/// actor, so that the job fails with a message instead of terminating the process.
template <class Self>
void install_exception_handler(Self* self, const stage_init& init) {
  auto who = init.who();
  self->set_exception_handler([who](caf::scheduled_actor*, std::exception_ptr& ptr) {
    try {
      std::rethrow_exception(ptr);
    } catch (const state_error& e) {
      return make_error(e.code(), "'" + who + "' failed: " + e.what());
    } catch (const std::exception& e) {
      return make_error(errc::user_code_failed, "'" + who + "' failed: " + e.what());
    } catch (...) {
      return make_error(errc::user_code_failed, "'" + who + "' failed: unknown exception");
    }
  });
}

/// Answers a console request with the controls every stage shares; `own` answers the
/// stage kind's own requests first (nullopt: not one of them).
template <class State, class Own>
admin_reply stage_admin(stage_actor::stateful_pointer<State> self, const admin_request& r,
                        const caf::actor& tap, Own own) {
  auto& st = self->state;
  if (auto reply = own(r)) {
    return std::move(*reply);
  }
  return common_admin(st.ctl, *st.init->metrics, r, tap, st.init->who(),
                      st.init->graph->node(st.init->node).kind);
}

struct operator_state;
struct partition_state;

/// The answer of a stage that is not a key partition to a `standby` request.
inline caf::error no_standby(const stage_init& init) {
  return make_error(errc::invalid_config,
                    init.who() + " is not a key partition: it has no standby copy");
}

/// Spawn functions of the stage kinds, one per file.
stage_actor::behavior_type source_stage(stage_actor::stateful_pointer<source_state> self,
                                        std::shared_ptr<stage_init> init);
stage_actor::behavior_type operator_stage(stage_actor::stateful_pointer<operator_state> self,
                                          std::shared_ptr<stage_init> init);
stage_actor::behavior_type partition_stage(stage_actor::stateful_pointer<partition_state> self,
                                           std::shared_ptr<stage_init> init);
stage_actor::behavior_type sink_stage(stage_actor::stateful_pointer<sink_state> self,
                                      std::shared_ptr<stage_init> init);

} // namespace eddy::detail
