#include <doctest/doctest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <caf/deep_to_string.hpp>
#include <caf/meta/type_name.hpp>
#include <nlohmann/json.hpp>

#include "eddy/state/keyed_state.hpp"

using namespace eddy;
using json = nlohmann::json;

namespace {

/// A user type that CAF can store (through `inspect`) but that has no JSON codec.
struct point {
  int32_t x = 0;
  int32_t y = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, point& p) {
  return f(caf::meta::type_name("point"), p.x, p.y);
}

/// A user type with a JSON codec.
struct visit {
  std::string page;
  int64_t ms = 0;
};

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(visit, page, ms)

/// The message of the std::invalid_argument that `f` throws (fails the test if none).
template <class F>
std::string invalid_argument_of(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  FAIL("no std::invalid_argument thrown");
  return {};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

// -- rendering cells ----------------------------------------------------------------------

TEST_CASE("value_state renders its value as JSON and null when absent") {
  value_state<int64_t> n;
  CHECK(n.to_json().is_null());
  n.set(-42);
  CHECK(n.to_json() == json(-42));
  value_state<std::string> s;
  s.set("h\u00e9llo");
  CHECK(s.to_json() == json("h\u00e9llo"));
  value_state<visit> v;
  v.set(visit{"/home", 12});
  CHECK(v.to_json() == json{{"page", "/home"}, {"ms", 12}});
  value_state<std::vector<double>> xs;
  xs.set({1.5, 2});
  CHECK(xs.to_json() == json{1.5, 2.0});
}

TEST_CASE("value_state is set from JSON and cleared by null") {
  value_state<int64_t> n;
  n.from_json(json(7));
  CHECK(n.get() == 7);
  n.from_json(json(nullptr));
  CHECK_FALSE(n.exists());
  value_state<visit> v;
  v.from_json(json{{"page", "/a"}, {"ms", 3}});
  CHECK(v.get().page == "/a");
  CHECK(v.get().ms == 3);
  // What to_json renders, from_json reads back.
  value_state<visit> copy;
  copy.from_json(v.to_json());
  CHECK(copy.get().page == "/a");
  CHECK(copy.get().ms == 3);
}

TEST_CASE("value_state rejects a value of the wrong shape, naming expected and given, and keeps "
          "its value") {
  value_state<int64_t> n;
  n.set(5);
  auto text = invalid_argument_of([&] { n.from_json(json("ten")); });
  CHECK(contains(text, "expected"));
  CHECK(contains(text, "got string \"ten\""));
  CHECK(n.get() == 5);
  // nlohmann would truncate 1.5 and wrap -1 around; neither is an integer of the type.
  CHECK(contains(invalid_argument_of([&] { n.from_json(json(1.5)); }), "got number 1.5"));
  value_state<uint8_t> small;
  CHECK(contains(invalid_argument_of([&] { small.from_json(json(300)); }), "got number 300"));
  CHECK(contains(invalid_argument_of([&] { small.from_json(json(-1)); }), "got number -1"));
  small.from_json(json(255));
  CHECK(small.get() == 255);
  value_state<int8_t> tiny;
  CHECK_THROWS_AS(tiny.from_json(json(-129)), std::invalid_argument);
  tiny.from_json(json(-128));
  CHECK(tiny.get() == -128);
  value_state<visit> v;
  auto missing = invalid_argument_of([&] { v.from_json(json{{"page", "/a"}}); });
  CHECK(contains(missing, "got object"));
  CHECK(contains(missing, "ms"));
  CHECK_FALSE(v.exists());
  value_state<bool> flag;
  CHECK_THROWS_AS(flag.from_json(json(1)), std::invalid_argument);
}

TEST_CASE("value_state of a type without a JSON codec renders through its inspect and cannot be "
          "set from JSON") {
  value_state<point> p;
  CHECK(p.to_json().is_null());
  p.set(point{3, -4});
  auto rendered = p.to_json();
  REQUIRE(rendered.is_string());
  CHECK(rendered.get<std::string>() == caf::deep_to_string(point{3, -4}));
  CHECK(rendered.get<std::string>() == "point(3, -4)");
  // The cell still round-trips through its binary encoding, which is what the journal keeps.
  std::string bytes;
  p.encode(bytes);
  value_state<point> back;
  back.decode(bytes);
  CHECK(back.to_json() == rendered);
  auto text = invalid_argument_of([&] { p.from_json(json("point(1, 2)")); });
  CHECK(contains(text, "has no JSON codec"));
  CHECK(contains(text, "point"));
  CHECK(p.get().x == 3);
  // Clearing needs no codec.
  p.from_json(json(nullptr));
  CHECK_FALSE(p.exists());
}

TEST_CASE("map_state with string keys renders an object and reads one back") {
  map_state<std::string, int64_t> m;
  CHECK(m.to_json() == json::object());
  m.put("pear", 2);
  m.put("apple", 5);
  CHECK(m.to_json() == json{{"apple", 5}, {"pear", 2}});
  map_state<std::string, int64_t> back;
  back.from_json(m.to_json());
  CHECK(back.entries() == m.entries());
  back.from_json(json(nullptr));
  CHECK(back.empty());

  auto text = invalid_argument_of([&] { m.from_json(json::array({json::array({"a", 1})})); });
  CHECK(contains(text, "expected an object"));
  CHECK(contains(text, "got array"));
  // A bad value anywhere leaves the whole map as it was.
  CHECK_THROWS_AS(m.from_json(json{{"apple", 1}, {"fig", "x"}}), std::invalid_argument);
  CHECK(m.size() == 2);
  CHECK(*m.find("apple") == 5);
}

TEST_CASE("map_state with other keys renders [key, value] pairs and reads them back") {
  map_state<int64_t, std::string> m;
  CHECK(m.to_json() == json::array());
  m.put(10, "ten");
  m.put(-1, "minus one");
  CHECK(m.to_json() == json::array({json::array({-1, "minus one"}), json::array({10, "ten"})}));
  map_state<int64_t, std::string> back;
  back.from_json(m.to_json());
  CHECK(back.entries() == m.entries());

  auto object = invalid_argument_of([&] { m.from_json(json{{"10", "ten"}}); });
  CHECK(contains(object, "expected an array of [key, value] pairs"));
  CHECK(contains(object, "got object"));
  auto triple = invalid_argument_of([&] { m.from_json(json::array({json::array({1, "a", 2})})); });
  CHECK(contains(triple, "expected a [key, value] pair"));
  CHECK_THROWS_AS(m.from_json(json::array({json::array({"one", "a"})})), std::invalid_argument);
  CHECK(m.size() == 2);
}

TEST_CASE("list_state renders an array and reads one back, rejecting other shapes") {
  list_state<std::string> l;
  CHECK(l.to_json() == json::array());
  l.add("b");
  l.add("a");
  CHECK(l.to_json() == json{"b", "a"});
  list_state<std::string> back;
  back.from_json(l.to_json());
  CHECK(back.get() == l.get());
  CHECK(contains(invalid_argument_of([&] { l.from_json(json("b")); }), "expected an array"));
  CHECK_THROWS_AS(l.from_json(json{"c", 1}), std::invalid_argument);
  CHECK(l.get() == std::vector<std::string>{"b", "a"});
  l.from_json(json(nullptr));
  CHECK(l.empty());
  list_state<point> points;
  points.add(point{1, 2});
  CHECK(points.to_json() == json{"point(1, 2)"});
  CHECK(
    contains(invalid_argument_of([&] { points.from_json(json{"point(1, 2)"}); }), "no JSON codec"));
}

// -- the catalog of state types -------------------------------------------------------------

TEST_CASE("state_catalog knows each name with one type and renders stored bytes through it") {
  state_catalog catalog;
  CHECK(catalog.names().empty());
  CHECK_FALSE(catalog.find("count"));
  catalog.add<value_state<int64_t>>("count");
  catalog.add<map_state<std::string, int64_t>>("words");
  catalog.add<value_state<int64_t>>("count");
  CHECK(catalog.names() == std::vector<std::string>{"count", "words"});
  auto e = catalog.find("count");
  REQUIRE(e);
  CHECK(*e->type == typeid(value_state<int64_t>));
  CHECK(contains(e->type_name, "value_state"));
  auto cell = e->make();
  CHECK(cell->empty());

  value_state<int64_t> n;
  n.set(99);
  std::string bytes;
  n.encode(bytes);
  CHECK(catalog.render("count", bytes) == json(99));
  map_state<std::string, int64_t> m;
  m.put("w", 2);
  m.encode(bytes);
  CHECK(catalog.render("words", bytes) == json{{"w", 2}});

  auto text = [&] {
    try {
      catalog.add<value_state<std::string>>("count");
    } catch (const std::logic_error& err) {
      return std::string{err.what()};
    }
    return std::string{};
  }();
  CHECK(contains(text, "'count'"));
  CAPTURE(text);
  CHECK(contains(text, "value_state<std::string>"));
  CHECK(*catalog.find("count")->type == typeid(value_state<int64_t>));
}

TEST_CASE("state_catalog renders unknown names and bytes that do not decode as undecoded, saying "
          "why") {
  state_catalog catalog;
  auto unknown = catalog.render("seen", "abc");
  CHECK(unknown["undecoded_bytes"] == 3);
  CHECK(contains(unknown["why"].get<std::string>(), "'seen' has not been used since the job"));
  CHECK(contains(unknown["why"].get<std::string>(), "declare_state"));
  catalog.add<value_state<int64_t>>("count");
  auto bad = catalog.render("count", "x");
  CHECK(bad["undecoded_bytes"] == 1);
  CHECK(contains(bad["why"].get<std::string>(), "cannot decode it as value_state<long>"));
}

TEST_CASE("state_catalog may be filled and read from several threads at once") {
  state_catalog catalog;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&catalog] {
      for (int i = 0; i < 200; ++i) {
        catalog.add<value_state<int64_t>>("s" + std::to_string(i % 50));
        (void) catalog.find("s" + std::to_string((i * 7) % 50));
        (void) catalog.names();
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  CHECK(catalog.names().size() == 50);
}

TEST_CASE("state_registry records a name's first use in its catalog, and a clash with the "
          "catalog registers nothing") {
  state_catalog catalog;
  catalog.add<value_state<std::string>>("tag");
  state_registry reg;
  reg.set_catalog(&catalog);
  CHECK(reg.id_of("count", typeid(value_state<int64_t>), &make_cell<value_state<int64_t>>) == 0);
  REQUIRE(catalog.find("count"));
  CHECK(*catalog.find("count")->type == typeid(value_state<int64_t>));
  // Another partition used "tag" with another type: the job is wrong.
  CHECK_THROWS_AS(reg.id_of("tag", typeid(value_state<int64_t>), &make_cell<value_state<int64_t>>),
                  std::logic_error);
  CHECK(reg.size() == 1);
  // Without a factory (nothing to make cells with) the catalog is left alone.
  CHECK(reg.id_of("plain", typeid(value_state<int64_t>)) == 1);
  CHECK_FALSE(catalog.find("plain"));
}
