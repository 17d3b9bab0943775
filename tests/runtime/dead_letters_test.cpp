// Malformed and mistyped input: the job completes, good records all arrive, and every bad
// line is in the dead-letter log (count and file) with source, line number, raw text and
// reason.

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "support.hpp"

namespace {

struct item {
  std::string name;
  int64_t qty = 0;
  friend bool operator==(const item&, const item&) = default;
  friend bool operator<(const item& a, const item& b) {
    return std::tie(a.name, a.qty) < std::tie(b.name, b.qty);
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(item, name, qty)

struct input_file {
  std::vector<std::string> lines;
  std::vector<item> good;
  /// 1-based line number -> raw text of the lines that must be rejected.
  std::map<uint64_t, std::string> bad;
};

/// Good lines with every kind of bad line in between, blank lines (skipped, not rejected),
/// a CRLF line, and a malformed last line without a newline.
input_file make_input() {
  input_file f;
  for (int i = 0; i < 600; ++i) {
    std::string text;
    bool bad = true;
    switch (i % 10) {
      case 1:
        text = "{\"name\": \"broken" + std::to_string(i); // unterminated
        break;
      case 3:
        text = R"({"name": "q)" + std::to_string(i) + R"(", "qty": "three"})"; // mistyped
        break;
      case 5:
        text = R"({"name": "m)" + std::to_string(i) + R"("})"; // missing field
        break;
      case 7:
        text = i % 20 == 7 ? "[1, 2, 3]" : "{\"name\": 7, \"qty\": 1}"; // wrong shapes
        break;
      case 9:
        text = i % 20 == 9 ? "" : "   \t"; // blank: skipped
        bad = false;
        break;
      default: {
        item it{"item" + std::to_string(i), i * 3};
        text = nlohmann::json(it).dump();
        if (i % 10 == 4) {
          text += "\r"; // CRLF line ending
        }
        f.good.push_back(it);
        bad = false;
      }
    }
    if (bad) {
      f.bad.emplace(f.lines.size() + 1, text);
    }
    f.lines.push_back(text);
  }
  f.lines.emplace_back("{\"name\": \"last\", \"qty\": ");
  f.bad.emplace(f.lines.size(), f.lines.back());
  std::sort(f.good.begin(), f.good.end());
  return f;
}

void write_without_final_newline(const std::filesystem::path& path,
                                 const std::vector<std::string>& lines) {
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  for (size_t i = 0; i < lines.size(); ++i) {
    out << lines[i] << (i + 1 < lines.size() ? "\n" : "");
  }
}

} // namespace

TEST_CASE("malformed and mistyped lines go to the dead-letter log and the good records arrive") {
  eddy::test::temp_dir dir;
  auto f = make_input();
  REQUIRE(f.bad.size() > 200);
  auto input = dir / "items.jsonl";
  write_without_final_newline(input, f.lines);

  for (uint32_t sources : {1u, 3u}) {
    INFO("source parallelism ", sources);
    auto opts = eddy::test::test_options(dir);
    opts.dead_letters = dir / ("dl-" + std::to_string(sources) + ".jsonl");
    opts.batch_events_max = 16;
    eddy::engine eng{opts, eddy::test::test_common(dir)};
    auto out = std::make_shared<eddy::collected<item>>();
    eddy::job_builder jb{"dead-letters"};
    jb.source("items", eddy::jsonl_source<item>(input))
      .parallelism(sources)
      .filter("all", [](const item&) { return true; })
      .sink("out", eddy::collector_sink(out));
    auto job = eddy::test::run_ok(eng, jb);

    auto got = out->values();
    std::sort(got.begin(), got.end());
    CHECK(got.size() == f.good.size());
    CHECK((got == f.good));

    CHECK(job->dead_letters().count() == f.bad.size());
    CHECK(job->dead_letters().count("items") == f.bad.size());
    CHECK(job->dead_letters().count("out") == 0);
    CHECK(job->dead_letters().path() == opts.dead_letters);

    REQUIRE(std::filesystem::exists(opts.dead_letters));
    auto letters = eddy::test::read_lines(opts.dead_letters);
    CHECK(letters.size() == f.bad.size());
    std::set<uint64_t> reported;
    for (const auto& text : letters) {
      INFO("dead letter: ", text);
      auto j = nlohmann::json::parse(text, nullptr, false);
      REQUIRE(j.is_object());
      REQUIRE(j.contains("source"));
      REQUIRE(j.contains("line"));
      REQUIRE(j.contains("raw"));
      REQUIRE(j.contains("reason"));
      CHECK(j["source"] == "items");
      auto line = j["line"].get<uint64_t>();
      CHECK(reported.insert(line).second);
      auto i = f.bad.find(line);
      REQUIRE_MESSAGE(i != f.bad.end(), "line ", line, " was reported but is not bad");
      CHECK(j["raw"].get<std::string>() == i->second);
      auto reason = j["reason"].get<std::string>();
      CHECK(!reason.empty());
      CHECK(reason.find('\n') == std::string::npos);
    }
    CHECK(reported.size() == f.bad.size());
  }
}

TEST_CASE("without a dead_letters option rejected lines go to deadletters.jsonl in the data dir") {
  eddy::test::temp_dir dir;
  auto input = dir / "in.jsonl";
  eddy::test::write_lines(input,
                          {R"({"name": "a", "qty": 1})", "nope", R"({"name": "b", "qty": 2})"});
  auto opts = eddy::test::test_options(dir);
  opts.dead_letters.clear();
  auto common = eddy::test::test_common(dir);
  common.data_dir = dir / "data";
  eddy::engine eng{opts, common};
  auto out = std::make_shared<eddy::collected<item>>();
  eddy::job_builder jb{"default-dl"};
  jb.source("items", eddy::jsonl_source<item>(input)).sink("out", eddy::collector_sink(out));
  auto job = eddy::test::run_ok(eng, jb);
  CHECK(out->values().size() == 2);
  CHECK(job->dead_letters().count() == 1);
  auto letters = eddy::test::read_lines(dir / "data" / "deadletters.jsonl");
  REQUIRE(letters.size() == 1);
  auto j = nlohmann::json::parse(letters[0]);
  CHECK(j["line"] == 2);
  CHECK(j["raw"] == "nope");
  CHECK(j["source"] == "items");
}

TEST_CASE("a job without bad input writes no dead-letter file") {
  eddy::test::temp_dir dir;
  auto input = dir / "in.jsonl";
  eddy::test::write_lines(input, {R"({"name": "a", "qty": 1})", R"({"name": "b", "qty": 2})"});
  auto opts = eddy::test::test_options(dir);
  eddy::engine eng{opts, eddy::test::test_common(dir)};
  auto out = std::make_shared<eddy::collected<item>>();
  eddy::job_builder jb{"clean"};
  jb.source("items", eddy::jsonl_source<item>(input)).sink("out", eddy::collector_sink(out));
  auto job = eddy::test::run_ok(eng, jb);
  CHECK(out->values().size() == 2);
  CHECK(job->dead_letters().count() == 0);
  CHECK(!std::filesystem::exists(opts.dead_letters));
}
