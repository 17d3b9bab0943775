#include "eddy/cluster/assignment.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "eddy/core/error.hpp"

namespace eddy {

std::string assignment::to_json() const {
  auto rows = nlohmann::json::array();
  for (const auto& o : partitions) {
    rows.push_back(nlohmann::json::array({o.primary, o.standby}));
  }
  return nlohmann::json{{"epoch", epoch}, {"coordinator", coordinator}, {"partitions", rows}}
    .dump();
}

std::optional<assignment> assignment::from_json(std::string_view text, std::string& reason) {
  auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    reason = "not a JSON object";
    return std::nullopt;
  }
  try {
    assignment a;
    a.epoch = doc.at("epoch").get<uint64_t>();
    a.coordinator = doc.at("coordinator").get<std::string>();
    for (const auto& row : doc.at("partitions")) {
      a.partitions.push_back(
        partition_owner{row.at(0).get<std::string>(), row.at(1).get<std::string>()});
    }
    return a;
  } catch (const nlohmann::json::exception& e) {
    reason = e.what();
    return std::nullopt;
  }
}

caf::error assignment::save(const std::filesystem::path& file) const {
  std::error_code ec;
  std::filesystem::create_directories(file.parent_path(), ec);
  auto tmp = file;
  tmp += ".tmp";
  auto text = to_json();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    return make_error(errc::io_failure, "cannot write " + tmp.string());
  }
  bool ok =
    ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), file.c_str()) != 0) {
    return make_error(errc::io_failure, "cannot write " + file.string());
  }
  if (int dir = ::open(file.parent_path().c_str(), O_RDONLY); dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return {};
}

caf::expected<std::optional<assignment>> assignment::load(const std::filesystem::path& file) {
  std::ifstream in{file};
  if (!in) {
    if (!std::filesystem::exists(file)) {
      return std::optional<assignment>{};
    }
    return make_error(errc::io_failure, "cannot read " + file.string());
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::string reason;
  auto a = from_json(text.str(), reason);
  if (!a) {
    return make_error(errc::io_failure, file.string() + " is damaged: " + reason);
  }
  return std::optional<assignment>{std::move(*a)};
}

namespace {

/// The member with the fewest entries in `count` (ties: the smallest id), other than
/// `except`; empty when there is none.
std::string least(const std::map<std::string, size_t>& count, const std::string& except = {}) {
  std::string best;
  size_t best_n = SIZE_MAX;
  for (const auto& [m, n] : count) {
    if (m != except && n < best_n) {
      best = m;
      best_n = n;
    }
  }
  return best;
}

std::string most(const std::map<std::string, size_t>& count) {
  std::string best;
  size_t best_n = 0;
  for (const auto& [m, n] : count) {
    if (best.empty() || n > best_n) {
      best = m;
      best_n = n;
    }
  }
  return best;
}

/// Moves primaries of `t` from the most loaded member to the least loaded one until they
/// are within one per member (`primaries`: count per member, updated), preferably a
/// partition whose standby is the target (its copy is warm, and the two swap roles).
/// `moved(partition, from, to, warm)` hears of every move.
template <class F>
void balance_primaries(assignment& t, std::map<std::string, size_t>& primaries, F moved) {
  for (;;) {
    auto hi = most(primaries);
    auto lo = least(primaries);
    if (primaries[hi] <= primaries[lo] + 1) {
      return;
    }
    std::optional<uint32_t> pick;
    for (auto p = static_cast<uint32_t>(t.partitions.size()); p-- > 0;) {
      const auto& o = t.partitions[p];
      if (o.primary == hi && (!pick || o.standby == lo)) {
        pick = p;
        if (o.standby == lo) {
          break;
        }
      }
    }
    auto& o = t.partitions[*pick];
    bool warm = o.standby == lo;
    moved(*pick, hi, lo, warm);
    o.standby = warm ? hi : o.standby;
    o.primary = lo;
    --primaries[hi];
    ++primaries[lo];
  }
}

} // namespace

assignment next_assignment(const assignment& previous, std::vector<std::string> members,
                           uint32_t partitions, const std::string& coordinator,
                           std::vector<std::string>* reasons, bool balance) {
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  std::set<std::string> up(members.begin(), members.end());
  auto note = [reasons](uint32_t p, const std::string& what) {
    if (reasons != nullptr) {
      reasons->push_back("partition " + std::to_string(p) + ": " + what);
    }
  };
  assignment next;
  next.coordinator = coordinator;
  next.partitions.resize(partitions);
  bool same_shape = previous.partitions.size() == partitions;
  for (uint32_t p = 0; p < partitions; ++p) {
    auto o = same_shape ? previous.partitions[p] : partition_owner{};
    if (!o.primary.empty() && up.count(o.primary) == 0) {
      if (!o.standby.empty() && up.count(o.standby) > 0) {
        note(p, "primary " + o.primary + " is gone; standby " + o.standby + " takes over");
        o.primary = o.standby;
      } else {
        note(p, "primary " + o.primary + " is gone and no standby is up");
        o.primary.clear();
      }
      o.standby.clear();
    }
    if (!o.standby.empty() && (up.count(o.standby) == 0 || o.standby == o.primary)) {
      note(p, "standby " + o.standby + " is gone");
      o.standby.clear();
    }
    next.partitions[p] = o;
  }
  if (!members.empty()) {
    std::map<std::string, size_t> primaries;
    for (const auto& m : members) {
      primaries[m] = 0;
    }
    for (const auto& o : next.partitions) {
      if (!o.primary.empty()) {
        ++primaries[o.primary];
      }
    }
    for (uint32_t p = 0; p < partitions; ++p) {
      auto& o = next.partitions[p];
      if (o.primary.empty()) {
        o.primary = least(primaries);
        ++primaries[o.primary];
        if (o.standby == o.primary) {
          o.standby.clear();
        }
        note(p, "unassigned; primary " + o.primary);
      }
    }
    if (balance) {
      balance_primaries(next, primaries,
                        [&](uint32_t p, const std::string& from, const std::string& to, bool warm) {
                          note(p, "primary " + from + " -> " + to + " (balance" +
                                    (warm ? ", onto its standby)" : ")"));
                        });
    }
    if (members.size() >= 2) {
      std::map<std::string, size_t> standbys;
      for (const auto& m : members) {
        standbys[m] = 0;
      }
      for (const auto& o : next.partitions) {
        if (!o.standby.empty()) {
          ++standbys[o.standby];
        }
      }
      for (uint32_t p = 0; p < partitions; ++p) {
        auto& o = next.partitions[p];
        if (o.standby.empty()) {
          o.standby = least(standbys, o.primary);
          ++standbys[o.standby];
          note(p, "standby " + o.standby);
        }
      }
    }
  }
  bool changed = previous.epoch == 0 || !same_shape || previous.partitions != next.partitions ||
                 previous.coordinator != coordinator;
  next.epoch = changed ? previous.epoch + 1 : previous.epoch;
  return next;
}

std::vector<partition_move> rebalance_plan(const assignment& current,
                                           std::vector<std::string> members) {
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  std::vector<partition_move> moves;
  if (members.empty()) {
    return moves;
  }
  std::map<std::string, size_t> primaries;
  for (const auto& m : members) {
    primaries[m] = 0;
  }
  for (const auto& o : current.partitions) {
    if (auto i = primaries.find(o.primary); i != primaries.end()) {
      ++i->second;
    }
  }
  auto counts = primaries;
  auto t = current;
  balance_primaries(
    t, primaries, [&](uint32_t p, const std::string& from, const std::string& to, bool warm) {
      auto reason = from + " has " + std::to_string(counts[from]) + " primaries, " + to + " has " +
                    std::to_string(counts[to]) +
                    (warm ? "; " + to + " holds its standby copy" : "");
      auto same = std::find_if(moves.begin(), moves.end(),
                               [p](const partition_move& m) { return m.partition == p; });
      if (same != moves.end()) {
        same->to = to;
        same->reason += "; then " + reason;
      } else {
        moves.push_back(partition_move{p, from, to, reason});
      }
      --counts[from];
      ++counts[to];
    });
  return moves;
}

std::vector<partition_move> drain_plan(const assignment& current, std::vector<std::string> members,
                                       const std::string& leaving) {
  std::map<std::string, size_t> primaries;
  std::map<std::string, size_t> standbys;
  for (const auto& m : members) {
    if (m != leaving) {
      primaries[m] = 0;
      standbys[m] = 0;
    }
  }
  std::vector<partition_move> moves;
  if (primaries.empty()) {
    return moves;
  }
  for (const auto& o : current.partitions) {
    if (auto i = primaries.find(o.primary); i != primaries.end()) {
      ++i->second;
    }
    if (auto i = standbys.find(o.standby); i != standbys.end()) {
      ++i->second;
    }
  }
  auto why = "member " + leaving + " leaves";
  for (uint32_t p = 0; p < current.partitions.size(); ++p) {
    const auto& o = current.partitions[p];
    if (o.primary == leaving) {
      auto to = primaries.count(o.standby) > 0 ? o.standby : least(primaries);
      ++primaries[to];
      moves.push_back(partition_move{p, leaving, to, why, false});
    } else if (o.standby == leaving) {
      auto to = least(standbys, o.primary);
      if (!to.empty()) {
        ++standbys[to];
        moves.push_back(partition_move{p, leaving, to, why + " (its standby copy)", true});
      }
    }
  }
  return moves;
}

} // namespace eddy
