// Test helper of eddy_savepoint_test.sh: writes a savepoint as the savepoint code will, from
// real journals. Two partition journals of a keyed operator "count" get known state through
// journal_store (as a job's commits would), are copied into <DIR>/<id>.partial/ and the
// savepoint is finalized (sizes, CRC32C, manifest, rename). A second savepoint is left partial,
// as a crash while writing one would leave it. Usage: seed_savepoint DIR
#include <filesystem>
#include <iostream>
#include <string>

#include "eddy/core/error.hpp"
#include "eddy/savepoint/manifest.hpp"
#include "eddy/state/journal_store.hpp"

namespace fs = std::filesystem;

namespace {

int fail(const caf::error& err) {
  std::cerr << "seed_savepoint: " << eddy::describe(err) << "\n";
  return 1;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: seed_savepoint DIR\n";
    return 2;
  }
  fs::path root{argv[1]};
  auto work = root / "journals";
  eddy::savepoint_manifest m;
  m.id = "wc-20261207T101500Z-0001";
  m.job = "wc";
  m.eddy_version = "test";
  m.created_at_ms = 1796638500000; // 2026-12-07T10:15:00.000Z
  m.trigger = "console";
  m.pause_ms = 2.5;
  m.partitions = 2;
  m.nodes = {{"lines", "source", 1, "", 0, {}},
             {"count", "keyed", 2, "std::string", 1, {{"n", "value<int64_t>"}}},
             {"out", "sink", 1, "", 0, {}}};
  m.sources = {{"lines", true, {42}, std::nullopt, "words.jsonl", 420, 0x1234abcd}};
  m.sinks = {{"out", "counts.jsonl", 300}};
  auto partial = root / (m.id + std::string{eddy::savepoint_partial_suffix});
  for (uint32_t p = 0; p < 2; ++p) {
    auto name = "count/p" + std::to_string(p) + ".db";
    eddy::journal_meta meta{"wc", "count", p, 2, 1, "lines:1,count:2,out:1"};
    auto store = eddy::journal_store::open(work / name, meta, eddy::durability::process);
    if (!store) {
      return fail(store.error());
    }
    eddy::commit_batch batch;
    for (int k = 0; k < 10 + static_cast<int>(p); ++k) {
      batch.changes.push_back({"word" + std::to_string(k), "n", std::string(8, 'x')});
    }
    batch.positions.emplace_back(1, 42);
    if (auto err = store->commit(batch)) {
      return fail(err);
    }
    fs::create_directories((partial / name).parent_path());
    if (auto err = store->copy_to(partial / name)) {
      return fail(err);
    }
    m.files.push_back({name, 0, 0, 10 + p, 10 + p});
  }
  auto done = eddy::finalize_savepoint(partial, m);
  if (!done) {
    return fail(done.error());
  }
  fs::create_directories(root / "wc-20261207T111500Z-0002.partial" / "count");
  fs::remove_all(work);
  std::cout << done->string() << "\n";
  return 0;
}
