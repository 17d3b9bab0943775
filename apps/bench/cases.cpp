// The case table of eddy-bench (see cases.hpp).

#include "cases.hpp"

namespace bench {

namespace {

using eddy::durability;

const case_info cases[] = {
  {"stateless",
   "generator -> map -> filter -> counting sink; baseline: CAF producer -> consumer doing the "
   "map+filter",
   100'000'000,
   work::stateless,
   {{"engine", runner::engine, durability::none},
    {"baseline", runner::caf_baseline, durability::none}},
   {{"baseline_ratio", "engine", "baseline", 0.7}}},
  {"keyed_count",
   "generator over 100k int64 keys -> key_by -> value_state<int64_t> count per key -> sink; "
   "baseline: CAF producer -> consumer counting into std::unordered_map",
   20'000'000,
   work::keyed_count,
   {{"engine", runner::engine, durability::none},
    {"baseline", runner::caf_baseline, durability::none}},
   {{"baseline_ratio", "engine", "baseline", 0.5}}},
  {"durable_keyed_count",
   "keyed_count with state in memory, durable (process, machine), and raw SQLite upserts "
   "(synchronous NORMAL, FULL)",
   2'000'000,
   work::keyed_count,
   {{"memory", runner::engine, durability::none},
    {"process", runner::engine, durability::process},
    {"machine", runner::engine, durability::machine},
    {"sqlite_normal", runner::sqlite_baseline, durability::process},
    {"sqlite_full", runner::sqlite_baseline, durability::machine}},
   {{"process_memory_ratio", "process", "memory", 0.5},
    {"machine_memory_ratio", "machine", "memory", 0.4},
    {"machine_sqlite_full_ratio", "machine", "sqlite_full", 0.5}}},
  {"latency",
   "generator at --runtime.source-rate (default 100k/s) -> key_by -> count per key, every "
   "event passed on -> transactional sink: latency from generating a record to its sink "
   "committing it, with state in memory and durable (process, machine)",
   1'000'000,
   work::keyed_latency,
   {{"memory", runner::engine, durability::none},
    {"process", runner::engine, durability::process},
    {"machine", runner::engine, durability::machine}},
   {}},
  {"supervised_keyed_count",
   "durable keyed_count (process) without failures, and with 3 failures of the keyed "
   "function, each restarting the job from its journals",
   2'000'000,
   work::keyed_count,
   {{"clean", runner::engine, durability::process},
    {"failures", runner::engine, durability::process, 3}},
   {{"failures_clean_ratio", "failures", "clean", 0}}},
  {"event_time",
   "generator of (key of 1000, ts) out of order by up to 20 ms -> key_by -> a count per key "
   "(the baseline) / a sliding window count (10 s every 1 s) / an interval join (+-5 ms) of "
   "two such streams of half the events each",
   5'000'000,
   work::keyed_count,
   {{"keyed_count", runner::engine, durability::none, 0, work::keyed_count},
    {"sliding_count", runner::engine, durability::none, 0, work::sliding_count},
    {"interval_join", runner::engine, durability::none, 0, work::interval_join}},
   {{"sliding_keyed_ratio", "sliding_count", "keyed_count", 0},
    {"join_keyed_ratio", "interval_join", "keyed_count", 0}}},
  {"restart",
   "populate N distinct keys (durability process), then time a restart from engine start to "
   "the first new event at the sink",
   10'000'000,
   work::restart,
   {{"populate", runner::engine, durability::process},
    {"restart", runner::engine, durability::process}},
   {}},
};

} // namespace

std::span<const case_info> all_cases() {
  return cases;
}

const case_info* find_case(const std::string& name) {
  for (const auto& c : cases) {
    if (name == c.name) {
      return &c;
    }
  }
  return nullptr;
}

const variant_info* find_variant(const case_info& c, const std::string& name) {
  for (const auto& v : c.variants) {
    if (name == v.name) {
      return &v;
    }
  }
  return nullptr;
}

} // namespace bench
