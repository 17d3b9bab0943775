// Savepoints of running jobs (see "Savepoints" in docs/design.md): taken while the job runs
// at an aligned cut, written beside it, and restored with --restore.from into another data
// directory. Each result is compared with a run that never had a savepoint: the sorted lines
// of a transactional sink hold every count update exactly once.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "eddy/savepoint/manifest.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using eddy::test::temp_dir;

namespace {

struct visit {
  std::string user;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(visit, user)

struct user_count {
  std::string user;
  int64_t count = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(user_count, user, count)

constexpr uint64_t visits_count = 6000;

void write_visits(const fs::path& file) {
  std::vector<std::string> lines;
  for (uint64_t i = 0; i < visits_count; ++i) {
    lines.push_back(R"({"user":"U)" + std::to_string((i * 7919) % 97) + "\"}");
  }
  eddy::test::write_lines(file, lines);
}

/// visits -> lower (a stateless operator) -> count per user (4 partitions) -> counts.jsonl.
eddy::job_graph count_job(const fs::path& input, const fs::path& output, uint32_t partitions = 4,
                          const std::string& name = "visits") {
  eddy::job_builder jb{name};
  jb.partitions(partitions);
  jb.source("visits", eddy::jsonl_source<visit>(input))
    .map("lower",
         [](const visit& v) {
           auto u = v.user;
           std::transform(u.begin(), u.end(), u.begin(), ::tolower);
           return visit{u};
         })
    .key_by([](const visit& v) { return v.user; })
    .process<user_count>("count",
                         [](const visit& v, auto& ctx, auto& col) {
                           auto& n = ctx.template value<int64_t>("n");
                           n.set(n.get_or(0) + 1);
                           col.emit(user_count{v.user, n.get()});
                         })
    .sink("out", eddy::jsonl_sink<user_count>(output));
  auto g = jb.build();
  REQUIRE_MESSAGE(g, (g ? "" : eddy::describe(g.error())));
  return std::move(*g);
}

std::vector<std::string> sorted_lines(const fs::path& file) {
  auto lines = eddy::test::read_lines(file);
  std::sort(lines.begin(), lines.end());
  return lines;
}

/// Durable options over `data`, resuming state; `rate` paces the source (0: no limit).
eddy::runtime_options options(const temp_dir& data, uint64_t rate = 0) {
  auto opts = eddy::test::state_options(data, eddy::durability::process, false);
  opts.source_rate = rate;
  return opts;
}

/// The reference: every count update of the input, from a run without a savepoint.
std::vector<std::string> reference(const fs::path& input) {
  temp_dir ref;
  eddy::engine eng{options(ref), eddy::test::test_common(ref)};
  auto job = eng.start(count_job(input, ref / "counts.jsonl"));
  REQUIRE(job);
  auto err = eddy::test::finish(**job);
  REQUIRE_MESSAGE(!err, eddy::describe(err));
  auto lines = sorted_lines(ref / "counts.jsonl");
  REQUIRE(lines.size() == visits_count);
  return lines;
}

/// Runs the job paced over `data`, takes a savepoint once it has run a while (then stops it
/// when `stop`) and waits for the job to end; the savepoint's summary.
nlohmann::json run_with_savepoint(const temp_dir& data, const fs::path& input,
                                  const fs::path& output, bool stop) {
  eddy::engine eng{options(data, 8000), eddy::test::test_common(data)};
  auto job = eng.start(count_job(input, output));
  REQUIRE(job);
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  auto summary = (*job)->savepoint(stop);
  REQUIRE_MESSAGE(summary, (summary ? "" : eddy::describe(summary.error())));
  auto err = eddy::test::finish(**job);
  REQUIRE_MESSAGE(!err, eddy::describe(err));
  return nlohmann::json::parse(*summary);
}

/// Starts the job with --restore.from `savepoint` over `data`: the error of the start or of
/// the run.
caf::error restore(const temp_dir& data, const fs::path& savepoint, eddy::job_graph g) {
  auto opts = options(data);
  opts.savepoint.restore_from = savepoint;
  eddy::engine eng{opts, eddy::test::test_common(data)};
  auto job = eng.start(std::move(g));
  if (!job) {
    return job.error();
  }
  return eddy::test::finish(**job);
}

std::string message(const caf::error& err) {
  return err ? eddy::describe(err) : std::string{"no error"};
}

} // namespace

TEST_SUITE("savepoints") {
  TEST_CASE("a savepoint of a running job restores, in another data dir, to the uninterrupted "
            "result") {
    temp_dir dir;
    write_visits(dir / "visits.jsonl");
    auto expected = reference(dir / "visits.jsonl");
    auto output = dir / "counts.jsonl";
    temp_dir data;
    auto summary = run_with_savepoint(data, dir / "visits.jsonl", output, false);
    // Taking it changed nothing: the run went on to the same result.
    CHECK(sorted_lines(output) == expected);

    fs::path path = summary.at("path").get<std::string>();
    CHECK(path.parent_path() == data / "savepoints");
    CHECK(summary.at("files").get<size_t>() == 5); // 4 partitions and the sink's journal
    auto check = eddy::verify_savepoint(path);
    REQUIRE(check);
    CHECK(check->problems.empty());
    const auto& m = check->manifest;
    CHECK(m.job == "visits");
    CHECK(m.partitions == 4);
    // The shape, with the keyed operator's key type and the states it used.
    REQUIRE(m.nodes.size() == 4);
    const auto& count = m.nodes[2];
    CHECK(count.name == "count");
    CHECK(count.kind == "keyed");
    CHECK(count.instances == 4);
    CHECK(count.state_version == 1);
    CHECK(count.key_type.find("string") != std::string::npos);
    REQUIRE(count.states.size() == 1);
    CHECK(count.states[0].name == "n");
    CHECK(count.states[0].type.find("long") != std::string::npos);
    REQUIRE(m.sources.size() == 1);
    REQUIRE(m.sources[0].offsets.size() == 1);
    // Taken while the source was reading: some input before the cut, some after.
    auto offset = m.sources[0].offsets[0];
    CAPTURE(offset);
    CHECK(offset > 0);
    CHECK(offset < visits_count);
    // The input's identity: the bytes read before the cut, with their checksum.
    CHECK(m.sources[0].input == (dir / "visits.jsonl").string());
    CHECK(m.sources[0].input_bytes > 0);
    CHECK(m.sources[0].input_bytes < fs::file_size(dir / "visits.jsonl"));
    auto prefix = eddy::digest_file(dir / "visits.jsonl", m.sources[0].input_bytes);
    REQUIRE(prefix);
    CHECK(prefix->crc32c == m.sources[0].input_crc32c);
    REQUIRE(m.sinks.size() == 1);
    CHECK(m.sinks[0].path == output.string());
    CHECK(m.sinks[0].length > 0);
    CHECK(m.sinks[0].length < fs::file_size(output));
    uint64_t keys = 0;
    for (const auto& f : m.files) {
      keys += f.keys;
    }
    CHECK(keys > 0);
    CHECK(keys <= 97);

    // The restore cuts the sink's file back to the cut and replays the input after it.
    temp_dir restored;
    auto err = restore(restored, path, count_job(dir / "visits.jsonl", output));
    REQUIRE_MESSAGE(!err, message(err));
    CHECK(sorted_lines(output) == expected);
    CHECK(fs::exists(restored / "visits" / "RESTORED"));

    SUBCASE("restarting a restored job with the same --restore.from goes on from its journals") {
      auto before = fs::file_size(output);
      err = restore(restored, path, count_job(dir / "visits.jsonl", output));
      REQUIRE_MESSAGE(!err, message(err));
      CHECK(fs::file_size(output) == before);
      CHECK(sorted_lines(output) == expected);
    }
  }

  TEST_CASE("savepoint --stop ends the job at the cut, and the restored job goes on from there") {
    temp_dir dir;
    write_visits(dir / "visits.jsonl");
    auto expected = reference(dir / "visits.jsonl");
    auto output = dir / "counts.jsonl";
    temp_dir data;
    auto summary = run_with_savepoint(data, dir / "visits.jsonl", output, true);
    auto m = eddy::read_savepoint(summary.at("path").get<std::string>());
    REQUIRE(m);
    CHECK(m->trigger == "stop");
    // Nothing after the cut was written: the output ends where the savepoint says.
    REQUIRE(m->sinks.size() == 1);
    CHECK(fs::file_size(output) == m->sinks[0].length);
    auto partial = eddy::test::read_lines(output).size();
    CHECK(partial > 0);
    CHECK(partial < visits_count);

    temp_dir restored;
    auto err = restore(restored, summary.at("path").get<std::string>(),
                       count_job(dir / "visits.jsonl", output));
    REQUIRE_MESSAGE(!err, message(err));
    CHECK(sorted_lines(output) == expected);
  }

  TEST_CASE("a savepoint that does not fit the job is refused, and nothing on disk changes") {
    temp_dir dir;
    write_visits(dir / "visits.jsonl");
    auto output = dir / "counts.jsonl";
    temp_dir data;
    auto summary = run_with_savepoint(data, dir / "visits.jsonl", output, true);
    fs::path path = summary.at("path").get<std::string>();
    temp_dir target;

    SUBCASE("another partition count") {
      auto err = restore(target, path, count_job(dir / "visits.jsonl", output, 8));
      CHECK(message(err).find("taken with 4 partitions and job visits runs 8") !=
            std::string::npos);
      CHECK(message(err).find(summary.at("id").get<std::string>()) != std::string::npos);
    }
    SUBCASE("another job") {
      auto err = restore(target, path, count_job(dir / "visits.jsonl", output, 4, "other"));
      CHECK(message(err).find("a savepoint of job visits, not of job other") != std::string::npos);
    }
    SUBCASE("a damaged journal") {
      auto copy = dir / "damaged";
      fs::copy(path, copy, fs::copy_options::recursive);
      {
        std::ofstream out{copy / "count" / "p0.db", std::ios::binary | std::ios::app};
        out << 'x';
      }
      auto err = restore(target, copy, count_job(dir / "visits.jsonl", output));
      CHECK(message(err).find("does not verify: count/p0.db") != std::string::npos);
    }
    SUBCASE("an input whose bytes before the cut changed") {
      auto lines = eddy::test::read_lines(dir / "visits.jsonl");
      lines[0] = R"({"user":"X1"})";
      eddy::test::write_lines(dir / "visits.jsonl", lines);
      auto err = restore(target, path, count_job(dir / "visits.jsonl", output));
      CHECK(message(err).find("source visits had read") != std::string::npos);
      CHECK(message(err).find("those bytes changed since") != std::string::npos);
    }
    SUBCASE("a sink file shorter than the savepoint's output") {
      fs::resize_file(output, 10);
      auto err = restore(target, path, count_job(dir / "visits.jsonl", output));
      CHECK(message(err).find("sink out/0 had written") != std::string::npos);
    }
    CHECK_FALSE(fs::exists(target / "visits"));
    CHECK_FALSE(fs::exists(target / "visits.restoring"));
  }

  TEST_CASE("a job's start removes its own partial savepoints, not another job's") {
    temp_dir dir;
    write_visits(dir / "visits.jsonl");
    temp_dir data;
    auto root = data / "savepoints";
    for (const char* name :
         {"visits-20261208T000000Z-0001.partial", "visits-2-20261208T000000Z-0001.partial",
          "other-20261208T000000Z-0001.partial"}) {
      fs::create_directories(root / name / "count");
    }
    eddy::engine eng{options(data), eddy::test::test_common(data)};
    auto job = eng.start(count_job(dir / "visits.jsonl", dir / "counts.jsonl"));
    REQUIRE(job);
    CHECK_FALSE(eddy::test::finish(**job));
    CHECK_FALSE(fs::exists(root / "visits-20261208T000000Z-0001.partial"));
    CHECK(fs::exists(root / "visits-2-20261208T000000Z-0001.partial"));
    CHECK(fs::exists(root / "other-20261208T000000Z-0001.partial"));
  }

  TEST_CASE("a job whose state is in memory has nothing to save, and says so") {
    temp_dir data;
    auto opts = eddy::test::test_options(data);
    opts.state.level = eddy::durability::none;
    opts.source_rate = 2000;
    eddy::engine eng{opts, eddy::test::test_common(data)};
    temp_dir dir;
    write_visits(dir / "visits.jsonl");
    auto job = eng.start(count_job(dir / "visits.jsonl", dir / "counts.jsonl"));
    REQUIRE(job);
    auto summary = (*job)->savepoint();
    REQUIRE_FALSE(summary);
    CHECK(message(summary.error()).find("--state.durability none") != std::string::npos);
    (*job)->stop();
    CHECK_FALSE(eddy::test::finish(**job));
  }
}
