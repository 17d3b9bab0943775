#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "eddy/io/dead_letters.hpp"
#include "eddy/io/line_reader.hpp"
#include "eddy/io/sinks.hpp"
#include "eddy/io/sources.hpp"
#include "support/temp_dir.hpp"

using namespace eddy;
namespace fs = std::filesystem;
using eddy::test::temp_dir;

namespace io_test {

struct reading {
  std::string sensor;
  int64_t value = 0;

  bool operator==(const reading&) const = default;
  bool operator<(const reading& other) const {
    return value < other.value;
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(reading, sensor, value)

} // namespace io_test

using io_test::reading;

namespace {

void write_file(const fs::path& path, const std::string& content) {
  std::ofstream out{path, std::ios::binary};
  REQUIRE(out);
  out << content;
}

std::vector<std::string> read_lines(const fs::path& path) {
  std::ifstream in{path, std::ios::binary};
  REQUIRE_MESSAGE(in, "cannot read " << path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  return lines;
}

instance_context make_context(dead_letter_log& dlq, uint32_t index = 0, uint32_t instances = 1) {
  instance_context ctx;
  ctx.job = "io";
  ctx.node = "readings";
  ctx.index = index;
  ctx.instances = instances;
  ctx.dead_letters = &dlq;
  return ctx;
}

std::string reading_line(int64_t value) {
  return R"({"sensor":"s)" + std::to_string(value % 4) + R"(","value":)" + std::to_string(value) +
         "}";
}

/// Polls `src` until exhausted, `max` records at a time.
template <class T>
std::vector<T> drain(source_logic& src, size_t max = 1000) {
  std::vector<T> result;
  record_buffer_of<T> buf;
  for (int guard = 0; guard < 100000; ++guard) {
    buf.clear();
    bool more = src.poll(buf, max);
    CHECK(buf.size() <= max);
    for (auto& r : buf.records) {
      result.push_back(r.value);
    }
    if (!more) {
      return result;
    }
  }
  FAIL("source did not end");
  return result;
}

} // namespace

// -- line_reader -------------------------------------------------------------------------

TEST_CASE("line_reader returns lines without newlines and tracks line numbers and offsets") {
  temp_dir dir;
  auto path = dir / "lines.txt";
  write_file(path, "ab\ncde\r\n\nlast");
  line_reader reader{path};
  CHECK(reader.line_number() == 0);
  CHECK(reader.offset() == 0);

  std::string line;
  REQUIRE(reader.next(line));
  CHECK(line == "ab");
  CHECK(reader.line_number() == 1);
  CHECK(reader.offset() == 3);

  REQUIRE(reader.next(line));
  CHECK(line == "cde");
  CHECK(reader.line_number() == 2);
  CHECK(reader.offset() == 8);

  REQUIRE(reader.next(line));
  CHECK(line.empty());
  CHECK(reader.line_number() == 3);
  CHECK(reader.offset() == 9);

  // The last line has no newline.
  REQUIRE(reader.next(line));
  CHECK(line == "last");
  CHECK(reader.line_number() == 4);
  CHECK(reader.offset() == 13);

  CHECK_FALSE(reader.next(line));
  CHECK_FALSE(reader.next(line));
  CHECK(reader.line_number() == 4);
  CHECK(reader.offset() == fs::file_size(path));
}

TEST_CASE("line_reader on an empty file ends at once") {
  temp_dir dir;
  auto path = dir / "empty.txt";
  write_file(path, "");
  line_reader reader{path};
  std::string line = "untouched";
  CHECK_FALSE(reader.next(line));
  CHECK(reader.line_number() == 0);
  CHECK(reader.offset() == 0);
}

TEST_CASE("line_reader keeps embedded NUL bytes and reads very long lines") {
  temp_dir dir;
  auto path = dir / "odd.txt";
  std::string with_nul{"a\0b", 3};
  std::string long_line(1 << 20, 'x');
  write_file(path, with_nul + "\n" + long_line + "\n");
  line_reader reader{path};
  std::string line;
  REQUIRE(reader.next(line));
  CHECK(line == with_nul);
  REQUIRE(reader.next(line));
  CHECK(line.size() == long_line.size());
  CHECK(reader.offset() == 4 + long_line.size() + 1);
}

TEST_CASE("opening a missing file throws naming the path") {
  temp_dir dir;
  auto missing = dir / "does-not-exist.jsonl";
  CHECK_THROWS_WITH_AS(line_reader{missing}, doctest::Contains(missing.string().c_str()),
                       std::runtime_error);
  dead_letter_log dlq{dir / "dlq.jsonl"};
  auto def = jsonl_source<reading>(missing);
  CHECK_THROWS_WITH_AS(def.make(make_context(dlq)), doctest::Contains(missing.string().c_str()),
                       std::runtime_error);
}

TEST_CASE("a directory opened as a line source yields no lines") {
  temp_dir dir;
  // fopen accepts a directory on Linux; the first read fails, which ends the input.
  line_reader reader{dir.path()};
  std::string line;
  CHECK_FALSE(reader.next(line));
  CHECK(reader.line_number() == 0);
}

// -- jsonl source ----------------------------------------------------------------------------

TEST_CASE("jsonl source emits good lines and dead-letters a malformed one with its details") {
  temp_dir dir;
  auto path = dir / "in.jsonl";
  write_file(path, reading_line(1) + "\n" + reading_line(2) + "\n" + R"({"sensor":"s3","value":)" +
                     "\n" + reading_line(4) + "\n");
  dead_letter_log dlq{dir / "dead" / "letters.jsonl"};
  CHECK_FALSE(fs::exists(dlq.path()));

  jsonl_source_logic<reading> src{path, make_context(dlq), false};
  CHECK_FALSE(src.blocking());
  auto values = drain<reading>(src);
  REQUIRE(values.size() == 3);
  CHECK(values[0] == reading{"s1", 1});
  CHECK(values[1] == reading{"s2", 2});
  CHECK(values[2] == reading{"s0", 4});

  CHECK(dlq.count() == 1);
  CHECK(dlq.count("readings") == 1);
  CHECK(dlq.count("other") == 0);
  dlq.flush();
  auto lines = read_lines(dlq.path());
  REQUIRE(lines.size() == 1);
  auto letter = nlohmann::json::parse(lines[0]);
  CHECK(letter.at("source") == "readings");
  CHECK(letter.at("line") == 3);
  CHECK(letter.at("raw") == R"({"sensor":"s3","value":)");
  auto reason = letter.at("reason").get<std::string>();
  CAPTURE(reason);
  CHECK(reason.find("parse error") != std::string::npos);
  CHECK(src.position() == "line 4, byte " + std::to_string(fs::file_size(path)));
}

TEST_CASE("jsonl source dead-letters mistyped lines with the missing field or wrong type") {
  temp_dir dir;
  auto path = dir / "in.jsonl";
  write_file(path, std::string{R"({"sensor":"a"})"} + "\n" + R"({"sensor":"b","value":"x"})" +
                     "\n" + "[1,2]\n" + reading_line(7) + "\n");
  dead_letter_log dlq{dir / "dlq.jsonl"};
  jsonl_source_logic<reading> src{path, make_context(dlq), false};
  auto values = drain<reading>(src);
  REQUIRE(values.size() == 1);
  CHECK(values[0].value == 7);
  CHECK(dlq.count() == 3);
  dlq.flush();
  auto lines = read_lines(dlq.path());
  REQUIRE(lines.size() == 3);
  auto first = nlohmann::json::parse(lines[0]);
  CHECK(first.at("line") == 1);
  CHECK(first.at("reason").get<std::string>().find("'value'") != std::string::npos);
  auto second = nlohmann::json::parse(lines[1]);
  CHECK(second.at("line") == 2);
  CHECK(second.at("reason").get<std::string>().find("type must be number") != std::string::npos);
  CHECK(nlohmann::json::parse(lines[2]).at("line") == 3);
}

// A line whose number overflows a double (1e999) goes to the dead-letter file instead of
// stopping the source.
TEST_CASE("jsonl source dead-letters a line with a number too large for a double") {
  temp_dir dir;
  auto path = dir / "in.jsonl";
  write_file(path, reading_line(1) + "\n" + R"({"sensor":"a","value":1e999})" + "\n" +
                     reading_line(3) + "\n");
  dead_letter_log dlq{dir / "dlq.jsonl"};
  jsonl_source_logic<reading> src{path, make_context(dlq), false};
  std::vector<reading> values;
  CHECK_NOTHROW(values = drain<reading>(src));
  CHECK(values.size() == 2);
  CHECK(dlq.count() == 1);
}

TEST_CASE("jsonl source skips blank lines without dead-lettering them") {
  temp_dir dir;
  auto path = dir / "in.jsonl";
  write_file(path, "\n" + reading_line(1) + "\r\n   \n\t\r\n" + reading_line(2));
  dead_letter_log dlq{dir / "dlq.jsonl"};
  jsonl_source_logic<reading> src{path, make_context(dlq), false};
  auto values = drain<reading>(src);
  REQUIRE(values.size() == 2);
  CHECK(values[1].value == 2);
  CHECK(dlq.count() == 0);
  // No dead letter, no file.
  std::error_code ec;
  CHECK_FALSE(fs::exists(dlq.path(), ec));
}

TEST_CASE("jsonl source poll appends at most max records and reports the end") {
  temp_dir dir;
  auto path = dir / "in.jsonl";
  std::string content;
  for (int i = 0; i < 10; ++i) {
    content += reading_line(i) + "\n";
  }
  write_file(path, content);
  dead_letter_log dlq{dir / "dlq.jsonl"};
  jsonl_source_logic<reading> src{path, make_context(dlq), false};

  record_buffer_of<reading> buf;
  CHECK(src.poll(buf, 0));
  CHECK(buf.empty());
  CHECK(src.poll(buf, 4));
  CHECK(buf.size() == 4);
  CHECK(src.position() == "line 4, byte " + std::to_string(4 * (reading_line(0).size() + 1)));
  CHECK(src.poll(buf, 4));
  CHECK(buf.size() == 8);
  // Two left: the call that hits the end returns false but its records count.
  CHECK_FALSE(src.poll(buf, 4));
  CHECK(buf.size() == 10);
  for (int i = 0; i < 10; ++i) {
    CHECK(buf.records[i].value.value == i);
    CHECK(buf.records[i].time == no_time);
  }
  CHECK_FALSE(src.poll(buf, 4));
  CHECK(buf.size() == 10);
}

TEST_CASE("parallel jsonl source instances split the lines without overlap or loss") {
  temp_dir dir;
  auto path = dir / "in.jsonl";
  constexpr int lines = 100;
  std::string content;
  for (int i = 0; i < lines; ++i) {
    // Line 50 (value 49) is malformed; one instance must dead-letter it, exactly once.
    content += (i == 49 ? std::string{"{broken"} : reading_line(i)) + "\n";
  }
  write_file(path, content);
  dead_letter_log dlq{dir / "dlq.jsonl"};

  constexpr uint32_t instances = 3;
  std::vector<reading> all;
  std::vector<size_t> sizes;
  for (uint32_t i = 0; i < instances; ++i) {
    jsonl_source_logic<reading> src{path, make_context(dlq, i, instances), false};
    auto part = drain<reading>(src, 7);
    sizes.push_back(part.size());
    for (auto& r : part) {
      // Instance i takes the lines whose 0-based number is i mod 3.
      CHECK(r.value % instances == i);
    }
    all.insert(all.end(), part.begin(), part.end());
  }
  CHECK(sizes == std::vector<size_t>{34, 32, 33});
  std::sort(all.begin(), all.end());
  std::vector<reading> expected;
  for (int i = 0; i < lines; ++i) {
    if (i != 49) {
      expected.push_back(reading{"s" + std::to_string(i % 4), i});
    }
  }
  CHECK(all == expected);
  CHECK(dlq.count() == 1);
  dlq.flush();
  auto letters = read_lines(dlq.path());
  REQUIRE(letters.size() == 1);
  CHECK(nlohmann::json::parse(letters[0]).at("line") == 50);
}

TEST_CASE("more jsonl source instances than lines leave the extra instances empty") {
  temp_dir dir;
  auto path = dir / "in.jsonl";
  write_file(path, reading_line(0) + "\n" + reading_line(1) + "\n");
  dead_letter_log dlq{dir / "dlq.jsonl"};
  size_t total = 0;
  for (uint32_t i = 0; i < 5; ++i) {
    jsonl_source_logic<reading> src{path, make_context(dlq, i, 5), false};
    auto part = drain<reading>(src);
    CHECK(part.size() == (i < 2 ? 1u : 0u));
    total += part.size();
  }
  CHECK(total == 2);
}

TEST_CASE("jsonl_source creates instances through its factory") {
  temp_dir dir;
  auto path = dir / "in.jsonl";
  write_file(path, reading_line(5) + "\n");
  dead_letter_log dlq{dir / "dlq.jsonl"};
  auto def = jsonl_source<reading>(path);
  CHECK(def.parallelism_max == UINT32_MAX);
  auto src = def.make(make_context(dlq));
  REQUIRE(src != nullptr);
  CHECK_FALSE(src->blocking());
  auto values = drain<reading>(*src);
  REQUIRE(values.size() == 1);
  CHECK(values[0].value == 5);

  auto in = stdin_source<reading>();
  CHECK(in.parallelism_max == 1);
}

// -- generator ---------------------------------------------------------------------------

namespace {

std::multiset<uint64_t> generate(uint64_t count, uint32_t instances, size_t max) {
  std::multiset<uint64_t> result;
  auto def = generator_source(count, [](uint64_t i) { return i * 3 + 1; });
  dead_letter_log unused{"/nonexistent-eddy-unit/dlq.jsonl"};
  for (uint32_t i = 0; i < instances; ++i) {
    auto src = def.make(make_context(unused, i, instances));
    for (auto v : drain<uint64_t>(*src, max)) {
      result.insert(v);
    }
  }
  return result;
}

} // namespace

TEST_CASE("generator yields the same records with 1 or 2 instances") {
  auto one = generate(1000, 1, 64);
  auto two = generate(1000, 2, 64);
  REQUIRE(one.size() == 1000);
  CHECK(one == two);
  CHECK(*one.begin() == 1);
  CHECK(*one.rbegin() == 999 * 3 + 1);
  // No value appears twice.
  CHECK(std::set<uint64_t>(one.begin(), one.end()).size() == 1000);
  CHECK(generate(1000, 3, 7) == one);
  CHECK(generate(1000, 7, 1000) == one);
}

TEST_CASE("generator instances beyond the count emit nothing") {
  CHECK(generate(3, 8, 10).size() == 3);
  CHECK(generate(1, 3, 1) == std::multiset<uint64_t>{1});
}

TEST_CASE("generator poll stops exactly at the count") {
  auto def = generator_source(5, [](uint64_t i) { return static_cast<int>(i); });
  dead_letter_log unused{"/nonexistent-eddy-unit/dlq.jsonl"};
  auto src = def.make(make_context(unused));
  record_buffer_of<int> buf;
  CHECK(src->poll(buf, 3));
  CHECK(buf.size() == 3);
  // Exactly the rest: the source knows it is done.
  CHECK_FALSE(src->poll(buf, 2));
  CHECK(buf.size() == 5);
  CHECK_FALSE(src->poll(buf, 2));
  CHECK(buf.size() == 5);
  CHECK(src->position() == "sequence 5");
}

TEST_CASE("generator with count 0 is unbounded") {
  auto def = generator_source(0, [](uint64_t i) { return i; });
  dead_letter_log unused{"/nonexistent-eddy-unit/dlq.jsonl"};
  auto src = def.make(make_context(unused, 1, 2));
  record_buffer_of<uint64_t> buf;
  for (int round = 0; round < 10; ++round) {
    CHECK(src->poll(buf, 100));
  }
  REQUIRE(buf.size() == 1000);
  CHECK(buf.records.front().value == 1);
  CHECK(buf.records.back().value == 1999);
}

// -- sinks -----------------------------------------------------------------------------------

TEST_CASE("jsonl sink writes one JSON line per record") {
  temp_dir dir;
  auto path = dir / "out.jsonl";
  {
    auto sink = jsonl_sink<reading>(path).make(instance_context{});
    record_buffer_of<reading> buf;
    buf.records = {{{"a", 1}, no_time}, {{"b\nc", -2}, 5}};
    sink->write(buf);
    buf.records = {{{"d", 3}, no_time}};
    sink->write(buf);
    sink->flush();
    auto lines = read_lines(path);
    REQUIRE(lines.size() == 3);
    CHECK(lines[0] == R"({"sensor":"a","value":1})");
    CHECK(nlohmann::json::parse(lines[1]).get<reading>() == reading{"b\nc", -2});
    CHECK(lines[2] == R"({"sensor":"d","value":3})");
  }
  // A sink truncates an existing file.
  {
    auto sink = jsonl_sink<reading>(path).make(instance_context{});
    sink->flush();
  }
  CHECK(fs::file_size(path) == 0);
}

TEST_CASE("parallel jsonl sink instances write numbered files") {
  temp_dir dir;
  auto path = dir / "out.jsonl";
  auto def = jsonl_sink<int64_t>(path);
  for (uint32_t i = 0; i < 2; ++i) {
    instance_context ctx;
    ctx.index = i;
    ctx.instances = 2;
    auto sink = def.make(ctx);
    record_buffer_of<int64_t> buf;
    buf.records = {{static_cast<int64_t>(i), no_time}};
    sink->write(buf);
  }
  CHECK_FALSE(fs::exists(path));
  CHECK(read_lines(dir / "out.jsonl.0") == std::vector<std::string>{"0"});
  CHECK(read_lines(dir / "out.jsonl.1") == std::vector<std::string>{"1"});
}

TEST_CASE("a jsonl sink into a missing directory throws naming the path") {
  temp_dir dir;
  auto path = dir / "no" / "such" / "dir" / "out.jsonl";
  auto def = jsonl_sink<int64_t>(path);
  CHECK_THROWS_WITH_AS(def.make(instance_context{}), doctest::Contains(path.string().c_str()),
                       std::runtime_error);
}

TEST_CASE("a jsonl sink reports a full disk on flush") {
  if (!fs::exists("/dev/full")) {
    MESSAGE("no /dev/full here; skipped");
    return;
  }
  auto sink = jsonl_sink<std::string>("/dev/full").make(instance_context{});
  record_buffer_of<std::string> buf;
  buf.records = {{"x", no_time}};
  sink->write(buf);
  CHECK_THROWS_WITH_AS(sink->flush(), doctest::Contains("/dev/full"), std::runtime_error);
}

TEST_CASE("collector sink gathers records from several instances") {
  auto into = std::make_shared<collected<int>>();
  auto def = collector_sink(into);
  auto a = def.make(instance_context{});
  auto b = def.make(instance_context{});
  record_buffer_of<int> buf;
  buf.records = {{1, no_time}, {2, no_time}};
  a->write(buf);
  buf.records = {{3, no_time}};
  b->write(buf);
  CHECK(into->values() == std::vector<int>{1, 2, 3});
}

// -- dead letters ----------------------------------------------------------------------------

TEST_CASE("dead letter log counts per source and writes one JSON object per letter") {
  temp_dir dir;
  dead_letter_log dlq{dir / "nested" / "deeper" / "dlq.jsonl"};
  CHECK(dlq.count() == 0);
  CHECK(dlq.count("a") == 0);
  dlq.add(dead_letter{"a", 1, "raw 1", "bad"});
  dlq.add(dead_letter{"b", 2, "raw 2", "worse"});
  dlq.add(dead_letter{"a", 9, "", ""});
  CHECK(dlq.count() == 3);
  CHECK(dlq.count("a") == 2);
  CHECK(dlq.count("b") == 1);
  CHECK(dlq.count("") == 0);
  dlq.flush();
  auto lines = read_lines(dlq.path());
  REQUIRE(lines.size() == 3);
  auto first = nlohmann::json::parse(lines[0]);
  CHECK(first == nlohmann::json{{"source", "a"}, {"line", 1}, {"raw", "raw 1"}, {"reason", "bad"}});
  CHECK(nlohmann::json::parse(lines[2]).at("line") == 9);
}

TEST_CASE("dead letter log records raw bytes that are not valid UTF-8") {
  temp_dir dir;
  dead_letter_log dlq{dir / "dlq.jsonl"};
  dlq.add(dead_letter{"src", 4, std::string{"bad \xff\xfe bytes\nand newline"}, "parse error"});
  dlq.flush();
  auto lines = read_lines(dlq.path());
  REQUIRE(lines.size() == 1);
  auto letter = nlohmann::json::parse(lines[0]);
  auto raw = letter.at("raw").get<std::string>();
  CHECK(raw.rfind("bad ", 0) == 0);
  CHECK(raw.find("bytes\nand newline") != std::string::npos);
}

TEST_CASE("dead letter log that cannot write its file still counts") {
  // A path below a regular file can never be created.
  temp_dir dir;
  write_file(dir / "file", "x");
  dead_letter_log dlq{dir / "file" / "dlq.jsonl"};
  dlq.add(dead_letter{"src", 1, "raw", "reason"});
  dlq.add(dead_letter{"src", 2, "raw", "reason"});
  dlq.flush();
  CHECK(dlq.count() == 2);
  CHECK(dlq.count("src") == 2);
  std::error_code ec;
  CHECK_FALSE(fs::exists(dlq.path(), ec));
}

TEST_CASE("line_reader resumes at a saved offset with the same line numbers") {
  temp_dir dir;
  auto path = dir / "lines.txt";
  {
    std::ofstream out{path};
    out << "one\ntwo\nthree\nfour\n";
  }
  uint64_t offset = 0;
  uint64_t number = 0;
  {
    eddy::line_reader reader{path};
    std::string line;
    REQUIRE(reader.next(line));
    REQUIRE(reader.next(line));
    offset = reader.offset();
    number = reader.line_number();
  }
  eddy::line_reader again{path};
  again.seek(offset, number);
  std::string line;
  REQUIRE(again.next(line));
  CHECK(line == "three");
  CHECK(again.line_number() == 3);
  REQUIRE(again.next(line));
  CHECK(line == "four");
  CHECK_FALSE(again.next(line));
}

TEST_CASE("line_reader cannot seek on stdin") {
  eddy::line_reader reader{"-"};
  CHECK_THROWS_AS(reader.seek(10, 1), std::runtime_error);
}
