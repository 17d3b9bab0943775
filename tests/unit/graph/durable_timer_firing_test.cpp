// Durable event-time timers fired between commits, as a partition with a commit interval
// fires them: keyed logic made by the job builder on a real journal file. A timer added
// since the last commit fires from memory and never reaches the journal; one already in
// the journal and registered again fires once; one removed since the commit does not fire;
// one fired since the commit does not fire again before it.

#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "eddy/graph/job_builder.hpp"
#include "eddy/io/sinks.hpp"
#include "eddy/io/sources.hpp"
#include "support/journal_support.hpp"
#include "support/temp_dir.hpp"

using namespace eddy;
using namespace eddy::test;

namespace {

/// "KEY at T" registers an event-time timer of KEY at T, "KEY del T" deletes it.
struct command {
  std::string key;
  std::string op;
  time_ms at = 0;
};

command parse(const std::string& line) {
  auto a = line.find(' ');
  auto b = line.find(' ', a + 1);
  return {line.substr(0, a), line.substr(a + 1, b - a - 1), std::stoll(line.substr(b + 1))};
}

struct key_of_line {
  std::string operator()(const std::string& line) const {
    return parse(line).key;
  }
};

struct timer_commands {
  void operator()(const std::string& line, keyed_context<std::string>& ctx,
                  collector<std::string>&) const {
    auto c = parse(line);
    if (c.op == "at") {
      ctx.register_event_timer(c.at);
    } else {
      ctx.delete_event_timer(c.at);
    }
  }
};

/// Emits "KEY@T" when the timer of KEY at T fires.
struct emit_fired {
  void operator()(const timer_fired& t, keyed_context<std::string>& ctx,
                  collector<std::string>& out) const {
    out.emit(ctx.key() + "@" + std::to_string(t.at));
  }
};

job_graph timers_job() {
  job_builder jb{"timers"};
  jb.partitions(1);
  jb.source("lines", generator_source(0, [](uint64_t) { return std::string{}; }))
    .key_by(key_of_line{})
    .process<std::string>("fire", timer_commands{}, emit_fired{})
    .sink("out", collector_sink(std::make_shared<collected<std::string>>()));
  auto g = jb.build();
  REQUIRE_MESSAGE(g.engaged(), (g ? std::string{} : describe(g.error())));
  return std::move(*g);
}

/// The one partition of "timers" on a journal in `dir`.
struct timers_partition {
  job_graph graph = timers_job();
  std::unique_ptr<transform_logic> logic;
  std::optional<journal_store> journal;

  explicit timers_partition(const temp_dir& dir) {
    instance_context ctx;
    ctx.job = "timers";
    ctx.node = "fire";
    ctx.instances = 1;
    logic = graph.node(1).make_transform(ctx);
    journal.emplace(open_ok(dir / "p0.db", journal_meta{"timers", "fire", 0, 1, 1, ""}));
    logic->attach(*journal, size_t{1} << 20);
  }

  void feed(const std::vector<std::string>& lines) {
    record_buffer_of<std::string> in;
    for (const auto& line : lines) {
      in.records.push_back(record<std::string>{line, no_time});
    }
    auto out = graph.node(1).make_output_buffer(lines.size());
    logic->process(in, *out);
  }

  /// Fires what is due at `watermark`, as the partition does: until nothing more fires.
  std::vector<std::string> fire(time_ms watermark) {
    std::vector<std::string> fired;
    for (;;) {
      auto out = graph.node(1).make_output_buffer(16);
      if (logic->fire_event_timers(watermark, *out, 4) == 0) {
        return fired;
      }
      for (const auto& r : typed<std::string>(*out).records) {
        fired.push_back(r.value);
      }
    }
  }

  void commit() {
    commit_batch batch;
    batch.at_ms = 1;
    logic->collect(batch);
    commit_ok(*journal, batch);
  }

  size_t journal_timers() {
    auto due = journal->due_timers(1, INT64_MAX, 1000);
    REQUIRE(due);
    return due->size();
  }
};

} // namespace

TEST_SUITE("unit") {
  TEST_CASE("durable timers added since the last commit fire without a commit, once, and "
            "never reach the journal") {
    temp_dir dir;
    timers_partition p{dir};
    p.feed({"a at 10", "b at 20", "c at 30"});
    CHECK(p.logic->next_event_timer() == std::optional<time_ms>{10});
    CHECK((p.fire(25) == std::vector<std::string>{"a@10", "b@20"}));
    CHECK(p.fire(25).empty());
    CHECK(p.logic->next_event_timer() == std::optional<time_ms>{30});
    p.commit();
    // Only the timer that did not fire was written.
    CHECK(p.journal_timers() == 1);
    CHECK((p.fire(100) == std::vector<std::string>{"c@30"}));
    p.commit();
    CHECK(p.journal_timers() == 0);
    CHECK(!p.logic->next_event_timer());
  }

  TEST_CASE("between commits, journal timers and new ones fire merged in time order; one "
            "registered again fires once, a removed one and a fired one do not fire") {
    temp_dir dir;
    timers_partition p{dir};
    // Eight timers in the journal, more than one firing call takes (4).
    p.feed(
      {"k at 10", "k at 20", "k at 30", "k at 40", "k at 50", "k at 60", "k at 70", "k at 80"});
    p.commit();
    REQUIRE(p.journal_timers() == 8);
    // Since the commit: two new ones between them, one registered again, one removed.
    p.feed({"n at 15", "n at 45", "k at 30", "k del 60"});
    CHECK((p.fire(50) ==
           std::vector<std::string>{"k@10", "n@15", "k@20", "k@30", "k@40", "n@45", "k@50"}));
    // Fired since the commit, still in the journal: they do not fire again.
    CHECK(p.fire(50).empty());
    CHECK(p.logic->next_event_timer() == std::optional<time_ms>{70});
    CHECK((p.fire(100) == std::vector<std::string>{"k@70", "k@80"}));
    p.commit();
    CHECK(p.journal_timers() == 0);
  }
}
