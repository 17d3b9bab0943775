#pragma once

// Private to the inspector: what its command families share. The engine's jobs and the
// operators of their graphs (found by name, with "did you mean" when a name is mistyped),
// the partition that owns a key, and `ask`, which sends a typed request to a job's stages
// through its job actor and renders their replies into the console's answer.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/event_based_actor.hpp>
#include <caf/expected.hpp>
#include <caf/result.hpp>

#include "cluster/node_actor.hpp"
#include "eddy/actors/engine.hpp"
#include "eddy/actors/messages.hpp"
#include "inspect/command_line.hpp"

namespace eddy::detail::inspect {

using jobs_fn = std::function<std::vector<std::shared_ptr<job_handle>>()>;

/// An operator of a job.
struct op_ref {
  std::shared_ptr<job_handle> job;
  const node_spec* spec = nullptr;
  size_t index = 0;
};

/// Turns the stages' replies to a request into the console's answer, or an error naming
/// what is wrong ("no state for key ...").
using render_fn = std::function<caf::expected<json>(const std::vector<admin_answer>&)>;

/// The answer's body of a stage's reply (null when it is not JSON).
json data_of(const admin_reply& reply);
/// The body of the only reply; an error with the reply's when it failed.
[[nodiscard]] caf::expected<json> only_data(const std::vector<admin_answer>& answers);

/// What the inspector's command families use. One per inspector actor, made when it is
/// spawned and used only on it; not thread-safe (the job list and the cluster view it reads
/// are).
class inspect_context {
public:
  inspect_context(caf::event_based_actor* self, jobs_fn jobs, std::string host,
                  std::shared_ptr<std::atomic<uint16_t>> port, std::shared_ptr<cluster_view> view);

  [[nodiscard]] caf::event_based_actor* self() const noexcept {
    return self_;
  }
  /// The engine's jobs, oldest first.
  [[nodiscard]] std::vector<std::shared_ptr<job_handle>> jobs() const {
    return jobs_();
  }
  /// This node's inspector address "host:port".
  [[nodiscard]] std::string address() const;
  /// The membership as the node actor sees it.
  [[nodiscard]] const cluster_view& view() const noexcept {
    return *view_;
  }

  /// The job named `name`, or the most recent one when `name` is empty.
  [[nodiscard]] caf::expected<std::shared_ptr<job_handle>> find_job(const std::string& name) const;
  /// Fails naming the operators when `op` is not one of any job's.
  [[nodiscard]] caf::error known_operator(const std::string& op) const;
  /// The operator named `name`: in a running job if one has it, else in the newest job.
  [[nodiscard]] caf::expected<op_ref> find_operator(const std::string& name) const;
  /// Like `find_operator`, failing when the operator is not keyed (`cmd` needs state).
  [[nodiscard]] caf::expected<op_ref> find_keyed(const std::string& name,
                                                 const std::string& cmd) const;
  /// The partition actor that owns `key` ("count/3").
  [[nodiscard]] static caf::expected<std::string> owner_of(const op_ref& ref,
                                                           const std::string& key);

  /// Sends `request` to the stages `target` names through the job actor; `render` turns
  /// their replies into the console's answer when they arrive.
  caf::result<std::string> ask(const std::shared_ptr<job_handle>& job, const std::string& target,
                               const admin_request& request, render_fn render);
  /// Sends `request` to the stages `target` names and ignores their replies.
  void tell(const job_handle& job, const std::string& target, const admin_request& request);

private:
  caf::event_based_actor* self_;
  jobs_fn jobs_;
  std::string host_;
  /// Set once the middleman bound the port.
  std::shared_ptr<std::atomic<uint16_t>> port_;
  std::shared_ptr<cluster_view> view_;
};

} // namespace eddy::detail::inspect
