// Test helper of eddy_deadletters_test.sh: writes three known dead letters into
// <data-dir>/deadletters.db through dead_letter_store (as a job would) and marks the second
// one replayed. Usage: seed_deadletters DATA_DIR
#include <cstdint>
#include <iostream>

#include "eddy/core/error.hpp"
#include "eddy/io/dead_letter_store.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: seed_deadletters DATA_DIR\n";
    return 2;
  }
  auto store = eddy::dead_letter_store::open(eddy::dead_letter_store::path_in(argv[1]));
  if (!store) {
    std::cerr << "seed_deadletters: " << eddy::describe(store.error()) << "\n";
    return 1;
  }
  eddy::failed_record poison;
  poison.at_ms = 1700000000123; // 2023-11-14T22:13:20.123Z
  poison.job = "clicks";
  poison.op = "count";
  poison.partition = 3;
  poison.origin = (uint64_t{1} << 48) | 42;
  poison.key = "alice";
  poison.record = R"({"user":"alice","n":7})";
  poison.payload = "PAYLOAD-BYTES-1";
  poison.error = "division by zero";
  poison.attempts = 3;

  eddy::failed_record failed_actor;
  failed_actor.at_ms = 1700000060000; // 2023-11-14T22:14:20.000Z
  failed_actor.job = "clicks";
  failed_actor.op = "enrich";
  failed_actor.partition = 0;
  failed_actor.origin = (uint64_t{2} << 48) | 7;
  failed_actor.record = R"({"user":"bob"})";
  failed_actor.payload = "PAYLOAD-BYTES-2";
  failed_actor.error = "'enrich/0' failed (restarted 6 times in 10 s)";
  failed_actor.attempts = 1;

  eddy::failed_record unknown_origin;
  unknown_origin.at_ms = 1700000120500; // 2023-11-14T22:15:20.500Z
  unknown_origin.job = "orders";
  unknown_origin.op = "count";
  unknown_origin.partition = 1;
  unknown_origin.key = "o-17";
  unknown_origin.record = R"({"order":"o-17"})";
  unknown_origin.error = "bad amount";
  unknown_origin.attempts = 5;

  for (const auto* r : {&poison, &failed_actor, &unknown_origin}) {
    auto added = (*store)->add(*r);
    if (!added || !*added) {
      std::cerr << "seed_deadletters: "
                << (added ? std::string{"not added"} : eddy::describe(added.error())) << "\n";
      return 1;
    }
  }
  eddy::failed_record_query q;
  q.job = "clicks";
  q.op = "enrich";
  auto list = (*store)->list(q);
  if (!list || list->size() != 1) {
    std::cerr << "seed_deadletters: cannot find the entry to mark replayed\n";
    return 1;
  }
  if (auto err = (*store)->mark_replayed({list->front().id})) {
    std::cerr << "seed_deadletters: " << eddy::describe(err) << "\n";
    return 1;
  }
  return 0;
}
