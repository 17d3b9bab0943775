#include <doctest/doctest.h>

#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "eddy/state/journal_store.hpp"
#include "support/journal_support.hpp"
#include "support/temp_dir.hpp"

// The log of deferred commits and the compaction that folds it (journal_log.cpp).

using namespace eddy;
using namespace eddy::test;
TEST_CASE("deferred commits reach the state rows at the next compaction, in log order") {
  temp_dir dir;
  auto store = open_ok(dir / "p.db");
  commit_ok(store, changes_of({set("a", "n", "1"), set("b", "n", "1"), set("b", "m", "x")}));
  commit_ok(store, deferred_of({set("a", "n", "2"), set("c", "n", "1")}));
  // A clear of the whole key, then a new value: only the new value survives.
  commit_ok(store, deferred_of({state_change{"b", "", std::nullopt}, set("b", "n", "7")}));
  commit_ok(store, deferred_of({set("a", "n", "3"), clear("c", "n")}));
  CHECK(store.last_seq() == 9);
  // Reads see the rows, which do not have the log yet; history sees the log at once.
  CHECK(get_ok(store, "a", "n") == "1");
  auto recent = history_ok(store, "a");
  REQUIRE(recent.size() == 3);
  CHECK(recent[0].seq == 8);
  CHECK(recent[0].value == "3");
  CHECK(recent[2].value == "1");
  REQUIRE(!store.compact(2));
  CHECK(get_ok(store, "a", "n") == "3");
  CHECK(get_ok(store, "b", "n") == "7");
  CHECK(get_ok(store, "b", "m") == std::nullopt);
  CHECK(get_ok(store, "c", "n") == std::nullopt);
  auto kept = history_ok(store, "a");
  REQUIRE(kept.size() == 2);
  CHECK(kept[0].value == "3");
  CHECK(kept[1].value == "2");
  CHECK(store.last_seq() == 9);
}

TEST_CASE("a key whose state is gone after a compaction loses its history with it") {
  temp_dir dir;
  auto store = open_ok(dir / "p.db");
  // "w" had history from an earlier compaction; "s" is born and dies within one log; "b"
  // loses one of its two states; "c" is cleared whole.
  commit_ok(store, deferred_of({set("w", "n", "1"), set("b", "n", "1"), set("b", "m", "1"),
                                set("c", "n", "1")}));
  REQUIRE(!store.compact(4));
  REQUIRE(history_ok(store, "w").size() == 1);
  commit_ok(store, deferred_of({set("w", "n", "2"), set("s", "n", "1"), clear("b", "m")}));
  commit_ok(store,
            deferred_of({clear("w", "n"), clear("s", "n"), state_change{"c", "", std::nullopt}}));
  // Before the compaction the log still tells what happened.
  CHECK(history_ok(store, "s").size() == 2);
  REQUIRE(!store.compact(4));
  CHECK(history_ok(store, "w").empty());
  CHECK(history_ok(store, "s").empty());
  CHECK(history_ok(store, "c").empty());
  // A key with a state left keeps its history, the removal included.
  CHECK(get_ok(store, "b", "n") == "1");
  auto kept = history_ok(store, "b");
  REQUIRE(kept.size() == 3);
  CHECK(kept[0].name == "m");
  CHECK(!kept[0].value);
}

TEST_CASE("folding a log trims each key's history to the newest N across compactions") {
  temp_dir dir;
  auto store = open_ok(dir / "p.db");
  for (int round = 1; round <= 3; ++round) {
    // Three changes of "k" per compaction, one of "j" in the first.
    std::vector<state_change> changes;
    for (int i = 0; i < 3; ++i) {
      changes.push_back(set("k", "n", std::to_string(round * 10 + i)));
    }
    if (round == 1) {
      changes.push_back(set("j", "n", "1"));
    }
    commit_ok(store, deferred_of(changes));
    REQUIRE(!store.compact(4));
    auto kept = history_ok(store, "k");
    REQUIRE(kept.size() == std::min<size_t>(3 * round, 4));
    CHECK(kept.front().value == std::to_string(round * 10 + 2));
  }
  CHECK(history_ok(store, "j").size() == 1);
  // Keeping none drops every change.
  commit_ok(store, deferred_of({set("k", "n", "99")}));
  REQUIRE(!store.compact(0));
  CHECK(history_ok(store, "k").empty());
}

TEST_CASE("a journal reopened with a log folds it before anything reads it") {
  temp_dir dir;
  auto file = dir / "p.db";
  {
    auto store = open_ok(file);
    commit_ok(store, deferred_of({set("k", "n", "1")}));
    commit_ok(store, deferred_of({set("k", "n", "2"), set("j", "n", "5")}));
    CHECK(get_ok(store, "k", "n") == std::nullopt);
  }
  auto store = open_ok(file);
  CHECK(get_ok(store, "k", "n") == "2");
  CHECK(get_ok(store, "j", "n") == "5");
  CHECK(store.last_seq() == 3);
  commit_ok(store, deferred_of({set("k", "n", "3")}));
  CHECK(store.last_seq() == 4);
  CHECK(history_ok(store, "k").front().seq == 4);
}

TEST_CASE("compactions of many keys match a model of their state and newest changes") {
  // Enough keys that every batched write of a compaction runs full batches and a partial
  // one; random sets, removals and clears over several logs and compactions.
  temp_dir dir;
  auto store = open_ok(dir / "p.db");
  constexpr size_t keep = 3;
  std::mt19937 rng{7};
  std::map<std::string, std::map<std::string, std::string>> state;
  // Per key, its changes as (name, value or nullopt), oldest first, since it last had none.
  std::map<std::string, std::vector<std::pair<std::string, std::optional<std::string>>>> changes;
  for (int round = 0; round < 6; ++round) {
    for (int commit = 0; commit < 4; ++commit) {
      std::vector<state_change> batch;
      for (int i = 0; i < 60; ++i) {
        auto key = "k" + std::to_string(rng() % 150);
        auto name = std::string{rng() % 2 == 0 ? "n" : "m"};
        auto dice = rng() % 10;
        if (dice == 0) {
          batch.push_back(state_change{key, "", std::nullopt});
          state.erase(key);
          changes[key].emplace_back("", std::nullopt);
        } else if (dice == 1) {
          batch.push_back(clear(key, name));
          state[key].erase(name);
          changes[key].emplace_back(name, std::nullopt);
        } else {
          auto value = std::to_string(rng() % 1000);
          batch.push_back(set(key, name, value));
          state[key][name] = value;
          changes[key].emplace_back(name, value);
        }
      }
      commit_ok(store, deferred_of(batch));
    }
    REQUIRE(!store.compact(keep));
    for (auto& [key, kept] : changes) {
      auto& live = state[key];
      if (live.empty()) {
        // Gone keys take their history with them.
        kept.clear();
      }
      auto journal = history_ok(store, key);
      REQUIRE(journal.size() == std::min(keep, kept.size()));
      for (size_t i = 0; i < journal.size(); ++i) {
        const auto& [name, value] = kept[kept.size() - 1 - i];
        CHECK(journal[i].name == name);
        CHECK(journal[i].value == value);
      }
      for (const char* name : {"n", "m"}) {
        auto want = std::optional<std::string>{};
        if (live.count(name) > 0) {
          want = live.at(name);
        }
        CHECK(get_ok(store, key, name) == want);
      }
    }
  }
}
