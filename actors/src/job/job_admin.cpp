// The console's requests to a job (see admin.hpp and "Inspection" in the README): routed to
// the stages they name and gathered, or passed on to the relocation actor; and `kill`.

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "eddy/core/error.hpp"
#include "eddy/core/log.hpp"
#include "job/job_actor.hpp"
#include "limits.hpp"

namespace eddy::detail {

namespace {

/// The replies of the stages a console request went to, in the job's order.
struct admin_gather {
  caf::response_promise promise;
  std::vector<admin_answer> answers;
  size_t pending = 0;

  void add(size_t slot, admin_reply reply) {
    answers[slot].reply = std::move(reply);
    if (--pending == 0) {
      promise.deliver(std::move(answers));
    }
  }
};

/// Passes a console request on to the relocation actor; its answer is the request's.
template <class... Ts>
caf::result<std::string> ask_relocation(job_ptr self, caf::timespan timeout, const Ts&... xs) {
  if (!self->state.relocation) {
    return make_error(errc::invalid_config, not_leading(self->state));
  }
  auto rp = self->make_response_promise<std::string>();
  self->request(self->state.relocation, timeout, xs...)
    .then([rp](std::string& answer) mutable { rp.deliver(std::move(answer)); },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

} // namespace

/// Runs a console request on the stages `target` names ("count/3", every instance of
/// "count", or "*"): their replies are gathered in the job's order. The inspector that asks
/// is where `tail` taps send what they see.
caf::result<std::vector<admin_answer>> route_admin(job_ptr self, const std::string& target,
                                                   const admin_request& request) {
  auto& st = self->state;
  std::vector<size_t> picked;
  for (size_t k = 0; k < st.inits.size(); ++k) {
    if (target == "*" || target == st.inits[k]->ctx.node || target == name_of(st, k)) {
      picked.push_back(k);
    }
  }
  if (picked.empty()) {
    return std::vector<admin_answer>{};
  }
  // Before the promise: making it takes the sender out of the current message.
  auto tap = caf::actor_cast<caf::actor>(self->current_sender());
  auto gather = std::make_shared<admin_gather>();
  gather->promise = self->make_response_promise();
  gather->pending = picked.size();
  for (size_t slot = 0; slot < picked.size(); ++slot) {
    auto k = picked[slot];
    gather->answers.push_back(admin_answer{name_of(st, k), admin_reply{}});
    self->request(st.stages[k], limits::stage_admin_timeout, admin_atom::value, request, tap)
      .then([gather, slot](admin_reply& reply) { gather->add(slot, std::move(reply)); },
            [gather, slot](caf::error& err) {
              gather->add(slot, admin_fail(err == caf::sec::request_timeout
                                             ? "it did not answer in time (busy or blocked)"
                                             : "it is not running (" + to_string(err) + ")"));
            });
  }
  return caf::delegated<std::vector<admin_answer>>{};
}

caf::result<std::string> move_partition(job_ptr self, uint32_t row, const std::string& to) {
  return ask_relocation(self, limits::relocation_ask_timeout, move_atom::value, row, to);
}

caf::result<std::string> drain_member(job_ptr self, const std::string& member) {
  // Answered once the member is drained.
  return ask_relocation(self, limits::drain_timeout, leave_atom::value, member);
}

caf::result<std::string> rebalance_job(job_ptr self, const std::string& mode) {
  return ask_relocation(self, limits::relocation_ask_timeout, rebalance_atom::value, mode);
}

void kill_from_console(job_ptr self, const std::string& actor) {
  // The actor exits abnormally and supervision does the rest.
  auto& st = self->state;
  for (size_t k = 0; k < st.inits.size(); ++k) {
    if (st.stages[k] && name_of(st, k) == actor) {
      log(log_level::warn, "supervisor", actor + " is killed from the console");
      self->send<caf::message_priority::high>(
        caf::actor_cast<caf::actor>(st.stages[k]),
        caf::exit_msg{self->address(),
                      make_error(errc::actor_failed, "'" + actor + "' killed from the console")});
    }
  }
}

void resume_stages(job_ptr self) {
  auto& st = self->state;
  admin_request resume;
  resume.command = admin_command::resume;
  for (auto& stage : st.stages) {
    self->request(stage, limits::stage_admin_timeout, admin_atom::value, resume, caf::actor{})
      .then([](admin_reply&) {}, [](caf::error&) {});
  }
}

} // namespace eddy::detail
