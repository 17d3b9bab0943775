// A copy of a partition's journal on its way to a new standby while the partition keeps
// running (the warm copy of a move, see "Cluster" in docs/design.md).

#include <chrono>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "stage/partition.hpp"

namespace eddy::detail::partition_ops {

void end_copy(self_ptr self) {
  auto& st = self->state;
  std::error_code ec;
  std::filesystem::remove(st.copy->file, ec);
  st.copy.reset();
}

/// The standby copy could not be made: the partition runs on without a standby.
void copy_failed(self_ptr self, const caf::error& err) {
  auto& st = self->state;
  auto c = st.copy;
  end_copy(self);
  auto what = who(st) + ": the copy to the new standby failed (" + to_string(err) + ")";
  log(log_level::warn, "partition", what);
  c->promise.deliver(make_error(errc::io_failure, what));
}

/// The snapshot is in place on the new standby: the commits made meanwhile follow, and from
/// now on every commit goes there (`to_standby`).
void copy_done(self_ptr self) {
  auto& st = self->state;
  auto c = st.copy;
  end_copy(self);
  st.init->standby = c->host;
  if (!c->pending.empty() && !to_standby(self, replicate_atom::value, c->pending)) {
    c->promise.deliver(make_error(errc::io_failure, who(st) + ": its new standby failed"));
    return;
  }
  log(log_level::info, "partition",
      who(st) + ": standby copy current (" + std::to_string(c->size) + " bytes, then " +
        std::to_string(c->pending.size()) + " commits)");
  c->promise.deliver(nlohmann::json{{"bytes", c->size}, {"entries", c->pending.size()}}.dump());
}

/// Sends the next chunk of the snapshot; the partition goes on with its input meanwhile.
void send_chunk(self_ptr self) {
  auto& st = self->state;
  auto c = st.copy;
  std::string bytes(copy_chunk_bytes, '\0');
  c->in.read(bytes.data(), static_cast<std::streamsize>(copy_chunk_bytes));
  bytes.resize(static_cast<size_t>(c->in.gcount()));
  auto offset = c->sent;
  bool last = offset + bytes.size() >= c->size;
  auto n = bytes.size();
  const auto& ctx = st.init->ctx;
  self
    ->request(c->host, limits::copy_chunk_timeout, replica_atom::value, ctx.job,
              static_cast<uint32_t>(st.init->node), ctx.index, st.init->owner_epoch, offset,
              std::move(bytes), last)
    .then(
      [self, c, n, last](uint64_t) {
        auto& now = self->state;
        if (now.copy != c) {
          return;
        }
        c->sent += n;
        caf::anon_send(c->leader, progress_atom::value, who(now), c->sent, c->size,
                       static_cast<uint64_t>(c->pending.size()));
        if (last) {
          copy_done(self);
        } else {
          send_chunk(self);
        }
      },
      [self, c](caf::error& err) {
        if (self->state.copy == c) {
          copy_failed(self, err);
        }
      });
}

/// A `standby` request: makes `host` the standby while the partition keeps running (the
/// warm copy of a move). The snapshot is a compacted copy of the journal as of its last
/// commit; the commits made while it travels are kept and sent after it.
caf::result<std::string> start_copy(self_ptr self, caf::actor host) {
  auto& st = self->state;
  if (!st.journal) {
    return make_error(errc::invalid_config,
                      who(st) + " keeps no journal (durable state is off): nothing to copy");
  }
  if (st.copy) {
    return make_error(errc::invalid_config, who(st) + ": a copy to a standby is under way");
  }
  if (!host) {
    return make_error(errc::invalid_config, who(st) + ": no host to copy to");
  }
  if (!ensure_recovered(self)) {
    return make_error(errc::io_failure, who(st) + " cannot open its journal");
  }
  auto c = std::make_shared<standby_copy>();
  c->file = st.journal->file().string() + ".copy";
  if (auto err = st.journal->copy_to(c->file)) {
    return err;
  }
  std::error_code ec;
  c->size = std::filesystem::file_size(c->file, ec);
  c->in.open(c->file, std::ios::binary);
  if (ec || !c->in) {
    return make_error(errc::io_failure, "cannot read the journal copy " + c->file.string());
  }
  c->host = std::move(host);
  c->leader = caf::actor_cast<caf::actor>(self->current_sender());
  c->promise = self->make_response_promise<std::string>();
  // The old standby, if any, is not kept current any more: the new one replaces it.
  st.init->standby = caf::actor{};
  st.copy = c;
  log(log_level::info, "partition",
      who(st) + ": copying " + std::to_string(c->size) + " bytes of journal to a new standby");
  send_chunk(self);
  return c->promise;
}

} // namespace eddy::detail::partition_ops
