#include "eddy/actors/engine.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/stateful_actor.hpp>

#include "eddy/core/error.hpp"
#include "eddy/core/log.hpp"
#include "transform_stage.hpp"

namespace eddy {

struct job_handle::shared {
  std::mutex mtx;
  std::condition_variable cv;
  bool done = false;
  caf::error error;
  std::vector<actor_info> actors;
  std::unique_ptr<dead_letter_log> dead_letters;
  caf::actor job;
};

namespace {

std::atomic<bool> stop_flag{false};

extern "C" void on_signal(int) {
  if (stop_flag.exchange(true)) {
    // Second signal: leave at once; durable state makes this safe in later versions.
    ::_exit(130);
  }
}

/// One actor to spawn: its init and the instances its channels lead to.
struct instance_plan {
  std::shared_ptr<detail::stage_init> init;
  std::vector<std::pair<size_t, channel_id>> targets;
};

/// Which receivers sender `i` of `senders` talks to: all partitions on a hash edge, one
/// receiver when the downstream has as many or fewer instances, else its share of them.
std::vector<uint32_t> receivers_of(uint32_t i, uint32_t senders, uint32_t receivers, bool hash) {
  std::vector<uint32_t> result;
  for (uint32_t j = 0; j < receivers; ++j) {
    if (hash || (senders >= receivers ? j == i % receivers : j % senders == i)) {
      result.push_back(j);
    }
  }
  return result;
}

struct job_state {
  static constexpr const char* name = "job";
  std::shared_ptr<job_handle::shared> shared;
  std::vector<stage_actor> stages;
  std::vector<stage_actor> sources;
  std::vector<std::shared_ptr<actor_metrics>> metrics;
  std::unordered_map<caf::actor_addr, size_t> index_of;
  size_t alive = 0;
};

stage_actor spawn_stage(caf::stateful_actor<job_state>* self,
                        const std::shared_ptr<detail::stage_init>& init) {
  switch (init->graph->node(init->node).kind) {
    case node_kind::source:
      if (init->source->blocking()) {
        return self->spawn<caf::detached + caf::monitored>(detail::source_stage, init);
      }
      return self->spawn<caf::monitored>(detail::source_stage, init);
    case node_kind::transform:
      return self->spawn<caf::monitored>(detail::operator_stage, init);
    case node_kind::keyed:
      return self->spawn<caf::monitored>(detail::partition_stage, init);
    case node_kind::sink:
      return self->spawn<caf::monitored>(detail::sink_stage, init);
  }
  return {};
}

/// The job actor spawns and monitors every stage (downstream first, so that each stage
/// knows its receivers), starts the sources, and completes the job when all stages exited.
/// The first abnormal exit fails the job and stops the rest. Supervision grows from here.
caf::behavior job_actor(caf::stateful_actor<job_state>* self,
                        std::shared_ptr<job_handle::shared> shared,
                        std::vector<instance_plan> plan) {
  auto& st = self->state;
  st.shared = shared;
  st.stages.resize(plan.size());
  for (auto& p : plan) {
    st.metrics.push_back(p.init->metrics);
  }
  for (size_t k = plan.size(); k-- > 0;) {
    for (auto& [target, channel] : plan[k].targets) {
      plan[k].init->outputs.push_back(detail::output_target{st.stages[target], channel});
    }
    st.stages[k] = spawn_stage(self, plan[k].init);
    st.index_of.emplace(st.stages[k].address(), k);
    if (plan[k].init->graph->node(plan[k].init->node).kind == node_kind::source) {
      st.sources.push_back(st.stages[k]);
    }
  }
  st.alive = plan.size();
  for (auto& src : st.sources) {
    self->send(src, start_atom::value);
  }
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    bool failed = msg.reason && msg.reason != caf::exit_reason::normal;
    if (auto i = st.index_of.find(msg.source); failed && i != st.index_of.end()) {
      st.metrics[i->second]->status = 2;
    }
    if (failed && !st.shared->error) {
      log(log_level::error, "job", "job failed: " + describe(msg.reason));
      st.shared->error = msg.reason;
      for (auto& stage : st.stages) {
        self->send_exit(stage, caf::exit_reason::user_shutdown);
      }
    }
    if (--st.alive == 0) {
      st.shared->dead_letters->flush();
      {
        std::lock_guard guard{st.shared->mtx};
        st.shared->done = true;
      }
      st.shared->cv.notify_all();
      self->quit();
    }
  });
  return {
    [self](stop_atom) {
      for (auto& src : self->state.sources) {
        self->send(src, stop_atom::value);
      }
    },
  };
}

} // namespace

bool stop_requested() noexcept {
  return stop_flag.load();
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  // No SA_RESTART: a blocking read of stdin returns so the source can finish.
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

engine::engine(runtime_options opts, common_options common)
  : opts_(std::move(opts))
  , common_(std::move(common)) {
  cfg_ = std::make_unique<caf::actor_system_config>();
  cfg_->add_message_types<caf::id_block::eddy>();
  if (opts_.threads > 0) {
    cfg_->set("scheduler.max-threads", static_cast<size_t>(opts_.threads));
  }
  sys_ = std::make_unique<caf::actor_system>(*cfg_);
}

engine::~engine() = default;

caf::actor_system& engine::system() noexcept {
  return *sys_;
}

caf::expected<std::shared_ptr<job_handle>> engine::start(job_graph graph) {
  if (auto err = graph.validate()) {
    return err;
  }
  auto g = std::make_shared<const job_graph>(std::move(graph));
  auto sh = std::make_shared<job_handle::shared>();
  sh->dead_letters = std::make_unique<dead_letter_log>(
    opts_.dead_letters.empty() ? common_.data_dir / "deadletters.jsonl" : opts_.dead_letters);
  std::vector<instance_plan> plan;
  std::vector<size_t> first(g->nodes().size());
  for (size_t n = 0; n < g->nodes().size(); ++n) {
    const auto& spec = g->node(n);
    first[n] = plan.size();
    for (uint32_t i = 0; i < g->instances(n); ++i) {
      auto init = std::make_shared<detail::stage_init>();
      init->graph = g;
      init->node = n;
      init->ctx = instance_context{g->name(),       spec.name,        i,
                                   g->instances(n), common_.data_dir, sh->dead_letters.get()};
      init->opts = opts_;
      init->metrics = std::make_shared<actor_metrics>();
      try {
        if (spec.make_source) {
          init->source = spec.make_source(init->ctx);
        } else if (spec.make_sink) {
          init->sink = spec.make_sink(init->ctx);
        } else {
          init->transform = spec.make_transform(init->ctx);
        }
      } catch (const std::exception& e) {
        return make_error(errc::io_failure,
                          std::string{to_string(spec.kind)} + " '" + spec.name + "': " + e.what());
      }
      sh->actors.push_back(
        actor_info{spec.name + "/" + std::to_string(i), spec.name, spec.kind, i, init->metrics});
      plan.push_back(instance_plan{std::move(init), {}});
    }
  }
  channel_id next_channel = 1;
  for (size_t n = 0; n < g->nodes().size(); ++n) {
    const auto& spec = g->node(n);
    if (!spec.input) {
      continue;
    }
    auto u = *spec.input;
    auto senders = g->instances(u);
    for (uint32_t i = 0; i < senders; ++i) {
      for (auto j : receivers_of(i, senders, g->instances(n), spec.kind == node_kind::keyed)) {
        plan[first[u] + i].targets.emplace_back(first[n] + j, next_channel++);
        plan[first[n] + j].init->input_count++;
      }
    }
  }
  log(log_level::info, "engine",
      "job " + g->name() + " starting on " + std::to_string(plan.size()) + " actors");
  sh->job = sys_->spawn(job_actor, sh, std::move(plan));
  return std::make_shared<job_handle>(sh);
}

caf::error engine::run(job_graph graph, bool handle_signals) {
  if (handle_signals) {
    install_signal_handlers();
  }
  auto job = start(std::move(graph));
  if (!job) {
    return job.error();
  }
  return handle_signals ? (*job)->wait_stopping_on_signal() : (*job)->wait();
}

std::vector<actor_info> job_handle::actors() const {
  return state_->actors;
}

const dead_letter_log& job_handle::dead_letters() const {
  return *state_->dead_letters;
}

void job_handle::stop() {
  caf::anon_send(state_->job, stop_atom::value);
}

caf::error job_handle::wait() {
  std::unique_lock guard{state_->mtx};
  state_->cv.wait(guard, [this] { return state_->done; });
  return state_->error;
}

caf::error job_handle::wait_stopping_on_signal() {
  bool stop_sent = false;
  while (!wait_for(100)) {
    if (!stop_sent && stop_requested()) {
      log(log_level::info, "engine", "stop requested: draining the job");
      stop();
      stop_sent = true;
    }
  }
  return wait();
}

bool job_handle::wait_for(uint32_t timeout_ms) {
  std::unique_lock guard{state_->mtx};
  return state_->cv.wait_for(guard, std::chrono::milliseconds(timeout_ms),
                             [this] { return state_->done; });
}

} // namespace eddy
