#include <doctest/doctest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "eddy/graph/operators.hpp"
#include "eddy/state/keyed_state.hpp"
#include "support/temp_dir.hpp"

using namespace eddy;

TEST_CASE("value_state is absent until set, then get and get_or return the value") {
  value_state<int> s;
  CHECK_FALSE(s.exists());
  CHECK(s.empty());
  CHECK(s.get_or(7) == 7);
  s.set(3);
  CHECK(s.exists());
  CHECK_FALSE(s.empty());
  CHECK(s.get() == 3);
  CHECK(s.get_or(7) == 3);
  s.set(4);
  CHECK(s.get() == 4);
}

TEST_CASE("value_state get on an absent value throws logic_error") {
  value_state<std::string> s;
  CHECK_THROWS_AS((void) s.get(), std::logic_error);
  s.set("x");
  s.clear();
  CHECK_FALSE(s.exists());
  CHECK(s.empty());
  CHECK_THROWS_WITH_AS((void) s.get(), doctest::Contains("without a value"), std::logic_error);
  CHECK(s.get_or("fallback") == "fallback");
}

TEST_CASE("value_state holds a default-constructed value as present") {
  value_state<std::string> s;
  s.set("");
  CHECK(s.exists());
  CHECK(s.get().empty());
  CHECK(s.get_or("fallback").empty());
}

TEST_CASE("value_state works with move-only values") {
  value_state<std::unique_ptr<int>> s;
  s.set(std::make_unique<int>(5));
  REQUIRE(s.get() != nullptr);
  CHECK(*s.get() == 5);
}

TEST_CASE("map_state put, find, contains and remove") {
  map_state<std::string, int> m;
  CHECK(m.empty());
  CHECK(m.size() == 0);
  CHECK(m.find("a") == nullptr);
  CHECK_FALSE(m.contains("a"));

  m.put("a", 1);
  m.put("b", 2);
  REQUIRE(m.find("a") != nullptr);
  CHECK(*m.find("a") == 1);
  CHECK(m.contains("b"));
  CHECK(m.size() == 2);
  CHECK_FALSE(m.empty());

  // put overwrites.
  m.put("a", 10);
  CHECK(*m.find("a") == 10);
  CHECK(m.size() == 2);

  CHECK(m.remove("a"));
  CHECK_FALSE(m.remove("a"));
  CHECK_FALSE(m.remove("never"));
  CHECK(m.find("a") == nullptr);
  CHECK(m.size() == 1);

  m.clear();
  CHECK(m.empty());
}

TEST_CASE("map_state iterates in key order, not insertion order") {
  map_state<int, std::string> m;
  for (int k : {5, -1, 3, 100, 0}) {
    m.put(k, std::to_string(k));
  }
  std::vector<int> keys;
  for (auto& [k, v] : m.entries()) {
    keys.push_back(k);
    CHECK(v == std::to_string(k));
  }
  CHECK(keys == std::vector<int>{-1, 0, 3, 5, 100});

  map_state<std::string, int> words;
  words.put("pear", 1);
  words.put("Apple", 2);
  words.put("apple", 3);
  std::vector<std::string> names;
  for (auto& [k, v] : words.entries()) {
    names.push_back(k);
  }
  CHECK(names == std::vector<std::string>{"Apple", "apple", "pear"});
}

TEST_CASE("state_registry numbers names in order of first use") {
  state_registry reg;
  CHECK(reg.size() == 0);
  CHECK(reg.id_of("count", typeid(value_state<int>)) == 0);
  CHECK(reg.id_of("seen", typeid(map_state<int, int>)) == 1);
  CHECK(reg.id_of("count", typeid(value_state<int>)) == 0);
  CHECK(reg.size() == 2);
  CHECK(reg.name(0) == "count");
  CHECK(reg.name(1) == "seen");
  // The empty name is a name like any other.
  CHECK(reg.id_of("", typeid(value_state<int>)) == 2);
}

TEST_CASE("state_registry rejects one name used with two state types, naming the state") {
  state_registry reg;
  REQUIRE(reg.id_of("total", typeid(value_state<int>)) == 0);
  CHECK_THROWS_WITH_AS(reg.id_of("total", typeid(value_state<long>)), doctest::Contains("'total'"),
                       std::logic_error);
  CHECK_THROWS_AS(reg.id_of("total", typeid(map_state<int, int>)), std::logic_error);
  // The failed uses registered nothing.
  CHECK(reg.size() == 1);
  CHECK(reg.id_of("total", typeid(value_state<int>)) == 0);
}

TEST_CASE("key_slot is empty until one of its cells holds something") {
  CHECK(key_slot{}.empty());
  keyed_store<int> store;
  timer_book timers;
  int key = 1;
  keyed_context<int> ctx{key, store, timers, no_time};
  auto& slot = ctx.slot();
  CHECK(slot.empty());
  auto& v = ctx.value<int>("v");
  // A created but unset cell is still empty.
  CHECK(slot.empty());
  v.set(1);
  CHECK_FALSE(slot.empty());
  v.clear();
  CHECK(slot.empty());
  ctx.map<int, int>("m").put(1, 2);
  CHECK_FALSE(slot.empty());
}

TEST_CASE("keyed_context hands out the same cell for the same name and key") {
  keyed_store<std::string> store;
  timer_book timers;
  std::string key = "k";
  {
    keyed_context<std::string> ctx{key, store, timers, 42};
    CHECK(ctx.key() == "k");
    CHECK(ctx.time() == 42);
    CHECK_FALSE(ctx.cleared());
    ctx.value<int>("count").set(1);
    ctx.map<std::string, int>("seen").put("x", 1);
    CHECK(&ctx.value<int>("count") == &ctx.value<int>("count"));
  }
  {
    keyed_context<std::string> ctx{key, store, timers, no_time};
    CHECK(ctx.value<int>("count").get() == 1);
    CHECK((ctx.map<std::string, int>("seen").contains("x")));
    CHECK(ctx.time() == no_time);
  }
  std::string other = "other";
  keyed_context<std::string> ctx{other, store, timers, no_time};
  CHECK_FALSE(ctx.value<int>("count").exists());
  CHECK(store.key_count() == 2);
  CHECK(store.registry().size() == 2);
}

TEST_CASE("keyed_context rejects a state name reused with another type") {
  keyed_store<int> store;
  timer_book timers;
  int key = 9;
  keyed_context<int> ctx{key, store, timers, no_time};
  ctx.value<int>("s").set(1);
  CHECK_THROWS_AS((ctx.map<int, int>("s")), std::logic_error);
  CHECK_THROWS_AS(ctx.value<double>("s"), std::logic_error);
  // Also for another key: the registry belongs to the partition.
  int key2 = 10;
  keyed_context<int> ctx2{key2, store, timers, no_time};
  CHECK_THROWS_AS(ctx2.value<std::string>("s"), std::logic_error);
  CHECK(ctx2.value<int>("s").get_or(-1) == -1);
}

TEST_CASE("keyed_context clear marks the key for removal without touching its state") {
  keyed_store<int> store;
  timer_book timers;
  int key = 1;
  keyed_context<int> ctx{key, store, timers, no_time};
  ctx.value<int>("v").set(5);
  ctx.clear();
  CHECK(ctx.cleared());
  // The store drops the key only when the caller acts on cleared().
  CHECK(store.key_count() == 1);
  CHECK(ctx.value<int>("v").get() == 5);
  store.done_with(key, ctx.slot(), ctx.cleared());
  CHECK(store.key_count() == 0);
  CHECK(store.find(key) == nullptr);
}

TEST_CASE("keyed_store find and for_each see every key") {
  keyed_store<int> store;
  timer_book timers;
  for (int k = 0; k < 10; ++k) {
    keyed_context<int> ctx{k, store, timers, no_time};
    ctx.value<int>("v").set(k * k);
  }
  CHECK(store.key_count() == 10);
  CHECK(store.find(3) != nullptr);
  CHECK(store.find(10) == nullptr);
  int sum = 0;
  size_t seen = 0;
  store.for_each([&](const int& k, const key_slot& slot) {
    ++seen;
    sum += k;
    CHECK_FALSE(slot.empty());
  });
  CHECK(seen == 10);
  CHECK(sum == 45);
}

namespace {

/// A keyed function for sessions: "+" adds an event to the key's session, "end" emits its
/// size and clears the key.
struct session_fn {
  void operator()(const std::pair<std::string, std::string>& ev, keyed_context<std::string>& ctx,
                  collector<int>& out) const {
    auto& events = ctx.value<int>("events");
    if (ev.second == "end") {
      out.emit(events.get_or(0));
      ctx.clear();
    } else {
      events.set(events.get_or(0) + 1);
    }
  }
};

struct first_of_pair {
  std::string operator()(const std::pair<std::string, std::string>& ev) const {
    return ev.first;
  }
};

using event = std::pair<std::string, std::string>;
using session_logic = keyed_logic<std::string, event, int, first_of_pair, session_fn>;

void feed(session_logic& logic, std::vector<event> events, record_buffer_of<int>& out) {
  record_buffer_of<event> in;
  for (auto& ev : events) {
    in.records.push_back(record<event>{std::move(ev), no_time});
  }
  logic.process(in, out);
}

} // namespace

TEST_CASE("keyed_logic erases the keys its function clears, so key_count drops") {
  session_logic logic{first_of_pair{}, session_fn{}};
  record_buffer_of<int> out;
  feed(logic, {{"a", "+"}, {"b", "+"}, {"c", "+"}, {"a", "+"}}, out);
  CHECK(logic.key_count() == 3);
  CHECK(out.empty());

  feed(logic, {{"a", "end"}, {"c", "end"}}, out);
  CHECK(logic.key_count() == 1);
  CHECK(logic.store().find("a") == nullptr);
  CHECK(logic.store().find("b") != nullptr);
  REQUIRE(out.size() == 2);
  CHECK(out.records[0].value == 2);
  CHECK(out.records[1].value == 1);

  // A cleared key starts from scratch.
  out.clear();
  feed(logic, {{"a", "+"}, {"a", "end"}, {"b", "end"}}, out);
  REQUIRE(out.size() == 2);
  CHECK(out.records[0].value == 1);
  CHECK(out.records[1].value == 1);
  CHECK(logic.key_count() == 0);
}

TEST_CASE("keyed_logic starts a key afresh when it is used again after a clear in the same "
          "batch") {
  session_logic logic{first_of_pair{}, session_fn{}};
  record_buffer_of<int> out;
  feed(logic, {{"a", "+"}, {"a", "end"}, {"a", "+"}}, out);
  CHECK(logic.key_count() == 1);
  feed(logic, {{"a", "end"}}, out);
  REQUIRE(out.size() == 2);
  CHECK(out.records[0].value == 1);
  CHECK(out.records[1].value == 1);
  CHECK(logic.key_count() == 0);
}

TEST_CASE("keyed_logic passes the record's event time to the function and the output") {
  auto key_fn = [](const int& v) {
    return v % 2;
  };
  auto fn = [](const int& v, keyed_context<int>& ctx, collector<int64_t>& out) {
    out.emit(ctx.time() + v);
  };
  keyed_logic<int, int, int64_t, decltype(key_fn), decltype(fn)> logic{key_fn, fn};
  record_buffer_of<int> in;
  in.records = {{1, 1000}, {2, 2000}};
  record_buffer_of<int64_t> out;
  logic.process(in, out);
  REQUIRE(out.size() == 2);
  CHECK(out.records[0].value == 1001);
  CHECK(out.records[0].time == 1000);
  CHECK(out.records[1].value == 2002);
  CHECK(out.records[1].time == 2000);
}

// A key whose function leaves no state behind holds nothing and is not counted, so
// stateless keyed functions do not grow the store by one empty slot per distinct key.
TEST_CASE("keyed_logic does not hold keys whose function keeps no state") {
  auto key_fn = [](const int& v) {
    return v;
  };
  auto fn = [](const int& v, keyed_context<int>&, collector<int>& out) {
    out.emit(v);
  };
  keyed_logic<int, int, int, decltype(key_fn), decltype(fn)> logic{key_fn, fn};
  record_buffer_of<int> in;
  for (int i = 0; i < 1000; ++i) {
    in.records.push_back(record<int>{i, no_time});
  }
  record_buffer_of<int> out;
  logic.process(in, out);
  CHECK(out.size() == 1000);
  CHECK(logic.key_count() == 0);
}

TEST_CASE("a durable keyed_store never reads a stale row of a key changed since the last "
          "compaction") {
  test::temp_dir dir;
  auto journal =
    journal_store::open(dir / "p.db", journal_meta{"job", "op", 0, 1, 1, ""}, durability::process);
  REQUIRE(journal);
  state_schema schema;
  keyed_store<std::string> store;
  // A budget of zero: every clean key is evicted after each commit and read back from the
  // journal when it is used again.
  store.attach(&*journal, &schema, 0);
  timer_book timers;
  auto commit = [&] {
    commit_batch cb;
    store.collect(cb.changes);
    cb.deferred = true;
    REQUIRE(!journal->commit(cb));
  };
  auto compact = [&] {
    REQUIRE(!journal->compact(4));
    store.compacted();
  };
  auto run = [&](const std::string& key, auto fn) {
    keyed_context<std::string> ctx{key, store, timers, no_time};
    fn(ctx);
    store.done_with(key, ctx.slot(), ctx.cleared());
  };
  run("a", [](auto& ctx) { ctx.template value<int>("v").set(1); });
  commit();
  compact();
  CHECK(store.find("a") == nullptr);
  run("a", [](auto& ctx) {
    CHECK(ctx.template value<int>("v").get() == 1);
    ctx.template value<int>("v").clear();
  });
  commit();
  // The journal's row still says 1 until the compaction; the store must not read it.
  run("a", [](auto&) {});
  run("a", [](auto& ctx) { CHECK_FALSE(ctx.template value<int>("v").exists()); });
  run("b", [](auto& ctx) {
    ctx.template value<int>("v").set(2);
    ctx.template list<int>("l").add(5);
  });
  commit();
  compact();
  run("b", [](auto& ctx) { ctx.clear(); });
  commit();
  run("b", [](auto& ctx) {
    CHECK_FALSE(ctx.template value<int>("v").exists());
    CHECK(ctx.template list<int>("l").size() == 0);
  });
  commit();
  compact();
  CHECK(store.key_count() == 0);
  run("a", [](auto& ctx) { CHECK_FALSE(ctx.template value<int>("v").exists()); });
  run("b", [](auto& ctx) { CHECK(ctx.template list<int>("l").size() == 0); });
  auto rows = journal->key_count();
  REQUIRE(rows);
  CHECK(*rows == 0);
}
