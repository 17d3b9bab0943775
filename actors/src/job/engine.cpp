#include "eddy/actors/engine.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>

#include "cluster/host.hpp"
#include "cluster/node_actor.hpp"
#include "eddy/actors/messages.hpp"
#include "eddy/core/error.hpp"
#include "eddy/core/log.hpp"
#include "eddy/savepoint/restore.hpp"
#include "job/job_actor.hpp"
#include "plan/job_plan.hpp"
#include "savepoint/restore.hpp"

namespace eddy {

namespace {

std::atomic<bool> stop_flag{false};

/// --state.reset: the job's directory under `data_dir` (its journals, and for a service its
/// ingress log of accepted requests) is renamed to `<job>.reset-<UTC time>`, never deleted,
/// so that a reset by mistake loses nothing; the log line says where it went.
caf::error move_state_aside(const std::filesystem::path& data_dir, const std::string& job) {
  auto aside = move_job_state_aside(data_dir, job, "reset");
  if (!aside) {
    return make_error(errc::io_failure,
                      "cannot reset the state of job " + job + ": " + describe(aside.error()));
  }
  if (!aside->empty()) {
    log(log_level::info, "engine",
        "--state.reset: the state of job " + job + " was moved to " + aside->string() +
          " (delete it when it is no longer needed)");
  }
  return {};
}

/// Before a job's state is opened: --state.reset moves it aside, --restore.from puts a
/// savepoint's in its place.
caf::error prepare_state(const job_graph& g, const runtime_options& opts,
                         const common_options& common) {
  bool durable = opts.state.level != durability::none;
  if (durable && opts.state.reset) {
    if (auto err = move_state_aside(common.data_dir, g.name())) {
      return err;
    }
  }
  if (opts.savepoint.restore_from.empty()) {
    return {};
  }
  if (!durable) {
    return make_error(errc::invalid_config,
                      "--restore.from needs durable state; --state.durability is none");
  }
  if (!common.node_seeds.empty()) {
    return make_error(errc::invalid_config,
                      "--restore.from on a cluster is not built yet; restore on one node");
  }
  return detail::restore_job_state(g, opts, common.data_dir);
}

/// What a crash while writing a savepoint of this job left is removed at its next start;
/// partial savepoints of other jobs sharing the directory may be under way and stay.
void remove_partial_savepoints_of(const detail::job_env& env) {
  auto root = detail::savepoint_root(env);
  auto removed = remove_partial_savepoints(root, env.graph->name());
  if (!removed) {
    log(log_level::warn, "engine",
        "cannot clean up partial savepoints: " + describe(removed.error()));
  } else if (*removed > 0) {
    log(log_level::info, "engine",
        "removed " + std::to_string(*removed) + " partial savepoint(s) of job " +
          env.graph->name() + " under " + root.string() + " (cut off by a crash)");
  }
}

extern "C" void on_signal(int) {
  if (stop_flag.exchange(true)) {
    // Second signal: leave at once. Safe with durable state: what was not committed is
    // replayed by the next run.
    ::_exit(130);
  }
}

} // namespace

const char* to_string(actor_status status) noexcept {
  switch (status) {
    case actor_status::running:
      return "running";
    case actor_status::finished:
      return "finished";
    case actor_status::failed:
      return "failed";
    case actor_status::restarting:
      return "restarting";
    case actor_status::stopped:
      return "stopped";
    case actor_status::paused:
      return "paused";
  }
  return "?";
}

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
  if (common_.inspect || !common_.node_seeds.empty()) {
    cfg_->load<caf::io::middleman>();
  }
  if (opts_.threads > 0) {
    cfg_->set("scheduler.max-threads", static_cast<size_t>(opts_.threads));
  } else if (!common_.node_seeds.empty()) {
    // A partition waiting for its standby holds a thread (see host.hpp).
    cfg_->set(
      "scheduler.max-threads",
      static_cast<size_t>(std::max(2u, std::thread::hardware_concurrency()) + opts_.partitions));
  }
  sys_ = std::make_unique<caf::actor_system>(*cfg_);
}

engine::~engine() {
  // The system waits for every actor before it shuts down: the inspector must go.
  if (inspector_) {
    caf::anon_send_exit(caf::actor_cast<caf::actor>(inspector_), caf::exit_reason::user_shutdown);
  }
  if (node_) {
    caf::anon_send_exit(caf::actor_cast<caf::actor>(node_), caf::exit_reason::user_shutdown);
  }
  if (host_) {
    caf::anon_send_exit(caf::actor_cast<caf::actor>(host_), caf::exit_reason::user_shutdown);
  }
}

caf::actor_system& engine::system() noexcept {
  return *sys_;
}

caf::expected<std::shared_ptr<job_handle>> engine::start(job_graph graph) {
  if (auto err = graph.validate()) {
    return err;
  }
  auto g = std::make_shared<const job_graph>(std::move(graph));
  auto policies = detail::policies_of(*g, opts_.supervision);
  if (!policies) {
    return policies.error();
  }
  auto sh = std::make_shared<job_handle::shared>();
  sh->dead_letters = std::make_unique<dead_letter_log>(
    opts_.dead_letters.empty() ? common_.data_dir / "deadletters.jsonl" : opts_.dead_letters);
  bool durable = opts_.state.level != durability::none;
  if (auto err = prepare_state(*g, opts_, common_)) {
    return err;
  }
  detail::job_env env;
  env.graph = g;
  env.opts = opts_;
  env.data_dir = common_.data_dir;
  env.rejects = sh->dead_letters.get();
  env.durable = durable;
  env.policies = std::move(*policies);
  if (durable) {
    auto store = dead_letter_store::open(dead_letter_store::path_in(common_.data_dir));
    if (!store) {
      return store.error();
    }
    env.dead_letters = std::move(*store);
  } else {
    env.not_restartable = "state.durability is none";
  }
  if (durable) {
    remove_partial_savepoints_of(env);
  }
  for (size_t n = 0; n < g->nodes().size(); ++n) {
    const auto& spec = g->node(n);
    for (uint32_t i = 0; i < g->instances(n); ++i) {
      env.metrics.push_back(std::make_shared<actor_metrics>());
      sh->actors.push_back(actor_info{
        spec.name + "/" + std::to_string(i), spec.name, spec.kind, i, env.metrics.back(), {}});
    }
  }
  bool cluster = !common_.node_seeds.empty();
  std::vector<detail::instance_plan> plan;
  if (!cluster) {
    std::vector<detail::actor_slot> slots(env.metrics.size());
    size_t culprit = 0;
    auto planned = detail::plan_job(env, slots, culprit);
    if (!planned) {
      return planned.error();
    }
    plan = std::move(*planned);
  }
  log(log_level::info, "engine",
      "job " + g->name() + (cluster ? " joins the cluster with " : " starting on ") +
        std::to_string(env.metrics.size()) + " actors" +
        (durable ? ", state in " + (common_.data_dir / g->name()).string() + " (durability " +
                     to_string(opts_.state.level) + ")"
                 : std::string{", state in memory"}));
  if (!env.not_restartable.empty()) {
    log(log_level::info, "engine",
        "supervision cannot restart job " + g->name() + " (" + env.not_restartable +
          "): a failure stops it");
  }
  sh->graph = g;
  sh->data_dir = common_.data_dir;
  if ((common_.inspect || !common_.node_seeds.empty()) && inspector_port_ == 0) {
    if (auto err = publish_inspector()) {
      return err;
    }
  }
  if (cluster) {
    auto c = std::make_shared<detail::cluster_env>();
    c->node = caf::actor_cast<caf::actor>(node_);
    c->host = caf::actor_cast<caf::actor>(host_);
    c->view = view_;
    c->standby_sync = common_.standby_sync;
    c->timeout_ms = common_.heartbeat_timeout_ms;
    c->moves_max = common_.moves_max;
    c->rebalance_on_join = common_.rebalance_on_join;
    env.cluster = std::move(c);
  }
  auto hosted_env = env;
  // The host needs no handles of its own node (they would keep it alive for ever).
  hosted_env.cluster.reset();
  sh->job = detail::spawn_job_actor(*sys_, sh, std::move(env), std::move(plan));
  if (cluster) {
    hosted_->add(g->name(), detail::host_registry::job{std::move(hosted_env), sh});
  }
  auto handle = std::make_shared<job_handle>(sh);
  std::lock_guard guard{registry_->mtx};
  registry_->jobs.push_back(handle);
  return handle;
}

void engine::set_http_address(const std::string& host_port) {
  if (view_) {
    view_->set_http(host_port);
  }
}

std::optional<std::string> engine::route_http() const {
  if (!view_ || common_.node_seeds.empty()) {
    return std::nullopt;
  }
  auto leader = view_->coordinator();
  if (leader == view_->self_id()) {
    return std::nullopt;
  }
  for (const auto& m : view_->members()) {
    if (!leader.empty() && m.id == leader && m.state == detail::member_state::up) {
      return m.http;
    }
  }
  return std::string{};
}

caf::expected<uint64_t>
engine::replicate_ingress(const std::string& job,
                          const std::vector<std::pair<uint64_t, std::string>>& entries) {
  if (entries.empty()) {
    return uint64_t{0};
  }
  auto successor = view_ && !common_.node_seeds.empty() ? view_->successor() : std::string{};
  if (successor.empty()) {
    return entries.back().first;
  }
  std::lock_guard guard{ingress_mtx_};
  caf::scoped_actor self{*sys_};
  auto timeout = std::chrono::milliseconds(common_.heartbeat_timeout_ms);
  caf::error failed;
  if (successor != ingress_successor_ || !ingress_host_) {
    ingress_host_ = nullptr;
    self->request(caf::actor_cast<caf::actor>(node_), timeout, host_atom::value, successor)
      .receive(
        [this, &successor](caf::actor& host) {
          ingress_host_ = caf::actor_cast<caf::strong_actor_ptr>(host);
          ingress_successor_ = successor;
        },
        [&failed](caf::error& err) { failed = std::move(err); });
  }
  uint64_t held = 0;
  if (!failed) {
    self
      ->request(caf::actor_cast<caf::actor>(ingress_host_), timeout, ingress_atom::value, job,
                entries)
      .receive([&held](uint64_t last) { held = last; },
               [&failed](caf::error& err) { failed = std::move(err); });
  }
  if (failed) {
    ingress_host_ = nullptr;
    return make_error(errc::io_failure, "the copy of the ingress log on " + successor +
                                          " cannot be kept (" + to_string(failed) + ")");
  }
  return held;
}

std::vector<std::shared_ptr<job_handle>> engine::jobs() const {
  std::lock_guard guard{registry_->mtx};
  return registry_->jobs;
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
  std::lock_guard guard{state_->mtx};
  return state_->actors;
}

uint64_t job_handle::restarts() const {
  return state_->restarts.load();
}

const std::string& job_handle::name() const {
  return state_->graph->name();
}

const job_graph& job_handle::graph() const {
  return *state_->graph;
}

const std::filesystem::path& job_handle::data_dir() const {
  return state_->data_dir;
}

double job_handle::uptime_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - state_->started).count();
}

bool job_handle::done() const {
  std::lock_guard guard{state_->mtx};
  return state_->done;
}

caf::error job_handle::error() const {
  std::lock_guard guard{state_->mtx};
  return state_->error;
}

const dead_letter_log& job_handle::dead_letters() const {
  return *state_->dead_letters;
}

void job_handle::stop() {
  caf::anon_send(state_->job, stop_atom::value);
}

caf::expected<std::string> job_handle::savepoint(bool stop, uint32_t timeout_ms) {
  caf::scoped_actor self{state_->job.home_system()};
  caf::expected<std::string> result{std::string{}};
  self->request(state_->job, std::chrono::milliseconds(timeout_ms), savepoint_atom::value, stop)
    .receive([&result](std::string& text) { result = std::move(text); },
             [&result](caf::error& err) { result = std::move(err); });
  return result;
}

caf::strong_actor_ptr job_handle::supervisor() const {
  return caf::actor_cast<caf::strong_actor_ptr>(state_->job);
}

caf::error job_handle::kill(const std::string& actor) {
  {
    std::lock_guard guard{state_->mtx};
    auto known = std::any_of(state_->actors.begin(), state_->actors.end(),
                             [&actor](const actor_info& a) { return a.name == actor; });
    if (!known) {
      return make_error(errc::invalid_config,
                        "job " + state_->graph->name() + " has no actor '" + actor + "'");
    }
  }
  caf::anon_send(state_->job, kill_atom::value, actor);
  return {};
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
