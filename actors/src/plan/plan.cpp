// Builds an incarnation of a job: the init of every actor with its logic and journal, the
// channels between them, and where each producer resumes (see "State and its journal" in
// docs/design.md).

#include <algorithm>
#include <atomic>
#include <functional>
#include <thread>

#include "eddy/core/error.hpp"
#include "eddy/core/log.hpp"
#include "eddy/flow/replay_filter.hpp"
#include "limits.hpp"
#include "plan/job_plan.hpp"

namespace eddy::detail {

namespace {

/// Producer ids fit the 16 bits an origin gives them; 0 means "cannot replay" and the
/// largest marks re-processed dead letters.
constexpr uint32_t producers_max = detail::dead_letter_producer - 1;

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
  // A partition folds its journal's log itself when it starts: the partitions of a job (or
  // of a restart) recover in parallel on the scheduler's threads.
  auto journal = journal_store::open(journal_path(data_dir, g, spec, init.ctx.index), meta, level,
                                     keep_changes, spec.kind != node_kind::keyed);
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

/// The durable consumers (partitions, transactional sinks, failed actors in their place)
/// that the output of `from` reaches through stateless operators, with the channel each
/// receives it on.
std::vector<std::pair<size_t, channel_id>> durable_consumers(const std::vector<instance_plan>& plan,
                                                             size_t from) {
  std::vector<std::pair<size_t, channel_id>> result;
  std::vector<std::pair<size_t, channel_id>> todo = plan[from].targets;
  while (!todo.empty()) {
    auto [k, channel] = todo.back();
    todo.pop_back();
    const auto& init = *plan[k].init;
    auto kind = init.graph->node(init.node).kind;
    if (init.journal || !init.host.empty() || (init.failed() && kind != node_kind::transform)) {
      result.emplace_back(k, channel);
    } else if (kind == node_kind::transform) {
      todo.insert(todo.end(), plan[k].targets.begin(), plan[k].targets.end());
    }
  }
  return result;
}

} // namespace

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
      if (init.transform || !init.host.empty()) {
        init.ack_channels.push_back(channel);
        init.acked[channel] = committed;
      }
    }
    init.resume_after = resume;
  }
}

namespace {

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

/// Creates the logic of an instance. A failed actor runs no user code and gets what can
/// still be made: an inert logic where its own fails, no source, no sink.
caf::error make_logic(detail::stage_init& init, const node_spec& spec) {
  try {
    if (spec.make_source) {
      if (!init.failed()) {
        init.source = spec.make_source(init.ctx);
      }
    } else if (spec.make_sink) {
      init.sink = spec.make_sink(init.ctx);
    } else {
      init.transform = spec.make_transform(init.ctx);
    }
  } catch (const std::exception& e) {
    if (!init.failed()) {
      return make_error(errc::io_failure,
                        std::string{to_string(spec.kind)} + " '" + spec.name + "': " + e.what());
    }
  }
  if (init.failed() && !spec.make_source && !spec.make_sink && !init.transform) {
    init.transform = detail::make_inert_logic();
  }
  return {};
}

/// The init of instance `i` of node `n` with what every instance gets, built here or on
/// its host: where it is, its producer id, its options (the job's, with what the node sets
/// itself), its counters and, after a failure, until when it commits per group.
std::shared_ptr<stage_init> new_init(const job_env& env, size_t n, uint32_t i, uint32_t producer,
                                     std::string failed_cause,
                                     std::shared_ptr<actor_metrics> metrics) {
  const auto& g = *env.graph;
  const auto& spec = g.node(n);
  auto init = std::make_shared<detail::stage_init>();
  init->graph = env.graph;
  init->node = n;
  init->ctx = instance_context{g.name(), spec.name, i, g.instances(n), env.data_dir, env.rejects};
  init->ctx.durable = env.durable;
  init->ctx.producer = producer;
  init->opts = env.opts;
  if (spec.commit_interval_ms) {
    init->opts.state.commit_interval_ms = *spec.commit_interval_ms;
  }
  init->eager_commits_until = env.eager_commits_until;
  init->metrics = std::move(metrics);
  init->failed_cause = std::move(failed_cause);
  return init;
}

} // namespace

std::filesystem::path journal_path(const std::filesystem::path& data_dir, const job_graph& g,
                                   const node_spec& spec, uint32_t index) {
  auto file = (spec.kind == node_kind::keyed ? "p" : "sink-") + std::to_string(index) + ".db";
  return data_dir / g.name() / spec.name / file;
}

caf::expected<std::shared_ptr<stage_init>>
build_instance(job_env& env, size_t n, uint32_t i, uint32_t producer, std::string failed_cause,
               const std::set<origin_t>& poison, std::shared_ptr<actor_metrics> metrics) {
  const auto& g = *env.graph;
  const auto& spec = g.node(n);
  auto init = new_init(env, n, i, producer, std::move(failed_cause), std::move(metrics));
  if (!poison.empty()) {
    init->skip = std::make_shared<const std::set<origin_t>>(poison);
  }
  init->dead_letters = env.dead_letters;
  init->cuts = env.cuts;
  if (auto err = make_logic(*init, spec)) {
    return err;
  }
  if (init->source && !init->source->replayable() && env.unreplayable_source.empty()) {
    env.unreplayable_source = spec.name;
    if (env.not_restartable.empty()) {
      env.not_restartable = "source '" + spec.name + "' cannot replay its input";
    }
  }
  bool journaled = spec.kind == node_kind::keyed || (init->sink && init->sink->transactional());
  if (env.durable && journaled) {
    if (auto err = open_journal(*init, g, spec, env.data_dir, env.opts.state.level,
                                env.opts.state.keep_changes)) {
      if (!init->failed()) {
        return err;
      }
      log(log_level::warn, "supervisor",
          init->who() + " failed and its journal cannot be read (" + describe(err) +
            "): all its input will go to the dead-letter journal");
      init->journal.reset();
      init->positions.clear();
    }
  }
  return init;
}

caf::expected<std::unique_ptr<journal_store>> open_journal_copy(job_env& env, size_t n,
                                                                uint32_t i) {
  const auto& g = *env.graph;
  const auto& spec = g.node(n);
  if (spec.kind == node_kind::keyed) {
    // A partition's journal records its state version, which its logic knows.
    auto init = build_instance(env, n, i, 0, {}, {}, std::make_shared<actor_metrics>());
    if (!init) {
      return init.error();
    }
    return std::move((*init)->journal);
  }
  detail::stage_init init;
  init.ctx = instance_context{g.name(), spec.name, i, g.instances(n), env.data_dir, env.rejects};
  if (auto err = open_journal(init, g, spec, env.data_dir, env.opts.state.level,
                              env.opts.state.keep_changes)) {
    return err;
  }
  return std::move(init.journal);
}

namespace {

/// Where one instance of a job runs, decided before any is built.
struct instance_slot {
  size_t node = 0;
  uint32_t index = 0;
  uint32_t producer = 0;
  /// The member hosting a partition, empty when it runs here.
  std::string host;
};

/// Builds the instances `todo` (indices into `where`) concurrently, on up to as many
/// threads as there are cores; each thread takes the next one, and nothing they share is
/// written. `built[k]` or `errors[k]` gets the outcome of slot k.
void build_concurrently(job_env& env, const std::vector<instance_slot>& where,
                        const std::vector<actor_slot>& slots, const std::vector<size_t>& todo,
                        std::vector<std::shared_ptr<stage_init>>& built,
                        std::vector<caf::error>& errors) {
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t t = next++; t < todo.size(); t = next++) {
      auto k = todo[t];
      const auto& w = where[k];
      auto b = build_instance(env, w.node, w.index, w.producer, slots[k].failed_cause,
                              slots[k].poison, env.metrics[k]);
      if (b) {
        built[k] = std::move(*b);
      } else {
        errors[k] = std::move(b.error());
      }
    }
  };
  auto threads = std::min<size_t>({std::max(1U, std::thread::hardware_concurrency()),
                                   limits::plan_threads_max, todo.size() / 8 + 1});
  std::vector<std::thread> helpers;
  for (size_t t = 1; t < threads; ++t) {
    helpers.emplace_back(work);
  }
  work();
  for (auto& h : helpers) {
    h.join();
  }
}

/// Builds the partitions that run here before the rest of the plan, concurrently: opening
/// a journal is file system and SQLite work, and a job opens one per partition when it
/// starts. The partitions whose journals exist come first; only if none of them is refused
/// (another job, partition count, format) are the missing journals created, so that a
/// refused start leaves the data dir as it was.
void build_partitions(job_env& env, const std::vector<instance_slot>& where,
                      const std::vector<actor_slot>& slots,
                      std::vector<std::shared_ptr<stage_init>>& built,
                      std::vector<caf::error>& errors) {
  const auto& g = *env.graph;
  std::vector<size_t> existing;
  std::vector<size_t> missing;
  for (size_t k = 0; k < where.size(); ++k) {
    const auto& spec = g.node(where[k].node);
    if (!where[k].host.empty() || spec.kind != node_kind::keyed) {
      continue;
    }
    std::error_code ec;
    bool exists = env.durable &&
                  std::filesystem::exists(journal_path(env.data_dir, g, spec, where[k].index), ec);
    (exists || !env.durable ? existing : missing).push_back(k);
  }
  build_concurrently(env, where, slots, existing, built, errors);
  for (auto k : existing) {
    if (errors[k]) {
      return;
    }
  }
  build_concurrently(env, where, slots, missing, built, errors);
}

/// Where every instance of the job runs, with its producer id (durable sources and
/// partitions), in plan order; `first[n]` is the index of node n's first instance.
caf::expected<std::vector<instance_slot>>
place_instances(const job_env& env, const std::function<std::string(size_t, uint32_t)>& host_of,
                std::vector<size_t>& first, size_t& culprit) {
  const auto& g = *env.graph;
  uint32_t next_producer = 1;
  std::vector<instance_slot> where;
  first.assign(g.nodes().size(), 0);
  for (size_t n = 0; n < g.nodes().size(); ++n) {
    const auto& spec = g.node(n);
    first[n] = where.size();
    for (uint32_t i = 0; i < g.instances(n); ++i) {
      culprit = where.size();
      uint32_t producer = 0;
      if (env.durable && (spec.kind == node_kind::source || spec.kind == node_kind::keyed)) {
        if (next_producer > producers_max) {
          return make_error(errc::invalid_graph,
                            "job " + g.name() + " has more than " + std::to_string(producers_max) +
                              " source instances and partitions; durable state supports that many");
        }
        producer = next_producer++;
      }
      auto host = host_of && spec.kind == node_kind::keyed ? host_of(n, i) : std::string{};
      where.push_back(instance_slot{n, i, producer, std::move(host)});
    }
  }
  return where;
}

} // namespace

caf::expected<std::vector<instance_plan>>
plan_job(job_env& env, const std::vector<actor_slot>& slots, size_t& culprit,
         const std::function<std::string(size_t, uint32_t)>& host_of) {
  const auto& g = *env.graph;
  std::vector<size_t> first;
  auto placed = place_instances(env, host_of, first, culprit);
  if (!placed) {
    return placed.error();
  }
  auto& where = *placed;
  std::vector<std::shared_ptr<stage_init>> built(where.size());
  std::vector<caf::error> errors(where.size());
  build_partitions(env, where, slots, built, errors);
  auto producers_table = std::make_shared<std::vector<stage_actor>>();
  std::vector<instance_plan> plan;
  bool remote = false;
  for (size_t k = 0; k < where.size(); ++k) {
    culprit = k;
    const auto& w = where[k];
    std::shared_ptr<stage_init> init;
    if (!w.host.empty()) {
      // Built and journaled by its host; the job actor asks it for the positions.
      init = new_init(env, w.node, w.index, w.producer, slots[k].failed_cause, env.metrics[k]);
      init->host = w.host;
      remote = true;
    } else if (errors[k]) {
      return std::move(errors[k]);
    } else if (built[k]) {
      init = std::move(built[k]);
    } else {
      auto b = build_instance(env, w.node, w.index, w.producer, slots[k].failed_cause,
                              slots[k].poison, env.metrics[k]);
      if (!b) {
        return b.error();
      }
      init = std::move(*b);
    }
    init->producers = producers_table;
    plan.push_back(instance_plan{std::move(init), {}});
  }
  channel_id next_channel = 1;
  for (size_t n = 0; n < g.nodes().size(); ++n) {
    const auto& spec = g.node(n);
    if (!spec.input) {
      continue;
    }
    std::vector<size_t> inputs{*spec.input};
    inputs.insert(inputs.end(), spec.more_inputs.begin(), spec.more_inputs.end());
    for (auto u : inputs) {
      auto senders = g.instances(u);
      for (uint32_t i = 0; i < senders; ++i) {
        for (auto j : receivers_of(i, senders, g.instances(n), spec.kind == node_kind::keyed)) {
          plan[first[u] + i].targets.emplace_back(first[n] + j, next_channel++);
          plan[first[n] + j].init->input_count++;
        }
      }
    }
  }
  if (env.durable && !remote) {
    plan_replay(plan);
  }
  return plan;
}

} // namespace eddy::detail
