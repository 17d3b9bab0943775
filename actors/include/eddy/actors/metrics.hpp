#pragma once

// A running job's counters by operator: what the console's `stats` shows and what a
// service's /metrics serves in Prometheus' text format.

#include <cstdint>
#include <string>
#include <vector>

#include "eddy/actors/engine.hpp"

namespace eddy {

/// The counters of one operator of a job, summed over its actors.
struct operator_totals {
  std::string job;
  std::string op;
  node_kind kind = node_kind::transform;
  size_t actors = 0;
  uint64_t events_in = 0;
  uint64_t events_out = 0;
  uint64_t batches_in = 0;
  /// Records / batches sent to it and not taken in yet (none for sources).
  uint64_t lag = 0;
  uint64_t mailbox = 0;
  bool has_input = false;
  uint64_t credit = 0;
  uint64_t queued = 0;
  uint64_t restarts = 0;
  uint64_t dead_letters = 0;
  size_t failed = 0;
  /// Event time: the lowest watermark of its actors (no_time while one has none).
  int64_t watermark = no_time;
  /// Commit latency, summed over its partitions (bucket counts, sum, count).
  std::array<uint64_t, latency_histogram::bounds_us.size() + 1> commit_buckets{};
  uint64_t commit_sum_us = 0;
  uint64_t commits = 0;
};

/// The totals of every operator of `job`, in the graph's order.
std::vector<operator_totals> totals_by_operator(const job_handle& job);

/// One actor's counters as one line of key=value pairs (diagnostics of the benchmarks):
/// events and batches in and out, commits and their mean time, queue and buffer peaks,
/// keys, replayed duplicates dropped.
std::string actor_counters_line(const actor_info& actor);

/// Prometheus text: events in/out, dead letters, restarts, mailbox depth and lag per
/// operator, the commit latency histogram of keyed operators, the job's restarts.
std::string prometheus_text(const job_handle& job);

} // namespace eddy
