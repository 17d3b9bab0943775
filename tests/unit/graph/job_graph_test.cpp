// Building and validating job graphs: actor counts, names, parallelism and partition
// limits, and the errors that name what is wrong.
#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "job_graph_support.hpp"

using namespace eddy;
using namespace eddy::test;

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
