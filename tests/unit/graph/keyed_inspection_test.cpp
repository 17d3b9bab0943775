// The console's view of keyed state: inspect_state, inspect_history, replay_state and
// admin_set of keyed logic made by the job builder, in memory and on real journal files.

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "eddy/graph/job_builder.hpp"
#include "eddy/io/sinks.hpp"
#include "eddy/io/sources.hpp"
#include "support/journal_support.hpp"
#include "support/temp_dir.hpp"

using namespace eddy;
using namespace eddy::test;
using json = nlohmann::json;

namespace {

/// The words of `line`: key, operation, argument.
std::vector<std::string> words_of(const std::string& line) {
  std::vector<std::string> result;
  for (size_t pos = 0; pos <= line.size();) {
    auto end = std::min(line.find(' ', pos), line.size());
    result.push_back(line.substr(pos, end - pos));
    pos = end + 1;
  }
  result.resize(3);
  return result;
}

struct first_word {
  std::string operator()(const std::string& line) const {
    return words_of(line)[0];
  }
};

/// "KEY add WORD" counts the key's records and words and emits the count, "KEY tag T" sets
/// its tag, "KEY clear" forgets the key.
struct tally_fn {
  void operator()(const std::string& line, keyed_context<std::string>& ctx,
                  collector<int64_t>& out) const {
    auto w = words_of(line);
    if (w[1] == "add") {
      auto& count = ctx.value<int64_t>("count");
      count.set(count.get_or(0) + 1);
      auto& words = ctx.map<std::string, int64_t>("words");
      const auto* seen = words.find(w[2]);
      words.put(w[2], seen != nullptr ? *seen + 1 : 1);
      out.emit(count.get());
    } else if (w[1] == "tag") {
      ctx.value<std::string>("tag").set(w[2]);
    } else if (w[1] == "clear") {
      ctx.clear();
    }
  }
};

/// lines -> keyed "tally" (see `tally_fn`) -> sink; `declare` declares count and words.
job_graph tally_job(uint32_t partitions = 4, bool declare = false) {
  job_builder jb{"tally"};
  jb.partitions(partitions);
  auto keyed = jb.source("lines", generator_source(0, [](uint64_t) { return std::string{}; }))
                 .key_by(first_word{});
  if (declare) {
    keyed.declare_state<value_state<int64_t>>("count")
      .declare_state<map_state<std::string, int64_t>>("words");
  }
  keyed.process<int64_t>("tally", tally_fn{})
    .sink("out", collector_sink(std::make_shared<collected<int64_t>>()));
  auto g = jb.build();
  REQUIRE_MESSAGE(g.engaged(), (g ? std::string{} : describe(g.error())));
  return std::move(*g);
}

const node_spec& tally_spec(const job_graph& g) {
  return g.node(1);
}

/// One partition of "tally": its logic, and its journal once attached.
struct tally_partition {
  const job_graph* graph;
  uint32_t index;
  std::unique_ptr<transform_logic> logic;
  std::optional<journal_store> journal;
  size_t keep = journal_default_keep;
  int64_t clock_ms = 1000;
  std::vector<int64_t> emitted;

  explicit tally_partition(const job_graph& g, uint32_t partition = 0)
    : graph(&g)
    , index(partition) {
    REQUIRE(tally_spec(g).name == "tally");
    instance_context ctx;
    ctx.job = g.name();
    ctx.node = "tally";
    ctx.index = partition;
    ctx.instances = g.partitions();
    logic = tally_spec(g).make_transform(ctx);
  }

  /// Makes the state durable in `file`, caching `cache_bytes` (0: every clean key is
  /// evicted after a commit and read back from the journal).
  void attach(const std::filesystem::path& file, size_t cache_bytes = 0) {
    journal.emplace(
      open_ok(file, journal_meta{"tally", "tally", index, graph->partitions(), 1, ""}));
    logic->attach(*journal, cache_bytes);
  }

  void feed(const std::vector<std::string>& lines) {
    record_buffer_of<std::string> in;
    for (const auto& line : lines) {
      in.records.push_back(record<std::string>{line, no_time});
    }
    auto out = tally_spec(*graph).make_output_buffer(lines.size());
    logic->process(in, *out);
    for (const auto& r : typed<int64_t>(*out).records) {
      emitted.push_back(r.value);
    }
  }

  /// Commits what changed as the partition actor does; returns the journal's last seq.
  uint64_t commit(std::string origin = "batch") {
    commit_batch batch;
    batch.origin = std::move(origin);
    batch.at_ms = clock_ms++;
    logic->collect(batch);
    commit_ok(*journal, batch);
    return journal->last_seq();
  }

  void compact() {
    auto err = journal->compact(keep);
    REQUIRE_MESSAGE(!err, describe(err));
    logic->compacted();
  }

  json state(const std::string& key) {
    return json::parse(logic->inspect_state(key));
  }
  json history(const std::string& key, size_t limit = 1000) {
    return json::parse(logic->inspect_history(key, limit));
  }
  json replay(const std::string& key, uint64_t seq) {
    return json::parse(logic->replay_state(key, seq, keep));
  }
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// The message of the exception of type E that `f` throws (fails the test if none).
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  FAIL("the expected exception was not thrown");
  return {};
}

} // namespace

// -- inspect_state --------------------------------------------------------------------------

TEST_CASE("inspect_state shows a key's states as JSON in memory and creates nothing") {
  auto g = tally_job();
  tally_partition p{g};
  p.feed({"a add x", "a add y", "a add x", "b tag red"});
  CHECK(p.state("a") == json{{"count", 3}, {"words", {{"x", 2}, {"y", 1}}}});
  CHECK(p.state("b") == json{{"tag", "red"}});
  CHECK(p.logic->key_count() == 2);
  CHECK(p.logic->inspect_state("nobody") == "{}");
  CHECK(p.logic->key_count() == 2);

  p.feed({"a clear"});
  CHECK(p.logic->inspect_state("a") == "{}");
  p.feed({"a add z"});
  CHECK(p.state("a") == json{{"count", 1}, {"words", {{"z", 1}}}});

  // History and replay read the journal, which in-memory state has not.
  CHECK(contains(message_of<std::logic_error>([&] { (void) p.history("a"); }),
                 "history needs durable state (--state.durability process or machine)"));
  CHECK_THROWS_AS((void) p.replay("a", 1), std::logic_error);
}

TEST_CASE("inspect_state rejects a text that does not spell a key of the operator") {
  job_builder jb{"ints"};
  auto src =
    jb.source("n", generator_source(0, [](uint64_t i) { return static_cast<int64_t>(i); }));
  src.map("double", [](const int64_t& v) { return v * 2; })
    .key_by([](const int64_t& v) { return v % 10; })
    .process<int64_t>("last", [](const int64_t& v, keyed_context<int64_t>& ctx,
                                 collector<int64_t>&) { ctx.value<int64_t>("last").set(v); })
    .sink("out", collector_sink(std::make_shared<collected<int64_t>>()));
  auto g = jb.build();
  REQUIRE(g.engaged());
  auto keyed = g->node(2).make_transform(instance_context{});
  auto text = message_of<std::invalid_argument>([&] { (void) keyed->inspect_state("abc"); });
  CHECK(contains(text, "'abc' is not a key of this operator"));
  CHECK_THROWS_AS((void) keyed->admin_set("4x", "last", "1"), std::invalid_argument);
  record_buffer_of<int64_t> in;
  in.records = {{13, no_time}, {27, no_time}};
  auto out = g->node(2).make_output_buffer(2);
  keyed->process(in, *out);
  CHECK(json::parse(keyed->inspect_state("3")) == json{{"last", 13}});
  CHECK(json::parse(keyed->inspect_state("7")) == json{{"last", 27}});
  // A stateless operator has nothing to show.
  auto mapper = g->node(1).make_transform(instance_context{});
  CHECK(contains(message_of<std::logic_error>([&] { (void) mapper->inspect_state("3"); }),
                 "keeps no keyed state"));
}

TEST_CASE("inspect_state of durable logic reads the journal's rows and prefers the newer cells "
          "in memory") {
  temp_dir dir;
  auto g = tally_job();
  tally_partition p{g};
  p.attach(dir / "p.db");
  p.feed({"a add x", "a add y"});
  // Deferred: the rows do not have the changes yet, the pinned key in memory does.
  p.commit();
  CHECK(get_ok(*p.journal, "a", "count") == std::nullopt);
  auto two = json{{"count", 2}, {"words", {{"x", 1}, {"y", 1}}}};
  CHECK(p.state("a") == two);

  // Compacted with no cache: the key leaves memory and is read from the rows alone, which
  // loads nothing into memory.
  p.compact();
  CHECK(p.logic->key_count() == 0);
  CHECK(p.state("a") == two);
  CHECK(p.logic->key_count() == 0);

  // A change not committed yet, then committed but not compacted: memory is newer.
  p.feed({"a add x"});
  auto three = json{{"count", 3}, {"words", {{"x", 2}, {"y", 1}}}};
  CHECK(p.state("a") == three);
  p.commit();
  CHECK(get_ok(*p.journal, "a", "count") == encode_value(int64_t{2}));
  CHECK(p.state("a") == three);

  // A cleared key shows nothing, although its rows stay until the compaction.
  p.feed({"a clear"});
  CHECK(p.state("a") == json::object());
  p.commit();
  CHECK(get_ok(*p.journal, "a", "count") == encode_value(int64_t{2}));
  CHECK(p.state("a") == json::object());
  p.compact();
  CHECK(p.state("a") == json::object());
}

TEST_CASE("a fresh logic on the same journal decodes a state once its operator knows the "
          "state's type") {
  temp_dir dir;
  auto file = dir / "p.db";
  {
    auto g = tally_job();
    tally_partition p{g};
    p.attach(file);
    p.feed({"a add x", "a add x", "b tag blue"});
    p.commit();
    // Closing leaves the log; the next open folds it into the rows.
  }
  SUBCASE("without declarations: undecoded until the function used the state") {
    auto g = tally_job();
    tally_partition p{g};
    p.attach(file);
    auto a = p.state("a");
    REQUIRE(a.contains("count"));
    CHECK(a["count"]["undecoded_bytes"].get<size_t>() == encode_value(int64_t{2}).size());
    CHECK(contains(a["count"]["why"].get<std::string>(), "declare_state"));
    CHECK(a["words"].contains("undecoded_bytes"));
    CHECK(p.history("a")[0]["value"].contains("undecoded_bytes"));
    CHECK(p.logic->key_count() == 0);
    // Another key uses count and words: now the operator knows them, for every key.
    p.feed({"c add q"});
    CHECK(p.state("a") == json{{"count", 2}, {"words", {{"x", 2}}}});
    CHECK(p.state("b")["tag"].contains("undecoded_bytes"));
  }
  SUBCASE("with declare_state: decoded before any record arrived") {
    auto g = tally_job(4, true);
    tally_partition p{g};
    p.attach(file);
    CHECK(p.state("a") == json{{"count", 2}, {"words", {{"x", 2}}}});
    CHECK(p.state("b")["tag"].contains("undecoded_bytes"));
    CHECK(p.logic->key_count() == 0);
  }
}

TEST_CASE("the partitions of one keyed operator share what they learned of its state types") {
  auto g = tally_job(2);
  tally_partition p0{g, 0};
  tally_partition p1{g, 1};
  p0.feed({"a add x"});
  CHECK(p1.logic->admin_set("k", "count", "5") == "null");
  CHECK(p1.state("k") == json{{"count", 5}});
  // Another job's operator of the same shape learned nothing.
  auto other = tally_job(2);
  tally_partition q{other, 0};
  CHECK_THROWS_AS((void) q.logic->admin_set("k", "count", "5"), std::invalid_argument);
}

TEST_CASE("declaring one state name with two types is a job bug reported when building") {
  job_builder jb{"j"};
  auto keyed = jb.source("lines", generator_source(0, [](uint64_t) { return std::string{}; }))
                 .key_by(first_word{});
  keyed.declare_state<value_state<int64_t>>("count").declare_state<list_state<int64_t>>("count");
  CHECK_THROWS_AS((void) keyed.process<int64_t>("tally", tally_fn{}), std::logic_error);
}

// -- inspect_history ------------------------------------------------------------------------

TEST_CASE("inspect_history lists a key's changes newest first with seq, time, value and origin") {
  temp_dir dir;
  auto g = tally_job();
  tally_partition p{g};
  p.attach(dir / "p.db");
  p.feed({"a add x"});
  p.commit("first");
  p.feed({"a add y"});
  p.commit("second");
  p.compact();
  p.feed({"a add x", "b tag t"});
  p.commit("third");
  p.feed({"a clear"});
  auto last = p.commit("gone");

  auto h = p.history("a");
  auto stored = history_ok(*p.journal, "a");
  REQUIRE(h.size() == stored.size());
  REQUIRE(h.size() == 7);
  for (size_t i = 0; i < h.size(); ++i) {
    CAPTURE(i);
    CHECK(h[i]["seq"] == stored[i].seq);
    CHECK(h[i]["state"] == stored[i].name);
    CHECK(h[i]["at_ms"] == stored[i].at_ms);
    CHECK(h[i]["origin"] == stored[i].origin);
  }
  // The clear of the whole key: no state name, no value.
  CHECK(h[0]["seq"] == last);
  CHECK(h[0]["state"] == "");
  CHECK(h[0]["value"].is_null());
  CHECK(h[0]["origin"] == "gone");
  CHECK(h[0]["at_ms"] == 1003);
  std::vector<json> counts;
  std::vector<json> words;
  for (const auto& e : h) {
    if (e["state"] == "count") {
      counts.push_back(e["value"]);
    } else if (e["state"] == "words") {
      words.push_back(e["value"]);
    }
  }
  CHECK(counts == std::vector<json>{3, 2, 1});
  CHECK(words ==
        std::vector<json>{json{{"x", 2}, {"y", 1}}, json{{"x", 1}, {"y", 1}}, json{{"x", 1}}});
  CHECK(h[1]["origin"] == "third");
  CHECK(h[5]["origin"] == "first");
  CHECK(h[5]["at_ms"] == 1000);
  // Sequence numbers only grow.
  for (size_t i = 1; i < h.size(); ++i) {
    CHECK(h[i]["seq"].get<uint64_t>() < h[i - 1]["seq"].get<uint64_t>());
  }
  auto newest = p.history("a", 2);
  REQUIRE(newest.size() == 2);
  CHECK(newest[0] == h[0]);
  CHECK(newest[1] == h[1]);
  CHECK(p.history("nobody") == json::array());
  CHECK(p.history("b").size() == 1);
}

// -- admin_set ------------------------------------------------------------------------------

TEST_CASE("admin_set returns the old value and the next collect carries the new one") {
  temp_dir dir;
  auto g = tally_job();
  tally_partition p{g};
  p.attach(dir / "p.db");
  p.feed({"a add x", "a add x", "a add x", "z tag u"});
  p.commit();
  p.compact();
  REQUIRE(p.logic->key_count() == 0);

  CHECK(p.logic->admin_set("a", "count", "10") == "3");
  // Read from the journal and marked as used, like the keyed function's own access.
  CHECK(p.logic->key_count() == 1);
  CHECK(p.state("a")["count"] == 10);
  commit_batch batch;
  p.logic->collect(batch);
  REQUIRE(batch.changes.size() == 1);
  CHECK(batch.changes[0].key == "a");
  CHECK(batch.changes[0].name == "count");
  CHECK(batch.changes[0].value == encode_value(int64_t{10}));
  batch.origin = "admin";
  batch.at_ms = 5000;
  commit_ok(*p.journal, batch);
  auto newest = p.history("a", 1);
  REQUIRE(newest.size() == 1);
  CHECK(newest[0]["state"] == "count");
  CHECK(newest[0]["value"] == 10);
  CHECK(newest[0]["origin"] == "admin");
  CHECK(newest[0]["seq"] == p.journal->last_seq());

  // The keyed function goes on from the new value.
  p.feed({"a add x"});
  CHECK(p.emitted.back() == 11);
  CHECK(json::parse(p.logic->admin_set("a", "words", R"({"q": 1})")) == json{{"x", 4}});
  CHECK(p.logic->admin_set("a", "tag", R"("t")") == "null");
  CHECK(p.state("a") == json{{"count", 11}, {"words", {{"q", 1}}}, {"tag", "t"}});
  // null clears the state.
  CHECK(p.logic->admin_set("a", "count", "null") == "11");
  p.commit("admin");
  p.compact();
  CHECK(p.state("a") == json{{"words", {{"q", 1}}}, {"tag", "t"}});
  CHECK(get_ok(*p.journal, "a", "count") == std::nullopt);
}

TEST_CASE("admin_set rejects unknown states, bad JSON and values of the wrong type, changing "
          "nothing") {
  temp_dir dir;
  auto g = tally_job();
  tally_partition p{g};
  p.attach(dir / "p.db");
  p.feed({"a add x"});
  p.commit();
  p.compact();
  auto unknown =
    message_of<std::invalid_argument>([&] { (void) p.logic->admin_set("a", "nope", "1"); });
  CHECK(contains(unknown, "'nope'"));
  CHECK(contains(unknown, "known: 'count', 'words'"));
  CHECK(contains(unknown, "declare_state"));
  auto wrong =
    message_of<std::invalid_argument>([&] { (void) p.logic->admin_set("a", "count", R"("ten")"); });
  CHECK(contains(wrong, "expected"));
  CHECK(contains(wrong, "\"ten\""));
  CHECK(contains(
    message_of<std::invalid_argument>([&] { (void) p.logic->admin_set("a", "count", "{bad"); }),
    "not valid JSON"));
  CHECK(p.logic->key_count() == 0);
  commit_batch batch;
  p.logic->collect(batch);
  CHECK(batch.changes.empty());
  CHECK(p.state("a") == json{{"count", 1}, {"words", {{"x", 1}}}});
}

TEST_CASE("admin_set on in-memory state changes what the keyed function sees next") {
  auto g = tally_job();
  tally_partition p{g};
  p.feed({"b add x"});
  CHECK(p.logic->admin_set("a", "count", "41") == "null");
  p.feed({"a add y"});
  CHECK(p.emitted == std::vector<int64_t>{1, 42});
  // Setting an empty value leaves no key behind.
  CHECK(p.logic->admin_set("c", "count", "null") == "null");
  CHECK(p.logic->key_count() == 2);
}

// -- replay_state ---------------------------------------------------------------------------

TEST_CASE("replay_state rebuilds a key's state as of older sequence numbers, leaving the live "
          "state alone") {
  temp_dir dir;
  auto g = tally_job();
  tally_partition p{g};
  p.keep = 100;
  p.attach(dir / "p.db");
  p.feed({"a add x"});
  auto first = p.commit();
  p.feed({"a add y"});
  auto second = p.commit();
  // Some of the history in the state rows and journal, the rest in the log.
  p.compact();
  p.feed({"a tag red"});
  auto tagged = p.commit();
  p.feed({"a clear"});
  auto cleared = p.commit();
  p.feed({"a add z"});
  auto last = p.commit();

  CHECK(p.replay("a", 0) == json::object());
  CHECK(p.replay("a", first) == json{{"count", 1}, {"words", {{"x", 1}}}});
  // Within one commit count was written before words.
  CHECK(p.replay("a", second - 1) == json{{"count", 2}, {"words", {{"x", 1}}}});
  CHECK(p.replay("a", second) == json{{"count", 2}, {"words", {{"x", 1}, {"y", 1}}}});
  CHECK(p.replay("a", tagged) ==
        json{{"count", 2}, {"words", {{"x", 1}, {"y", 1}}}, {"tag", "red"}});
  CHECK(p.replay("a", cleared) == json::object());
  CHECK(p.replay("a", last) == json{{"count", 1}, {"words", {{"z", 1}}}});
  CHECK(p.replay("a", last + 100) == p.state("a"));
  CHECK(p.logic->key_count() == 1);
  CHECK(p.state("a") == json{{"count", 1}, {"words", {{"z", 1}}}});
  CHECK(p.replay("nobody", last) == json::object());
}

TEST_CASE("replay_state refuses what the kept changes cannot rebuild, naming the oldest seq it "
          "can and --state.keep-changes") {
  temp_dir dir;
  auto g = tally_job();
  tally_partition p{g};
  p.keep = 4;
  p.attach(dir / "p.db");
  p.feed({"a tag red"});
  p.commit();
  for (int i = 0; i < 3; ++i) {
    p.feed({"a add w"});
    p.commit();
  }
  p.feed({"b add v"});
  p.commit();
  // Still in the log, nothing was trimmed: more changes than a compaction keeps, yet the
  // state before the first one is known.
  CHECK(p.replay("a", 0) == json::object());
  CHECK(p.replay("a", 1) == json{{"tag", "red"}});
  p.compact();
  // Compaction keeps the 4 newest changes of "a" over all its states: the last two commits'
  // count and words. The tag's only change is gone; its row remains.
  auto kept = history_ok(*p.journal, "a");
  REQUIRE(kept.size() == 4);
  uint64_t oldest_count = UINT64_MAX;
  uint64_t oldest_words = UINT64_MAX;
  for (const auto& e : kept) {
    auto& oldest = e.name == "count" ? oldest_count : oldest_words;
    oldest = std::min(oldest, e.seq);
  }
  REQUIRE(oldest_count < oldest_words);
  // At the oldest kept entry (count) the value of words is among the dropped changes, so the
  // oldest state that can be rebuilt is at the oldest kept words.
  auto text = message_of<std::out_of_range>([&] { (void) p.replay("a", oldest_count); });
  CHECK(contains(text, "the oldest seq it can rebuild is " + std::to_string(oldest_words)));
  CHECK(contains(text, "--state.keep-changes"));
  CHECK(contains(text, "'a'"));
  CHECK_THROWS_AS((void) p.replay("a", 0), std::out_of_range);
  CHECK(p.replay("a", oldest_words) == json{{"count", 2}, {"tag", "red"}, {"words", {{"w", 2}}}});
  CHECK(p.replay("a", p.journal->last_seq()) == p.state("a"));
  // A key with fewer changes than a compaction keeps lost none: any seq can be rebuilt.
  CHECK(p.replay("b", 0) == json::object());
  CHECK(p.replay("b", p.journal->last_seq()) == json{{"count", 1}, {"words", {{"v", 1}}}});
}

TEST_CASE("state_as_of rebuilds from the rows alone only as of the journal's newest seq when no "
          "change is kept") {
  std::vector<std::pair<std::string, stored_state>> rows = {{"n", stored_state{"7", 1, 3}}};
  // Keeping nothing: the current state is all there is.
  auto now = state_as_of("k", {}, rows, 10, 0, 10, 1);
  REQUIRE(now.size() == 1);
  CHECK(now.at("n").value == "7");
  auto text =
    message_of<std::out_of_range>([&] { (void) state_as_of("k", {}, rows, 9, 0, 10, 1); });
  CHECK(contains(text, "the oldest seq it can rebuild is 10"));
  // A row whose change is not kept shows that changes were dropped, whatever their count.
  CHECK_THROWS_AS((void) state_as_of("k", {}, rows, 5, 4, 10, 1), std::out_of_range);
  // Nothing dropped: the state before the first change is empty.
  std::vector<journal_entry> entries = {{3, "n", std::string{"7"}, "batch", 0}};
  CHECK(state_as_of("k", entries, rows, 2, 4, 10, 1).empty());
  CHECK(state_as_of("k", entries, rows, 3, 4, 10, 1).at("n").seq == 3);
  // A kept clear of the whole key makes everything after it known.
  std::vector<journal_entry> cleared = {{5, "m", std::string{"1"}, "batch", 0},
                                        {4, "", std::nullopt, "batch", 0},
                                        {2, "n", std::string{"6"}, "batch", 0}};
  CHECK(state_as_of("k", cleared, {}, 4, 3, 10, 1).empty());
  auto after = state_as_of("k", cleared, {}, 5, 3, 10, 1);
  REQUIRE(after.size() == 1);
  CHECK(after.at("m").value == "1");
  // Before the clear, n is known but m (first kept at 5) may have had a dropped value.
  CHECK(contains(
    message_of<std::out_of_range>([&] { (void) state_as_of("k", cleared, {}, 3, 3, 10, 1); }),
    "the oldest seq it can rebuild is 4"));
  CHECK_THROWS_AS((void) state_as_of("k", cleared, {}, 2, 3, 10, 1), std::out_of_range);
}
