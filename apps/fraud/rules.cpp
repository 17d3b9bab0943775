#include "rules.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "geo.hpp"

namespace fraud {

using nlohmann::json;

namespace {

// Bounds on what a card's history keeps of a transaction, so that state stays small.
constexpr size_t id_chars_max = 128;
constexpr size_t country_chars_max = 16;
// Rejection reasons quote wrong values, cut to this length.
constexpr size_t quote_chars_max = 40;

/// Keeps the first problem found, and the field it is about: `x.reason` is set only while
/// it is empty.
void note(invalid_input& x, const char* field, std::string problem) {
  if (x.reason.empty() && !problem.empty()) {
    x.reason = std::move(problem);
    x.field = field;
  }
}

std::string quote(const json& value) {
  auto text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > quote_chars_max) {
    text.resize(quote_chars_max);
    text += "...";
  }
  return text;
}

std::string missing(const char* field) {
  return std::string{"missing field '"} + field + "'";
}

/// Reads string field `name` into `into` (only when valid); returns the problem, if any.
std::string string_field(const json& doc, const char* name, size_t chars_max, std::string& into) {
  auto i = doc.find(name);
  if (i == doc.end()) {
    return missing(name);
  }
  if (!i->is_string() || i->get_ref<const std::string&>().empty() ||
      i->get_ref<const std::string&>().size() > chars_max) {
    return std::string{"field '"} + name + "' must be a string of 1.." + std::to_string(chars_max) +
           " characters, got " + quote(*i);
  }
  into = i->get<std::string>();
  return {};
}

std::string card_field(const json& doc, std::string& into) {
  auto i = doc.find("card");
  if (i == doc.end()) {
    return missing("card");
  }
  if (!i->is_string() || !valid_card(i->get_ref<const std::string&>())) {
    return "field 'card' must match [A-Za-z0-9_.-]{1,64}, got " + quote(*i);
  }
  into = i->get<std::string>();
  return {};
}

std::string amount_field(const json& doc, double& into) {
  auto i = doc.find("amount");
  if (i == doc.end()) {
    return missing("amount");
  }
  if (!i->is_number()) {
    return "field 'amount' must be a number, got " + quote(*i);
  }
  auto amount = i->get<double>();
  if (!std::isfinite(amount) || amount <= 0) {
    return "field 'amount' must be > 0, got " + quote(*i);
  }
  into = amount;
  return {};
}

/// Event time: an integer number of ms since the epoch, not negative.
std::string ts_field(const json& doc, bool required, std::optional<int64_t>& into) {
  auto i = doc.find("ts");
  if (i == doc.end()) {
    return required ? missing("ts") : std::string{};
  }
  bool fits = i->is_number_integer() &&
              (i->is_number_unsigned()
                 ? i->get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                 : i->get<int64_t>() >= 0);
  if (!fits) {
    return "field 'ts' must be an integer >= 0 (ms since the epoch), got " + quote(*i);
  }
  into = i->get<int64_t>();
  return {};
}

parsed_input classify_command(const json& doc) {
  unblock_command c;
  invalid_input bad;
  if (const auto& cmd = doc.at("cmd"); cmd != "unblock") {
    note(bad, "cmd", "unknown cmd " + quote(cmd) + "; allowed: unblock");
  }
  note(bad, "card", card_field(doc, c.card));
  note(bad, "ts", ts_field(doc, false, c.ts));
  if (bad.reason.empty()) {
    return c;
  }
  bad.card = c.card;
  bad.ts = c.ts;
  return bad;
}

/// `x` rounded to `decimals` places: evidence is for people, and stable digits keep the
/// output of reruns byte-identical to read.
double rounded(double x, int decimals) {
  auto scale = std::pow(10.0, decimals);
  return std::round(x * scale) / scale;
}

} // namespace

std::string thresholds::check() const {
  if (velocity_count < 1 || velocity_count >= static_cast<int64_t>(history_max)) {
    return "--fraud.velocity-count must be in 1.." + std::to_string(history_max - 1) +
           " (a card keeps its last " + std::to_string(history_max) + " transactions)";
  }
  if (velocity_window_ms < 1 || velocity_window_ms > int64_t{366} * 24 * 3600 * 1000) {
    return "--fraud.velocity-window-ms must be in 1..31622400000 (a year)";
  }
  if (!(amount_factor >= 1) || !std::isfinite(amount_factor)) {
    return "--fraud.amount-factor must be a number >= 1";
  }
  if (amount_min_history < 1) {
    return "--fraud.amount-min-history must be >= 1";
  }
  if (!(travel_kmh > 0) || !std::isfinite(travel_kmh)) {
    return "--fraud.travel-kmh must be a number > 0";
  }
  return {};
}

void to_json(json& j, const input_line& x) {
  j = x.doc;
}

void from_json(const json& j, input_line& x) {
  if (!j.is_object()) {
    throw json::type_error::create(
      302, "a line must hold a JSON object, not " + std::string{j.type_name()}, &j);
  }
  x.doc = j;
}

parsed_input classify(const json& doc) {
  if (doc.contains("cmd")) {
    return classify_command(doc);
  }
  return classify_transaction(doc);
}

parsed_input classify_transaction(const json& doc) {
  transaction t;
  std::optional<int64_t> ts;
  invalid_input bad;
  // Every field is read, so that a rejection can still name the valid ids.
  note(bad, "tx", string_field(doc, "tx", id_chars_max, t.tx));
  note(bad, "card", card_field(doc, t.card));
  note(bad, "amount", amount_field(doc, t.amount));
  note(bad, "merchant", string_field(doc, "merchant", id_chars_max, t.merchant));
  note(bad, "country", string_field(doc, "country", country_chars_max, t.country));
  note(bad, "ts", ts_field(doc, true, ts));
  if (!bad.reason.empty()) {
    bad.tx = t.tx;
    bad.card = t.card;
    bad.ts = ts;
    return bad;
  }
  t.ts = *ts;
  return t;
}

bool valid_card(std::string_view card) noexcept {
  if (card.empty() || card.size() > 64) {
    return false;
  }
  return std::all_of(card.begin(), card.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

std::string card_key(const input_line& x) {
  auto i = x.doc.find("card");
  if (i == x.doc.end() || !i->is_string() || !valid_card(i->get_ref<const std::string&>())) {
    return {};
  }
  return i->get<std::string>();
}

std::optional<alert> velocity_rule(const transaction& t, const std::vector<recent_tx>& history,
                                   const thresholds& limits) {
  // The window ends at t; transactions that arrive late (earlier event time) still count.
  auto begin = t.ts - limits.velocity_window_ms;
  auto count = 1 + std::count_if(history.begin(), history.end(),
                                 [&](const recent_tx& r) { return r.ts > begin && r.ts <= t.ts; });
  if (count <= limits.velocity_count) {
    return std::nullopt;
  }
  return alert{"velocity", json{{"count", count},
                                {"limit", limits.velocity_count},
                                {"window_ms", limits.velocity_window_ms}}};
}

std::optional<alert> amount_rule(const transaction& t, const card_stats& stats,
                                 const thresholds& limits) {
  if (stats.count < limits.amount_min_history ||
      t.amount <= limits.amount_factor * stats.mean_amount) {
    return std::nullopt;
  }
  return alert{"amount", json{{"amount", t.amount},
                              {"mean", rounded(stats.mean_amount, 2)},
                              {"factor", limits.amount_factor},
                              {"transactions", stats.count}}};
}

std::optional<alert> travel_rule(const transaction& t, const std::vector<recent_tx>& history,
                                 const thresholds& limits) {
  if (history.empty() || history.back().country == t.country) {
    return std::nullopt;
  }
  const auto& previous = history.back();
  const auto* from = find_country(previous.country);
  const auto* to = find_country(t.country);
  if (from == nullptr || to == nullptr) {
    return std::nullopt;
  }
  auto km = distance_km(*from, *to);
  // Two transactions in the same second count as one second apart: the speed stays finite.
  auto ms = std::max<int64_t>(std::abs(t.ts - previous.ts), 1000);
  auto hours = static_cast<double>(ms) / 3.6e6;
  auto kmh = km / hours;
  if (kmh <= limits.travel_kmh) {
    return std::nullopt;
  }
  return alert{"travel", json{{"from", previous.country},
                              {"to", t.country},
                              {"previous_tx", previous.tx},
                              {"km", rounded(km, 1)},
                              {"hours", rounded(hours, 3)},
                              {"kmh", rounded(kmh, 1)},
                              {"limit_kmh", limits.travel_kmh}}};
}

std::vector<alert> check_rules(const transaction& t, const std::vector<recent_tx>& history,
                               const card_stats& stats, const thresholds& limits) {
  std::vector<alert> found;
  for (auto a : {velocity_rule(t, history, limits), amount_rule(t, stats, limits),
                 travel_rule(t, history, limits)}) {
    if (a) {
      found.push_back(std::move(*a));
    }
  }
  return found;
}

std::vector<recent_tx> remember(std::vector<recent_tx> history, const transaction& t) {
  history.push_back(recent_tx{t.tx, t.amount, t.country, t.ts});
  if (history.size() > history_max) {
    history.erase(history.begin(), history.end() - history_max);
  }
  return history;
}

void to_json(json& j, const output_record& x) {
  j = json{{"kind", x.kind}};
  for (auto [name, value] : {std::pair{"tx", &x.tx}, std::pair{"card", &x.card},
                             std::pair{"rule", &x.rule}, std::pair{"reason", &x.reason}}) {
    if (!value->empty()) {
      j[name] = *value;
    }
  }
  if (!x.evidence.is_null()) {
    j["evidence"] = x.evidence;
  }
  if (x.ts) {
    j["ts"] = *x.ts;
  }
}

void from_json(const json& j, output_record& x) {
  x.kind = j.at("kind").get<std::string>();
  x.tx = j.value("tx", "");
  x.card = j.value("card", "");
  x.rule = j.value("rule", "");
  x.reason = j.value("reason", "");
  x.evidence = j.contains("evidence") ? j.at("evidence") : json{};
  x.ts = j.contains("ts") ? std::optional<int64_t>{j.at("ts").get<int64_t>()} : std::nullopt;
}

output_record alert_record(const transaction& t, alert a) {
  return output_record{"alert", t.tx, t.card, std::move(a.rule), {}, std::move(a.evidence), t.ts};
}

output_record rejected_record(const transaction& t, std::string reason) {
  return output_record{"rejected", t.tx, t.card, {}, std::move(reason), {}, t.ts};
}

output_record rejected_record(const invalid_input& x) {
  return output_record{"rejected", x.tx, x.card, {}, x.reason, {}, x.ts};
}

output_record rejected_record(const unblock_command& c, std::string reason) {
  return output_record{"rejected", {}, c.card, {}, std::move(reason), {}, c.ts};
}

output_record unblocked_record(const unblock_command& c) {
  return output_record{"unblocked", {}, c.card, {}, {}, {}, c.ts};
}

} // namespace fraud
