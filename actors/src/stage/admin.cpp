#include "stage/admin.hpp"

#include <stdexcept>

#include <caf/send.hpp>
#include <nlohmann/json.hpp>

#include "eddy/actors/messages.hpp"

namespace eddy::detail {

using json = nlohmann::json;

admin_request parse_admin_request(const std::string& text) {
  auto doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("cmd")) {
    throw std::invalid_argument("a console request must be a JSON object with a \"cmd\"");
  }
  admin_request r;
  try {
    r.cmd = doc.at("cmd").get<std::string>();
    if (doc.contains("key")) {
      r.key = doc["key"].get<std::string>();
    }
    r.seq = doc.value("seq", uint64_t{0});
    r.limit = doc.value("limit", size_t{20});
    if (doc.contains("values")) {
      r.values =
        doc["values"].is_string() ? doc["values"].get<std::string>() : doc["values"].dump();
    }
    r.by = doc.value("by", std::string{});
    r.why = doc.value("why", std::string{});
    r.tap = doc.value("tap", std::string{});
  } catch (const json::exception& e) {
    throw std::invalid_argument(std::string{"malformed console request: "} + e.what());
  }
  return r;
}

std::string admin_ok(std::string_view data_json) {
  std::string out = R"({"ok":true,"data":)";
  out += data_json;
  out += '}';
  return out;
}

std::string admin_fail(std::string_view message) {
  return json{{"ok", false}, {"error", std::string{message}}}.dump();
}

std::string admin_fail_of(const std::string& who, std::string_view what) {
  std::string text;
  text.append("'").append(who).append("' ").append(what);
  return admin_fail(text);
}

std::string common_admin(stage_controls& c, actor_metrics& m, const admin_request& r,
                         const caf::actor& tap, const std::string& who, node_kind kind) {
  if (r.cmd == "pause") {
    if (m.status != actor_status::running && m.status != actor_status::paused) {
      return admin_fail(std::string{"it is "} + to_string(m.status.load()) +
                        ", only a running actor can be paused");
    }
    bool was = c.paused;
    c.paused = true;
    m.status = actor_status::paused;
    return admin_ok(json{{"status", "paused"}, {"was_paused", was}}.dump());
  }
  if (r.cmd == "resume") {
    bool was = c.paused;
    c.paused = false;
    if (m.status == actor_status::paused) {
      m.status = actor_status::running;
    }
    return admin_ok(json{{"status", to_string(m.status.load())},
                         {"was_paused", was},
                         {"parked_batches", c.parked.size()}}
                      .dump());
  }
  if (r.cmd == "tap") {
    if (r.key && kind != node_kind::keyed) {
      return admin_fail("only keyed operators can be tailed by key");
    }
    c.tap = tap;
    c.tap_id = r.tap;
    c.tap_key = r.key;
    c.tap_skipped = 0;
    return admin_ok(R"({"tapped":true})");
  }
  if (r.cmd == "untap") {
    bool had = c.tap && c.tap_id == r.tap;
    if (had) {
      c.tap = caf::actor{};
      c.tap_id.clear();
      c.tap_key.reset();
    }
    return admin_ok(json{{"untapped", had}}.dump());
  }
  return admin_fail("'" + who + "' (" + to_string(kind) + ") cannot do '" + r.cmd + "'");
}

std::string producer_name(const job_graph& g, uint32_t producer) {
  if (producer == dead_letter_producer) {
    return "deadletters";
  }
  uint32_t next = 1;
  for (size_t n = 0; n < g.nodes().size(); ++n) {
    const auto& spec = g.node(n);
    if (spec.kind != node_kind::source && spec.kind != node_kind::keyed) {
      continue;
    }
    auto count = g.instances(n);
    if (producer < next + count) {
      return spec.name + "/" + std::to_string(producer - next);
    }
    next += count;
  }
  return "producer " + std::to_string(producer);
}

void tap_records(stage_controls& c, const std::string& who, const record_buffer& in, size_t from,
                 record_describer describe, const transform_logic* logic) {
  if (!c.tap || describe == nullptr) {
    return;
  }
  json lines = json::array();
  std::string text;
  std::string payload;
  for (size_t i = from; i < in.size(); ++i) {
    std::string key = logic != nullptr ? logic->key_text(in, i) : std::string{};
    if (c.tap_key && key != *c.tap_key) {
      continue;
    }
    if (lines.size() >= tap_max_per_batch) {
      ++c.tap_skipped;
      continue;
    }
    describe(in, i, text, payload);
    lines.push_back(json{{"key", key}, {"record", text}});
  }
  if (!lines.empty()) {
    caf::anon_send(c.tap, tap_atom::value, c.tap_id, who, lines.dump());
  }
}

} // namespace eddy::detail
