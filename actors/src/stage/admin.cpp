#include "stage/admin.hpp"

#include <caf/send.hpp>
#include <nlohmann/json.hpp>

#include "eddy/actors/messages.hpp"
#include "limits.hpp"

namespace eddy::detail {

using json = nlohmann::json;

admin_reply admin_ok(std::string data_json) {
  return admin_reply{true, std::string{}, std::move(data_json)};
}

admin_reply admin_fail(std::string message) {
  return admin_reply{false, std::move(message), std::string{}};
}

admin_reply admin_fail_of(const std::string& who, std::string_view what) {
  std::string text;
  text.append("'").append(who).append("' ").append(what);
  return admin_fail(std::move(text));
}

admin_reply common_admin(stage_controls& c, actor_metrics& m, const admin_request& r,
                         const caf::actor& tap, const std::string& who, node_kind kind) {
  switch (r.command) {
    case admin_command::pause: {
      if (m.status != actor_status::running && m.status != actor_status::paused) {
        return admin_fail(std::string{"it is "} + to_string(m.status.load()) +
                          ", only a running actor can be paused");
      }
      bool was = c.paused;
      c.paused = true;
      m.status = actor_status::paused;
      return admin_ok(json{{"status", "paused"}, {"was_paused", was}}.dump());
    }
    case admin_command::resume: {
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
    case admin_command::tap:
      if (r.key && kind != node_kind::keyed) {
        return admin_fail("only keyed operators can be tailed by key");
      }
      c.tap = tap;
      c.tap_id = r.tap;
      c.tap_key = r.key;
      c.tap_skipped = 0;
      return admin_ok(R"({"tapped":true})");
    case admin_command::untap: {
      bool had = c.tap && c.tap_id == r.tap;
      if (had) {
        c.tap = caf::actor{};
        c.tap_id.clear();
        c.tap_key.reset();
      }
      return admin_ok(json{{"untapped", had}}.dump());
    }
    default:
      return admin_fail("'" + who + "' (" + to_string(kind) + ") cannot do '" +
                        to_string(r.command) + "'");
  }
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
    if (lines.size() >= limits::tap_records_per_batch_max) {
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
