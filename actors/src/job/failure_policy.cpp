// What the failure of a stage leads to (see "Supervision" in docs/design.md): a restart of
// the job after backoff, the actor marked failed and the job restarted without it (its
// input dead-lettered), a poison record sent to the dead-letter journal, or the end of the
// job. And each node's failure policy from the graph and --supervision.policy.

#include <algorithm>
#include <chrono>
#include <string_view>

#include "eddy/core/error.hpp"
#include "eddy/core/log.hpp"
#include "job/job_actor.hpp"

namespace eddy::detail {

namespace {

/// Sends the poison record of `report` to the dead-letter journal. Returns an error when
/// the journal cannot take it.
caf::error dead_letter_poison(job_state& st, size_t k, const detail::failure_report& report,
                              uint32_t attempts) {
  const auto& init = *st.inits[k];
  failed_record r;
  r.at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::system_clock::now().time_since_epoch())
              .count();
  r.job = init.ctx.job;
  r.op = init.ctx.node;
  r.partition = init.ctx.index;
  r.origin = report.origin;
  r.key = report.key;
  r.record = report.record;
  r.payload = report.payload;
  r.error = report.error;
  r.attempts = attempts;
  auto added = st.env.dead_letters->add(r);
  if (!added) {
    return added.error();
  }
  if (*added) {
    init.metrics->dead_lettered.fetch_add(1, std::memory_order_relaxed);
  }
  log(log_level::warn, "supervisor",
      name_of(st, k) + (report.key.empty() ? "" : " key '" + report.key + "'") + " record " +
        report.record + " failed " + std::to_string(attempts) + " times (" + report.error +
        "): sent to the dead-letter journal " + st.env.dead_letters->path().string());
  return {};
}

/// A journal that cannot be written or read (as opposed to user code that threw).
bool is_storage_failure(const caf::error& reason) {
  if (reason.category() != caf::atom("eddy")) {
    return false;
  }
  auto code = static_cast<errc>(reason.code());
  return code == errc::disk_full || code == errc::io_failure || code == errc::corrupt_journal;
}

/// A failure no restart can fix: stored state of another version or shape.
bool is_fatal(const caf::error& reason) {
  return reason.category() == caf::atom("eddy") &&
         static_cast<errc>(reason.code()) == errc::state_mismatch;
}

/// User code threw (as opposed to the runtime or its storage failing).
bool is_user_failure(const caf::error& reason) {
  return reason.category() == caf::atom("eddy") &&
         static_cast<errc>(reason.code()) == errc::user_code_failed;
}

/// Counts the failures of actor `k` on the record `origin` (0: none known); once they reach
/// --supervision.poison-attempts, the record goes to the dead-letter journal and the job
/// restarts without it. True when that happened (the failure is dealt with).
bool handled_as_poison(job_ptr self, size_t k, origin_t origin,
                       const detail::failure_report* report) {
  auto& st = self->state;
  auto& slot = st.slots[k];
  const auto& init = *st.inits[k];
  const auto& opts = st.env.opts.supervision;
  auto who = name_of(st, k);
  if (origin == 0) {
    slot.attempts = 0;
    slot.last_origin = 0;
    return false;
  }
  slot.attempts = origin == slot.last_origin ? slot.attempts + 1 : 1;
  slot.last_origin = origin;
  if (slot.attempts < opts.poison_attempts) {
    return false;
  }
  if (origin_producer(origin) == detail::dead_letter_producer) {
    log(log_level::warn, "supervisor",
        who + ": dead letter " + std::to_string(origin_position(origin)) +
          " failed again when re-processed; it stays in the dead-letter journal");
  } else if (auto err = dead_letter_poison(st, k, *report, slot.attempts)) {
    escalate(self, std::move(err));
    return true;
  }
  slot.poison.insert(origin);
  // The supervisor dealt with this record: its failures do not count against the
  // actor any more.
  std::erase_if(slot.restarts, [origin](const auto& r) { return r.second == origin; });
  slot.attempts = 0;
  slot.last_origin = 0;
  init.metrics->restarts.fetch_add(1, std::memory_order_relaxed);
  restart_after(self, backoff(opts, 1));
  return true;
}

/// Actor `k` failed --supervision.max-restarts times within the window: a storage failure
/// stops the job, any other marks the actor failed. True when that happened.
bool restarts_exhausted(job_ptr self, size_t k, const caf::error& reason) {
  auto& st = self->state;
  auto& slot = st.slots[k];
  const auto& opts = st.env.opts.supervision;
  auto who = name_of(st, k);
  if (slot.restarts.size() >= opts.restarts_max && is_storage_failure(reason)) {
    // Without its journal the actor cannot commit: nothing could take its input exactly
    // once. The job stops; its committed state is intact and a start resumes from it.
    escalate(self, make_error(static_cast<errc>(reason.code()),
                              "'" + who + "' cannot use its journal (" + describe(reason) +
                                "), also after " + std::to_string(slot.restarts.size()) +
                                " restarts; the job stops with its committed state intact: "
                                "fix the cause and start it again to resume"));
    return true;
  }
  if (slot.restarts.size() >= opts.restarts_max) {
    auto cause = describe(reason) + " (" + std::to_string(slot.restarts.size() + 1) +
                 " failures within " + std::to_string(opts.window_s) + " s)";
    mark_failed(st, k, cause);
    log(log_level::error, "supervisor",
        who + " failed " + std::to_string(slot.restarts.size() + 1) + " times within " +
          std::to_string(opts.window_s) +
          " s: marked failed, its input goes to the dead-letter journal");
    restart_after(self, backoff(opts, 1));
    return true;
  }
  return false;
}

} // namespace

/// Decides what the failure of actor `k` with `reason` leads to: a restart (after backoff),
/// the actor marked failed and the job restarted without it, or the end of the job.
void on_failure(job_ptr self, size_t k, const caf::error& reason,
                const detail::failure_report* report) {
  auto& st = self->state;
  auto& slot = st.slots[k];
  const auto& init = *st.inits[k];
  const auto& opts = st.env.opts.supervision;
  auto who = name_of(st, k);
  log(log_level::error, "supervisor", who + " failed: " + describe(reason));
  init.metrics->status = actor_status::failed;
  if (st.shared->error) {
    return;
  }
  auto policy = st.env.policies[init.node];
  if (init.failed()) {
    escalate(self, make_error(errc::actor_failed,
                              "'" + who + "' failed (" + init.failed_cause +
                                ") and cannot take its input either: " + describe(reason)));
    return;
  }
  if (policy == failure_policy::escalate || is_fatal(reason)) {
    escalate(self, reason);
    return;
  }
  if (!st.env.not_restartable.empty()) {
    log(log_level::error, "supervisor",
        "cannot restart the job: " + st.env.not_restartable +
          (st.env.durable ? "" : " and it keeps no durable state"));
    escalate(self, reason);
    return;
  }
  if (policy == failure_policy::stop) {
    mark_failed(st, k, describe(reason));
    log(log_level::error, "supervisor",
        who + " is stopped (failure policy stop); its input goes to the dead-letter journal");
    restart_after(self, backoff(opts, 1));
    return;
  }
  auto now = clock_type::now();
  while (!slot.restarts.empty() &&
         now - slot.restarts.front().first > std::chrono::seconds(opts.window_s)) {
    slot.restarts.pop_front();
  }
  origin_t origin =
    report != nullptr && report->set && is_user_failure(reason) ? report->origin : 0;
  if (handled_as_poison(self, k, origin, report) || restarts_exhausted(self, k, reason)) {
    return;
  }
  slot.restarts.emplace_back(now, origin);
  init.metrics->restarts.fetch_add(1, std::memory_order_relaxed);
  auto delay = backoff(opts, slot.restarts.size());
  log(log_level::warn, "supervisor",
      "restarting job " + st.env.graph->name() + " from its journals in " +
        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(delay).count()) +
        " ms (" + who + ": restart " + std::to_string(slot.restarts.size()) + " of " +
        std::to_string(opts.restarts_max) + " within " + std::to_string(opts.window_s) + " s)");
  restart_after(self, delay);
}

caf::expected<std::vector<failure_policy>> policies_of(const job_graph& g,
                                                       const supervision_options& opts) {
  std::vector<failure_policy> result;
  for (const auto& spec : g.nodes()) {
    result.push_back(spec.on_failure);
  }
  const auto& text = opts.policies;
  for (size_t pos = 0; pos < text.size();) {
    auto end = std::min(text.find(',', pos), text.size());
    auto item = std::string_view{text}.substr(pos, end - pos);
    auto eq = item.find('=');
    auto name = item.substr(0, eq);
    auto policy =
      eq == std::string_view::npos ? std::nullopt : parse_failure_policy(item.substr(eq + 1));
    if (!policy) {
      return make_error(errc::invalid_config, "--supervision.policy item '" + std::string{item} +
                                                "' is not node=restart|stop|escalate");
    }
    auto it = std::find_if(g.nodes().begin(), g.nodes().end(),
                           [name](const node_spec& spec) { return spec.name == name; });
    if (it == g.nodes().end()) {
      return make_error(errc::invalid_config, "--supervision.policy names node '" +
                                                std::string{name} + "', which job " + g.name() +
                                                " does not have");
    }
    result[static_cast<size_t>(it - g.nodes().begin())] = *policy;
    pos = end + 1;
  }
  return result;
}

} // namespace eddy::detail
