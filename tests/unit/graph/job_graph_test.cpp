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

using namespace eddy;

namespace {

struct word_count {
  std::string word;
  int64_t count = 0;
};

auto ints(uint64_t count = 10) {
  return generator_source(count, [](uint64_t i) { return static_cast<int64_t>(i); });
}

template <class T>
sink_def<T> discard() {
  return collector_sink(std::make_shared<collected<T>>());
}

/// Builds `jb`, which must fail, and returns the rendered error.
std::string build_error(job_builder& jb) {
  auto g = jb.build();
  REQUIRE_FALSE(g.engaged());
  const auto& err = g.error();
  CHECK(err.category() == caf::atom("eddy"));
  CHECK(err.code() == static_cast<uint8_t>(errc::invalid_graph));
  auto text = describe(err);
  CHECK(text.rfind("invalid_graph: ", 0) == 0);
  return text;
}

bool contains(const std::string& text, const std::string& part) {
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
const node_spec& node_named(const job_graph& g, const std::string& name) {
  for (auto& n : g.nodes()) {
    if (n.name == name) {
      return n;
    }
  }
  FAIL("no node named " << name);
  throw std::logic_error("unreachable");
}

instance_context context_for(const job_graph& g, const std::string& node, uint32_t index = 0) {
  instance_context ctx;
  ctx.job = g.name();
  ctx.node = node;
  ctx.index = index;
  return ctx;
}

} // namespace

// -- building and validation ---------------------------------------------------------------

TEST_CASE("a linear job with a keyed function builds and counts one actor per instance") {
  job_builder jb{"word-count"};
  jb.partitions(16);
  jb.source("numbers", ints())
    .parallelism(2)
    .map("to-word", [](const int64_t& i) { return "w" + std::to_string(i % 3); })
    .parallelism(3)
    .filter("non-empty", [](const std::string& w) { return !w.empty(); })
    .key_by([](const std::string& w) { return w; })
    .process<word_count>(
      "count",
      [](const std::string& w, keyed_context<std::string>& ctx, collector<word_count>& out) {
        auto& n = ctx.value<int64_t>("n");
        n.set(n.get_or(0) + 1);
        out.emit(word_count{w, n.get()});
      })
    .sink("out", discard<word_count>())
    .parallelism(2);

  auto g = jb.build();
  REQUIRE_MESSAGE(g.engaged(), (g ? std::string{} : describe(g.error())));
  CHECK(g->name() == "word-count");
  CHECK(g->partitions() == 16);
  REQUIRE(g->nodes().size() == 5);
  CHECK_FALSE(g->validate());

  CHECK(g->instances(0) == 2);
  CHECK(g->instances(1) == 3);
  CHECK(g->instances(2) == 1);
  CHECK(g->instances(3) == 16);
  CHECK(g->instances(4) == 2);
  CHECK(g->actor_count() == 2 + 3 + 1 + 16 + 2);

  // Wiring: a chain, each node consuming the previous one.
  CHECK_FALSE(g->node(0).input.has_value());
  for (size_t id = 1; id < 5; ++id) {
    CHECK(g->node(id).input == id - 1);
    CHECK(g->node(id - 1).consumers == std::vector<size_t>{id});
  }
  CHECK(g->node(4).consumers.empty());
  CHECK(g->node(0).kind == node_kind::source);
  CHECK(g->node(1).kind == node_kind::transform);
  CHECK(g->node(3).kind == node_kind::keyed);
  CHECK(g->node(4).kind == node_kind::sink);
  CHECK(*g->node(1).out_type == typeid(std::string));
  CHECK(*g->node(3).in_type == typeid(std::string));
  CHECK(*g->node(3).out_type == typeid(word_count));
  CHECK(static_cast<bool>(g->node(3).make_router));
  CHECK_FALSE(static_cast<bool>(g->node(1).make_router));
  CHECK_THROWS_AS((void) g->node(5), std::out_of_range);
}

TEST_CASE("actor_count uses the job's partition count for every keyed node") {
  job_builder jb{"two-keyed"};
  jb.partitions(4);
  auto key = [](const int64_t& v) {
    return v % 5;
  };
  auto pass = [](const int64_t& v, keyed_context<int64_t>&, collector<int64_t>& out) {
    out.emit(v);
  };
  jb.source("src", ints())
    .key_by(key)
    .process<int64_t>("first", pass)
    .key_by(key)
    .process<int64_t>("second", pass)
    .sink("out", discard<int64_t>());
  auto g = jb.build();
  REQUIRE_MESSAGE(g.engaged(), (g ? std::string{} : describe(g.error())));
  CHECK(g->actor_count() == 1 + 4 + 4 + 1);
}

TEST_CASE("the builder is empty after build") {
  job_builder jb{"j"};
  jb.source("src", ints()).sink("out", discard<int64_t>());
  REQUIRE(jb.build().engaged());
  CHECK_THROWS_AS(jb.node(0), std::out_of_range);
  // Building again finds no source.
  CHECK(contains(build_error(jb), "job 'j' has no source"));
}

TEST_CASE("a job without nodes is rejected for having no source") {
  job_builder jb{"empty"};
  CHECK(contains(build_error(jb), "job 'empty' has no source"));
}

TEST_CASE("a stream that is not consumed by a sink is rejected naming its producer") {
  SUBCASE("a lone source") {
    job_builder jb{"j"};
    jb.source("lonely", ints());
    auto text = build_error(jb);
    CHECK(contains(text, "source 'lonely'"));
    CHECK(contains(text, "no consumer"));
  }
  SUBCASE("an operator at the end") {
    job_builder jb{"j"};
    jb.source("src", ints()).map("dangling", [](const int64_t& v) { return v + 1; });
    auto text = build_error(jb);
    CHECK(contains(text, "operator 'dangling'"));
    CHECK(contains(text, "no consumer"));
  }
  SUBCASE("a key_by without a keyed function") {
    job_builder jb{"j"};
    (void) jb.source("src", ints()).key_by([](const int64_t& v) { return v; });
    CHECK(contains(build_error(jb), "source 'src' has no consumer"));
  }
}

TEST_CASE("two nodes with the same name are rejected naming the name") {
  job_builder jb{"j"};
  jb.source("same", ints())
    .map("same", [](const int64_t& v) { return v; })
    .sink("out", discard<int64_t>());
  auto text = build_error(jb);
  CHECK(contains(text, "'same'"));
  CHECK(contains(text, "unique"));
}

TEST_CASE("a sink may not share the name of a source either") {
  job_builder jb{"j"};
  jb.source("io", ints()).sink("io", discard<int64_t>());
  CHECK(contains(build_error(jb), "two nodes are named 'io'"));
}

TEST_CASE("node names must be 1..64 characters of letters, digits, '_', '-' and '.'") {
  for (std::string bad :
       {std::string{}, std::string{"has space"}, std::string(65, 'x'), std::string{"slash/name"},
        std::string{"tab\tname"}, std::string{"naïve"}, std::string{"quote'"}}) {
    CAPTURE(bad);
    job_builder jb{"j"};
    jb.source("src", ints())
      .map(bad, [](const int64_t& v) { return v; })
      .sink("out", discard<int64_t>());
    auto text = build_error(jb);
    CHECK(contains(text, "node name '" + bad + "'"));
  }
  for (std::string good : {std::string(64, 'y'), std::string{"a"}, std::string{"A.b_c-9"}}) {
    CAPTURE(good);
    job_builder jb{"j"};
    jb.source("src", ints())
      .map(good, [](const int64_t& v) { return v; })
      .sink("out", discard<int64_t>());
    CHECK(jb.build().engaged());
  }
}

TEST_CASE("job names follow the node name rules") {
  for (std::string bad : {std::string{}, std::string{"my job"}, std::string(65, 'j')}) {
    CAPTURE(bad);
    job_builder jb{bad};
    jb.source("src", ints()).sink("out", discard<int64_t>());
    CHECK(contains(build_error(jb), "job name '" + bad + "'"));
  }
}

TEST_CASE("parallelism outside 1..256 is rejected naming the node and the value") {
  SUBCASE("source with parallelism 0") {
    job_builder jb{"j"};
    jb.source("src", ints()).parallelism(0).sink("out", discard<int64_t>());
    auto text = build_error(jb);
    CHECK(contains(text, "source 'src' has parallelism 0"));
  }
  SUBCASE("operator with parallelism 257") {
    job_builder jb{"j"};
    jb.source("src", ints())
      .map("wide", [](const int64_t& v) { return v; })
      .parallelism(257)
      .sink("out", discard<int64_t>());
    auto text = build_error(jb);
    CHECK(contains(text, "operator 'wide' has parallelism 257"));
    CHECK(contains(text, "1..256"));
  }
  SUBCASE("sink with parallelism 0") {
    job_builder jb{"j"};
    jb.source("src", ints()).sink("out", discard<int64_t>()).parallelism(0);
    CHECK(contains(build_error(jb), "sink 'out' has parallelism 0"));
  }
  SUBCASE("a huge parallelism does not wrap around") {
    job_builder jb{"j"};
    jb.source("src", ints()).parallelism(UINT32_MAX).sink("out", discard<int64_t>());
    CHECK(contains(build_error(jb), "source 'src' has parallelism 4294967295"));
  }
}

TEST_CASE("parallelism 256 is the largest allowed") {
  job_builder jb{"j"};
  jb.source("src", ints()).parallelism(256).sink("out", discard<int64_t>()).parallelism(256);
  auto g = jb.build();
  REQUIRE_MESSAGE(g.engaged(), (g ? std::string{} : describe(g.error())));
  CHECK(g->actor_count() == 512);
}

TEST_CASE("a source above its own parallelism limit is rejected") {
  job_builder jb{"j"};
  jb.source("stdin", stdin_source<int64_t>()).parallelism(2).sink("out", discard<int64_t>());
  auto text = build_error(jb);
  CHECK(contains(text, "source 'stdin'"));
  CHECK(contains(text, "supports parallelism 1 at most, got 2"));
}

TEST_CASE("setting parallelism on a keyed function is rejected naming it") {
  job_builder jb{"j"};
  jb.source("src", ints())
    .key_by([](const int64_t& v) { return v; })
    .process<int64_t>("per-key", [](const int64_t& v, keyed_context<int64_t>&,
                                    collector<int64_t>& out) { out.emit(v); })
    .parallelism(4)
    .sink("out", discard<int64_t>());
  auto text = build_error(jb);
  CHECK(contains(text, "keyed 'per-key'"));
  CHECK(contains(text, "partition"));
}

TEST_CASE("the partition count must be in 1..4096") {
  for (uint32_t bad : {0u, 4097u, UINT32_MAX}) {
    CAPTURE(bad);
    job_builder jb{"parts"};
    jb.partitions(bad);
    jb.source("src", ints()).sink("out", discard<int64_t>());
    auto text = build_error(jb);
    CHECK(contains(text, "job 'parts' has " + std::to_string(bad) + " partitions"));
    CHECK(contains(text, "1..4096"));
  }
  for (uint32_t good : {1u, 4096u}) {
    CAPTURE(good);
    job_builder jb{"parts"};
    jb.partitions(good);
    jb.source("src", ints())
      .key_by([](const int64_t& v) { return v; })
      .process<int64_t>("k", [](const int64_t& v, keyed_context<int64_t>&,
                                collector<int64_t>& out) { out.emit(v); })
      .sink("out", discard<int64_t>());
    auto g = jb.build();
    REQUIRE_MESSAGE(g.engaged(), (g ? std::string{} : describe(g.error())));
    CHECK(g->actor_count() == 2 + good);
  }
}

TEST_CASE("consuming one stream twice (fan-out) is rejected naming the producer") {
  job_builder jb{"j"};
  auto numbers = jb.source("numbers", ints());
  numbers.sink("a", discard<int64_t>());
  numbers.sink("b", discard<int64_t>());
  auto text = build_error(jb);
  CHECK(contains(text, "source 'numbers' feeds 2 operators"));
  CHECK(contains(text, "fan-out"));
}

TEST_CASE("a source or sink without logic is rejected") {
  SUBCASE("source") {
    job_builder jb{"j"};
    jb.source("empty", source_def<int64_t>{}).sink("out", discard<int64_t>());
    CHECK(contains(build_error(jb), "source 'empty' has no logic"));
  }
  SUBCASE("sink") {
    job_builder jb{"j"};
    jb.source("src", ints()).sink("void", sink_def<int64_t>{});
    CHECK(contains(build_error(jb), "sink 'void' has no logic"));
  }
}

TEST_CASE("hand-assembled nodes with mismatched types or missing inputs are rejected") {
  SUBCASE("a sink reading strings from an int source") {
    job_builder jb{"j"};
    auto src = jb.source("src", ints());
    (void) src;
    node_spec sink;
    sink.name = "strings";
    sink.kind = node_kind::sink;
    sink.in_type = &typeid(std::string);
    sink.make_sink = discard<std::string>().make;
    jb.add(std::move(sink), 0);
    auto text = build_error(jb);
    CHECK(contains(text, "sink 'strings'"));
    CHECK(contains(text, "another type"));
  }
  SUBCASE("a sink without an input") {
    job_builder jb{"j"};
    jb.source("src", ints()).sink("out", discard<int64_t>());
    node_spec sink;
    sink.name = "orphan";
    sink.kind = node_kind::sink;
    sink.in_type = &typeid(int64_t);
    sink.make_sink = discard<int64_t>().make;
    jb.add(std::move(sink), std::nullopt);
    CHECK(contains(build_error(jb), "sink 'orphan' has no input"));
  }
}

TEST_CASE("describe renders errors that are no Eddy errors and the absence of an error") {
  CHECK(describe(caf::error{}) == "no error");
  auto err = make_error(errc::invalid_config, "--x is bad");
  CHECK(describe(err) == "invalid_config: --x is bad");
  CHECK(to_string(errc::io_failure) == "io_failure");
  CHECK(to_string(static_cast<errc>(200)) == "unknown");
  CHECK(describe(make_error(static_cast<errc>(200), "odd")) == "unknown: odd");
}

// -- operator logic without actors --------------------------------------------------------

TEST_CASE("map logic transforms every record and keeps its event time") {
  job_builder jb{"j"};
  jb.source("src", ints())
    .map("square", [](const int64_t& v) { return std::to_string(v * v); })
    .sink("out", discard<std::string>());
  auto g = jb.build();
  REQUIRE(g.engaged());
  const auto& spec = node_named(*g, "square");
  auto logic = spec.make_transform(context_for(*g, "square"));
  auto in = buffer_of<int64_t>({{2, 100}, {-3, 200}, {0, no_time}});
  auto out = spec.make_output_buffer(4);
  REQUIRE(out->value_type() == typeid(std::string));
  logic->process(*in, *out);
  auto& rs = typed<std::string>(*out).records;
  REQUIRE(rs.size() == 3);
  CHECK(rs[0].value == "4");
  CHECK(rs[0].time == 100);
  CHECK(rs[1].value == "9");
  CHECK(rs[1].time == 200);
  CHECK(rs[2].value == "0");
  CHECK(rs[2].time == no_time);
  CHECK(logic->key_count() == 0);

  SUBCASE("results are appended to records already in the output") {
    auto more = buffer_of<int64_t>({{5, 1}});
    logic->process(*more, *out);
    CHECK(values<std::string>(*out) == std::vector<std::string>{"4", "9", "0", "25"});
  }
  SUBCASE("an empty input produces nothing") {
    record_buffer_of<int64_t> empty;
    out->clear();
    logic->process(empty, *out);
    CHECK(out->empty());
  }
}

TEST_CASE("map logic lets exceptions of user code propagate") {
  job_builder jb{"j"};
  jb.source("src", ints())
    .map("picky",
         [](const int64_t& v) {
           if (v < 0) {
             throw std::invalid_argument("negative");
           }
           return v;
         })
    .sink("out", discard<int64_t>());
  auto g = jb.build();
  REQUIRE(g.engaged());
  const auto& spec = node_named(*g, "picky");
  auto logic = spec.make_transform(context_for(*g, "picky"));
  auto in = buffer_of<int64_t>({{1, 0}, {-1, 0}});
  auto out = spec.make_output_buffer(2);
  CHECK_THROWS_WITH_AS(logic->process(*in, *out), "negative", std::invalid_argument);
}

TEST_CASE("filter logic keeps exactly the records the predicate accepts, in order") {
  job_builder jb{"j"};
  jb.source("src", ints())
    .filter("even", [](const int64_t& v) { return v % 2 == 0; })
    .sink("out", discard<int64_t>());
  auto g = jb.build();
  REQUIRE(g.engaged());
  const auto& spec = node_named(*g, "even");
  auto logic = spec.make_transform(context_for(*g, "even"));
  auto in = buffer_of<int64_t>({{1, 10}, {2, 20}, {4, 40}, {7, 70}, {-6, 60}});
  auto out = spec.make_output_buffer(8);
  logic->process(*in, *out);
  auto& rs = typed<int64_t>(*out).records;
  REQUIRE(rs.size() == 3);
  CHECK(rs[0].value == 2);
  CHECK(rs[0].time == 20);
  CHECK(rs[1].value == 4);
  CHECK(rs[2].value == -6);
  CHECK(rs[2].time == 60);
}

TEST_CASE("flat_map logic emits any number of records stamped with the input's time") {
  job_builder jb{"j"};
  jb.source("src", ints())
    .map("text", [](const int64_t& v) { return std::string(static_cast<size_t>(v), 'a'); })
    .flat_map<char>("chars",
                    [](const std::string& s, collector<char>& out) {
                      for (char c : s) {
                        out.emit(c);
                      }
                      if (s.size() == 2) {
                        out.emit('!', 999);
                      }
                    })
    .sink("out", discard<char>());
  auto g = jb.build();
  REQUIRE(g.engaged());
  const auto& spec = node_named(*g, "chars");
  auto logic = spec.make_transform(context_for(*g, "chars"));
  auto in = buffer_of<std::string>({{"", 1}, {"xy", 2}, {"z", 3}});
  auto out = spec.make_output_buffer(8);
  logic->process(*in, *out);
  auto& rs = typed<char>(*out).records;
  REQUIRE(rs.size() == 4);
  CHECK(rs[0].value == 'x');
  CHECK(rs[0].time == 2);
  CHECK(rs[1].value == 'y');
  CHECK(rs[2].value == '!');
  CHECK(rs[2].time == 999);
  CHECK(rs[3].value == 'z');
  CHECK(rs[3].time == 3);
}

namespace {

struct keyed_fixture {
  job_graph graph;

  [[nodiscard]] const node_spec& spec() const {
    return node_named(graph, "running-sum");
  }
};

/// source -> keyed "running-sum" (sums per key, forgets a key on value 0) -> sink.
keyed_fixture running_sum_job(uint32_t partitions) {
  job_builder jb{"sums"};
  jb.partitions(partitions);
  jb.source("src", ints())
    .key_by([](const int64_t& v) { return std::to_string(v / 100); })
    .process<int64_t>(
      "running-sum",
      [](const int64_t& v, keyed_context<std::string>& ctx, collector<int64_t>& out) {
        auto& sum = ctx.value<int64_t>("sum");
        if (v % 100 == 0) {
          ctx.clear();
          return;
        }
        sum.set(sum.get_or(0) + v % 100);
        out.emit(sum.get());
      })
    .sink("out", discard<int64_t>());
  auto g = jb.build();
  REQUIRE_MESSAGE(g.engaged(), (g ? std::string{} : describe(g.error())));
  return keyed_fixture{std::move(*g)};
}

} // namespace

TEST_CASE("keyed logic keeps state per key and drops a key its function clears") {
  auto job = running_sum_job(8);
  auto logic = job.spec().make_transform(context_for(job.graph, "running-sum", 3));
  // Keys "1" (101..) and "2" (201..).
  auto in = buffer_of<int64_t>({{101, 1}, {201, 2}, {102, 3}, {203, 4}, {105, 5}});
  auto out = job.spec().make_output_buffer(8);
  logic->process(*in, *out);
  CHECK(values<int64_t>(*out) == std::vector<int64_t>{1, 1, 3, 4, 8});
  CHECK(typed<int64_t>(*out).records[4].time == 5);
  CHECK(logic->key_count() == 2);

  // 100 clears key "1"; key "2" keeps its sum.
  out->clear();
  auto clear = buffer_of<int64_t>({{100, 6}});
  logic->process(*clear, *out);
  CHECK(out->empty());
  CHECK(logic->key_count() == 1);

  // Key "1" starts again from zero, key "2" continues.
  auto again = buffer_of<int64_t>({{107, 7}, {201, 8}});
  logic->process(*again, *out);
  CHECK(values<int64_t>(*out) == std::vector<int64_t>{7, 5});
  CHECK(logic->key_count() == 2);

  // Clearing a key that was never seen leaves nothing behind.
  out->clear();
  auto unseen = buffer_of<int64_t>({{900, 9}});
  logic->process(*unseen, *out);
  CHECK(logic->key_count() == 2);
}

TEST_CASE("keyed logic instances of different partitions do not share state") {
  auto job = running_sum_job(2);
  auto p0 = job.spec().make_transform(context_for(job.graph, "running-sum", 0));
  auto p1 = job.spec().make_transform(context_for(job.graph, "running-sum", 1));
  auto out = job.spec().make_output_buffer(4);
  auto in0 = buffer_of<int64_t>({{105, 0}});
  p0->process(*in0, *out);
  auto in1 = buffer_of<int64_t>({{105, 0}});
  p1->process(*in1, *out);
  CHECK(values<int64_t>(*out) == std::vector<int64_t>{5, 5});
  CHECK(p0->key_count() == 1);
  CHECK(p1->key_count() == 1);
}

TEST_CASE("keyed logic lets a state type conflict in user code propagate as logic_error") {
  job_builder jb{"j"};
  jb.source("src", ints())
    .key_by([](const int64_t& v) { return v; })
    .process<int64_t>("confused",
                      [](const int64_t& v, keyed_context<int64_t>& ctx, collector<int64_t>& out) {
                        if (v == 0) {
                          ctx.value<int64_t>("s").set(1);
                        } else {
                          ctx.value<std::string>("s").set("x");
                        }
                        out.emit(v);
                      })
    .sink("out", discard<int64_t>());
  auto g = jb.build();
  REQUIRE(g.engaged());
  const auto& spec = node_named(*g, "confused");
  auto logic = spec.make_transform(context_for(*g, "confused"));
  auto out = spec.make_output_buffer(4);
  auto first = buffer_of<int64_t>({{0, 0}});
  logic->process(*first, *out);
  auto second = buffer_of<int64_t>({{1, 0}});
  CHECK_THROWS_AS(logic->process(*second, *out), std::logic_error);
}

namespace {

void check_routing(uint32_t partitions, size_t count) {
  CAPTURE(partitions);
  auto job = running_sum_job(partitions);
  REQUIRE(static_cast<bool>(job.spec().make_router));
  auto router = job.spec().make_router();
  std::vector<output_channel> channels;
  for (uint32_t p = 0; p < partitions; ++p) {
    channels.emplace_back(p, 8, std::make_unique<record_buffer_of<int64_t>>(), 1 << 20);
  }
  record_buffer_of<int64_t> out;
  for (size_t i = 0; i < count; ++i) {
    out.records.push_back(
      record<int64_t>{static_cast<int64_t>(i * 37 % 10'000), static_cast<time_ms>(i)});
  }
  router->route(out, channels);

  size_t total = 0;
  for (uint32_t p = 0; p < partitions; ++p) {
    auto& rs = typed<int64_t>(channels[p].builder()).records;
    total += rs.size();
    time_ms last_time = -1;
    for (auto& r : rs) {
      // The keyed node's key function: the value's hundreds as a string.
      auto key = std::to_string(r.value / 100);
      CHECK(partition_of(key_hash(key), partitions) == p);
      // Records of a partition keep their relative order.
      CHECK(r.time > last_time);
      last_time = r.time;
    }
  }
  CHECK(total == count);
}

} // namespace

TEST_CASE("the hash router sends every record to channel partition_of(key_hash(key), P)") {
  check_routing(7, 2000);
  check_routing(128, 5000);
  check_routing(1, 100);
}

TEST_CASE("the hash router sends all records of one key to one channel") {
  auto job = running_sum_job(16);
  auto router = job.spec().make_router();
  std::vector<output_channel> channels;
  for (uint32_t p = 0; p < 16; ++p) {
    channels.emplace_back(p, 8, std::make_unique<record_buffer_of<int64_t>>(), 1024);
  }
  record_buffer_of<int64_t> out;
  for (int64_t v = 500; v < 600; ++v) {
    out.records.push_back(record<int64_t>{v, no_time});
  }
  router->route(out, channels);
  size_t non_empty = 0;
  for (auto& ch : channels) {
    if (ch.builder_events() > 0) {
      ++non_empty;
      CHECK(ch.builder_events() == 100);
    }
  }
  CHECK(non_empty == 1);
  auto expected = partition_of(stable_hash(std::string{"5"}), 16);
  CHECK(channels[expected].builder_events() == 100);
}

// -- console hooks: parse_output and partition_of_key ---------------------------------------

TEST_CASE("parse_output turns JSON into a record of the node's output type, without time or "
          "origin") {
  job_builder jb{"j"};
  jb.source("src", ints())
    .map("text", [](const int64_t& v) { return std::to_string(v); })
    .map("pair",
         [](const std::string& s) {
           return word_count{s, 1};
         })
    .sink("out", discard<word_count>());
  auto g = jb.build();
  REQUIRE(g.engaged());
  const auto& src = node_named(*g, "src");
  REQUIRE((src.parse_output != nullptr));
  auto buf = src.make_output_buffer(4);
  src.parse_output("42", *buf);
  src.parse_output(" -7 ", *buf);
  REQUIRE(buf->size() == 2);
  CHECK(values<int64_t>(*buf) == std::vector<int64_t>{42, -7});
  CHECK(typed<int64_t>(*buf).records[0].time == no_time);
  CHECK(typed<int64_t>(*buf).records[0].origin == 0);

  const auto& text = node_named(*g, "text");
  REQUIRE((text.parse_output != nullptr));
  auto strings = text.make_output_buffer(1);
  text.parse_output(R"("h\u00e9")", *strings);
  CHECK(values<std::string>(*strings) == std::vector<std::string>{"h\u00e9"});

  // Text that holds no record: the reason, and nothing appended.
  try {
    src.parse_output(R"("42")", *buf);
    FAIL("a string parsed as an integer");
  } catch (const std::invalid_argument& e) {
    CHECK(contains(e.what(), "number"));
  }
  try {
    src.parse_output("{", *buf);
    FAIL("broken JSON parsed");
  } catch (const std::invalid_argument& e) {
    CHECK(contains(e.what(), "parse error"));
  }
  CHECK(buf->size() == 2);
  // A type without a JSON codec cannot be sent from the console.
  CHECK((node_named(*g, "pair").parse_output == nullptr));
  CHECK((node_named(*g, "out").parse_output == nullptr));
}

TEST_CASE("partition_of_key names the partition the hash router sends a key's records to") {
  for (uint32_t partitions : {1U, 7U, 128U}) {
    CAPTURE(partitions);
    auto job = running_sum_job(partitions);
    REQUIRE((job.spec().partition_of_key != nullptr));
    auto router = job.spec().make_router();
    std::vector<output_channel> channels;
    for (uint32_t p = 0; p < partitions; ++p) {
      channels.emplace_back(p, 8, std::make_unique<record_buffer_of<int64_t>>(), 1 << 20);
    }
    // The key of value v is the text of v / 100.
    record_buffer_of<int64_t> out;
    for (int64_t key = 0; key < 300; ++key) {
      out.records.push_back(record<int64_t>{key * 100 + 1, no_time});
    }
    router->route(out, channels);
    size_t checked = 0;
    for (uint32_t p = 0; p < partitions; ++p) {
      for (auto& r : typed<int64_t>(channels[p].builder()).records) {
        CHECK(job.spec().partition_of_key(std::to_string(r.value / 100), partitions) == p);
        ++checked;
      }
    }
    CHECK(checked == 300);
  }
  // Nodes without keys have none.
  CHECK((running_sum_job(4).graph.node(0).partition_of_key == nullptr));
}

TEST_CASE("partition_of_key of integer keys agrees with the router and rejects other text") {
  job_builder jb{"j"};
  jb.partitions(16);
  jb.source("src", ints())
    .key_by([](const int64_t& v) { return v - 1000; })
    .process<int64_t>(
      "k", [](const int64_t& v, keyed_context<int64_t>&, collector<int64_t>& out) { out.emit(v); })
    .sink("out", discard<int64_t>());
  auto g = jb.build();
  REQUIRE(g.engaged());
  const auto& spec = node_named(*g, "k");
  REQUIRE((spec.partition_of_key != nullptr));
  auto router = spec.make_router();
  std::vector<output_channel> channels;
  for (uint32_t p = 0; p < 16; ++p) {
    channels.emplace_back(p, 8, std::make_unique<record_buffer_of<int64_t>>(), 1 << 20);
  }
  record_buffer_of<int64_t> out;
  for (int64_t v = 0; v < 2000; v += 7) {
    out.records.push_back(record<int64_t>{v, no_time});
  }
  router->route(out, channels);
  for (uint32_t p = 0; p < 16; ++p) {
    for (auto& r : typed<int64_t>(channels[p].builder()).records) {
      CHECK(spec.partition_of_key(std::to_string(r.value - 1000), 16) == p);
    }
  }
  try {
    (void) spec.partition_of_key("12a", 16);
    FAIL("'12a' was taken for an integer key");
  } catch (const std::invalid_argument& e) {
    CHECK(contains(e.what(), "'12a'"));
  }
  CHECK_THROWS_AS((void) spec.partition_of_key("", 16), std::invalid_argument);
}
