// Operator logic without actors (map, filter, flat_map, keyed state), the hash router,
// and the console hooks parse_output and partition_of_key.
#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "job_graph_support.hpp"

using namespace eddy;
using namespace eddy::test;

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
