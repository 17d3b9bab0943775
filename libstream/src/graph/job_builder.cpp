#include "eddy/graph/job_builder.hpp"

namespace eddy {

size_t job_builder::add(node_spec spec, std::optional<size_t> input) {
  auto id = nodes_.size();
  spec.input = input;
  if (input) {
    nodes_.at(*input).consumers.push_back(id);
  }
  nodes_.push_back(std::move(spec));
  return id;
}

caf::expected<job_graph> job_builder::build() {
  job_graph result{name_, partitions_, std::move(nodes_)};
  nodes_.clear();
  if (auto err = result.validate()) {
    return err;
  }
  return result;
}

} // namespace eddy
