#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <caf/meta/type_name.hpp>
#include <nlohmann/json.hpp>

/// Card-fraud detection without the runtime: what an input line means, the history a card
/// keeps in keyed state, the three rules and the output records. fraud-detector's keyed
/// function calls these; they are pure functions on values, thread-safe.
namespace fraud {

/// Transactions of a card kept in its history (its keyed state); the velocity rule can
/// therefore count at most this many in its window.
inline constexpr size_t history_max = 20;

/// Rule thresholds, from the `--fraud.*` options.
struct thresholds {
  // Default: 5; more transactions than this within the window flag the card
  int64_t velocity_count = 5;
  // Default: 60000 ms of event time
  int64_t velocity_window_ms = 60000;
  // Default: 5; an amount above factor x the card's mean amount flags it
  double amount_factor = 5;
  // Default: 3 earlier transactions before the amount rule applies
  int64_t amount_min_history = 3;
  // Default: 900 km/h (an airliner); a faster change of country flags the card
  double travel_kmh = 900;

  /// Empty when usable, else a one-line message naming the option.
  [[nodiscard]] std::string check() const;
};

/// One input line as the source parsed it: any JSON object. It stays whole so that the keyed
/// function, not the source, decides what is wrong with it and says so in a `rejected`
/// record; only text that is not a JSON object is a dead letter of the source.
struct input_line {
  nlohmann::json doc;
};
void to_json(nlohmann::json& j, const input_line& x);
/// Throws nlohmann's type_error when `j` is no object, which makes the line a dead letter.
void from_json(const nlohmann::json& j, input_line& x);

struct transaction {
  std::string tx;
  std::string card;
  double amount = 0;
  std::string merchant;
  std::string country;
  int64_t ts = 0;
};

/// `{"cmd":"unblock","card":...}`: lifts the block of a flagged card.
struct unblock_command {
  std::string card;
  std::optional<int64_t> ts;
};

/// A line that is JSON but no valid transaction or command; the ids that are valid are kept
/// so that the rejection can name them.
struct invalid_input {
  std::string tx;
  std::string card;
  std::optional<int64_t> ts;
  std::string reason;
  /// The field the reason is about ("amount", "cmd"), for an HTTP 400 naming it.
  std::string field;
};

using parsed_input = std::variant<transaction, unblock_command, invalid_input>;

/// What `doc` is; the first problem found decides the reason of an `invalid_input`.
[[nodiscard]] parsed_input classify(const nlohmann::json& doc);

/// What `doc` is as a transaction (a `transaction` or an `invalid_input`, never a command),
/// whether or not it has a "cmd" field.
[[nodiscard]] parsed_input classify_transaction(const nlohmann::json& doc);

/// True for ids matching [A-Za-z0-9_.-]{1,64}.
[[nodiscard]] bool valid_card(std::string_view card) noexcept;

/// The key of a line: its card when valid, else "" (invalid lines touch no state, so they
/// may all meet in one partition).
[[nodiscard]] std::string card_key(const input_line& x);

/// One transaction in a card's history.
struct recent_tx {
  std::string tx;
  double amount = 0;
  std::string country;
  int64_t ts = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(recent_tx, tx, amount, country, ts)

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, recent_tx& x) {
  return f(caf::meta::type_name("recent_tx"), x.tx, x.amount, x.country, x.ts);
}

/// Running statistics of a card over every transaction it made (not only the history).
struct card_stats {
  int64_t count = 0;
  double mean_amount = 0;

  void add(double amount) noexcept {
    ++count;
    mean_amount += (amount - mean_amount) / static_cast<double>(count);
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(card_stats, count, mean_amount)

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, card_stats& x) {
  return f(caf::meta::type_name("card_stats"), x.count, x.mean_amount);
}

/// A rule that fired: "velocity", "amount" or "travel", with the numbers that justify it.
struct alert {
  std::string rule;
  nlohmann::json evidence;
};

/// The rules that `t` breaks, given the card's history and statistics before it.
[[nodiscard]] std::vector<alert> check_rules(const transaction& t,
                                             const std::vector<recent_tx>& history,
                                             const card_stats& stats, const thresholds& limits);

[[nodiscard]] std::optional<alert> velocity_rule(const transaction& t,
                                                 const std::vector<recent_tx>& history,
                                                 const thresholds& limits);
[[nodiscard]] std::optional<alert> amount_rule(const transaction& t, const card_stats& stats,
                                               const thresholds& limits);
[[nodiscard]] std::optional<alert>
travel_rule(const transaction& t, const std::vector<recent_tx>& history, const thresholds& limits);

/// `history` with `t` appended, the oldest dropped beyond `history_max`.
[[nodiscard]] std::vector<recent_tx> remember(std::vector<recent_tx> history, const transaction& t);

/// One line of the output: kind "alert", "rejected" or "unblocked"; empty fields are left
/// out of the JSON.
struct output_record {
  std::string kind;
  std::string tx;
  std::string card;
  std::string rule;
  std::string reason;
  nlohmann::json evidence;
  std::optional<int64_t> ts;
};
void to_json(nlohmann::json& j, const output_record& x);
void from_json(const nlohmann::json& j, output_record& x);

[[nodiscard]] output_record alert_record(const transaction& t, alert a);
/// A rejection of a valid transaction, e.g. of a blocked card.
[[nodiscard]] output_record rejected_record(const transaction& t, std::string reason);
[[nodiscard]] output_record rejected_record(const invalid_input& x);
/// A rejection of a valid command, e.g. an unblock of a card that is not blocked.
[[nodiscard]] output_record rejected_record(const unblock_command& c, std::string reason);
[[nodiscard]] output_record unblocked_record(const unblock_command& c);

} // namespace fraud
