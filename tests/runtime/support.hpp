#pragma once

// Helpers shared by the runtime tests: temporary directories, engine options sized for
// tests, and a guarded wait so that a hanging job fails the suite instead of blocking it.

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <doctest/doctest.h>

#include "eddy/actors/engine.hpp"
#include "eddy/eddy.hpp"
#include "support/temp_dir.hpp"

namespace eddy::test {

/// Writes `lines` to `path`, each followed by '\n'.
inline void write_lines(const std::filesystem::path& path, const std::vector<std::string>& lines) {
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  for (const auto& l : lines) {
    out << l << '\n';
  }
}

inline std::vector<std::string> read_lines(const std::filesystem::path& path) {
  std::vector<std::string> result;
  std::ifstream in{path, std::ios::binary};
  for (std::string l; std::getline(in, l);) {
    result.push_back(l);
  }
  return result;
}

/// Runtime options for tests: few scheduler threads (the test machine is small), every
/// file the engine writes inside `dir`, and durable state started afresh by every job
/// (tests that resume state turn `state.reset` off).
/// EDDY_TEST_COMMIT_INTERVAL_MS, if set, replaces the default commit interval (ctest runs
/// the suite once more at 0, so that both ways of committing are tested).
inline runtime_options test_options(const temp_dir& dir) {
  runtime_options opts;
  if (const char* interval = std::getenv("EDDY_TEST_COMMIT_INTERVAL_MS")) {
    opts.state.commit_interval_ms = static_cast<uint32_t>(std::stoul(interval));
  }
  opts.threads = 2;
  opts.dead_letters = dir / "deadletters.jsonl";
  opts.state.reset = true;
  return opts;
}

inline common_options test_common(const temp_dir& dir) {
  common_options common;
  common.data_dir = dir.path();
  return common;
}

/// Waits for `job`; a job that does not complete within a minute is a hang, which would
/// also block the engine's destructor, so the test binary exits with a message instead.
inline caf::error finish(job_handle& job) {
  if (!job.wait_for(60'000)) {
    std::fprintf(stderr, "FATAL: job did not complete within 60 s (hang)\n");
    std::fflush(stderr);
    std::_Exit(3);
  }
  return job.wait();
}

/// test_options with durable state at `level`; `reset` moves the job's state aside first.
inline runtime_options state_options(const temp_dir& dir, durability level, bool reset) {
  auto opts = test_options(dir);
  opts.state.level = level;
  opts.state.reset = reset;
  return opts;
}

/// Builds and runs `jb` to completion; returns the error of `engine::start` or of the job
/// (a graph that does not build fails the test). `handle`, if given, receives the job.
inline caf::error run_job(engine& eng, job_builder& jb,
                          std::shared_ptr<job_handle>* handle = nullptr) {
  auto graph = jb.build();
  REQUIRE_MESSAGE(graph, (graph ? "" : describe(graph.error())));
  auto job = eng.start(std::move(*graph));
  if (!job) {
    return job.error();
  }
  if (handle != nullptr) {
    *handle = *job;
  }
  return finish(**job);
}

/// Builds `jb`, starts it on `eng` and waits for completion; fails the test on any error.
inline std::shared_ptr<job_handle> run_ok(engine& eng, job_builder& jb) {
  auto graph = jb.build();
  REQUIRE_MESSAGE(graph, (graph ? "" : describe(graph.error())));
  auto job = eng.start(std::move(*graph));
  REQUIRE_MESSAGE(job, (job ? "" : describe(job.error())));
  auto err = finish(**job);
  REQUIRE_MESSAGE(!err, describe(err));
  return *job;
}

/// Per-kind actor counts of a job.
inline std::map<node_kind, size_t> count_by_kind(const std::vector<actor_info>& actors) {
  std::map<node_kind, size_t> result;
  for (const auto& a : actors) {
    ++result[a.kind];
  }
  return result;
}

} // namespace eddy::test
