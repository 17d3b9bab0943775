#pragma once

// The Nexmark event model and a deterministic generator following the reference
// generator's model (issue 9): an online auction with people, auctions and bids in the
// proportion 1 : 3 : 46; ids grow with the event index, so bids and auctions refer to
// people and auctions that exist (or are about to); some auctions, sellers and bidders are
// "hot" and get most of the traffic; event time advances with the configured rate, and
// timestamps may lag by a bounded random out-of-order delay. Event i is a pure function of
// (seed, i), so source instances can generate disjoint slices in parallel.

#include <cmath>
#include <cstdint>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

namespace eddy::nexmark {

struct person {
  int64_t id = 0;
  std::string name;
  std::string email;
  std::string credit_card;
  std::string city;
  std::string state;
  int64_t ts = 0;
  [[nodiscard]] bool operator==(const person&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(person, id, name, email, credit_card, city, state, ts)
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, person& x) {
  return f(x.id, x.name, x.email, x.credit_card, x.city, x.state, x.ts);
}

struct auction {
  int64_t id = 0;
  std::string item_name;
  int64_t initial_bid = 0;
  int64_t reserve = 0;
  int64_t ts = 0;
  int64_t expires = 0;
  int64_t seller = 0;
  int64_t category = 0;
  [[nodiscard]] bool operator==(const auction&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(auction, id, item_name, initial_bid, reserve, ts, expires,
                                   seller, category)
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, auction& x) {
  return f(x.id, x.item_name, x.initial_bid, x.reserve, x.ts, x.expires, x.seller, x.category);
}

struct bid {
  int64_t auction = 0;
  int64_t bidder = 0;
  /// In cents.
  int64_t price = 0;
  std::string channel;
  int64_t ts = 0;
  [[nodiscard]] bool operator==(const bid&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(bid, auction, bidder, price, channel, ts)
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, bid& x) {
  return f(x.auction, x.bidder, x.price, x.channel, x.ts);
}

/// The generator's settings (the reference defaults).
struct config {
  uint64_t seed = 1;
  /// Event time of event 0 (ms since the epoch).
  int64_t base_time = 1'700'000'000'000;
  /// Events per second of event time.
  uint64_t events_per_second = 10'000;
  /// Timestamps lag by up to this many ms (0: in order).
  int64_t out_of_order_ms = 0;
  int64_t person_proportion = 1;
  int64_t auction_proportion = 3;
  int64_t bid_proportion = 46;
  int64_t first_person_id = 1000;
  int64_t first_auction_id = 1000;
  int64_t first_category_id = 10;
  int64_t categories = 5;
  /// 1 in N auctions / sellers / bidders is hot and gets (N-1)/N of the choices.
  int64_t hot_auction_ratio = 2;
  int64_t hot_seller_ratio = 4;
  int64_t hot_bidder_ratio = 4;
  /// Bids and sellers pick among the last this many people; bids among the last this
  /// many auctions (plus a few about to be created).
  int64_t active_people = 1000;
  int64_t in_flight_auctions = 100;
  /// How far ahead of the newest id a pick may go (an id created by a later event).
  int64_t id_lead = 10;
  /// Auctions last between 1x and 2x this.
  int64_t auction_length_ms = 10'000;

  [[nodiscard]] int64_t total_proportion() const noexcept {
    return person_proportion + auction_proportion + bid_proportion;
  }
};

using event = std::variant<person, auction, bid>;

/// The random numbers of one event: splitmix64 over a seed made from (seed, i). Cheap to
/// start (one word of state), unlike std::mt19937_64 whose seeding costs more than making
/// an event; the generator makes one per event so that event i stays a pure function.
class event_rng {
public:
  using result_type = uint64_t;
  explicit event_rng(uint64_t seed) noexcept
    : state_(seed) {}
  static constexpr uint64_t min() noexcept {
    return 0;
  }
  static constexpr uint64_t max() noexcept {
    return ~uint64_t{0};
  }
  uint64_t operator()() noexcept {
    uint64_t x = (state_ += 0x9e3779b97f4a7c15ULL);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  }

private:
  uint64_t state_;
};

/// JSON of an event: {"person": {...}}, {"auction": {...}} or {"bid": {...}}.
inline void to_json(nlohmann::json& j, const event& e) {
  static const char* names[] = {"person", "auction", "bid"};
  std::visit([&](const auto& x) { j = nlohmann::json{{names[e.index()], x}}; }, e);
}
inline void from_json(const nlohmann::json& j, event& e) {
  if (j.contains("person")) {
    e = j.at("person").get<person>();
  } else if (j.contains("auction")) {
    e = j.at("auction").get<auction>();
  } else {
    e = j.at("bid").get<bid>();
  }
}

/// Event i of the stream configured by `c`.
class generator {
public:
  explicit generator(config c)
    : c_(c) {}

  [[nodiscard]] const config& settings() const noexcept {
    return c_;
  }

  /// The event time of event i before its out-of-order lag.
  [[nodiscard]] int64_t time_of(uint64_t i) const noexcept {
    return c_.base_time + static_cast<int64_t>(i * 1000 / c_.events_per_second);
  }

  [[nodiscard]] event at(uint64_t i) const {
    event_rng rnd{mix(c_.seed * 0x100000001b3ULL ^ i)};
    auto ts = time_of(i);
    if (c_.out_of_order_ms > 0) {
      ts -= static_cast<int64_t>(rnd() % static_cast<uint64_t>(c_.out_of_order_ms + 1));
    }
    auto offset = static_cast<int64_t>(i % static_cast<uint64_t>(c_.total_proportion()));
    if (offset < c_.person_proportion) {
      return make_person(i, ts, rnd);
    }
    if (offset < c_.person_proportion + c_.auction_proportion) {
      return make_auction(i, ts, rnd);
    }
    return make_bid(i, ts, rnd);
  }

  /// The newest person / auction id 0-based as of event i (the one it creates, if any).
  [[nodiscard]] int64_t last_person(uint64_t i) const noexcept {
    auto epoch = static_cast<int64_t>(i / static_cast<uint64_t>(c_.total_proportion()));
    auto offset = static_cast<int64_t>(i % static_cast<uint64_t>(c_.total_proportion()));
    return epoch * c_.person_proportion + std::min(offset, c_.person_proportion - 1);
  }
  [[nodiscard]] int64_t last_auction(uint64_t i) const noexcept {
    auto epoch = static_cast<int64_t>(i / static_cast<uint64_t>(c_.total_proportion()));
    auto offset = static_cast<int64_t>(i % static_cast<uint64_t>(c_.total_proportion()));
    if (offset < c_.person_proportion) {
      // Before this epoch's first auction: the previous epoch's last one.
      return epoch * c_.auction_proportion - 1;
    }
    return epoch * c_.auction_proportion +
           std::min(offset - c_.person_proportion, c_.auction_proportion - 1);
  }

private:
  static uint64_t mix(uint64_t x) noexcept {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  }
  static int64_t uniform(event_rng& rnd, int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(rnd() % static_cast<uint64_t>(hi - lo + 1));
  }
  static bool chance(event_rng& rnd, int64_t num, int64_t den) {
    return static_cast<int64_t>(rnd() % static_cast<uint64_t>(den)) < num;
  }
  /// A price in cents, log-uniform from 1 to 10^6 dollars, as the reference's.
  static int64_t price(event_rng& rnd) {
    auto u = static_cast<double>(rnd() >> 11) / static_cast<double>(1ULL << 53);
    return static_cast<int64_t>(std::llround(std::pow(10.0, u * 6.0) * 100.0));
  }
  /// A person 0-based among the active ones (or a few about to join).
  int64_t some_person(uint64_t i, event_rng& rnd) const {
    auto last = last_person(i);
    return uniform(rnd, std::max<int64_t>(0, last - c_.active_people), last + c_.id_lead);
  }
  int64_t some_auction(uint64_t i, event_rng& rnd) const {
    auto last = std::max<int64_t>(0, last_auction(i));
    return uniform(rnd, std::max<int64_t>(0, last - c_.in_flight_auctions), last + c_.id_lead);
  }

  person make_person(uint64_t i, int64_t ts, event_rng& rnd) const {
    static const char* first[] = {"Peter", "Paul",  "Luke",  "John",   "Saul",  "Vicky",
                                  "Kate",  "Julie", "Sarah", "Deiter", "Walter"};
    static const char* last[] = {"Shultz", "Abrams", "Spencer", "White", "Bartels",
                                 "Walton", "Smith",  "Jones",   "Noris"};
    static const char* cities[] = {"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland",
                                   "Bend",    "Redmond",     "Seattle",       "Kent",  "Cheyenne"};
    static const char* states[] = {"AZ", "CA", "ID", "OR", "WA", "WY"};
    person p;
    p.id = c_.first_person_id + last_person(i);
    p.name = std::string{first[rnd() % std::size(first)]} + " " + last[rnd() % std::size(last)];
    p.email = "p" + std::to_string(p.id) + "@example.com";
    p.credit_card = std::to_string(1000 + rnd() % 9000) + " " +
                    std::to_string(1000 + rnd() % 9000) + " " +
                    std::to_string(1000 + rnd() % 9000) + " " + std::to_string(1000 + rnd() % 9000);
    p.city = cities[rnd() % std::size(cities)];
    p.state = states[rnd() % std::size(states)];
    p.ts = ts;
    return p;
  }

  auction make_auction(uint64_t i, int64_t ts, event_rng& rnd) const {
    auction a;
    a.id = c_.first_auction_id + last_auction(i);
    auto seller = chance(rnd, c_.hot_seller_ratio - 1, c_.hot_seller_ratio)
                    ? last_person(i) / c_.hot_seller_ratio * c_.hot_seller_ratio
                    : some_person(i, rnd);
    a.seller = c_.first_person_id + seller;
    a.category =
      c_.first_category_id + static_cast<int64_t>(rnd() % static_cast<uint64_t>(c_.categories));
    a.initial_bid = price(rnd);
    a.reserve = a.initial_bid + price(rnd);
    a.item_name = "item-" + std::to_string(a.id);
    a.ts = ts;
    a.expires = ts + uniform(rnd, c_.auction_length_ms, 2 * c_.auction_length_ms);
    return a;
  }

  bid make_bid(uint64_t i, int64_t ts, event_rng& rnd) const {
    static const char* channels[] = {"Google", "Facebook", "Baidu", "Apple"};
    bid b;
    auto auction =
      chance(rnd, c_.hot_auction_ratio - 1, c_.hot_auction_ratio)
        ? std::max<int64_t>(0, last_auction(i)) / c_.hot_auction_ratio * c_.hot_auction_ratio
        : some_auction(i, rnd);
    auto bidder = chance(rnd, c_.hot_bidder_ratio - 1, c_.hot_bidder_ratio)
                    ? last_person(i) / c_.hot_bidder_ratio * c_.hot_bidder_ratio + 1
                    : some_person(i, rnd);
    b.auction = c_.first_auction_id + auction;
    b.bidder = c_.first_person_id + bidder;
    b.price = price(rnd);
    b.channel = channels[rnd() % std::size(channels)];
    b.ts = ts;
    return b;
  }

  config c_;
};

} // namespace eddy::nexmark
