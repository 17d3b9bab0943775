#include "eddy/actors/engine.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <mutex>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/stateful_actor.hpp>

#include "eddy/core/error.hpp"
#include "eddy/core/log.hpp"
#include "eddy/flow/replay_filter.hpp"
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

/// Producer ids fit the 16 bits an origin gives them; 0 means "cannot replay".
constexpr uint32_t producers_max = 0xffff;

/// The journal of instance `index` of `spec`: <data-dir>/<job>/<node>/p<index>.db for
/// partitions, .../sink-<index>.db for sinks.
std::filesystem::path journal_path(const std::filesystem::path& data_dir, const job_graph& g,
                                   const node_spec& spec, uint32_t index) {
  auto file = (spec.kind == node_kind::keyed ? "p" : "sink-") + std::to_string(index) + ".db";
  return data_dir / g.name() / spec.name / file;
}

/// "node:instances,..." of every node of `g`.
std::string topology_of(const job_graph& g) {
  std::string result;
  for (size_t n = 0; n < g.nodes().size(); ++n) {
    result += (n == 0 ? "" : ",") + g.node(n).name + ":" + std::to_string(g.instances(n));
  }
  return result;
}

/// Opens the journal of a partition or a transactional sink and reads its positions; a
/// transactional sink cuts its output back to the committed length.
caf::error open_journal(detail::stage_init& init, const job_graph& g, const node_spec& spec,
                        const std::filesystem::path& data_dir, durability level,
                        size_t keep_changes) {
  journal_meta meta{g.name(),
                    spec.name,
                    init.ctx.index,
                    init.ctx.instances,
                    init.transform ? init.transform->state_version() : 1,
                    topology_of(g)};
  auto journal =
    journal_store::open(journal_path(data_dir, g, spec, init.ctx.index), meta, level, keep_changes);
  if (!journal) {
    return journal.error();
  }
  auto positions = journal->positions();
  if (!positions) {
    return positions.error();
  }
  init.positions = std::move(*positions);
  init.journal = std::make_unique<journal_store>(std::move(*journal));
  if (init.sink) {
    auto i = init.positions.find(0);
    try {
      init.sink->resume(i == init.positions.end() ? 0 : i->second);
    } catch (const std::exception& e) {
      return make_error(errc::io_failure, "sink '" + spec.name + "': " + e.what());
    }
  }
  return {};
}

/// The durable consumers (partitions, transactional sinks) that the output of `from`
/// reaches through stateless operators, with the channel each receives it on.
std::vector<std::pair<size_t, channel_id>> durable_consumers(const std::vector<instance_plan>& plan,
                                                             size_t from) {
  std::vector<std::pair<size_t, channel_id>> result;
  std::vector<std::pair<size_t, channel_id>> todo = plan[from].targets;
  while (!todo.empty()) {
    auto [k, channel] = todo.back();
    todo.pop_back();
    const auto& init = *plan[k].init;
    if (init.journal) {
      result.emplace_back(k, channel);
    } else if (init.transform) {
      todo.insert(todo.end(), plan[k].targets.begin(), plan[k].targets.end());
    }
  }
  return result;
}

/// Sets where each producer resumes: after the least position that the durable consumers
/// it reaches committed for it (0 when one of them has none). Partitions with durable
/// consumers keep an outbox acknowledged by those consumers' channels.
void plan_replay(std::vector<instance_plan>& plan) {
  for (size_t k = 0; k < plan.size(); ++k) {
    auto& init = *plan[k].init;
    if (init.ctx.producer == 0) {
      continue;
    }
    auto consumers = durable_consumers(plan, k);
    uint64_t resume = consumers.empty() ? 0 : UINT64_MAX;
    for (auto [c, channel] : consumers) {
      const auto& positions = plan[c].init->positions;
      auto i = positions.find(replay_filter::key_of(channel, init.ctx.producer));
      auto committed = i == positions.end() ? 0 : i->second;
      resume = std::min(resume, committed);
      if (init.transform) {
        init.ack_channels.push_back(channel);
        init.acked[channel] = committed;
      }
    }
    init.resume_after = resume;
  }
}

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
  // Every init shares one table of producers; sinks read it only when they receive
  // batches, after the start below.
  for (size_t k = 0; k < plan.size(); ++k) {
    auto& init = *plan[k].init;
    if (init.ctx.producer != 0) {
      auto& producers = *init.producers;
      producers.resize(std::max<size_t>(producers.size(), init.ctx.producer + 1));
      producers[init.ctx.producer] = st.stages[k];
    }
  }
  for (auto& stage : st.stages) {
    self->send(stage, start_atom::value);
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
  bool durable = opts_.state.level != durability::none;
  if (durable && opts_.state.reset) {
    std::error_code ec;
    std::filesystem::remove_all(common_.data_dir / g->name(), ec);
    if (ec) {
      return make_error(errc::io_failure, "cannot reset the state of job " + g->name() + " in " +
                                            common_.data_dir.string() + ": " + ec.message());
    }
    log(log_level::info, "engine", "--state.reset: deleted the state of job " + g->name());
  }
  uint32_t next_producer = 1;
  auto producers_table = std::make_shared<std::vector<stage_actor>>();
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
      init->ctx.durable = durable;
      if (durable && (spec.kind == node_kind::source || spec.kind == node_kind::keyed)) {
        if (next_producer > producers_max) {
          return make_error(errc::invalid_graph,
                            "job " + g->name() + " has more than " + std::to_string(producers_max) +
                              " source instances and partitions; durable state supports that many");
        }
        init->ctx.producer = next_producer++;
      }
      init->producers = producers_table;
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
      bool journaled = spec.kind == node_kind::keyed || (init->sink && init->sink->transactional());
      if (durable && journaled) {
        if (auto err = open_journal(*init, *g, spec, common_.data_dir, opts_.state.level,
                                    opts_.state.keep_changes)) {
          return err;
        }
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
  if (durable) {
    plan_replay(plan);
  }
  log(log_level::info, "engine",
      "job " + g->name() + " starting on " + std::to_string(plan.size()) + " actors" +
        (durable ? ", state in " + (common_.data_dir / g->name()).string() + " (durability " +
                     to_string(opts_.state.level) + ")"
                 : std::string{", state in memory"}));
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
