#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eddy/flow/output_channel.hpp"
#include "eddy/flow/record.hpp"

namespace eddy {

class dead_letter_log;
class journal_store;
struct commit_batch;

/// What an instance of a node learns about itself when the runtime creates its logic.
struct instance_context {
  std::string job;
  std::string node;
  /// Instance index (partition id for keyed nodes) and the node's instance count.
  uint32_t index = 0;
  uint32_t instances = 1;
  std::filesystem::path data_dir;
  /// Where malformed input goes; never null while the job runs.
  dead_letter_log* dead_letters = nullptr;
  /// The job keeps durable state (--state.durability process or machine).
  bool durable = false;
  /// The producer id stamped into the origin of the records this instance makes (sources).
  uint32_t producer = 0;
};

/// Reads records from the outside world. One instance per source actor; not thread-safe.
class source_logic {
public:
  virtual ~source_logic() = default;
  /// Appends up to `max` records to `out`. Returns false once the input is exhausted (the
  /// records appended by that call still count).
  virtual bool poll(record_buffer& out, size_t max) = 0;
  /// True if `poll` may block indefinitely (stdin): the runtime gives it its own thread.
  [[nodiscard]] virtual bool blocking() const noexcept {
    return false;
  }
  /// A human-readable replay position ("line 120, byte 4096"), for inspection.
  [[nodiscard]] virtual std::string position() const {
    return {};
  }
  /// Skips the records at or below `position` (they were processed before a restart).
  /// Returns false if the source cannot replay (stdin), whose records carry origin 0.
  virtual bool seek(uint64_t position) {
    (void) position;
    return false;
  }
  /// The position up to which every record has been read (0 if the source cannot replay).
  [[nodiscard]] virtual uint64_t read_position() const noexcept {
    return 0;
  }
  /// True if a new instance can `seek` to any position this one reached and read the same
  /// records again (files, generators; not stdin). Supervision restarts need it.
  /// The file it reads and the bytes of it read so far (a savepoint checks at restore that
  /// those bytes did not change); empty when it reads no file.
  [[nodiscard]] virtual std::string input() const {
    return {};
  }
  [[nodiscard]] virtual uint64_t input_offset() const noexcept {
    return 0;
  }
  [[nodiscard]] virtual bool replayable() const noexcept {
    return false;
  }
};

/// A one-input operator: map, filter, flat_map, or a keyed function on one partition.
/// One instance per operator or partition actor; not thread-safe.
class transform_logic {
public:
  virtual ~transform_logic() = default;
  /// Consumes every record of `in`, appending results to `out` (same type as the node's
  /// output). Exceptions from user code propagate to the actor.
  virtual void process(record_buffer& in, record_buffer& out) = 0;
  /// Called once after the last input record.
  virtual void finish(record_buffer& out) {
    (void) out;
  }
  /// Number of keys held in memory (keyed logic only), for inspection.
  [[nodiscard]] virtual size_t key_count() const noexcept {
    return 0;
  }
  /// The index in its input buffer of the record `process` works on (or last worked on):
  /// after an exception, the record that caused it.
  [[nodiscard]] size_t cursor() const noexcept {
    return cursor_;
  }
  /// The key of record `i` of `in` as people read it (keyed logic; empty otherwise).
  [[nodiscard]] virtual std::string key_text(const record_buffer& in, size_t i) const {
    (void) in;
    (void) i;
    return {};
  }

  // Durable state; only keyed logic holds state and implements these.

  /// Version of the state encoding, recorded in the journal.
  [[nodiscard]] virtual uint32_t state_version() const noexcept {
    return 1;
  }
  /// The key type ("std::string") and the states used so far with their cell types
  /// ("value_state<long>"), for a savepoint's manifest; empty for stateless logic.
  [[nodiscard]] virtual std::string key_type() const {
    return {};
  }
  [[nodiscard]] virtual std::vector<std::pair<std::string, std::string>> state_types() const {
    return {};
  }
  /// Makes the state durable in `journal`, caching about `cache_bytes` of it in memory.
  virtual void attach(journal_store& journal, size_t cache_bytes) {
    (void) journal;
    (void) cache_bytes;
  }
  /// Appends the state and timer changes since the last call to `batch`.
  virtual void collect(commit_batch& batch) {
    (void) batch;
  }
  /// The journal was compacted (its log folded into its state rows).
  virtual void compacted() {}
  /// True when the state changed since the last compaction outgrows the cache.
  [[nodiscard]] virtual bool wants_compaction() const noexcept {
    return false;
  }
  /// Runs the timer function for up to `limit` timers due at `now` (processing time),
  /// appending to `out`. Returns how many fired.
  virtual size_t fire_timers(time_ms now, record_buffer& out, size_t limit) {
    (void) now;
    (void) out;
    (void) limit;
    return 0;
  }
  /// The earliest pending timer.
  [[nodiscard]] virtual std::optional<time_ms> next_timer() {
    return std::nullopt;
  }
  /// Event time: the partition's watermark reached `watermark`. Runs the timer function for
  /// up to `limit` event-time timers at or before it, earliest first, appending to `out`.
  /// Returns how many fired.
  virtual size_t fire_event_timers(time_ms watermark, record_buffer& out, size_t limit) {
    (void) watermark;
    (void) out;
    (void) limit;
    return 0;
  }
  /// The earliest event-time timer, committed or not.
  [[nodiscard]] virtual std::optional<time_ms> next_event_timer() {
    return std::nullopt;
  }
  /// Event time: the partition's watermark reached `watermark` and no timer is due at it
  /// (the next records see it as `ctx.watermark()`).
  virtual void set_watermark(time_ms watermark) {
    (void) watermark;
  }

  // Inspection and audited edits from `eddy console` (keyed logic only; the defaults throw
  // std::logic_error saying that the operator keeps no keyed state). Keys are spelled as
  // `encode_key` spells them; values are JSON texts (so that this header needs no JSON
  // library). A key that does not spell a key of the operator, an unknown state name or a
  // value that does not fit the state's type throw std::invalid_argument naming what is
  // wrong.

  /// The current state of `key`: a JSON object text {"state name": value, ...}, "{}" when
  /// the key has none. Changes nothing: no cell is created, the cache is left as it is.
  [[nodiscard]] virtual std::string inspect_state(std::string_view key);
  /// The timers of a key: a JSON array text of {"kind": "processing"|"event", "at", "tag"},
  /// by kind and time.
  [[nodiscard]] virtual std::string inspect_timers(std::string_view key);
  /// The newest `limit` journaled changes of `key`, newest first: a JSON array text of
  /// objects {"seq", "at_ms", "state" ("" for a clear of every state of the key), "value"
  /// (null when cleared), "origin"}. Needs durable state (std::logic_error otherwise).
  [[nodiscard]] virtual std::string inspect_history(std::string_view key, size_t limit);
  /// The state of `key` as of journal sequence number `seq` (for each state, its newest
  /// journaled change at or below `seq`), rebuilt in fresh cells without touching the live
  /// state: a JSON object text like `inspect_state`. Needs durable state. Throws
  /// std::out_of_range naming the oldest sequence number it can rebuild when the journal no
  /// longer holds what `seq` needs (compaction keeps `keep_per_key` changes per key).
  [[nodiscard]] virtual std::string replay_state(std::string_view key, uint64_t seq,
                                                 size_t keep_per_key);
  /// Sets state `name` of `key` to the JSON value `value` (null clears it) as the keyed
  /// function would: the next `collect` carries the change. Returns the old value as JSON
  /// text ("null" when there was none).
  virtual std::string admin_set(std::string_view key, std::string_view name,
                                std::string_view value);

protected:
  /// Set by `process` to the index of each record before user code sees it.
  size_t cursor_ = 0;
};

/// Writes records to the outside world. One instance per sink actor; not thread-safe.
class sink_logic {
public:
  virtual ~sink_logic() = default;
  virtual void write(record_buffer& in) = 0;
  /// Makes everything written so far visible (called at the end and periodically).
  virtual void flush() {}

  // Transactional sinks: the runtime commits `length()` with the input positions after
  // each batch and calls `resume` with the committed length before a replay.

  [[nodiscard]] virtual bool transactional() const noexcept {
    return false;
  }
  virtual void resume(uint64_t length) {
    (void) length;
  }
  [[nodiscard]] virtual uint64_t length() const noexcept {
    return 0;
  }
  /// Makes everything written so far survive a power loss (durability machine).
  virtual void sync() {
    flush();
  }
  /// The file it writes (a savepoint records its length), or empty.
  [[nodiscard]] virtual std::string target() const {
    return {};
  }
};

/// Splits a sender's output among the channels of a hash edge by the receiver's key.
class router {
public:
  virtual ~router() = default;
  /// Moves every record of `out` into the builder of its partition's channel; the
  /// channel at position p of `channels` leads to partition p.
  virtual void route(record_buffer& out, std::vector<output_channel>& channels) = 0;
};

using source_factory = std::function<std::unique_ptr<source_logic>(const instance_context&)>;
using transform_factory = std::function<std::unique_ptr<transform_logic>(const instance_context&)>;
using sink_factory = std::function<std::unique_ptr<sink_logic>(const instance_context&)>;
using router_factory = std::function<std::unique_ptr<router>()>;
using buffer_factory = std::function<std::unique_ptr<record_buffer>(size_t capacity)>;
/// Encodes a buffer's records into bytes and back (a partition's outbox).
using records_encoder = void (*)(const record_buffer& in, std::string& out);
using records_decoder = void (*)(std::string_view in, record_buffer& out);
/// Renders record `i` of a buffer for people (JSON when the type has a JSON codec) and
/// encodes it alone into `payload` (as `records_encoder` would; empty when the type has no
/// codec): what a dead letter keeps of a record.
using record_describer = void (*)(const record_buffer& in, size_t i, std::string& text,
                                  std::string& payload);

/// Parses one JSON text into a record of a node's output type and appends it to `out`
/// (`send` from the console); throws std::invalid_argument with the reason when the text
/// does not hold one.
using record_parser = void (*)(std::string_view json, record_buffer& out);
/// The partition of `partitions` that owns the key spelled `key` (as `encode_key` spells
/// it); throws std::invalid_argument when `key` does not spell a key of the node.
using key_partitioner = uint32_t (*)(std::string_view key, uint32_t partitions);

/// A typed source definition as returned by `jsonl_source<T>(...)` and friends.
template <class T>
struct source_def {
  source_factory make;
  /// Upper bound for the source's parallelism (1 for stdin).
  uint32_t parallelism_max = UINT32_MAX;
};

/// A typed sink definition as returned by `jsonl_sink<T>(...)` and friends.
template <class T>
struct sink_def {
  sink_factory make;
  uint32_t parallelism_max = UINT32_MAX;
};

} // namespace eddy
