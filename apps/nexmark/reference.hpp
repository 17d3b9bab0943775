#pragma once

// Straightforward computations of the Nexmark queries over all events at once (no streams,
// no state, no watermarks): what the queries of queries.hpp must produce when no event comes
// later than the watermark allows. The tests compare the jobs' results with these.

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <tuple>
#include <vector>

#include "nexmark/queries.hpp"

namespace eddy::nexmark::reference {

inline std::vector<bid> bids(const std::vector<event>& events) {
  std::vector<bid> result;
  for (const auto& e : events) {
    if (const auto* b = std::get_if<bid>(&e)) {
      result.push_back(*b);
    }
  }
  return result;
}

inline std::vector<bid> q1(const std::vector<event>& events) {
  auto result = bids(events);
  for (auto& b : result) {
    b.price = b.price * q1_euro_per_mille / 1000;
  }
  return result;
}

inline std::vector<auction_price> q2(const std::vector<event>& events) {
  std::vector<auction_price> result;
  for (const auto& b : bids(events)) {
    if (b.auction % q2_auction_modulus == 0) {
      result.push_back({b.auction, b.price});
    }
  }
  return result;
}

inline std::vector<local_item> q3(const std::vector<event>& events) {
  std::map<int64_t, person> people;
  for (const auto& e : events) {
    if (const auto* p = std::get_if<person>(&e)) {
      people.emplace(p->id, *p);
    }
  }
  std::vector<local_item> result;
  for (const auto& e : events) {
    const auto* a = std::get_if<auction>(&e);
    if (a == nullptr || a->category != q3_category) {
      continue;
    }
    auto p = people.find(a->seller);
    if (p != people.end() && q3_local(p->second.state)) {
      result.push_back({p->second.name, p->second.city, p->second.state, a->id});
    }
  }
  return result;
}

/// q4's final average per category (the last update the job makes for each).
inline std::vector<category_average> q4(const std::vector<event>& events) {
  std::map<int64_t, int64_t> best;
  std::map<int64_t, auction> auctions;
  for (const auto& e : events) {
    if (const auto* a = std::get_if<auction>(&e)) {
      auctions.emplace(a->id, *a);
    }
  }
  for (const auto& b : bids(events)) {
    auto a = auctions.find(b.auction);
    if (a != auctions.end() && b.ts >= a->second.ts && b.ts <= a->second.expires) {
      auto [at, fresh] = best.emplace(b.auction, b.price);
      if (!fresh) {
        at->second = std::max(at->second, b.price);
      }
    }
  }
  std::map<int64_t, std::pair<int64_t, int64_t>> by_category;
  for (const auto& [id, price] : best) {
    auto& [sum, count] = by_category[auctions.at(id).category];
    sum += price;
    ++count;
  }
  std::vector<category_average> result;
  for (const auto& [category, sc] : by_category) {
    result.push_back(
      {category, sc.second, static_cast<double>(sc.first) / static_cast<double>(sc.second)});
  }
  return result;
}

/// The start of the tumbling window of `ts` (windows aligned at the epoch).
inline time_ms window_start(time_ms ts, time_ms size) {
  return ts - ((ts % size) + size) % size;
}

inline std::vector<hot_item> q5(const std::vector<event>& events, const query_params& q = {}) {
  std::map<time_ms, std::map<int64_t, uint64_t>> counts;
  for (const auto& b : bids(events)) {
    for (auto s = window_start(b.ts, q.slide_ms); s > b.ts - q.window_ms; s -= q.slide_ms) {
      ++counts[s][b.auction];
    }
  }
  std::vector<hot_item> result;
  for (const auto& [start, per_auction] : counts) {
    uint64_t most = 0;
    for (const auto& [id, n] : per_auction) {
      most = std::max(most, n);
    }
    for (const auto& [id, n] : per_auction) {
      if (n == most) {
        result.push_back({id, n, start, start + q.window_ms});
      }
    }
  }
  return result;
}

inline std::vector<highest_bid> q7(const std::vector<event>& events, const query_params& q = {}) {
  std::map<time_ms, int64_t> highest;
  auto all = bids(events);
  for (const auto& b : all) {
    auto [at, fresh] = highest.emplace(window_start(b.ts, q.window_ms), b.price);
    if (!fresh) {
      at->second = std::max(at->second, b.price);
    }
  }
  std::vector<highest_bid> result;
  for (const auto& b : all) {
    auto start = window_start(b.ts, q.window_ms);
    if (highest.at(start) == b.price) {
      result.push_back({b.auction, b.bidder, b.price, b.ts, start, start + q.window_ms});
    }
  }
  return result;
}

inline std::vector<new_user> q8(const std::vector<event>& events, const query_params& q = {}) {
  std::set<std::pair<time_ms, int64_t>> sold;
  for (const auto& e : events) {
    if (const auto* a = std::get_if<auction>(&e)) {
      sold.emplace(window_start(a->ts, q.window_ms), a->seller);
    }
  }
  std::vector<new_user> result;
  for (const auto& e : events) {
    if (const auto* p = std::get_if<person>(&e)) {
      auto start = window_start(p->ts, q.window_ms);
      if (sold.count({start, p->id}) > 0) {
        result.push_back({p->id, p->name, start});
      }
    }
  }
  return result;
}

inline std::vector<bidder_count> q11(const std::vector<event>& events, const query_params& q = {}) {
  std::map<int64_t, std::vector<time_ms>> times;
  for (const auto& b : bids(events)) {
    times[b.bidder].push_back(b.ts);
  }
  std::vector<bidder_count> result;
  for (auto& [bidder, ts] : times) {
    std::sort(ts.begin(), ts.end());
    bidder_count session{bidder, 0, ts.front(), 0};
    for (size_t i = 0; i < ts.size(); ++i) {
      if (i > 0 && ts[i] - ts[i - 1] >= q.session_gap_ms) {
        session.end = ts[i - 1] + q.session_gap_ms;
        result.push_back(session);
        session = bidder_count{bidder, 0, ts[i], 0};
      }
      ++session.bids;
    }
    session.end = ts.back() + q.session_gap_ms;
    result.push_back(session);
  }
  return result;
}

/// q12 depends on when the bids were processed; what does not: the bids of each bidder.
inline std::map<int64_t, uint64_t> bids_per_bidder(const std::vector<event>& events) {
  std::map<int64_t, uint64_t> result;
  for (const auto& b : bids(events)) {
    ++result[b.bidder];
  }
  return result;
}

} // namespace eddy::nexmark::reference
