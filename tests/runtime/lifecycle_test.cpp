// How jobs end: graceful stop of an unbounded source, failure of user code, and start-up
// errors (invalid graph, input that cannot be opened).

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// Waits until `out` holds at least `n` values; false if that takes more than 30 s.
template <class T>
bool wait_for_values(const eddy::collected<T>& out, size_t n) {
  for (int i = 0; i < 30'000; ++i) {
    if (out.values().size() >= n) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

uint64_t sum_of(const std::vector<eddy::actor_info>& actors, const std::string& node,
                std::atomic<uint64_t> eddy::actor_metrics::*field) {
  uint64_t total = 0;
  for (const auto& a : actors) {
    if (a.node == node) {
      total += (*a.metrics.*field).load();
    }
  }
  return total;
}

/// Starts `jb` and returns the error it fails with (fails the test if it succeeds).
caf::error run_failing(eddy::engine& eng, eddy::job_builder& jb,
                       std::shared_ptr<eddy::job_handle>* handle = nullptr) {
  auto graph = jb.build();
  REQUIRE(graph);
  auto job = eng.start(std::move(*graph));
  REQUIRE(job);
  if (handle != nullptr) {
    *handle = *job;
  }
  auto err = eddy::test::finish(**job);
  REQUIRE_MESSAGE(err, "the job was expected to fail");
  return err;
}

} // namespace

TEST_CASE("stop ends an unbounded source and the job drains and completes normally") {
  eddy::test::temp_dir dir;
  eddy::engine eng{eddy::test::test_options(dir), eddy::test::test_common(dir)};
  auto out = std::make_shared<eddy::collected<uint64_t>>();
  eddy::job_builder jb{"unbounded"};
  jb.source("gen", eddy::generator_source(0, [](uint64_t i) { return i; }))
    .map("inc", [](const uint64_t& i) { return i + 1; })
    .sink("out", eddy::collector_sink(out));
  auto graph = jb.build();
  REQUIRE(graph);
  auto job = eng.start(std::move(*graph));
  REQUIRE(job);
  bool arrived = wait_for_values(*out, 10'000);
  (*job)->stop();
  (*job)->stop(); // a second stop is harmless
  auto err = eddy::test::finish(**job);
  CHECK(arrived);
  CHECK_MESSAGE(!err, eddy::describe(err));
  auto values = out->values();
  CHECK(values.size() >= 10'000);
  for (const auto& a : (*job)->actors()) {
    INFO("actor ", a.name);
    CHECK(a.metrics->status == eddy::actor_status::finished);
  }
  // Nothing the source produced is lost in the drain, and the single chain keeps order.
  auto actors = (*job)->actors();
  CHECK(sum_of(actors, "gen", &eddy::actor_metrics::events_out) == values.size());
  CHECK(sum_of(actors, "out", &eddy::actor_metrics::events_in) == values.size());
  std::vector<uint64_t> expected(values.size());
  std::iota(expected.begin(), expected.end(), uint64_t{1});
  CHECK((values == expected));
  (*job)->stop(); // stopping a finished job is harmless too
}

TEST_CASE("stop drains a parallel keyed job with small batches without losing records") {
  eddy::test::temp_dir dir;
  auto opts = eddy::test::test_options(dir);
  opts.batch_events_max = 7;
  opts.credit_batches_max = 2;
  eddy::engine eng{opts, eddy::test::test_common(dir)};
  auto out = std::make_shared<eddy::collected<std::pair<uint64_t, int64_t>>>();
  eddy::job_builder jb{"unbounded-keyed"};
  jb.partitions(8);
  jb.source("gen", eddy::generator_source(0, [](uint64_t i) { return i; }))
    .parallelism(2)
    .map("id", [](const uint64_t& i) { return i; })
    .parallelism(3)
    .key_by([](const uint64_t& i) { return i % 10; })
    .process<std::pair<uint64_t, int64_t>>("count",
                                           [](const uint64_t& i, auto& ctx, auto& col) {
                                             auto& n = ctx.template value<int64_t>("n");
                                             n.set(n.get_or(0) + 1);
                                             col.emit({i % 10, n.get()});
                                           })
    .sink("out", eddy::collector_sink(out))
    .parallelism(2);
  auto graph = jb.build();
  REQUIRE(graph);
  auto job = eng.start(std::move(*graph));
  REQUIRE(job);
  bool arrived = wait_for_values(*out, 2'000);
  (*job)->stop();
  auto err = eddy::test::finish(**job);
  CHECK(arrived);
  CHECK_MESSAGE(!err, eddy::describe(err));
  auto actors = (*job)->actors();
  for (const auto& a : actors) {
    INFO("actor ", a.name);
    CHECK(a.metrics->status == eddy::actor_status::finished);
  }
  auto values = out->values();
  CHECK(sum_of(actors, "gen", &eddy::actor_metrics::events_out) == values.size());
  CHECK(sum_of(actors, "out", &eddy::actor_metrics::events_in) == values.size());
  // Per key the counts are 1..n without gaps.
  std::map<uint64_t, int64_t> last;
  bool in_order = true;
  for (const auto& [key, count] : values) {
    in_order &= count == ++last[key];
  }
  CHECK(in_order);
}

TEST_CASE("stop right after start ends the job normally") {
  eddy::test::temp_dir dir;
  eddy::engine eng{eddy::test::test_options(dir), eddy::test::test_common(dir)};
  auto out = std::make_shared<eddy::collected<uint64_t>>();
  eddy::job_builder jb{"stop-at-once"};
  jb.partitions(16);
  jb.source("gen", eddy::generator_source(0, [](uint64_t i) { return i; }))
    .key_by([](const uint64_t& i) { return i % 100; })
    .process<uint64_t>("pass", [](const uint64_t& i, auto&, auto& col) { col.emit(i); })
    .sink("out", eddy::collector_sink(out));
  auto graph = jb.build();
  REQUIRE(graph);
  auto job = eng.start(std::move(*graph));
  REQUIRE(job);
  (*job)->stop();
  auto err = eddy::test::finish(**job);
  CHECK_MESSAGE(!err, eddy::describe(err));
  auto actors = (*job)->actors();
  for (const auto& a : actors) {
    INFO("actor ", a.name);
    CHECK(a.metrics->status == eddy::actor_status::finished);
  }
  CHECK(sum_of(actors, "gen", &eddy::actor_metrics::events_out) == out->values().size());
}

namespace {

/// Emits `n` records on its first poll, then nothing (but stays open) until stopped.
class trickle_source final : public eddy::source_logic {
public:
  explicit trickle_source(uint64_t n)
    : n_(n) {}
  bool poll(eddy::record_buffer& out, size_t max) override {
    auto& dst = eddy::typed<uint64_t>(out).records;
    while (next_ < n_ && max-- > 0) {
      dst.push_back(eddy::record<uint64_t>{next_++, eddy::no_time});
    }
    if (next_ == n_) {
      // Idle: don't spin at full speed while waiting for the stop.
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return true;
  }

private:
  uint64_t n_;
  uint64_t next_ = 0;
};

} // namespace

TEST_CASE("partly filled batches of an idle source reach the sink through every stage") {
  eddy::test::temp_dir dir;
  eddy::engine eng{eddy::test::test_options(dir), eddy::test::test_common(dir)};
  auto out = std::make_shared<eddy::collected<uint64_t>>();
  eddy::job_builder jb{"trickle"};
  jb.partitions(4);
  // 5 records, far below the batch size of 1024: only the linger timers of the source, the
  // operator and the partitions can send them on while the source stays open.
  jb.source("few", eddy::source_def<uint64_t>{[](const eddy::instance_context&) {
              return std::make_unique<trickle_source>(5);
            }})
    .map("inc", [](const uint64_t& i) { return i + 1; })
    .key_by([](const uint64_t& i) { return i; })
    .process<uint64_t>("pass", [](const uint64_t& i, auto&, auto& col) { col.emit(i); })
    .sink("out", eddy::collector_sink(out));
  auto graph = jb.build();
  REQUIRE(graph);
  auto job = eng.start(std::move(*graph));
  REQUIRE(job);
  bool arrived = wait_for_values(*out, 5);
  (*job)->stop();
  auto err = eddy::test::finish(**job);
  CHECK_MESSAGE(!err, eddy::describe(err));
  CHECK(arrived);
  auto values = out->values();
  std::sort(values.begin(), values.end());
  CHECK((values == std::vector<uint64_t>{1, 2, 3, 4, 5}));
}

TEST_CASE("an empty input file gives an empty, normally completed job") {
  eddy::test::temp_dir dir;
  auto input = dir / "empty.jsonl";
  eddy::test::write_lines(input, {});
  eddy::engine eng{eddy::test::test_options(dir), eddy::test::test_common(dir)};
  auto out = std::make_shared<eddy::collected<std::string>>();
  eddy::job_builder jb{"empty"};
  jb.partitions(8);
  jb.source("lines", eddy::jsonl_source<std::string>(input))
    .parallelism(2)
    .key_by([](const std::string& s) { return s; })
    .process<std::string>("pass", [](const std::string& s, auto&, auto& col) { col.emit(s); })
    .sink("out", eddy::collector_sink(out))
    .parallelism(3);
  auto job = eddy::test::run_ok(eng, jb);
  CHECK(out->values().empty());
  for (const auto& a : job->actors()) {
    INFO("actor ", a.name);
    CHECK(a.metrics->status == eddy::actor_status::finished);
    CHECK(a.metrics->events_in == 0);
  }
}

TEST_CASE("an exception in a map function with failure policy escalate fails the job with an "
          "error naming the operator") {
  eddy::test::temp_dir dir;
  eddy::engine eng{eddy::test::test_options(dir), eddy::test::test_common(dir)};
  auto out = std::make_shared<eddy::collected<uint64_t>>();
  eddy::job_builder jb{"throws"};
  // Unbounded: only the failure can end this job.
  jb.source("gen", eddy::generator_source(0, [](uint64_t i) { return i; }))
    .map("explode",
         [](const uint64_t& i) {
           if (i == 1'234) {
             throw std::runtime_error("cannot handle record 1234");
           }
           return i;
         })
    .parallelism(2)
    .on_failure(eddy::failure_policy::escalate)
    .sink("out", eddy::collector_sink(out));
  std::shared_ptr<eddy::job_handle> job;
  auto err = run_failing(eng, jb, &job);
  auto text = eddy::describe(err);
  INFO("error: ", text);
  CHECK(contains(text, "user_code_failed"));
  CHECK(contains(text, "'explode/"));
  CHECK(contains(text, "cannot handle record 1234"));
  // Every actor exited; none reports itself as running, and the thrower is failed.
  for (const auto& a : job->actors()) {
    INFO("actor ", a.name, " status ", std::string{eddy::to_string(a.metrics->status.load())});
    CHECK(a.metrics->status != eddy::actor_status::running);
    if (contains(text, "'" + a.name + "'")) {
      CHECK(a.metrics->status == eddy::actor_status::failed);
    }
  }
}

TEST_CASE("an exception in a keyed function with --supervision.policy escalate fails the job "
          "with an error naming the partition") {
  eddy::test::temp_dir dir;
  auto opts = eddy::test::test_options(dir);
  opts.supervision.policies = "keyed-boom=escalate";
  eddy::engine eng{opts, eddy::test::test_common(dir)};
  auto out = std::make_shared<eddy::collected<uint64_t>>();
  eddy::job_builder jb{"throws-keyed"};
  jb.partitions(4);
  jb.source("gen", eddy::generator_source(50'000, [](uint64_t i) { return i; }))
    .key_by([](const uint64_t& i) { return i % 13; })
    .process<uint64_t>("keyed-boom",
                       [](const uint64_t& i, auto& ctx, auto& col) {
                         // A bug in the keyed function: reading a value that was never set.
                         if (i == 777) {
                           (void) ctx.template value<int64_t>("never-set").get();
                         }
                         col.emit(i);
                       })
    .sink("out", eddy::collector_sink(out));
  auto text = eddy::describe(run_failing(eng, jb));
  INFO("error: ", text);
  CHECK(contains(text, "user_code_failed"));
  CHECK(contains(text, "'keyed-boom/"));
  CHECK(contains(text, "value_state::get()"));
  CHECK(out->values().size() < 50'000);
}

TEST_CASE("without durable state an exception in a sink or a source fails the job with an error "
          "naming it: nothing could restart it") {
  eddy::test::temp_dir dir;
  auto opts = eddy::test::test_options(dir);
  opts.state.level = eddy::durability::none;
  eddy::engine eng{opts, eddy::test::test_common(dir)};

  SUBCASE("sink") {
    struct failing_sink final : eddy::sink_logic {
      uint64_t seen = 0;
      void write(eddy::record_buffer& in) override {
        seen += in.size();
        if (seen > 5'000) {
          throw std::runtime_error("disk full");
        }
      }
    };
    eddy::job_builder jb{"sink-throws"};
    jb.source("gen", eddy::generator_source(20'000, [](uint64_t i) { return i; }))
      .sink("store", eddy::sink_def<uint64_t>{[](const eddy::instance_context&) {
              return std::make_unique<failing_sink>();
            }});
    auto text = eddy::describe(run_failing(eng, jb));
    INFO("error: ", text);
    CHECK(contains(text, "'store/0'"));
    CHECK(contains(text, "disk full"));
  }
  SUBCASE("source") {
    auto out = std::make_shared<eddy::collected<uint64_t>>();
    eddy::job_builder jb{"source-throws"};
    jb.source("gen", eddy::generator_source(0,
                                            [](uint64_t i) {
                                              if (i == 3'000) {
                                                throw std::invalid_argument("no record 3000");
                                              }
                                              return i;
                                            }))
      .sink("out", eddy::collector_sink(out));
    auto text = eddy::describe(run_failing(eng, jb));
    INFO("error: ", text);
    CHECK(contains(text, "'gen/0'"));
    CHECK(contains(text, "no record 3000"));
  }
}

TEST_CASE("engine::start rejects an invalid graph with an error naming what is wrong") {
  eddy::test::temp_dir dir;
  eddy::engine eng{eddy::test::test_options(dir), eddy::test::test_common(dir)};
  auto out = std::make_shared<eddy::collected<uint64_t>>();
  eddy::job_builder jb{"valid"};
  jb.source("gen", eddy::generator_source(10, [](uint64_t i) { return i; }))
    .map("double", [](const uint64_t& i) { return 2 * i; })
    .sink("out", eddy::collector_sink(out));
  auto built = jb.build();
  REQUIRE(built);
  const auto nodes = built->nodes();

  SUBCASE("operator with parallelism 0") {
    auto bad = nodes;
    bad.at(1).parallelism = 0;
    auto job = eng.start(eddy::job_graph{"bad", 4, bad});
    REQUIRE(!job);
    auto text = eddy::describe(job.error());
    INFO(text);
    CHECK(contains(text, "invalid_graph"));
    CHECK(contains(text, "'double'"));
  }
  SUBCASE("partition count out of range") {
    auto job = eng.start(eddy::job_graph{"nopartitions", 0, nodes});
    REQUIRE(!job);
    auto text = eddy::describe(job.error());
    INFO(text);
    CHECK(contains(text, "invalid_graph"));
    CHECK(contains(text, "'nopartitions'"));
  }
  SUBCASE("operator without logic") {
    auto bad = nodes;
    bad.at(1).make_transform = nullptr;
    auto job = eng.start(eddy::job_graph{"nologic", 4, bad});
    REQUIRE(!job);
    CHECK(contains(eddy::describe(job.error()), "'double'"));
  }
  SUBCASE("operator whose logic cannot be created") {
    auto bad = nodes;
    bad.at(1).make_transform =
      [](const eddy::instance_context&) -> std::unique_ptr<eddy::transform_logic> {
      throw std::runtime_error("no model file");
    };
    auto job = eng.start(eddy::job_graph{"throwing-factory", 4, bad});
    REQUIRE(!job);
    auto text = eddy::describe(job.error());
    INFO(text);
    CHECK(contains(text, "'double'"));
    CHECK(contains(text, "no model file"));
  }
  SUBCASE("the valid graph runs") {
    auto job = eng.start(std::move(*built));
    REQUIRE(job);
    CHECK(!eddy::test::finish(**job));
    CHECK(out->values().size() == 10);
  }
}

TEST_CASE("job_builder::build rejects a keyed node with its own parallelism") {
  eddy::job_builder jb{"keyed-parallelism"};
  auto out = std::make_shared<eddy::collected<uint64_t>>();
  jb.source("gen", eddy::generator_source(10, [](uint64_t i) { return i; }))
    .key_by([](const uint64_t& i) { return i; })
    .process<uint64_t>("sum", [](const uint64_t& i, auto&, auto& col) { col.emit(i); })
    .parallelism(3)
    .sink("out", eddy::collector_sink(out));
  auto graph = jb.build();
  REQUIRE(!graph);
  CHECK(contains(eddy::describe(graph.error()), "'sum'"));
}

TEST_CASE("engine::start fails naming the source when the input file cannot be opened") {
  eddy::test::temp_dir dir;
  eddy::engine eng{eddy::test::test_options(dir), eddy::test::test_common(dir)};
  auto missing = dir / "does-not-exist.jsonl";
  auto out = std::make_shared<eddy::collected<std::string>>();
  eddy::job_builder jb{"missing-input"};
  jb.source("lines", eddy::jsonl_source<std::string>(missing))
    .sink("out", eddy::collector_sink(out));
  auto graph = jb.build();
  REQUIRE(graph);
  auto job = eng.start(std::move(*graph));
  REQUIRE(!job);
  auto text = eddy::describe(job.error());
  INFO(text);
  CHECK(contains(text, "io_failure"));
  CHECK(contains(text, "'lines'"));
  CHECK(contains(text, missing.string()));
}

TEST_CASE("engine::start fails naming the sink when the output file cannot be created") {
  eddy::test::temp_dir dir;
  eddy::engine eng{eddy::test::test_options(dir), eddy::test::test_common(dir)};
  auto target = dir / "no" / "such" / "dir" / "out.jsonl";
  eddy::job_builder jb{"bad-output"};
  jb.source("gen", eddy::generator_source(10, [](uint64_t i) { return i; }))
    .sink("file", eddy::jsonl_sink<uint64_t>(target));
  auto graph = jb.build();
  REQUIRE(graph);
  auto job = eng.start(std::move(*graph));
  REQUIRE(!job);
  auto text = eddy::describe(job.error());
  INFO(text);
  CHECK(contains(text, "'file'"));
  CHECK(contains(text, target.string()));
}

TEST_CASE("a JSONL file sink writes every record and engine::run returns no error") {
  eddy::test::temp_dir dir;
  eddy::engine eng{eddy::test::test_options(dir), eddy::test::test_common(dir)};
  auto target = dir / "out.jsonl";
  eddy::job_builder jb{"to-file"};
  jb.source("gen", eddy::generator_source(1'000, [](uint64_t i) { return i; }))
    .map("sq", [](const uint64_t& i) { return i * i; })
    .sink("file", eddy::jsonl_sink<uint64_t>(target));
  auto graph = jb.build();
  REQUIRE(graph);
  auto err = eng.run(std::move(*graph));
  REQUIRE_MESSAGE(!err, eddy::describe(err));
  auto lines = eddy::test::read_lines(target);
  REQUIRE(lines.size() == 1'000);
  for (uint64_t i = 0; i < 1'000; ++i) {
    REQUIRE(lines[i] == std::to_string(i * i));
  }
}

TEST_CASE("two jobs run at the same time on one engine without mixing their records") {
  eddy::test::temp_dir dir;
  eddy::engine eng{eddy::test::test_options(dir), eddy::test::test_common(dir)};
  auto a = std::make_shared<eddy::collected<uint64_t>>();
  auto b = std::make_shared<eddy::collected<uint64_t>>();
  eddy::job_builder ja{"job-a"};
  ja.source("gen", eddy::generator_source(30'000, [](uint64_t i) { return i; }))
    .sink("out", eddy::collector_sink(a));
  eddy::job_builder jbb{"job-b"};
  jbb.source("gen", eddy::generator_source(20'000, [](uint64_t i) { return 1'000'000 + i; }))
    .sink("out", eddy::collector_sink(b));
  auto ga = ja.build();
  auto gb = jbb.build();
  REQUIRE(ga);
  REQUIRE(gb);
  auto job_a = eng.start(std::move(*ga));
  auto job_b = eng.start(std::move(*gb));
  REQUIRE(job_a);
  REQUIRE(job_b);
  CHECK(!eddy::test::finish(**job_a));
  CHECK(!eddy::test::finish(**job_b));
  std::vector<uint64_t> ea(30'000);
  std::iota(ea.begin(), ea.end(), uint64_t{0});
  std::vector<uint64_t> eb(20'000);
  std::iota(eb.begin(), eb.end(), uint64_t{1'000'000});
  CHECK((a->values() == ea));
  CHECK((b->values() == eb));
}
