// Keyed counting end to end: sentences -> split (flat_map) -> key_by word -> a keyed function
// with value_state<int64_t> emitting (word, count) per update -> collector. The reference is
// computed directly from the generator; the job must produce the same result at every
// operator parallelism, partition count and batch/credit size.

#include <algorithm>
#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "support.hpp"

namespace {

struct line {
  std::string text;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(line, text)

struct word_count {
  std::string word;
  int64_t count = 0;
  friend bool operator==(const word_count&, const word_count&) = default;
  friend bool operator<(const word_count& a, const word_count& b) {
    return std::tie(a.word, a.count) < std::tie(b.word, b.count);
  }
};

uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// Sentence i: 1..4 words from a skewed 40-word vocabulary, plus now and then a word that
/// occurs once (many single-update keys).
std::string sentence(uint64_t i) {
  std::string text;
  auto words = 1 + mix(i) % 4;
  for (uint64_t j = 0; j < words; ++j) {
    auto h = mix(i * 8 + j + 1);
    std::string w;
    if (h % 211 == 0) {
      w = "once" + std::to_string(i);
    } else {
      auto r = h % 1000;
      w = "w" + std::to_string(r * r / 25'000);
    }
    text += (j == 0 ? "" : " ") + w;
  }
  return text;
}

constexpr uint64_t sentence_count = 5'000;

std::map<std::string, int64_t> reference_counts() {
  std::map<std::string, int64_t> result;
  for (uint64_t i = 0; i < sentence_count; ++i) {
    std::istringstream in{sentence(i)};
    for (std::string w; in >> w;) {
      ++result[w];
    }
  }
  return result;
}

void split(const line& l, eddy::collector<std::string>& out) {
  std::istringstream in{l.text};
  for (std::string w; in >> w;) {
    out.emit(std::move(w));
  }
}

struct job_config {
  uint32_t split_parallelism = 1;
  uint32_t partitions = 1;
  uint32_t sink_parallelism = 1;
  /// Read the sentences from a JSONL file with this many source instances (0: generator).
  uint32_t file_sources = 0;
};

std::string to_string(const job_config& c) {
  return "split_parallelism=" + std::to_string(c.split_parallelism) +
         " partitions=" + std::to_string(c.partitions) +
         " sink_parallelism=" + std::to_string(c.sink_parallelism) +
         " file_sources=" + std::to_string(c.file_sources);
}

std::vector<word_count> run_count(eddy::engine& eng, const job_config& c,
                                  const std::filesystem::path& input) {
  auto out = std::make_shared<eddy::collected<word_count>>();
  eddy::job_builder jb{"keyed-count"};
  jb.partitions(c.partitions);
  auto lines = c.file_sources > 0
                 ? jb.source("lines", eddy::jsonl_source<line>(input)).parallelism(c.file_sources)
                 : jb.source("lines", eddy::generator_source(sentence_count, [](uint64_t i) {
                               return line{sentence(i)};
                             }));
  lines.flat_map<std::string>("split", split)
    .parallelism(c.split_parallelism)
    .key_by([](const std::string& w) { return w; })
    .process<word_count>("count",
                         [](const std::string&, auto& ctx, auto& col) {
                           auto& n = ctx.template value<int64_t>("n");
                           n.set(n.get_or(0) + 1);
                           // The key as the partition sees it, not the record: a wrong
                           // key shows up as a count mismatch.
                           col.emit(word_count{ctx.key(), n.get()});
                         })
    .sink("out", eddy::collector_sink(out))
    .parallelism(c.sink_parallelism);
  eddy::test::run_ok(eng, jb);
  return out->values();
}

/// Checks that per word the updates arrive as exactly 1, 2, ..., n (per-key order) and that
/// n is the reference count of that word. Returns the first problem, empty if none.
std::string verify(const std::vector<word_count>& out, const std::map<std::string, int64_t>& ref) {
  std::map<std::string, int64_t> last;
  for (const auto& wc : out) {
    auto& prev = last[wc.word];
    if (wc.count != prev + 1) {
      return "word '" + wc.word + "': update " + std::to_string(wc.count) + " arrived after " +
             std::to_string(prev);
    }
    prev = wc.count;
  }
  for (const auto& [word, n] : ref) {
    auto i = last.find(word);
    auto got = i == last.end() ? 0 : i->second;
    if (got != n) {
      return "word '" + word + "': final count " + std::to_string(got) + ", expected " +
             std::to_string(n);
    }
  }
  if (last.size() != ref.size()) {
    return std::to_string(last.size()) + " words counted, expected " + std::to_string(ref.size());
  }
  return {};
}

} // namespace

TEST_CASE("a keyed count emits every count 1..n per key in order and matches the reference") {
  eddy::test::temp_dir dir;
  auto ref = reference_counts();
  REQUIRE(ref.size() > 40);
  int64_t total = 0;
  for (const auto& [w, n] : ref) {
    total += n;
  }
  eddy::engine eng{eddy::test::test_options(dir), eddy::test::test_common(dir)};
  auto out = run_count(eng, job_config{2, 4, 1, 0}, {});
  CHECK(out.size() == static_cast<size_t>(total));
  CHECK(verify(out, ref) == "");
}

TEST_CASE("a keyed count gives identical results for every parallelism, partition count and "
          "batch size") {
  eddy::test::temp_dir dir;
  auto ref = reference_counts();
  std::vector<word_count> expected;
  for (const auto& [w, n] : ref) {
    for (int64_t k = 1; k <= n; ++k) {
      expected.push_back(word_count{w, k});
    }
  }
  std::vector<std::string> input_lines;
  for (uint64_t i = 0; i < sentence_count; ++i) {
    input_lines.push_back(nlohmann::json(line{sentence(i)}).dump());
  }
  auto input = dir / "sentences.jsonl";
  eddy::test::write_lines(input, input_lines);

  for (bool small_batches : {false, true}) {
    auto opts = eddy::test::test_options(dir);
    if (small_batches) {
      // Tiny batches and little credit: most batches are partly filled and sealed by the
      // linger timer, and every channel runs out of credit all the time.
      opts.batch_events_max = 7;
      opts.credit_batches_max = 2;
    }
    eddy::engine eng{opts, eddy::test::test_common(dir)};
    std::vector<job_config> configs;
    for (uint32_t par : {1u, 2u, 3u}) {
      for (uint32_t partitions : {1u, 4u, 128u}) {
        configs.push_back(job_config{par, partitions, 1, 0});
      }
    }
    configs.push_back(job_config{3, 4, 2, 0});
    configs.push_back(job_config{2, 128, 3, 0});
    configs.push_back(job_config{1, 4, 1, 1});
    configs.push_back(job_config{3, 128, 2, 2});
    configs.push_back(job_config{2, 4, 1, 3});
    for (const auto& c : configs) {
      INFO("small_batches=", small_batches, " ", to_string(c));
      auto out = run_count(eng, c, input);
      CHECK(verify(out, ref) == "");
      std::sort(out.begin(), out.end());
      CHECK(out.size() == expected.size());
      CHECK((out == expected));
    }
  }
}

TEST_CASE("key partitions report the distinct keys they hold") {
  eddy::test::temp_dir dir;
  auto ref = reference_counts();
  eddy::engine eng{eddy::test::test_options(dir), eddy::test::test_common(dir)};
  auto out = std::make_shared<eddy::collected<word_count>>();
  eddy::job_builder jb{"keys"};
  jb.partitions(16);
  jb.source("lines",
            eddy::generator_source(sentence_count, [](uint64_t i) { return line{sentence(i)}; }))
    .flat_map<std::string>("split", split)
    .key_by([](const std::string& w) { return w; })
    .process<word_count>("count",
                         [](const std::string& w, auto& ctx, auto& col) {
                           auto& n = ctx.template value<int64_t>("n");
                           n.set(n.get_or(0) + 1);
                           col.emit(word_count{w, n.get()});
                         })
    .sink("out", eddy::collector_sink(out));
  auto job = eddy::test::run_ok(eng, jb);
  uint64_t keys = 0;
  uint64_t partitions_with_keys = 0;
  for (const auto& a : job->actors()) {
    if (a.kind == eddy::node_kind::keyed) {
      keys += a.metrics->keys;
      partitions_with_keys += a.metrics->keys > 0 ? 1 : 0;
    }
  }
  // Each key lives in exactly one partition, so the per-partition key counts add up.
  CHECK(keys == ref.size());
  // More than 40 keys hashed over 16 partitions: the hash must spread them.
  CHECK(partitions_with_keys > 8);
}
