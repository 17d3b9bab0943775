// The host actor of a cluster node: partitions placed here by the assignment table, and
// the standby copies of partitions running elsewhere (see host.hpp).

#include "cluster/host.hpp"

#include <fstream>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "cluster/node_actor.hpp"
#include "eddy/core/error.hpp"
#include "eddy/core/log.hpp"
#include "eddy/service/ingress_log.hpp"
#include "stage/transform_stage.hpp"

namespace eddy::detail {

namespace {

/// A standby copy of one partition's journal.
struct replica {
  /// The copy being received (`replica` chunks), written next to the journal.
  std::ofstream incoming;
  std::filesystem::path file;
  /// The copy, open once it is complete.
  std::unique_ptr<journal_store> store;
  uint64_t applied = 0;
  /// The owner epoch the copy records: commits of an older owner are refused.
  uint64_t epoch = 0;
};

struct host_state {
  static constexpr const char* name = "host";
  std::shared_ptr<host_registry> jobs;
  /// Partitions prepared and not spawned yet, by "job/node/index".
  std::map<std::string, std::shared_ptr<stage_init>> prepared;
  std::map<std::string, replica> replicas;
  /// Copies of the ingress logs of services led by another member, by job.
  std::map<std::string, eddy::service::ingress_log> ingress_logs;
  /// The partitions spawned for each leader (a job actor on another node): they stop when
  /// it is lost, since no one else would stop them.
  std::map<caf::actor_addr, std::vector<caf::actor>> spawned_for;
};

using host_ptr = caf::stateful_actor<host_state>*;

std::string key_of(const std::string& job, uint32_t node, uint32_t index) {
  return job + "/" + std::to_string(node) + "/" + std::to_string(index);
}

/// The job and its keyed node `node` with instance `index`, or an error naming what this
/// node does not run.
caf::expected<host_registry::job> find_partition(host_ptr self, const std::string& job,
                                                 uint32_t node, uint32_t index) {
  auto j = self->state.jobs->find(job);
  if (!j) {
    return make_error(errc::invalid_config, "this node does not run job " + job);
  }
  const auto& g = *j->env.graph;
  // A sink's journal has standby copies too: the leader's sink, on the member that would
  // take the job over.
  if (node >= g.nodes().size() ||
      (g.node(node).kind != node_kind::keyed && g.node(node).kind != node_kind::sink) ||
      index >= g.instances(node)) {
    return make_error(errc::invalid_config, "job " + job + " has no partition " +
                                              std::to_string(node) + "/" + std::to_string(index) +
                                              " here (do all nodes run the same job?)");
  }
  return std::move(*j);
}

/// Closes the standby copy of a partition (it is about to run here, or a new copy comes).
void close_replica(host_ptr self, const std::string& key) {
  self->state.replicas.erase(key);
}

caf::result<std::vector<std::pair<uint64_t, uint64_t>>> prepare(host_ptr self, host_prepare& req) {
  auto j = find_partition(self, req.job, req.node, req.index);
  if (!j) {
    return j.error();
  }
  auto key = key_of(req.job, req.node, req.index);
  close_replica(self, key);
  const auto& g = *j->env.graph;
  auto slot = instance_slot(g, req.node, req.index);
  std::set<origin_t> poison(req.poison.begin(), req.poison.end());
  auto init = build_instance(j->env, req.node, req.index, req.producer, req.failed_cause, poison,
                             j->env.metrics[slot]);
  if (!init) {
    return init.error();
  }
  std::vector<std::pair<uint64_t, uint64_t>> positions((*init)->positions.begin(),
                                                       (*init)->positions.end());
  self->state.prepared[key] = std::move(*init);
  return positions;
}

caf::result<caf::actor> spawn_prepared(host_ptr self, host_spawn& req) {
  auto key = key_of(req.job, req.node, req.index);
  auto i = self->state.prepared.find(key);
  if (i == self->state.prepared.end() || req.outputs.size() != req.channels.size()) {
    return make_error(errc::invalid_config, "partition " + key + " was not prepared here");
  }
  auto init = std::move(i->second);
  self->state.prepared.erase(i);
  for (size_t k = 0; k < req.outputs.size(); ++k) {
    init->outputs.push_back(
      output_target{caf::actor_cast<stage_actor>(req.outputs[k]), req.channels[k]});
  }
  init->input_count = req.input_count;
  init->resume_after = req.resume_after;
  init->ack_channels = std::move(req.ack_channels);
  init->acked = std::move(req.acked);
  init->standby = std::move(req.standby);
  init->sync_standby = req.sync_standby;
  init->standby_timeout_ms = req.standby_timeout_ms;
  init->owner_epoch = req.epoch;
  init->producers = std::make_shared<std::vector<stage_actor>>();
  init->metrics->status = init->failed() ? actor_status::failed : actor_status::running;
  auto partition = caf::actor_cast<caf::actor>(self->system().spawn(partition_stage, init));
  auto leader = caf::actor_cast<caf::actor>(self->current_sender());
  if (leader && leader.node() != self->node()) {
    auto& list = self->state.spawned_for[leader.address()];
    if (list.empty()) {
      self->monitor(leader);
    }
    // Partitions of earlier incarnations that are gone need no stopping.
    drop_terminated(list);
    list.push_back(partition);
  }
  return partition;
}

/// Opens the standby copy at `r.file` for the commits its primary sends.
caf::error open_copy(job_env& env, uint32_t node, uint32_t index, replica& r) {
  auto journal = open_journal_copy(env, node, index);
  if (!journal) {
    return journal.error();
  }
  r.store = std::move(*journal);
  r.applied = 0;
  auto epoch = r.store->owner_epoch();
  if (!epoch) {
    return epoch.error();
  }
  r.epoch = *epoch;
  return {};
}

/// The error of a write to `key` by a primary of `epoch` when the copy belongs to a newer
/// owner: after a network cut, the old primary of a partition that failed over.
caf::error fenced(const std::string& key, uint64_t epoch, const replica& r) {
  auto err = make_error(errc::fenced, "the copy of " + key + " here belongs to assignment epoch " +
                                        std::to_string(r.epoch) + "; a primary of epoch " +
                                        std::to_string(epoch) + " may not write it");
  log(log_level::warn, "host", describe(err));
  return err;
}

/// A chunk of a partition's journal file; the last one replaces the standby copy.
caf::result<uint64_t> receive_chunk(host_ptr self, const std::string& job, uint32_t node,
                                    uint32_t index, uint64_t epoch, uint64_t offset,
                                    const std::string& bytes, bool last) {
  auto j = find_partition(self, job, node, index);
  if (!j) {
    return j.error();
  }
  auto key = key_of(job, node, index);
  auto& r = self->state.replicas[key];
  const auto& g = *j->env.graph;
  if (offset == 0 && r.store && r.epoch > epoch) {
    return fenced(key, epoch, r);
  }
  if (offset == 0) {
    r.store.reset();
    r.file = journal_path(j->env.data_dir, g, g.node(node), index);
    std::filesystem::create_directories(r.file.parent_path());
    r.incoming = std::ofstream{r.file.string() + ".incoming", std::ios::binary | std::ios::trunc};
  }
  if (!r.incoming.is_open()) {
    return make_error(errc::io_failure, "a chunk of " + key + " came without its beginning");
  }
  r.incoming.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  auto received = static_cast<uint64_t>(r.incoming.tellp());
  if (!r.incoming) {
    return make_error(errc::io_failure, "cannot write the standby copy " + r.file.string());
  }
  if (!last) {
    return received;
  }
  r.incoming.close();
  // A write-ahead log of an older copy must not be applied to the new one.
  std::error_code ec;
  std::filesystem::remove(r.file.string() + "-wal", ec);
  std::filesystem::remove(r.file.string() + "-shm", ec);
  std::filesystem::rename(r.file.string() + ".incoming", r.file, ec);
  if (ec) {
    return make_error(errc::io_failure, "cannot put the standby copy in place: " + r.file.string() +
                                          ": " + ec.message());
  }
  if (auto err = open_copy(j->env, node, index, r)) {
    return err;
  }
  log(log_level::info, "host",
      "standby copy of " + g.node(node).name + "/" + std::to_string(index) + " in place (" +
        std::to_string(received) + " bytes, seq " + std::to_string(r.store->last_seq()) + ")");
  return received;
}

/// A partition starting elsewhere asks whether the copy kept here is current: the same
/// last sequence number and the same input positions as its journal (after a move, the old
/// primary's journal is the new primary's copy). A current copy is kept open for the
/// commits that follow, and the partition sends no new one.
caf::result<bool> check_copy(host_ptr self, const std::string& job, uint32_t node, uint32_t index,
                             uint64_t epoch, uint64_t last_seq,
                             const std::vector<std::pair<uint64_t, uint64_t>>& positions) {
  auto j = find_partition(self, job, node, index);
  if (!j) {
    return j.error();
  }
  auto key = key_of(job, node, index);
  close_replica(self, key);
  const auto& g = *j->env.graph;
  replica r;
  r.file = journal_path(j->env.data_dir, g, g.node(node), index);
  if (!std::filesystem::exists(r.file) || open_copy(j->env, node, index, r)) {
    return false;
  }
  auto mine = r.store->positions();
  if (r.store->last_seq() != last_seq || !mine || r.epoch > epoch ||
      *mine != std::map<uint64_t, uint64_t>(positions.begin(), positions.end())) {
    return false;
  }
  if (r.epoch < epoch) {
    if (auto err = r.store->set_owner_epoch(epoch)) {
      return err;
    }
    r.epoch = epoch;
  }
  log(log_level::info, "host",
      "standby copy of " + g.node(node).name + "/" + std::to_string(index) + " is current (seq " +
        std::to_string(last_seq) + "): no copy needed");
  self->state.replicas[key] = std::move(r);
  return true;
}

/// A transaction the primary committed, applied to the standby copy.
caf::expected<uint64_t> apply(host_ptr self, const std::string& job, uint32_t node, uint32_t index,
                              uint64_t epoch, const commit_batch& cb) {
  auto key = key_of(job, node, index);
  auto i = self->state.replicas.find(key);
  if (i == self->state.replicas.end() || !i->second.store) {
    return make_error(errc::io_failure, "this node holds no standby copy of " + key);
  }
  auto& r = i->second;
  if (epoch < r.epoch) {
    return fenced(key, epoch, r);
  }
  if (epoch > r.epoch) {
    if (auto err = r.store->set_owner_epoch(epoch)) {
      return err;
    }
    r.epoch = epoch;
  }
  if (auto err = r.store->commit(cb)) {
    return err;
  }
  auto j = self->state.jobs->find(job);
  if (cb.deferred && j && ++r.applied % j->env.opts.state.compact_every == 0) {
    if (auto err = r.store->compact(j->env.opts.state.keep_changes)) {
      return err;
    }
  }
  return r.store->last_seq();
}

/// Entries of a service's ingress log, kept in this node's copy (the leader's is in the
/// same place under its data directory): the last sequence number the copy holds.
caf::result<uint64_t> keep_ingress(host_ptr self, const std::string& job,
                                   const std::vector<std::pair<uint64_t, std::string>>& entries) {
  auto j = self->state.jobs->find(job);
  if (!j) {
    return make_error(errc::invalid_config, "this node does not run job " + job);
  }
  auto& logs = self->state.ingress_logs;
  auto i = logs.find(job);
  if (i == logs.end()) {
    auto log = eddy::service::ingress_log::open(j->env.data_dir / job / "ingress.db",
                                                j->env.opts.state.level);
    if (!log) {
      return log.error();
    }
    i = logs.emplace(job, std::move(*log)).first;
  }
  uint64_t held = i->second.last_seq();
  for (const auto& [seq, body] : entries) {
    auto kept = i->second.keep(seq, body);
    if (!kept) {
      return kept.error();
    }
    held = *kept;
  }
  return held;
}

caf::behavior host_actor(host_ptr self, std::shared_ptr<host_registry> jobs) {
  self->state.jobs = std::move(jobs);
  self->set_down_handler([self](caf::down_msg& msg) {
    auto i = self->state.spawned_for.find(msg.source);
    if (i == self->state.spawned_for.end()) {
      return;
    }
    drop_terminated(i->second);
    if (!i->second.empty()) {
      log(log_level::warn, "host",
          "the leader of partitions running here is gone; they stop (" + to_string(msg.reason) +
            ")");
    }
    for (auto& partition : i->second) {
      self->send_exit(partition, caf::exit_reason::user_shutdown);
    }
    self->state.spawned_for.erase(i);
  });
  return {
    [self](prepare_atom, host_prepare& req) { return prepare(self, req); },
    [self](spawn_atom, host_spawn& req) { return spawn_prepared(self, req); },
    [self](replica_atom, const std::string& job, uint32_t node, uint32_t index, uint64_t epoch,
           uint64_t offset, const std::string& bytes,
           bool last) { return receive_chunk(self, job, node, index, epoch, offset, bytes, last); },
    [self](replica_atom, const std::string& job, uint32_t node, uint32_t index, uint64_t epoch,
           uint64_t last_seq, const std::vector<std::pair<uint64_t, uint64_t>>& positions) {
      return check_copy(self, job, node, index, epoch, last_seq, positions);
    },
    [self](replicate_atom, const std::string& job, uint32_t node, uint32_t index, uint64_t epoch,
           const commit_batch& cb) -> caf::result<uint64_t> {
      auto seq = apply(self, job, node, index, epoch, cb);
      if (!seq) {
        return seq.error();
      }
      return *seq;
    },
    [self](replicate_atom, const std::string& job, uint32_t node, uint32_t index, uint64_t epoch,
           const std::vector<commit_batch>& cbs) -> caf::result<uint64_t> {
      // The commits a partition made while its journal travelled to this new standby.
      uint64_t last = 0;
      for (const auto& cb : cbs) {
        auto seq = apply(self, job, node, index, epoch, cb);
        if (!seq) {
          return seq.error();
        }
        last = *seq;
      }
      return last;
    },
    [self](ingress_atom, const std::string& job,
           const std::vector<std::pair<uint64_t, std::string>>& entries) {
      return keep_ingress(self, job, entries);
    },
    [self](release_atom, const std::string& job, const std::vector<uint32_t>& rows) {
      // These partitions are about to run on this node from their journals, which are the
      // standby copies kept here: commits for the copies that are late are dropped.
      auto j = self->state.jobs->find(job);
      if (!j) {
        return;
      }
      // The sink runs on the leader, which is this node: its copy is let go too.
      const auto& g = *j->env.graph;
      for (size_t n = 0; n < g.nodes().size(); ++n) {
        if (g.node(n).kind == node_kind::keyed) {
          for (auto row : rows) {
            close_replica(self, key_of(job, static_cast<uint32_t>(n), row));
          }
        } else if (g.node(n).kind == node_kind::sink) {
          for (uint32_t i = 0; i < g.instances(n); ++i) {
            close_replica(self, key_of(job, static_cast<uint32_t>(n), i));
          }
        }
      }
    },
    [self](done_atom, const std::string& job, const std::string& error) {
      auto j = self->state.jobs->find(job);
      if (!j) {
        return;
      }
      // The copies stay on disk; they are closed so that the files are complete.
      for (auto it = self->state.replicas.begin(); it != self->state.replicas.end();) {
        it = it->first.rfind(job + "/", 0) == 0 ? self->state.replicas.erase(it) : std::next(it);
      }
      log(log_level::info, "host",
          "job " + job + (error.empty() ? " completed" : " failed: " + error) + " on its leader");
      std::lock_guard guard{j->shared->mtx};
      if (!error.empty() && !j->shared->error) {
        j->shared->error = make_error(errc::actor_failed, error);
      }
      j->shared->done = true;
      j->shared->cv.notify_all();
      // This node's job actor has nothing left to do.
      caf::anon_send_exit(j->shared->job, caf::exit_reason::user_shutdown);
    },
  };
}

} // namespace

size_t instance_slot(const job_graph& g, size_t node, uint32_t index) {
  size_t slot = 0;
  for (size_t n = 0; n < node; ++n) {
    slot += g.instances(n);
  }
  return slot + index;
}

caf::actor spawn_host(caf::actor_system& sys, std::shared_ptr<host_registry> jobs) {
  return sys.spawn(host_actor, std::move(jobs));
}

} // namespace eddy::detail
