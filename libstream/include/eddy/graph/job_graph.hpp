#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include <caf/error.hpp>

#include "eddy/graph/logic.hpp"
#include "eddy/time/watermark.hpp"

namespace eddy {

enum class node_kind : uint8_t { source, transform, keyed, sink };

/// "source", "operator", "keyed", "sink".
const char* to_string(node_kind kind) noexcept;

/// What the supervisor does when an actor of a node fails (see "Supervision" in the design
/// notes): restart the job's actors from their journals (the default), stop the failed
/// actor (its input goes to the dead-letter journal, the rest of the job keeps running), or
/// escalate (stop the whole job with the error).
enum class failure_policy : uint8_t { restart, stop, escalate };

/// "restart", "stop", "escalate".
const char* to_string(failure_policy policy) noexcept;
/// Parses the names `to_string` returns.
std::optional<failure_policy> parse_failure_policy(std::string_view name) noexcept;

/// One node of the job graph: a source, an operator, a keyed function or a sink, with the
/// factories that create the logic of each of its instances.
struct node_spec {
  std::string name;
  node_kind kind = node_kind::transform;
  /// Instances; for keyed nodes the job's partition count replaces it.
  uint32_t parallelism = 1;
  uint32_t parallelism_max = UINT32_MAX;
  bool parallelism_set = false;
  /// The node this one reads from (none for sources).
  std::optional<size_t> input;
  /// More nodes it reads from, of the same type as `input` (a union; see
  /// `stream::union_with`).
  std::vector<size_t> more_inputs;
  /// The nodes reading this one's output (filled by the builder).
  std::vector<size_t> consumers;
  const std::type_info* in_type = nullptr;
  const std::type_info* out_type = nullptr;

  source_factory make_source;
  transform_factory make_transform;
  sink_factory make_sink;
  /// Creates empty buffers of the output type (all but sinks).
  buffer_factory make_output_buffer;
  /// For keyed nodes: splits an upstream's output by this node's key.
  router_factory make_router;
  /// Splits this node's output over several receivers of a non-keyed edge by origin (durable
  /// jobs; see `origin_router`).
  router_factory make_origin_router;
  /// The output codec (a partition's outbox, dead letters; throws for types without one).
  records_encoder encode_output = nullptr;
  records_decoder decode_output = nullptr;
  /// Renders one output record for a dead letter.
  record_describer describe_output = nullptr;
  /// Parses JSON into an output record (null when the type has no JSON codec).
  record_parser parse_output = nullptr;
  /// Keyed nodes: the partition of a key spelled as text (null for the others).
  key_partitioner partition_of_key = nullptr;
  failure_policy on_failure = failure_policy::restart;
  /// Keyed nodes: the commit interval of their partitions, overriding
  /// `--state.commit-interval-ms` (see `keyed_stream::commit_interval_ms`).
  std::optional<uint32_t> commit_interval_ms;
  /// Sources with event time: sets the timestamps of the records of a buffer from index
  /// `from` on and returns the highest (no_time: none), and the watermark strategy.
  std::function<time_ms(record_buffer&, size_t from)> stamp_times;
  std::optional<watermark_strategy> watermarks;
};

/// Default number of key partitions of a job (Flink's default max parallelism is 128 too).
inline constexpr uint32_t default_partitions = 128;
/// Largest allowed partition count and per-node parallelism.
inline constexpr uint32_t partitions_max = 4096;
inline constexpr uint32_t parallelism_max = 256;
/// Longest commit interval of a keyed operator's partitions (10 minutes).
inline constexpr uint32_t commit_interval_ms_max = 600000;

/// A validated dataflow graph: what the runtime turns into actors. Immutable once built;
/// safe to share between threads.
class job_graph {
public:
  job_graph(std::string name, uint32_t partitions, std::vector<node_spec> nodes);

  [[nodiscard]] const std::string& name() const noexcept {
    return name_;
  }
  [[nodiscard]] uint32_t partitions() const noexcept {
    return partitions_;
  }
  [[nodiscard]] const std::vector<node_spec>& nodes() const noexcept {
    return nodes_;
  }
  [[nodiscard]] const node_spec& node(size_t id) const {
    return nodes_.at(id);
  }
  /// Instances the runtime creates for node `id` (the partition count for keyed nodes).
  [[nodiscard]] uint32_t instances(size_t id) const;
  /// Actors the runtime creates for the whole job: the sum of `instances` over all nodes.
  [[nodiscard]] size_t actor_count() const;

  /// Checks names, parallelism, partition count, wiring and types; the error names the
  /// offending node.
  [[nodiscard]] caf::error validate() const;

private:
  std::string name_;
  uint32_t partitions_;
  std::vector<node_spec> nodes_;
};

} // namespace eddy
