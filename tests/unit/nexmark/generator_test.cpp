#include <doctest/doctest.h>

#include <map>

#include "nexmark/generator.hpp"

using namespace eddy::nexmark;

TEST_CASE("the nexmark generator mixes people, auctions and bids 1:3:46 and is a pure function "
          "of seed and index") {
  generator g{config{}};
  std::map<size_t, int> kinds;
  for (uint64_t i = 0; i < 5000; ++i) {
    ++kinds[g.at(i).index()];
  }
  CHECK(kinds[0] == 100);
  CHECK(kinds[1] == 300);
  CHECK(kinds[2] == 4600);
  generator again{config{}};
  auto text = [](const event& e) {
    return std::visit([](const auto& x) { return nlohmann::json(x).dump(); }, e);
  };
  for (uint64_t i : {0u, 7u, 49u, 50u, 4999u}) {
    CHECK(text(g.at(i)) == text(again.at(i)));
  }
  config other;
  other.seed = 2;
  CHECK(nlohmann::json(std::get<bid>(generator{other}.at(10))).dump() !=
        nlohmann::json(std::get<bid>(g.at(10))).dump());
}

TEST_CASE("nexmark ids grow with the stream, bids name people and auctions that exist or are "
          "about to, and hot auctions get half the bids") {
  generator g{config{}};
  const auto& c = g.settings();
  int64_t next_person = c.first_person_id;
  int64_t next_auction = c.first_auction_id;
  int recent_bids = 0;
  for (uint64_t i = 0; i < 50'000; ++i) {
    auto e = g.at(i);
    if (auto* p = std::get_if<person>(&e)) {
      CHECK(p->id == next_person);
      ++next_person;
    } else if (auto* a = std::get_if<auction>(&e)) {
      CHECK(a->id == next_auction);
      ++next_auction;
      CHECK(a->seller < next_person + c.id_lead);
      CHECK(a->category >= c.first_category_id);
      CHECK(a->category < c.first_category_id + c.categories);
      CHECK(a->reserve > a->initial_bid);
      CHECK(a->expires > a->ts);
    } else {
      const auto& b = std::get<bid>(e);
      CHECK(b.auction < next_auction + c.id_lead);
      CHECK(b.auction >= c.first_auction_id);
      CHECK(b.bidder < next_person + c.id_lead);
      CHECK(b.price > 0);
      recent_bids += b.auction >= next_auction - 2 ? 1 : 0;
    }
  }
  // Hot auctions: with a hot ratio of 2, half the bids go to one of the two newest
  // auctions; the others spread over the in-flight ones.
  CHECK(recent_bids > 46'000 * 45 / 100);
  CHECK(recent_bids < 46'000 * 60 / 100);
}

TEST_CASE("nexmark event time follows the rate and lags by at most the out-of-order delay") {
  config c;
  c.events_per_second = 1000;
  c.out_of_order_ms = 50;
  generator g{c};
  bool lagged = false;
  for (uint64_t i = 0; i < 10'000; ++i) {
    auto ts = std::visit([](const auto& e) { return e.ts; }, g.at(i));
    auto due = c.base_time + static_cast<int64_t>(i);
    CHECK(ts <= due);
    CHECK(ts >= due - 50);
    lagged = lagged || ts < due;
  }
  CHECK(lagged);
}
