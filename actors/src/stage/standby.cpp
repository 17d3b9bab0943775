// Standby copies of journals (see standby.hpp).

#include "stage/standby.hpp"

#include <fstream>

#include "eddy/actors/messages.hpp"

namespace eddy::detail {

caf::error ship_journal(caf::actor_system& sys, const stage_init& init, journal_store& journal,
                        const std::filesystem::path& file) {
  if (auto positions = journal.positions()) {
    bool current = false;
    caf::scoped_actor asker{sys};
    const auto& ctx = init.ctx;
    asker
      ->request(init.standby, std::chrono::milliseconds(init.standby_timeout_ms),
                replica_atom::value, ctx.job, static_cast<uint32_t>(init.node), ctx.index,
                init.owner_epoch, journal.last_seq(),
                std::vector<std::pair<uint64_t, uint64_t>>(positions->begin(), positions->end()))
      .receive([&current](bool yes) { current = yes; }, [](caf::error&) {});
    if (current) {
      return {};
    }
  }
  std::ifstream in{file, std::ios::binary};
  if (!in) {
    return make_error(errc::io_failure, init.who() + ": cannot read " + file.string());
  }
  std::string bytes(copy_chunk_bytes, '\0');
  uint64_t offset = 0;
  bool last = false;
  while (!last) {
    in.read(bytes.data(), static_cast<std::streamsize>(copy_chunk_bytes));
    auto n = static_cast<size_t>(in.gcount());
    last = n < copy_chunk_bytes;
    auto piece = bytes.substr(0, n);
    if (auto err = to_standby(sys, init, replica_atom::value, offset, piece, last)) {
      return err;
    }
    offset += n;
  }
  return {};
}

caf::error claim_journal(const stage_init& init, journal_store& journal) {
  auto owner = journal.owner_epoch();
  if (!owner) {
    return owner.error();
  }
  if (*owner > init.owner_epoch) {
    return make_error(errc::fenced, init.who() + ": its journal belongs to assignment epoch " +
                                      std::to_string(*owner) + ", this incarnation to epoch " +
                                      std::to_string(init.owner_epoch));
  }
  if (*owner < init.owner_epoch) {
    return journal.set_owner_epoch(init.owner_epoch);
  }
  return {};
}

} // namespace eddy::detail
