// What the job graph suites share: small sources and sinks, the rendered error of a build
// that must fail, record buffers built from values and read back, and a built graph's nodes.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <caf/atom.hpp>

#include "eddy/core/error.hpp"
#include "eddy/graph/job_builder.hpp"
#include "eddy/io/sinks.hpp"
#include "eddy/io/sources.hpp"

namespace eddy::test {

struct word_count {
  std::string word;
  int64_t count = 0;
};

inline auto ints(uint64_t count = 10) {
  return generator_source(count, [](uint64_t i) { return static_cast<int64_t>(i); });
}

template <class T>
sink_def<T> discard() {
  return collector_sink(std::make_shared<collected<T>>());
}

/// Builds `jb`, which must fail, and returns the rendered error.
inline std::string build_error(job_builder& jb) {
  auto g = jb.build();
  REQUIRE_FALSE(g.engaged());
  const auto& err = g.error();
  CHECK(err.category() == caf::atom("eddy"));
  CHECK(err.code() == static_cast<uint8_t>(errc::invalid_graph));
  auto text = describe(err);
  CHECK(text.rfind("invalid_graph: ", 0) == 0);
  return text;
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

template <class T>
std::unique_ptr<record_buffer_of<T>> buffer_of(std::vector<record<T>> records) {
  auto buf = std::make_unique<record_buffer_of<T>>();
  buf->records = std::move(records);
  return buf;
}

template <class T>
std::vector<T> values(record_buffer& buf) {
  std::vector<T> result;
  for (auto& r : typed<T>(buf).records) {
    result.push_back(r.value);
  }
  return result;
}

/// The node named `name` of a built graph.
inline const node_spec& node_named(const job_graph& g, const std::string& name) {
  for (auto& n : g.nodes()) {
    if (n.name == name) {
      return n;
    }
  }
  FAIL("no node named " << name);
  throw std::logic_error("unreachable");
}

inline instance_context context_for(const job_graph& g, const std::string& node,
                                    uint32_t index = 0) {
  instance_context ctx;
  ctx.job = g.name();
  ctx.node = node;
  ctx.index = index;
  return ctx;
}

} // namespace eddy::test
