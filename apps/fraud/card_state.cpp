#include "card_state.hpp"

namespace fraud {

const char* to_string(decision d) noexcept {
  switch (d) {
    case decision::accepted:
      return "accepted";
    case decision::flagged:
      return "flagged";
    case decision::rejected:
      return "rejected";
  }
  return "?";
}

checked check_transaction(const transaction& t, const thresholds& limits, card_context& ctx) {
  checked result;
  auto& blocked_by = ctx.value<std::string>(blocked_state);
  if (blocked_by.exists()) {
    result.verdict = decision::rejected;
    result.records.push_back(rejected_record(t, "card blocked since tx " + blocked_by.get()));
    return result;
  }
  auto& recent = ctx.list<recent_tx>(recent_state);
  auto& stats = ctx.value<card_stats>(stats_state);
  auto current = stats.get_or({});
  auto alerts = check_rules(t, recent.get(), current, limits);
  if (!alerts.empty()) {
    blocked_by.set(t.tx);
    result.verdict = decision::flagged;
  }
  for (auto& a : alerts) {
    result.records.push_back(alert_record(t, std::move(a)));
  }
  // A flagged transaction still happened: it stays in the history (the velocity and travel
  // rules see the card's real moves) and in the mean, in case an unblock declares it genuine.
  recent.update(remember(recent.get(), t));
  current.add(t.amount);
  stats.set(current);
  return result;
}

output_record unblock(const unblock_command& c, card_context& ctx) {
  auto& blocked_by = ctx.value<std::string>(blocked_state);
  if (!blocked_by.exists()) {
    return rejected_record(c, "unblock: card " + c.card + " is not blocked");
  }
  blocked_by.clear();
  return unblocked_record(c);
}

nlohmann::json card_json(card_context& ctx) {
  const auto& blocked_by = ctx.value<std::string>(blocked_state);
  auto stats = ctx.value<card_stats>(stats_state).get_or({});
  return {{"card", ctx.key()},
          {"blocked_by", blocked_by.exists() ? nlohmann::json(blocked_by.get()) : nlohmann::json()},
          {"recent", ctx.list<recent_tx>(recent_state).get()},
          {"count", stats.count},
          {"mean", stats.mean_amount}};
}

} // namespace fraud
