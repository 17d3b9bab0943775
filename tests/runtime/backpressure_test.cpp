// Bounded memory under a slow sink: credit-based flow control must hold back a fast source
// instead of letting batches pile up in front of the slow stage.
//
// The bound, from actors/src/stage/emitter.cpp, output_channel.cpp and the stage actors. Let
// B = batch_events_max, C = credit_batches_max, `out` the actor's output channels and `in`
// its input channels.
// - A channel holds one builder (< B records after every commit, since seal_if_full seals
//   it at B) and a queue of sealed batches that wait for credit.
// - A source polls only while no channel has a queued batch (`emitter::blocked`); one poll
//   seals at most one batch per channel, and one linger tick at most one more.
// - An operator or partition keeps processing the batches already in flight to it while
//   blocked, but withholds their credit, so at most C batches per input channel arrive
//   after it blocked; each seals at most one batch per output channel (on the round-robin
//   channel, or one per partition channel after routing), and the partly filled builder
//   present when it blocked gives at most one more (linger tick).
// So per actor: queued_batches_peak <= out * (max(in, 1) * C + 1), and since
// buffered_events = sum over channels of builder_events + queued_batches * B:
// buffered_events_peak <= (queued bound + out) * B. With the sizes below that is a few
// hundred records per actor, against 200k records produced.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "support.hpp"

namespace {

/// Counts what it receives and sleeps ~1 ms per batch: a sink far slower than the source.
struct slow_sink_state {
  std::vector<uint8_t> seen;
  std::atomic<uint64_t> records{0};
  std::atomic<uint64_t> duplicates{0};
  std::atomic<uint64_t> out_of_range{0};
};

class slow_sink final : public eddy::sink_logic {
public:
  explicit slow_sink(std::shared_ptr<slow_sink_state> st)
    : st_(std::move(st)) {}
  void write(eddy::record_buffer& in) override {
    for (auto& r : eddy::typed<uint64_t>(in).records) {
      if (r.value >= st_->seen.size()) {
        ++st_->out_of_range;
      } else if (st_->seen[r.value]++ != 0) {
        ++st_->duplicates;
      }
      ++st_->records;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

private:
  std::shared_ptr<slow_sink_state> st_;
};

/// Channels of instance `i` of a node with `senders` instances towards a node with
/// `receivers` instances, and the reverse, by the runtime's wiring rule: every partition on
/// a hash edge, else one receiver when the downstream has as many or fewer instances, else
/// the sender's share of them.
uint32_t out_channels(uint32_t i, uint32_t senders, uint32_t receivers, bool hash) {
  uint32_t n = 0;
  for (uint32_t j = 0; j < receivers; ++j) {
    n += (hash || (senders >= receivers ? j == i % receivers : j % senders == i)) ? 1 : 0;
  }
  return n;
}

uint32_t in_channels(uint32_t j, uint32_t senders, uint32_t receivers, bool hash) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < senders; ++i) {
    n += (hash || (senders >= receivers ? j == i % receivers : j % senders == i)) ? 1 : 0;
  }
  return n;
}

struct stage_shape {
  uint32_t instances;
  bool hash_input;
};

void check_bounded(const eddy::job_handle& job, const std::map<std::string, stage_shape>& shape,
                   const std::vector<std::string>& order, const eddy::runtime_options& opts,
                   uint64_t total) {
  const uint64_t b = opts.batch_events_max;
  const uint64_t c = opts.credit_batches_max;
  for (const auto& a : job.actors()) {
    auto pos = std::find(order.begin(), order.end(), a.node) - order.begin();
    REQUIRE(static_cast<size_t>(pos) < order.size());
    uint32_t out = 0;
    uint32_t in = 0;
    if (static_cast<size_t>(pos) + 1 < order.size()) {
      const auto& down = shape.at(order[pos + 1]);
      out = out_channels(a.index, shape.at(a.node).instances, down.instances, down.hash_input);
    }
    if (pos > 0) {
      const auto& up = shape.at(order[pos - 1]);
      const auto& me = shape.at(a.node);
      in = in_channels(a.index, up.instances, me.instances, me.hash_input);
    }
    const uint64_t queued_bound = out * (std::max<uint64_t>(in, 1) * c + 1);
    const uint64_t buffered_bound = (queued_bound + out) * b;
    INFO("actor ", a.name, ": in=", in, " out=", out,
         " queued_batches_peak=", a.metrics->queued_batches_peak.load(),
         " buffered_events_peak=", a.metrics->buffered_events_peak.load());
    CHECK(a.metrics->queued_batches_peak <= queued_bound);
    CHECK(a.metrics->buffered_events_peak <= buffered_bound);
    CHECK(a.metrics->buffered_events_peak * 50 < total);
    CHECK(a.metrics->queued_batches == 0);
    CHECK(a.metrics->status == eddy::actor_status::finished);
  }
}

eddy::runtime_options backpressure_options(const eddy::test::temp_dir& dir) {
  auto opts = eddy::test::test_options(dir);
  opts.batch_events_max = 128;
  opts.credit_batches_max = 2;
  return opts;
}

} // namespace

TEST_CASE("a slow sink holds back a fast source: buffers stay bounded and every record arrives") {
  eddy::test::temp_dir dir;
  auto opts = backpressure_options(dir);
  eddy::engine eng{opts, eddy::test::test_common(dir)};
  constexpr uint64_t n = 200'000;
  auto st = std::make_shared<slow_sink_state>();
  st->seen.resize(n);
  eddy::job_builder jb{"slow"};
  jb.source("gen", eddy::generator_source(n, [](uint64_t i) { return i; }))
    .map("id", [](const uint64_t& i) { return i; })
    .parallelism(2)
    .sink("slow", eddy::sink_def<uint64_t>{[st](const eddy::instance_context&) {
            return std::make_unique<slow_sink>(st);
          }});
  auto job = eddy::test::run_ok(eng, jb);
  CHECK(st->records == n);
  CHECK(st->duplicates == 0);
  CHECK(st->out_of_range == 0);
  CHECK(std::count(st->seen.begin(), st->seen.end(), uint8_t{1}) == static_cast<long>(n));
  check_bounded(*job, {{"gen", {1, false}}, {"id", {2, false}}, {"slow", {1, false}}},
                {"gen", "id", "slow"}, opts, n);
}

TEST_CASE("a slow sink behind key partitions keeps every partition's buffers bounded") {
  eddy::test::temp_dir dir;
  auto opts = backpressure_options(dir);
  eddy::engine eng{opts, eddy::test::test_common(dir)};
  constexpr uint64_t n = 200'000;
  auto st = std::make_shared<slow_sink_state>();
  st->seen.resize(n);
  eddy::job_builder jb{"slow-keyed"};
  jb.partitions(4);
  jb.source("gen", eddy::generator_source(n, [](uint64_t i) { return i; }))
    .key_by([](const uint64_t& i) { return i % 16; })
    .process<uint64_t>("pass", [](const uint64_t& i, auto&, auto& col) { col.emit(i); })
    .sink("slow", eddy::sink_def<uint64_t>{[st](const eddy::instance_context&) {
            return std::make_unique<slow_sink>(st);
          }});
  auto job = eddy::test::run_ok(eng, jb);
  CHECK(st->records == n);
  CHECK(st->duplicates == 0);
  CHECK(st->out_of_range == 0);
  check_bounded(*job, {{"gen", {1, false}}, {"pass", {4, true}}, {"slow", {1, false}}},
                {"gen", "pass", "slow"}, opts, n);
}
