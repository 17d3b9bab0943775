// What the inspector's command families share (see inspect_context.hpp).

#include "inspect/inspect_context.hpp"

#include <caf/response_promise.hpp>

#include "limits.hpp"

namespace eddy::detail::inspect {

namespace {

/// The console's answer of `render` for `answers`. The last resort for exceptions: the
/// JSON library throws on text that is not UTF-8 (a key typed at the console, a record),
/// and none may leave the response handler.
std::string rendered(const render_fn& render, const std::vector<admin_answer>& answers) {
  try {
    auto result = render(answers);
    return result ? result->dump() : failed(result.error());
  } catch (const std::exception& e) {
    return fail(e.what()).dump();
  }
}

} // namespace

json data_of(const admin_reply& reply) {
  auto data = json::parse(reply.data, nullptr, false);
  return data.is_discarded() ? json{} : data;
}

caf::expected<json> only_data(const std::vector<admin_answer>& answers) {
  if (answers.empty()) {
    return bad_request("no such actor is running");
  }
  const auto& first = answers.front();
  if (!first.reply.ok) {
    return bad_request(first.actor + ": " +
                       (first.reply.error.empty() ? std::string{"failed"} : first.reply.error));
  }
  return data_of(first.reply);
}

inspect_context::inspect_context(caf::event_based_actor* self, jobs_fn jobs, std::string host,
                                 std::shared_ptr<std::atomic<uint16_t>> port,
                                 std::shared_ptr<cluster_view> view)
  : self_(self)
  , jobs_(std::move(jobs))
  , host_(std::move(host))
  , port_(std::move(port))
  , view_(std::move(view)) {}

std::string inspect_context::address() const {
  return host_ + ":" + std::to_string(port_->load());
}

caf::expected<std::shared_ptr<job_handle>>
inspect_context::find_job(const std::string& name) const {
  auto all = jobs_();
  if (all.empty()) {
    return bad_request("no job runs on this node");
  }
  if (name.empty()) {
    return all.back();
  }
  std::vector<std::string> names;
  for (const auto& j : all) {
    if (j->name() == name) {
      return j;
    }
    names.push_back(j->name());
  }
  return bad_request("no job '" + name + "' on this node" + did_you_mean(name, names));
}

caf::error inspect_context::known_operator(const std::string& op) const {
  std::vector<std::string> names;
  for (const auto& j : jobs_()) {
    for (const auto& spec : j->graph().nodes()) {
      if (spec.name == op) {
        return caf::none;
      }
      names.push_back(spec.name);
    }
  }
  return bad_request("no operator '" + op + "'" + did_you_mean(op, names));
}

caf::expected<op_ref> inspect_context::find_operator(const std::string& name) const {
  if (auto err = known_operator(name)) {
    return err;
  }
  op_ref found;
  for (const auto& j : jobs_()) {
    const auto& nodes = j->graph().nodes();
    for (size_t n = 0; n < nodes.size(); ++n) {
      if (nodes[n].name == name && (!found.job || !j->done())) {
        found = op_ref{j, &nodes[n], n};
      }
    }
  }
  return found;
}

caf::expected<op_ref> inspect_context::find_keyed(const std::string& name,
                                                  const std::string& cmd) const {
  auto ref = find_operator(name);
  if (ref && ref->spec->kind != node_kind::keyed) {
    return bad_request("'" + name + "' (" + to_string(ref->spec->kind) +
                       ") is not a keyed operator: only keyed operators keep state for " + cmd +
                       " (graph lists them)");
  }
  return ref;
}

caf::expected<std::string> inspect_context::owner_of(const op_ref& ref, const std::string& key) {
  if (ref.spec->partition_of_key == nullptr) {
    return bad_request("'" + ref.spec->name + "' cannot map keys to partitions");
  }
  // The key is decoded by the operator's key codec, user code that reports with exceptions.
  try {
    auto p = ref.spec->partition_of_key(key, ref.job->graph().partitions());
    return ref.spec->name + "/" + std::to_string(p);
  } catch (const std::exception& e) {
    return bad_request("'" + key + "' is not a key of '" + ref.spec->name + "': " + e.what());
  }
}

caf::result<std::string> inspect_context::ask(const std::shared_ptr<job_handle>& job,
                                              const std::string& target,
                                              const admin_request& request, render_fn render) {
  auto sup = caf::actor_cast<caf::actor>(job->supervisor());
  if (!sup || job->done()) {
    return fail("job '" + job->name() + "' has finished: its actors are gone").dump();
  }
  auto rp = self_->make_response_promise<std::string>();
  self_->request(sup, limits::inspector_ask_timeout, admin_atom::value, target, request)
    .then([rp, render](
            std::vector<admin_answer>& answers) mutable { rp.deliver(rendered(render, answers)); },
          [rp, name = job->name()](caf::error& err) mutable {
            rp.deliver(fail("job '" + name + "' did not answer: " + caf::to_string(err)).dump());
          });
  return rp;
}

void inspect_context::tell(const job_handle& job, const std::string& target,
                           const admin_request& request) {
  auto sup = caf::actor_cast<caf::actor>(job.supervisor());
  if (!sup || job.done()) {
    return;
  }
  self_->request(sup, limits::inspector_ask_timeout, admin_atom::value, target, request)
    .then([](std::vector<admin_answer>&) {}, [](caf::error&) {});
}

} // namespace eddy::detail::inspect
