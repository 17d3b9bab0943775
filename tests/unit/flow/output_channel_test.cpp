#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "eddy/flow/output_channel.hpp"

using eddy::batch;
using eddy::input_channel;
using eddy::output_channel;
using eddy::record;
using eddy::record_buffer_of;
using eddy::typed;

namespace {

output_channel make_channel(uint32_t credit, size_t batch_max, eddy::channel_id id = 7) {
  return output_channel{id, credit, std::make_unique<record_buffer_of<int>>(), batch_max};
}

void append(output_channel& ch, int value) {
  typed<int>(ch.builder()).records.push_back(record<int>{value, value * 10});
}

std::vector<int> values_of(const batch& b) {
  std::vector<int> result;
  if (b.records) {
    for (auto& r : typed<int>(*b.records).records) {
      result.push_back(r.value);
    }
  }
  return result;
}

} // namespace

TEST_CASE("a new output channel has its credit, no batches and is open") {
  auto ch = make_channel(3, 4, 11);
  CHECK(ch.id() == 11);
  CHECK(ch.credit() == 3);
  CHECK(ch.queued_batches() == 0);
  CHECK(ch.builder_events() == 0);
  CHECK(ch.batches_sealed() == 0);
  CHECK_FALSE(ch.closed());
  CHECK_FALSE(ch.finished());
  batch b;
  CHECK_FALSE(ch.pop_sendable(b));
}

TEST_CASE("seal_if_full seals the builder only once it holds batch_events_max records") {
  auto ch = make_channel(8, 3);
  append(ch, 1);
  append(ch, 2);
  ch.seal_if_full();
  CHECK(ch.queued_batches() == 0);
  CHECK(ch.builder_events() == 2);
  append(ch, 3);
  ch.seal_if_full();
  CHECK(ch.queued_batches() == 1);
  CHECK(ch.builder_events() == 0);
  CHECK(ch.batches_sealed() == 1);

  batch b;
  REQUIRE(ch.pop_sendable(b));
  CHECK(b.channel == 7);
  CHECK(b.seq == 1);
  CHECK_FALSE(b.last);
  CHECK(b.size() == 3);
  CHECK(values_of(b) == std::vector<int>{1, 2, 3});
  // Event times travel with the records.
  CHECK(typed<int>(*b.records).records[2].time == 30);
}

TEST_CASE("seal_if_full seals an overfull builder as one batch") {
  auto ch = make_channel(8, 2);
  for (int i = 0; i < 5; ++i) {
    append(ch, i);
  }
  ch.seal_if_full();
  REQUIRE(ch.queued_batches() == 1);
  batch b;
  REQUIRE(ch.pop_sendable(b));
  CHECK(b.size() == 5);
}

TEST_CASE("the builder after sealing is a fresh empty buffer of the same record type") {
  auto ch = make_channel(8, 1);
  append(ch, 1);
  ch.seal_if_full();
  CHECK(ch.builder().empty());
  CHECK(ch.builder().value_type() == typeid(int));
  append(ch, 2);
  ch.seal_if_full();
  batch first;
  batch second;
  REQUIRE(ch.pop_sendable(first));
  REQUIRE(ch.pop_sendable(second));
  // The two batches own different buffers.
  CHECK(first.records != second.records);
  CHECK(values_of(first) == std::vector<int>{1});
  CHECK(values_of(second) == std::vector<int>{2});
}

TEST_CASE("seal of an empty builder is a no-op") {
  auto ch = make_channel(8, 4);
  ch.seal();
  ch.seal();
  CHECK(ch.queued_batches() == 0);
  CHECK(ch.batches_sealed() == 0);
  ch.seal_if_full();
  CHECK(ch.queued_batches() == 0);
}

TEST_CASE("seal of a partly filled builder queues a partial batch") {
  auto ch = make_channel(8, 100);
  append(ch, 5);
  ch.seal();
  REQUIRE(ch.queued_batches() == 1);
  batch b;
  REQUIRE(ch.pop_sendable(b));
  CHECK(b.seq == 1);
  CHECK(values_of(b) == std::vector<int>{5});
}

TEST_CASE("seal_last produces a last batch whose seq follows the previous batches") {
  auto ch = make_channel(8, 2);
  append(ch, 1);
  append(ch, 2);
  ch.seal_if_full();
  append(ch, 3);
  ch.seal();
  append(ch, 4);
  ch.seal_last();
  CHECK(ch.closed());
  CHECK(ch.batches_sealed() == 3);
  CHECK_FALSE(ch.finished());

  std::vector<batch> sent;
  batch b;
  while (ch.pop_sendable(b)) {
    sent.push_back(b);
  }
  REQUIRE(sent.size() == 3);
  for (size_t i = 0; i < sent.size(); ++i) {
    CHECK(sent[i].seq == i + 1);
    CHECK(sent[i].channel == 7);
    CHECK(sent[i].last == (i == 2));
  }
  // The last batch may carry records.
  CHECK(values_of(sent[2]) == std::vector<int>{4});
  CHECK(ch.finished());
}

TEST_CASE("seal_last on an untouched channel sends one empty last batch with seq 1") {
  auto ch = make_channel(1, 4);
  ch.seal_last();
  batch b;
  REQUIRE(ch.pop_sendable(b));
  CHECK(b.seq == 1);
  CHECK(b.last);
  CHECK(b.size() == 0);
  CHECK(ch.finished());
}

TEST_CASE("seal_last twice seals only one last batch") {
  auto ch = make_channel(8, 4);
  ch.seal_last();
  ch.seal_last();
  CHECK(ch.queued_batches() == 1);
  CHECK(ch.batches_sealed() == 1);
  // Sealing an empty builder after the end stays a no-op.
  ch.seal();
  ch.seal_if_full();
  CHECK(ch.queued_batches() == 1);
}

TEST_CASE("pop_sendable never hands out more batches than the credit granted") {
  auto ch = make_channel(2, 1);
  for (int i = 0; i < 5; ++i) {
    append(ch, i);
    ch.seal_if_full();
  }
  REQUIRE(ch.queued_batches() == 5);

  batch b;
  std::vector<uint64_t> seqs;
  while (ch.pop_sendable(b)) {
    seqs.push_back(b.seq);
  }
  CHECK(seqs == std::vector<uint64_t>{1, 2});
  CHECK(ch.credit() == 0);
  CHECK(ch.queued_batches() == 3);
  // Still blocked when asked again.
  CHECK_FALSE(ch.pop_sendable(b));
  CHECK(ch.queued_batches() == 3);
}

TEST_CASE("grant resumes a channel blocked on credit, one batch per credit") {
  auto ch = make_channel(0, 1);
  for (int i = 0; i < 3; ++i) {
    append(ch, i);
    ch.seal_if_full();
  }
  ch.seal_last();
  batch b;
  CHECK_FALSE(ch.pop_sendable(b));

  ch.grant(1);
  CHECK(ch.credit() == 1);
  REQUIRE(ch.pop_sendable(b));
  CHECK(b.seq == 1);
  CHECK_FALSE(ch.pop_sendable(b));

  ch.grant(10);
  std::vector<uint64_t> seqs;
  while (ch.pop_sendable(b)) {
    seqs.push_back(b.seq);
  }
  CHECK(seqs == std::vector<uint64_t>{2, 3, 4});
  CHECK(b.last);
  CHECK(ch.finished());
  // Unused credit stays with the channel.
  CHECK(ch.credit() == 7);
}

TEST_CASE("in-flight batches never exceed the initial credit when the receiver returns one "
          "credit per consumed batch") {
  constexpr uint32_t initial = 3;
  auto ch = make_channel(initial, 2);
  std::vector<batch> in_flight;
  uint64_t expected_seq = 1;
  size_t max_in_flight = 0;
  for (int i = 0; i < 100; ++i) {
    append(ch, i);
    ch.seal_if_full();
    batch b;
    while (ch.pop_sendable(b)) {
      in_flight.push_back(b);
    }
    max_in_flight = std::max(max_in_flight, in_flight.size());
    CHECK(in_flight.size() <= initial);
    // Every seventh step the receiver consumes one batch and returns its credit.
    if (i % 7 == 0 && !in_flight.empty()) {
      CHECK(in_flight.front().seq == expected_seq++);
      in_flight.erase(in_flight.begin());
      ch.grant(1);
    }
  }
  CHECK(max_in_flight == initial);
}

TEST_CASE("finished stays false while the last batch waits for credit") {
  auto ch = make_channel(0, 4);
  ch.seal_last();
  CHECK(ch.closed());
  CHECK_FALSE(ch.finished());
  ch.grant(1);
  batch b;
  REQUIRE(ch.pop_sendable(b));
  CHECK(ch.finished());
}

TEST_CASE("input_channel accepts consecutive sequence numbers starting at 1") {
  input_channel in;
  CHECK(in.position() == 0);
  CHECK_FALSE(in.finished());
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    CHECK(in.admit(seq, false) == input_channel::verdict::accept);
    CHECK(in.position() == seq);
  }
  CHECK_FALSE(in.finished());
}

TEST_CASE("input_channel flags replayed batches below the next seq as duplicates") {
  input_channel in;
  REQUIRE(in.admit(1, false) == input_channel::verdict::accept);
  REQUIRE(in.admit(2, false) == input_channel::verdict::accept);
  CHECK(in.admit(1, false) == input_channel::verdict::duplicate);
  CHECK(in.admit(2, false) == input_channel::verdict::duplicate);
  // seq 0 never exists, so it is below every position.
  CHECK(in.admit(0, false) == input_channel::verdict::duplicate);
  // A duplicate neither moves the position nor finishes the channel.
  CHECK(in.admit(2, true) == input_channel::verdict::duplicate);
  CHECK(in.position() == 2);
  CHECK_FALSE(in.finished());
  CHECK(in.admit(3, false) == input_channel::verdict::accept);
  CHECK(in.position() == 3);
}

TEST_CASE("input_channel is finished after the last batch, and replays of it are duplicates") {
  input_channel in;
  REQUIRE(in.admit(1, false) == input_channel::verdict::accept);
  CHECK(in.admit(2, true) == input_channel::verdict::accept);
  CHECK(in.finished());
  CHECK(in.position() == 2);
  CHECK(in.admit(2, true) == input_channel::verdict::duplicate);
  CHECK(in.admit(1, false) == input_channel::verdict::duplicate);
  CHECK(in.finished());
}

TEST_CASE("input_channel accepts a channel that ends with its first batch") {
  input_channel in;
  CHECK(in.admit(1, true) == input_channel::verdict::accept);
  CHECK(in.finished());
}

TEST_CASE("an output channel feeding an input channel delivers every record once, in order") {
  auto ch = make_channel(2, 3);
  input_channel in;
  std::vector<int> received;
  std::vector<batch> wire;
  auto drain = [&] {
    batch b;
    while (ch.pop_sendable(b)) {
      wire.push_back(b);
    }
    for (auto& w : wire) {
      if (in.admit(w.seq, w.last) == input_channel::verdict::accept) {
        auto v = values_of(w);
        received.insert(received.end(), v.begin(), v.end());
      }
      ch.grant(1);
    }
    // Replaying what was already delivered changes nothing.
    for (auto& w : wire) {
      CHECK(in.admit(w.seq, w.last) == input_channel::verdict::duplicate);
    }
    wire.clear();
  };
  for (int i = 0; i < 20; ++i) {
    append(ch, i);
    ch.seal_if_full();
    drain();
  }
  ch.seal();
  ch.seal_last();
  drain();
  std::vector<int> expected(20);
  for (int i = 0; i < 20; ++i) {
    expected[i] = i;
  }
  CHECK(received == expected);
  CHECK(in.finished());
  CHECK(ch.finished());
  CHECK(in.position() == ch.batches_sealed());
}

TEST_CASE("make_room seals a partly filled batch that the next input would overflow") {
  auto ch = make_channel(8, 4);
  CHECK_FALSE(ch.make_room(10)); // an empty builder takes any input
  append(ch, 1);
  append(ch, 2);
  CHECK_FALSE(ch.make_room(2)); // 2 + 2 fits in 4
  CHECK(ch.queued_batches() == 0);
  CHECK(ch.make_room(3)); // 2 + 3 would not
  CHECK(ch.queued_batches() == 1);
  CHECK(ch.builder_events() == 0);
  batch b;
  REQUIRE(ch.pop_sendable(b));
  CHECK(values_of(b) == std::vector<int>{1, 2});
}

TEST_CASE("a returned buffer is reused for the next batch") {
  auto ch = make_channel(1, 1);
  append(ch, 1);
  REQUIRE(ch.seal_if_full());
  batch b;
  REQUIRE(ch.pop_sendable(b));
  auto* returned = b.records.get();
  b.records->clear();
  ch.grant(1, std::move(b.records));
  append(ch, 2); // fills the builder allocated at the first seal
  REQUIRE(ch.seal_if_full());
  CHECK(&ch.builder() == returned);
}
