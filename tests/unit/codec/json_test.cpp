#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "eddy/codec/json.hpp"

using eddy::parse_json;
using eddy::to_json_line;

namespace json_test {

struct order {
  std::string id;
  int64_t amount = 0;
  double price = 0;
  bool paid = false;
  std::vector<std::string> tags;

  bool operator==(const order&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(order, id, amount, price, paid, tags)

struct not_codable {
  int x;
};

} // namespace json_test

using json_test::order;

static_assert(eddy::json_codable<order>);
static_assert(eddy::json_codable<int64_t>);
static_assert(eddy::json_codable<std::string>);
static_assert(!eddy::json_codable<json_test::not_codable>);

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("a struct survives to_json_line and parse_json unchanged") {
  order o{"o-1", -42, 9.5, true, {"a", "b c", "ü\"\n"}};
  auto line = to_json_line(o);
  // One line: embedded newlines are escaped.
  CHECK(line.find('\n') == std::string::npos);
  std::string reason;
  auto back = parse_json<order>(line, reason);
  REQUIRE_MESSAGE(back.has_value(), reason);
  CHECK(*back == o);
  CHECK(reason.empty());
}

TEST_CASE("parse_json reads fields in any order and ignores unknown fields") {
  std::string reason;
  auto o = parse_json<order>(
    R"({"tags":[],"paid":false,"price":1.25,"amount":7,"id":"x","extra":{"nested":[1,2]}})",
    reason);
  REQUIRE_MESSAGE(o.has_value(), reason);
  CHECK(o->id == "x");
  CHECK(o->amount == 7);
  CHECK(o->price == 1.25);
  CHECK(o->tags.empty());
}

TEST_CASE("parse_json accepts surrounding whitespace and a trailing carriage return") {
  std::string reason;
  auto v = parse_json<int64_t>("  12 \r", reason);
  REQUIRE_MESSAGE(v.has_value(), reason);
  CHECK(*v == 12);
}

TEST_CASE("malformed JSON gives nullopt and a reason with the parse error position") {
  for (std::string text :
       {std::string{R"({"id": "x", )"}, std::string{"{id: 1}"}, std::string{"[1, 2"},
        std::string{"nul"}, std::string{"{} trailing"}, std::string{"\"unterminated"}}) {
    CAPTURE(text);
    std::string reason;
    auto o = parse_json<order>(text, reason);
    CHECK_FALSE(o.has_value());
    CAPTURE(reason);
    CHECK(contains(reason, "parse error"));
    CHECK(contains(reason, "column"));
  }
}

TEST_CASE("an empty or blank text is malformed JSON") {
  for (std::string text : {std::string{}, std::string{"   "}}) {
    CAPTURE(text);
    std::string reason;
    CHECK_FALSE(parse_json<order>(text, reason).has_value());
    CAPTURE(reason);
    CHECK(contains(reason, "parse error"));
  }
}

TEST_CASE("a missing field gives nullopt and a reason naming the field") {
  std::string reason;
  auto o = parse_json<order>(R"({"id":"x","amount":1,"price":2,"tags":[]})", reason);
  CHECK_FALSE(o.has_value());
  CAPTURE(reason);
  CHECK(contains(reason, "'paid'"));
  CHECK(contains(reason, "not found"));
}

TEST_CASE("a field of the wrong type gives nullopt and a reason naming both types") {
  std::string reason;
  auto o =
    parse_json<order>(R"({"id":"x","amount":"many","price":2,"paid":true,"tags":[]})", reason);
  CHECK_FALSE(o.has_value());
  CAPTURE(reason);
  CHECK(contains(reason, "type must be number, but is string"));
}

TEST_CASE("a wrongly typed array element gives nullopt") {
  std::string reason;
  auto o =
    parse_json<order>(R"({"id":"x","amount":1,"price":2,"paid":true,"tags":["a",3]})", reason);
  CHECK_FALSE(o.has_value());
  CAPTURE(reason);
  CHECK(contains(reason, "type must be string, but is number"));
}

TEST_CASE("valid JSON that is not an object is rejected for a struct") {
  for (std::string text :
       {std::string{"42"}, std::string{"[]"}, std::string{"null"}, std::string{R"("order")"}}) {
    CAPTURE(text);
    std::string reason;
    CHECK_FALSE(parse_json<order>(text, reason).has_value());
    CHECK_FALSE(reason.empty());
  }
}

TEST_CASE("a reason left over from an earlier failure does not make a success fail") {
  std::string reason;
  REQUIRE_FALSE(parse_json<int64_t>("x", reason).has_value());
  REQUIRE_FALSE(reason.empty());
  auto v = parse_json<int64_t>("5", reason);
  REQUIRE(v.has_value());
  CHECK(*v == 5);
}

TEST_CASE("to_json_line writes compact JSON that parses as the same value") {
  CHECK(to_json_line(int64_t{-3}) == "-3");
  CHECK(to_json_line(std::string{"a\"b"}) == R"("a\"b")");
  order o{"id", 1, 0.5, false, {}};
  CHECK(to_json_line(o) == R"({"amount":1,"id":"id","paid":false,"price":0.5,"tags":[]})");
}

TEST_CASE("to_json_line refuses a string that is not valid UTF-8") {
  // nlohmann-json's strict dump: a truncated multi-byte sequence is an error, not a broken
  // line in the output.
  CHECK_THROWS_AS(to_json_line(std::string{"caf\xc3"}), nlohmann::json::type_error);
}

TEST_CASE("parse_json rejects a JSON string holding invalid UTF-8") {
  std::string reason;
  CHECK_FALSE(parse_json<std::string>("\"caf\xc3\"", reason).has_value());
  CAPTURE(reason);
  CHECK(contains(reason, "UTF-8"));
}

// A number literal outside the range of double (e.g. 1e999) makes nlohmann-json throw
// out_of_range.406 rather than parse_error; parse_json must still return nullopt with a
// reason. The CHECK_NOTHROW keeps a regression an assertion, not a crash.
TEST_CASE("a number too large for a double is malformed input, not an exception") {
  for (std::string text : {std::string{R"({"id":"x","amount":1,"price":1e999,"paid":true,)"
                                       R"("tags":[]})"},
                           std::string{"-1e400"}}) {
    CAPTURE(text);
    std::optional<order> o;
    std::string reason;
    CHECK_NOTHROW(o = parse_json<order>(text, reason));
    CHECK_FALSE(o.has_value());
    CAPTURE(reason);
    CHECK(contains(reason, "overflow"));
  }
}
