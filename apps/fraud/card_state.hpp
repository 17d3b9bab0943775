#pragma once

// A card's keyed state and what a transaction or an unblock does to it: the one
// implementation that both modes of fraud-detector run (JSON lines from a file or stdin,
// and HTTP). The rules themselves are in rules.hpp; this applies them to the state.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eddy/eddy.hpp"
#include "rules.hpp"

namespace fraud {

using card_context = eddy::keyed_context<std::string>;

/// The tx that blocked the card; absent while the card is not blocked.
inline constexpr const char* blocked_state = "blocked_by";
/// The card's last transactions (at most history_max), oldest first.
inline constexpr const char* recent_state = "recent";
/// Count and mean amount of every transaction the card made.
inline constexpr const char* stats_state = "stats";

/// Declares the card's state on the keyed stream, so that `eddy console` can show it right
/// after a restart.
template <class Keyed>
Keyed& declare_card_state(Keyed& keyed) {
  keyed.template declare_state<eddy::value_state<std::string>>(blocked_state)
    .template declare_state<eddy::list_state<recent_tx>>(recent_state)
    .template declare_state<eddy::value_state<card_stats>>(stats_state);
  return keyed;
}

/// What became of a transaction.
enum class decision {
  /// No rule fired: it is in the card's history, nothing is written.
  accepted,
  /// A rule fired: one alert record per rule; the card is now blocked.
  flagged,
  /// The card is blocked: a rejected record; the card's state is unchanged.
  rejected,
};

[[nodiscard]] const char* to_string(decision d) noexcept;

struct checked {
  decision verdict = decision::accepted;
  /// The output records: the alerts (flagged), the rejection (rejected), or none.
  std::vector<output_record> records;
};

/// Checks `t` against the card's state and updates it: the history and the statistics
/// (also for a flagged transaction: it still happened), and the block.
[[nodiscard]] checked check_transaction(const transaction& t, const thresholds& limits,
                                        card_context& ctx);

/// Lifts the card's block: an "unblocked" record, or a "rejected" one when the card is not
/// blocked (then nothing changes).
[[nodiscard]] output_record unblock(const unblock_command& c, card_context& ctx);

/// The card's state as JSON: {"card","blocked_by" (null when not blocked),"recent" (oldest
/// first),"count","mean"}.
[[nodiscard]] nlohmann::json card_json(card_context& ctx);

} // namespace fraud
