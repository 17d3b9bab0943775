#include "eddy/graph/job_graph.hpp"

#include <algorithm>
#include <set>

#include "eddy/core/error.hpp"

namespace eddy {

namespace {

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

caf::error graph_error(std::string message) {
  return make_error(errc::invalid_graph, std::move(message));
}

caf::error validate_node(const job_graph& g, const node_spec& n) {
  auto who = std::string{to_string(n.kind)} + " '" + n.name + "'";
  if (n.commit_interval_ms && n.kind != node_kind::keyed) {
    return graph_error(who + " has a commit interval; only keyed operators commit state");
  }
  if (n.commit_interval_ms && *n.commit_interval_ms > commit_interval_ms_max) {
    return graph_error(who + ": commit interval " + std::to_string(*n.commit_interval_ms) +
                       " ms is over " + std::to_string(commit_interval_ms_max) + " ms");
  }
  if (n.kind == node_kind::keyed && n.parallelism_set) {
    return graph_error(who + " runs on the job's " + std::to_string(g.partitions()) +
                       " key partitions; set the partition count instead of parallelism");
  }
  if (n.parallelism < 1 || n.parallelism > parallelism_max) {
    return graph_error(who + " has parallelism " + std::to_string(n.parallelism) +
                       "; allowed: 1.." + std::to_string(parallelism_max));
  }
  if (n.parallelism > n.parallelism_max) {
    return graph_error(who + " supports parallelism " + std::to_string(n.parallelism_max) +
                       " at most, got " + std::to_string(n.parallelism));
  }
  if (n.kind != node_kind::sink && n.consumers.empty()) {
    return graph_error(who + " has no consumer: every stream must end in a sink");
  }
  if (n.consumers.size() > 1) {
    return graph_error(who + " feeds " + std::to_string(n.consumers.size()) +
                       " operators; fan-out of one stream is not supported yet");
  }
  if (n.kind == node_kind::source ? n.input.has_value() : !n.input.has_value()) {
    return graph_error(who + (n.input ? " must not have an input" : " has no input"));
  }
  if (n.input && (*n.input >= g.nodes().size() || g.node(*n.input).out_type == nullptr ||
                  n.in_type == nullptr || *g.node(*n.input).out_type != *n.in_type)) {
    return graph_error(who + " reads a stream of another type than its input produces");
  }
  bool has_logic =
    (n.kind == node_kind::source && n.make_source) || (n.kind == node_kind::sink && n.make_sink) ||
    ((n.kind == node_kind::transform || n.kind == node_kind::keyed) && n.make_transform);
  for (auto m : n.more_inputs) {
    if (!n.input || m >= g.nodes().size() || g.node(m).out_type == nullptr ||
        *g.node(m).out_type != *n.in_type) {
      return graph_error(who + " unites streams of different types");
    }
  }
  if (n.watermarks && n.kind != node_kind::source) {
    return graph_error(who + " sets event time: timestamps and watermarks belong to sources");
  }
  if (n.watermarks && n.watermarks->bound < 0) {
    return graph_error(who + " has a negative out-of-orderness bound");
  }
  if (!has_logic || (n.kind == node_kind::keyed && !n.make_router)) {
    return graph_error(who + " has no logic");
  }
  return {};
}

} // namespace

const char* to_string(node_kind kind) noexcept {
  switch (kind) {
    case node_kind::source:
      return "source";
    case node_kind::transform:
      return "operator";
    case node_kind::keyed:
      return "keyed";
    case node_kind::sink:
      return "sink";
  }
  return "?";
}

const char* to_string(failure_policy policy) noexcept {
  switch (policy) {
    case failure_policy::restart:
      return "restart";
    case failure_policy::stop:
      return "stop";
    case failure_policy::escalate:
      return "escalate";
  }
  return "?";
}

std::optional<failure_policy> parse_failure_policy(std::string_view name) noexcept {
  for (auto p : {failure_policy::restart, failure_policy::stop, failure_policy::escalate}) {
    if (name == to_string(p)) {
      return p;
    }
  }
  return std::nullopt;
}

job_graph::job_graph(std::string name, uint32_t partitions, std::vector<node_spec> nodes)
  : name_(std::move(name))
  , partitions_(partitions)
  , nodes_(std::move(nodes)) {}

uint32_t job_graph::instances(size_t id) const {
  const auto& n = nodes_.at(id);
  return n.kind == node_kind::keyed ? partitions_ : n.parallelism;
}

size_t job_graph::actor_count() const {
  size_t total = 0;
  for (size_t id = 0; id < nodes_.size(); ++id) {
    total += instances(id);
  }
  return total;
}

caf::error job_graph::validate() const {
  if (!valid_name(name_)) {
    return graph_error("job name '" + name_ + "' must be 1..64 characters of [A-Za-z0-9_.-]");
  }
  if (partitions_ < 1 || partitions_ > partitions_max) {
    return graph_error("job '" + name_ + "' has " + std::to_string(partitions_) +
                       " partitions; allowed: 1.." + std::to_string(partitions_max));
  }
  std::set<std::string> names;
  bool has_source = false;
  bool has_sink = false;
  for (const auto& n : nodes_) {
    if (!valid_name(n.name)) {
      return graph_error("node name '" + n.name + "' must be 1..64 characters of [A-Za-z0-9_.-]");
    }
    if (!names.insert(n.name).second) {
      return graph_error("two nodes are named '" + n.name + "'; names must be unique");
    }
    has_source |= n.kind == node_kind::source;
    has_sink |= n.kind == node_kind::sink;
    if (auto err = validate_node(*this, n)) {
      return err;
    }
  }
  if (!has_source) {
    return graph_error("job '" + name_ + "' has no source");
  }
  if (!has_sink) {
    return graph_error("job '" + name_ + "' has no sink");
  }
  return {};
}

} // namespace eddy
