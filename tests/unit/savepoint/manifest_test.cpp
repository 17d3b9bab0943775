// Savepoints on disk (eddy/savepoint/manifest.hpp): the manifest round-trips and refuses what it
// cannot trust with a message naming the field; a finalized savepoint verifies, and any changed,
// truncated or missing file is reported; partial savepoints are listed as such, cleaned up, and
// a directory that is not a savepoint is never deleted.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eddy/core/error.hpp"
#include "eddy/savepoint/manifest.hpp"
#include "support/journal_support.hpp"
#include "support/temp_dir.hpp"

using namespace eddy;
namespace fs = std::filesystem;
using eddy::test::code_of;
using eddy::test::mentions;
using eddy::test::temp_dir;

namespace {

savepoint_manifest sample() {
  savepoint_manifest m;
  m.id = "wc-20261207T101500Z-7f3a";
  m.job = "wc";
  m.eddy_version = "0.1.0";
  m.created_at_ms = 1796638500000;
  m.trigger = "console";
  m.pause_ms = 3.5;
  m.partitions = 4;
  m.nodes = {{"lines", "source", 1, "", 0, {}},
             {"count",
              "keyed",
              4,
              "std::string",
              2,
              {{"n", "value<int64_t>"}, {"seen", "list<std::string>"}}},
             {"out", "sink", 1, "", 0, {}}};
  m.sources = {{"lines", true, {120345}, 1796638499000, "in.jsonl", 120345, 0xdeadbeef},
               {"gen", false, {7, 9}, std::nullopt, "", 0, 0}};
  m.sinks = {{"out", "counts.jsonl", 115904}};
  m.files = {{"count/p0.db", 0, 0, 10, 40}, {"count/p1.db", 0, 0, 12, 48}};
  return m;
}

void write_file(const fs::path& file, const std::string& bytes) {
  fs::create_directories(file.parent_path());
  std::ofstream out{file, std::ios::binary | std::ios::trunc};
  out << bytes;
}

/// A complete savepoint of sample() under `root`, its files holding `bytes` each.
fs::path finalized(const fs::path& root, const std::string& bytes = "journal bytes") {
  auto m = sample();
  auto partial = root / (m.id + std::string{savepoint_partial_suffix});
  for (const auto& f : m.files) {
    write_file(partial / f.path, bytes + f.path);
  }
  auto done = finalize_savepoint(partial, m);
  REQUIRE_MESSAGE(done, describe(done.error()));
  return *done;
}

} // namespace

TEST_SUITE_BEGIN("savepoint");

TEST_CASE("crc32c is the Castagnoli checksum") {
  // The check value of CRC-32C, and one continued over two pieces.
  CHECK(crc32c("123456789") == 0xe3069283U);
  CHECK(crc32c("56789", crc32c("1234")) == 0xe3069283U);
  CHECK(crc32c("") == 0);
  // The test vectors of RFC 3720 (B.4), longer than a word, split at every offset.
  std::string zeros(32, '\0');
  std::string ones(32, '\xff');
  std::string counting;
  for (int i = 0; i < 32; ++i) {
    counting += static_cast<char>(i);
  }
  CHECK(crc32c(zeros) == 0x8a9136aaU);
  CHECK(crc32c(ones) == 0x62a8ab43U);
  CHECK(crc32c(counting) == 0x46dd794eU);
  for (size_t cut = 0; cut <= counting.size(); ++cut) {
    CAPTURE(cut);
    auto head = std::string_view{counting}.substr(0, cut);
    auto tail = std::string_view{counting}.substr(cut);
    CHECK(crc32c(tail, crc32c(head)) == 0x46dd794eU);
  }
}

TEST_CASE("a manifest round-trips through its JSON, field for field") {
  auto m = sample();
  m.files[0].crc32c = 0x0000abcd;
  auto text = to_json(m);
  CHECK(text.find("\"crc32c\": \"0000abcd\"") != std::string::npos);
  auto back = parse_manifest(text, "sp/manifest.json");
  REQUIRE_MESSAGE(back, describe(back.error()));
  CHECK(to_json(*back) == text);
  CHECK(back->nodes[1].states[1].type == "list<std::string>");
  CHECK(back->nodes[1].state_version == 2);
  CHECK(back->sources[0].max_ts == 1796638499000);
  CHECK(!back->sources[1].max_ts);
  CHECK(back->sources[1].offsets == std::vector<uint64_t>{7, 9});
  CHECK(back->sources[0].input_crc32c == 0xdeadbeef);
  CHECK(back->sinks[0].length == 115904);
  CHECK(back->files[1].last_seq == 48);
}

TEST_CASE("a manifest it cannot trust is refused, naming the field") {
  auto where = fs::path{"sp/manifest.json"};
  auto refused = [&](const std::string& text, const std::string& why) {
    CAPTURE(text);
    auto m = parse_manifest(text, where);
    REQUIRE(!m);
    CHECK(code_of(m.error()) == errc::invalid_savepoint);
    CHECK(mentions(m.error(), "savepoint manifest sp/manifest.json"));
    CHECK(mentions(m.error(), why));
  };
  auto good = nlohmann::json::parse(to_json(sample()));
  refused("{not json", "it is not JSON");
  refused("[1, 2]", "it is not a JSON object");
  auto without = good;
  without.erase("job");
  refused(without.dump(), "job is missing");
  auto typed = good;
  typed["partitions"] = "four";
  refused(typed.dump(), "partitions has the wrong type (string)");
  auto crc = good;
  crc["files"][1]["crc32c"] = "xyz";
  refused(crc.dump(), "files[1].crc32c 'xyz' is not 8 hex digits");
  auto escape = good;
  escape["files"][0]["path"] = "../../etc/passwd";
  refused(escape.dump(), "file path '../../etc/passwd' is not relative to the savepoint");
  auto absolute = good;
  absolute["files"][0]["path"] = "/etc/passwd";
  refused(absolute.dump(), "is not relative to the savepoint");
  auto state = good;
  state["nodes"][1]["states"][0].erase("type");
  refused(state.dump(), "nodes[1].states[0].type is missing");
  auto newer = good;
  newer["format"] = savepoint_format_version + 1;
  refused(newer.dump(), "this Eddy reads up to format " + std::to_string(savepoint_format_version));
}

TEST_CASE("a finalized savepoint verifies; a changed, truncated or missing file does not") {
  temp_dir root;
  auto dir = finalized(root.path());
  CHECK(dir.filename() == sample().id);
  CHECK(!fs::exists(root / (sample().id + std::string{savepoint_partial_suffix})));
  auto m = read_savepoint(dir / savepoint_manifest_name);
  REQUIRE_MESSAGE(m, describe(m.error()));
  CHECK(m->files[0].bytes == std::string{"journal bytescount/p0.db"}.size());
  CHECK(m->files[0].crc32c == crc32c("journal bytescount/p0.db"));
  CHECK(m->bytes() == 2 * std::string{"journal bytescount/p0.db"}.size());
  auto ok = verify_savepoint(dir);
  REQUIRE_MESSAGE(ok, describe(ok.error()));
  CHECK(ok->problems.empty());
  CHECK(ok->manifest.id == sample().id);

  // One byte changed, same size.
  write_file(dir / "count/p0.db", "journal bytescount/p0.dB");
  // Truncated.
  write_file(dir / "count/p1.db", "journal");
  auto bad = verify_savepoint(dir);
  REQUIRE(bad);
  REQUIRE(bad->problems.size() == 2);
  CHECK(bad->problems[0].starts_with("count/p0.db: CRC32C "));
  CHECK(bad->problems[1] == "count/p1.db: 7 bytes, the manifest says 24");
  fs::remove(dir / "count/p1.db");
  bad = verify_savepoint(dir);
  REQUIRE(bad);
  CHECK(bad->problems[1] == "count/p1.db: missing or unreadable");
}

TEST_CASE("partial savepoints are listed as partial and cleaned up; other directories are kept") {
  temp_dir root;
  auto done = finalized(root.path());
  auto partial = root / "wc-later.partial";
  write_file(partial / "count/p0.db", "half");
  fs::create_directories(root / "notes");
  write_file(root / "notes" / "readme.txt", "mine");
  auto all = list_savepoints(root.path());
  REQUIRE_MESSAGE(all, describe(all.error()));
  REQUIRE(all->size() == 2);
  auto complete = std::find_if(all->begin(), all->end(), [](auto& e) { return e.complete; });
  REQUIRE(complete != all->end());
  CHECK(complete->dir == done);
  REQUIRE(complete->manifest);
  CHECK(complete->manifest->job == "wc");
  // A directory that is not a savepoint is never deleted, by name or by cleanup.
  auto refused = delete_savepoint(root / "notes");
  REQUIRE(refused);
  CHECK(mentions(refused, "is not a savepoint"));
  CHECK(mentions(refused, "nothing deleted"));
  auto removed = remove_partial_savepoints(root.path());
  REQUIRE_MESSAGE(removed, describe(removed.error()));
  CHECK(*removed == 1);
  CHECK(!fs::exists(partial));
  CHECK(fs::exists(root / "notes" / "readme.txt"));
  CHECK(!delete_savepoint(done / savepoint_manifest_name));
  CHECK(!fs::exists(done));
  auto none = list_savepoints(root / "missing");
  REQUIRE(none);
  CHECK(none->empty());
}

TEST_SUITE_END();
