// fraud-gen: synthetic card transactions for the fraud detector, with planted fraud cases
// of the three kinds it looks for and a truth file naming them.
//
// Clean cards live quietly: each has a home country and a usual amount, buys every 10 minutes
// to 3 days and travels abroad only now and then, slowly. Each planted case takes one card
// that has some history: a burst of transactions within a minute (velocity), an amount 20
// times the card's usual (amount), or a transaction in a far country within an hour of the
// previous one (travel). The same seed gives the same files.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "geo.hpp"

namespace {

namespace po = boost::program_options;
using nlohmann::ordered_json;

constexpr int64_t minute_ms = 60 * 1000;
constexpr int64_t hour_ms = 60 * minute_ms;
constexpr int64_t day_ms = 24 * hour_ms;
// Clean travel is at most this fast, far below any sensible travel threshold.
constexpr double clean_kmh_max = 300;
// A planted far country is at least this far from the previous one: within an hour that is
// over 3000 km/h.
constexpr double far_km_min = 3000;
// Transactions a card needs before it can carry a planted case (the amount case comes after
// the 6th, enough history for the detector's default of 3).
constexpr uint64_t planted_history_min = 8;

struct options {
  uint64_t cards = 500;
  uint64_t transactions = 20000;
  uint64_t seed = 7;
  double fraud_rate = 0.01;
  uint64_t burst = 7;
  int64_t start_ms = 1700000000000;
  std::string out;
  std::string truth;
};

/// Random numbers from std::mt19937_64, whose sequence the standard fixes, through our own
/// distributions (the standard library's differ between implementations).
class random_source {
public:
  explicit random_source(uint64_t seed)
    : engine_(seed) {}
  /// Uniform in [0, 1).
  double uniform() {
    return static_cast<double>(engine_() >> 11) * 0x1.0p-53;
  }
  double uniform(double lo, double hi) {
    return lo + (hi - lo) * uniform();
  }
  /// Uniform in [0, n), n > 0.
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>(uniform() * static_cast<double>(n)) % n;
  }
  bool chance(double p) {
    return uniform() < p;
  }
  /// Standard normal (Box-Muller).
  double normal() {
    auto u = 1.0 - uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(2.0 * 3.14159265358979323846 * uniform());
  }
  /// Log-uniform in [lo, hi): as many short gaps between 1 and 10 minutes as between 1 and
  /// 10 hours, like human activity.
  int64_t log_uniform(int64_t lo, int64_t hi) {
    return static_cast<int64_t>(std::exp(uniform(std::log(lo), std::log(hi))));
  }

private:
  std::mt19937_64 engine_;
};

enum class fraud_kind { velocity, amount, travel };

const char* name_of(fraud_kind kind) {
  switch (kind) {
    case fraud_kind::velocity:
      return "velocity";
    case fraud_kind::amount:
      return "amount";
    default:
      return "travel";
  }
}

struct card_profile {
  std::string id;
  const fraud::country* home;
  /// The usual amount; single transactions scatter around it by a factor of 0.5..2.
  double level;
  std::vector<uint64_t> merchants;
};

/// One generated transaction, before the ids are given in event-time order.
struct draft {
  uint64_t card = 0;
  int64_t ts = 0;
  double amount = 0;
  const fraud::country* where = nullptr;
  uint64_t merchant = 0;
  /// Index of the planted case it belongs to; -1 for clean ones.
  int64_t planted = -1;
};

struct planted_case {
  uint64_t card;
  fraud_kind kind;
};

double cents(double amount) {
  return std::max(0.01, std::round(amount * 100) / 100);
}

/// `prefix` and `number` with leading zeros to `width` digits: ids that sort like numbers.
std::string padded(char prefix, uint64_t number, size_t width) {
  auto digits = std::to_string(number);
  std::string id(1, prefix);
  id.append(width > digits.size() ? width - digits.size() : 0, '0');
  id.append(digits);
  return id;
}

std::vector<card_profile> make_cards(const options& opt, random_source& rng) {
  auto all = fraud::countries();
  auto width = std::to_string(opt.cards).size();
  std::vector<card_profile> cards;
  for (uint64_t i = 0; i < opt.cards; ++i) {
    card_profile c{padded('c', i + 1, width),
                   &all[rng.below(all.size())],
                   std::clamp(std::exp(std::log(40.0) + 0.9 * rng.normal()), 2.0, 2000.0),
                   {}};
    for (int m = 0; m < 3; ++m) {
      c.merchants.push_back(1 + rng.below(2000));
    }
    cards.push_back(std::move(c));
  }
  return cards;
}

/// Spreads `total` clean transactions over the cards, some cards busier than others.
std::vector<uint64_t> spread(uint64_t total, uint64_t cards, random_source& rng) {
  std::vector<double> cumulative;
  double sum = 0;
  for (uint64_t i = 0; i < cards; ++i) {
    sum += std::exp(0.7 * rng.normal());
    cumulative.push_back(sum);
  }
  std::vector<uint64_t> counts(cards, 0);
  for (uint64_t n = 0; n < total; ++n) {
    auto at = std::upper_bound(cumulative.begin(), cumulative.end(), rng.uniform(0, sum));
    ++counts[std::min<size_t>(at - cumulative.begin(), cards - 1)];
  }
  return counts;
}

bool slow_enough(const fraud::country& from, const fraud::country& to, int64_t gap_ms) {
  return fraud::distance_km(from, to) / (static_cast<double>(gap_ms) / hour_ms) <= clean_kmh_max;
}

/// Where a clean card buys next: mostly at home, sometimes abroad, never faster than
/// clean_kmh_max.
const fraud::country* next_country(const card_profile& card, const fraud::country* where,
                                   int64_t gap_ms, random_source& rng) {
  if (where != card.home) {
    return rng.chance(0.5) && slow_enough(*where, *card.home, gap_ms) ? card.home : where;
  }
  if (!rng.chance(0.02)) {
    return where;
  }
  auto all = fraud::countries();
  const auto* abroad = &all[rng.below(all.size())];
  return slow_enough(*where, *abroad, gap_ms) ? abroad : where;
}

draft clean_draft(uint64_t index, const card_profile& card, int64_t ts, const fraud::country* where,
                  random_source& rng) {
  auto merchant =
    rng.chance(0.8) ? card.merchants[rng.below(card.merchants.size())] : 1 + rng.below(2000);
  auto scatter = std::clamp(std::exp(0.25 * rng.normal()), 0.5, 2.0);
  return draft{index, ts, cents(card.level * scatter), where, merchant, -1};
}

std::vector<draft> clean_history(uint64_t index, const card_profile& card, uint64_t count,
                                 int64_t start_ms, random_source& rng) {
  std::vector<draft> history;
  auto ts = start_ms + static_cast<int64_t>(rng.uniform(0, 2.0 * day_ms));
  const auto* where = card.home;
  for (uint64_t k = 0; k < count; ++k) {
    if (k > 0) {
      auto gap = rng.log_uniform(10 * minute_ms, 3 * day_ms);
      ts += gap;
      where = next_country(card, where, gap, rng);
    }
    history.push_back(clean_draft(index, card, ts, where, rng));
  }
  return history;
}

/// A country at least far_km_min from `from`.
const fraud::country* far_from(const fraud::country& from, random_source& rng) {
  std::vector<const fraud::country*> far;
  for (const auto& c : fraud::countries()) {
    if (fraud::distance_km(from, c) >= far_km_min) {
      far.push_back(&c);
    }
  }
  return far[rng.below(far.size())];
}

/// Positions in a card's clean history after which a case can go: with enough history before
/// it (for the amount rule) and two hours of quiet after it, or at the end.
std::vector<size_t> slots(const std::vector<draft>& history, fraud_kind kind) {
  size_t first = kind == fraud_kind::amount ? 5 : 0;
  std::vector<size_t> found;
  for (size_t i = first; i < history.size(); ++i) {
    if (i + 1 == history.size() || history[i + 1].ts - history[i].ts >= 2 * hour_ms) {
      found.push_back(i);
    }
  }
  return found;
}

/// The transactions of planted case `index`, 5 to 60 minutes after a transaction of the card.
std::vector<draft> plant(int64_t index, fraud_kind kind, const card_profile& card,
                         const std::vector<draft>& history, uint64_t burst, random_source& rng) {
  auto after = slots(history, kind);
  const auto& previous = history[after[rng.below(after.size())]];
  auto ts = previous.ts + rng.log_uniform(5 * minute_ms, hour_ms);
  std::vector<draft> added;
  auto add = [&](double amount, const fraud::country* where) {
    added.push_back(draft{previous.card, ts, cents(amount), where, 1 + rng.below(2000), index});
  };
  switch (kind) {
    case fraud_kind::velocity:
      // burst transactions 3..8 s apart: all within a minute.
      for (uint64_t b = 0; b < burst; ++b) {
        add(card.level * rng.uniform(0.6, 1.5), previous.where);
        ts += static_cast<int64_t>(rng.uniform(3000, 8000));
      }
      break;
    case fraud_kind::amount:
      add(20 * card.level, previous.where);
      break;
    case fraud_kind::travel:
      add(card.level * rng.uniform(0.6, 1.5), far_from(*previous.where, rng));
      break;
  }
  return added;
}

/// The planted cases: one card each (a flagged card is blocked, so a second case on it could
/// not be seen), the kinds taking turns.
std::optional<std::string> choose_cases(const options& opt, const std::vector<uint64_t>& counts,
                                        random_source& rng, std::vector<planted_case>& cases) {
  auto wanted =
    static_cast<uint64_t>(std::llround(opt.fraud_rate * static_cast<double>(opt.transactions)));
  std::vector<uint64_t> eligible;
  for (uint64_t i = 0; i < counts.size(); ++i) {
    if (counts[i] >= planted_history_min) {
      eligible.push_back(i);
    }
  }
  if (eligible.size() < wanted) {
    return std::to_string(wanted) + " planted cases need as many cards with " +
           std::to_string(planted_history_min) + " transactions or more, only " +
           std::to_string(eligible.size()) + " have: use more --transactions or --cards, or a " +
           "lower --fraud-rate";
  }
  // A partial Fisher-Yates shuffle picks the cards.
  for (uint64_t j = 0; j < wanted; ++j) {
    std::swap(eligible[j], eligible[j + rng.below(eligible.size() - j)]);
    cases.push_back(planted_case{eligible[j], static_cast<fraud_kind>(j % 3)});
  }
  return std::nullopt;
}

/// Transactions the planted cases take.
uint64_t planted_count(const options& opt) {
  auto wanted =
    static_cast<uint64_t>(std::llround(opt.fraud_rate * static_cast<double>(opt.transactions)));
  uint64_t total = 0;
  for (uint64_t j = 0; j < wanted; ++j) {
    total += static_cast<fraud_kind>(j % 3) == fraud_kind::velocity ? opt.burst : 1;
  }
  return total;
}

/// Writes the transactions in event-time order with ids t000001..., and the truth: one line
/// per planted case naming its card, its (first) transaction and its rule.
bool write_files(const options& opt, std::vector<draft>& all,
                 const std::vector<card_profile>& cards, const std::vector<planted_case>& cases) {
  std::stable_sort(all.begin(), all.end(), [](const draft& a, const draft& b) {
    return a.ts != b.ts ? a.ts < b.ts : a.card < b.card;
  });
  std::ofstream file;
  if (opt.out != "-") {
    file.open(opt.out);
  }
  std::ostream& out = opt.out == "-" ? std::cout : file;
  auto width = std::max<size_t>(6, std::to_string(all.size()).size());
  std::vector<std::vector<std::string>> case_txs(cases.size());
  std::vector<size_t> case_order;
  for (size_t i = 0; i < all.size(); ++i) {
    const auto& d = all[i];
    auto id = padded('t', i + 1, width);
    out << ordered_json{{"tx", id},
                        {"card", cards[d.card].id},
                        {"amount", d.amount},
                        {"merchant", padded('m', d.merchant, 4)},
                        {"country", d.where->code},
                        {"ts", d.ts}}
             .dump()
        << '\n';
    if (d.planted >= 0) {
      auto& txs = case_txs[static_cast<size_t>(d.planted)];
      if (txs.empty()) {
        case_order.push_back(static_cast<size_t>(d.planted));
      }
      txs.push_back(id);
    }
  }
  out.flush();
  if (!out) {
    return false;
  }
  if (opt.truth.empty()) {
    return true;
  }
  std::ofstream truth{opt.truth};
  for (auto j : case_order) {
    ordered_json line{{"card", cards[cases[j].card].id},
                      {"tx", case_txs[j].front()},
                      {"rule", name_of(cases[j].kind)}};
    if (cases[j].kind == fraud_kind::velocity) {
      line["burst"] = case_txs[j];
    }
    truth << line.dump() << '\n';
  }
  truth.flush();
  return static_cast<bool>(truth);
}

/// Generates and writes everything; returns a usage problem, if any.
std::optional<std::string> generate(const options& opt, bool& written) {
  random_source rng{opt.seed};
  auto cards = make_cards(opt, rng);
  auto planted = planted_count(opt);
  if (planted > opt.transactions) {
    return "the planted cases alone need " + std::to_string(planted) + " transactions";
  }
  auto counts = spread(opt.transactions - planted, opt.cards, rng);
  std::vector<planted_case> cases;
  if (auto problem = choose_cases(opt, counts, rng, cases)) {
    return problem;
  }
  std::vector<std::vector<draft>> histories;
  for (uint64_t i = 0; i < opt.cards; ++i) {
    histories.push_back(clean_history(i, cards[i], counts[i], opt.start_ms, rng));
  }
  std::vector<draft> all;
  for (size_t j = 0; j < cases.size(); ++j) {
    auto c = cases[j];
    auto added =
      plant(static_cast<int64_t>(j), c.kind, cards[c.card], histories[c.card], opt.burst, rng);
    all.insert(all.end(), added.begin(), added.end());
  }
  for (auto& h : histories) {
    all.insert(all.end(), h.begin(), h.end());
  }
  written = write_files(opt, all, cards, cases);
  return std::nullopt;
}

int usage_error(const std::string& message) {
  std::cerr << "fraud-gen: error: " << message << " (see --help)\n";
  return 2;
}

/// Parses the command line into `opt`; returns an exit code when the program should stop.
std::optional<int> parse(int argc, char** argv, options& opt) {
  // Counts are read as signed numbers: Boost would wrap "-5" around into a huge unsigned one.
  int64_t cards = 500;
  int64_t transactions = 20000;
  int64_t burst = 7;
  po::options_description desc{"fraud-gen options"};
  desc.add_options()("help,h", "print this help and exit")(
    "cards", po::value(&cards)->default_value(cards),
    "cards (1..1000000)")("transactions", po::value(&transactions)->default_value(transactions),
                          "transactions in all, planted ones included (1..100000000)")(
    "seed", po::value(&opt.seed)->default_value(opt.seed), "the same seed gives the same files")(
    "fraud-rate", po::value(&opt.fraud_rate)->default_value(opt.fraud_rate),
    "planted cases per transaction (0..1), each on its own card")(
    "burst", po::value(&burst)->default_value(burst),
    "transactions of a planted velocity burst (2..100; the detector's velocity-count + 2)")(
    "start-ms", po::value(&opt.start_ms)->default_value(opt.start_ms),
    "event time of the first day, in ms since the epoch")(
    "out", po::value(&opt.out), "the transactions as JSONL (required); - writes stdout")(
    "truth", po::value(&opt.truth), "JSONL file naming every planted case");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return usage_error(e.what());
  }
  if (vm.count("help")) {
    std::cout << "fraud-gen: card transactions with planted fraud for fraud-detector\n\n"
              << desc << "\n";
    return 0;
  }
  if (opt.out.empty()) {
    return usage_error("missing --out FILE");
  }
  if (cards < 1 || cards > 1000000 || transactions < 1 || transactions > 100000000) {
    return usage_error("--cards must be in 1..1000000 and --transactions in 1..100000000");
  }
  if (!(opt.fraud_rate >= 0 && opt.fraud_rate <= 1) || burst < 2 || burst > 100 ||
      opt.start_ms < 0) {
    return usage_error("--fraud-rate must be in 0..1, --burst in 2..100, --start-ms >= 0");
  }
  opt.cards = static_cast<uint64_t>(cards);
  opt.transactions = static_cast<uint64_t>(transactions);
  opt.burst = static_cast<uint64_t>(burst);
  return std::nullopt;
}

} // namespace

int main(int argc, char** argv) {
  options opt;
  if (auto code = parse(argc, argv, opt)) {
    return *code;
  }
  bool written = false;
  if (auto problem = generate(opt, written)) {
    return usage_error(*problem);
  }
  if (!written) {
    std::cerr << "fraud-gen: error: cannot write " << opt.out
              << (opt.truth.empty() ? "" : " or " + opt.truth) << "\n";
    return 1;
  }
  return 0;
}
