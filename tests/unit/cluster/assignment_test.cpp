#include "eddy/cluster/assignment.hpp"

#include <algorithm>
#include <fstream>
#include <map>

#include <doctest/doctest.h>

#include "support/temp_dir.hpp"

using namespace eddy;

namespace {

std::map<std::string, size_t> primaries_of(const assignment& a) {
  std::map<std::string, size_t> n;
  for (const auto& o : a.partitions) {
    ++n[o.primary];
  }
  return n;
}

/// Every partition has a primary among `members`, a standby on another member of them (with
/// two members or more), and the primaries differ by at most one per member.
void check_sound(const assignment& a, const std::vector<std::string>& members) {
  for (size_t p = 0; p < a.partitions.size(); ++p) {
    CAPTURE(p);
    const auto& o = a.partitions[p];
    CHECK(std::count(members.begin(), members.end(), o.primary) == 1);
    if (members.size() >= 2) {
      CHECK(std::count(members.begin(), members.end(), o.standby) == 1);
      CHECK(o.standby != o.primary);
    } else {
      CHECK(o.standby.empty());
    }
  }
  auto n = primaries_of(a);
  size_t lo = SIZE_MAX;
  size_t hi = 0;
  for (const auto& m : members) {
    lo = std::min(lo, n[m]);
    hi = std::max(hi, n[m]);
  }
  CHECK(hi - lo <= 1);
}

size_t moved_primaries(const assignment& a, const assignment& b) {
  size_t moved = 0;
  for (size_t p = 0; p < a.partitions.size(); ++p) {
    moved += a.partitions[p].primary != b.partitions[p].primary ? 1 : 0;
  }
  return moved;
}

} // namespace

TEST_CASE("the first table spreads primaries and standbys over the members") {
  std::vector<std::string> reasons;
  auto a = next_assignment({}, {"n3", "n1", "n2"}, 16, "n1", &reasons);
  CHECK(a.epoch == 1);
  CHECK(a.coordinator == "n1");
  REQUIRE(a.partitions.size() == 16);
  check_sound(a, {"n1", "n2", "n3"});
  CHECK(reasons.size() == 32); // a primary and a standby per partition
  // One member: primaries only.
  auto solo = next_assignment({}, {"n1"}, 4, "n1");
  check_sound(solo, {"n1"});
}

TEST_CASE("the same members give the same table and the same epoch") {
  auto a = next_assignment({}, {"n1", "n2", "n3"}, 16, "n1");
  std::vector<std::string> reasons;
  auto b = next_assignment(a, {"n2", "n3", "n1"}, 16, "n1", &reasons);
  CHECK(b.partitions == a.partitions);
  CHECK(b.epoch == a.epoch);
  CHECK(reasons.empty());
}

TEST_CASE("a member that is gone: its partitions fail over to their standbys") {
  auto a = next_assignment({}, {"n1", "n2", "n3"}, 16, "n1");
  std::vector<std::string> reasons;
  auto b = next_assignment(a, {"n2", "n3"}, 16, "n2", &reasons);
  CHECK(b.epoch == a.epoch + 1);
  CHECK(b.coordinator == "n2");
  check_sound(b, {"n2", "n3"});
  for (size_t p = 0; p < 16; ++p) {
    CAPTURE(p);
    const auto& before = a.partitions[p];
    if (before.primary == "n1") {
      // Failover: the standby holds the state, so it takes over (balancing may move it on
      // only if the survivors were unbalanced, which 16 over 3 then 2 members are not).
      CHECK(b.partitions[p].primary == before.standby);
    } else {
      CHECK(b.partitions[p].primary == before.primary);
    }
  }
  bool logged = std::any_of(reasons.begin(), reasons.end(), [](const std::string& r) {
    return r.find("primary n1 is gone; standby") != std::string::npos;
  });
  CHECK(logged);
}

TEST_CASE("a member that joins gets its share, moving no more than that") {
  auto a = next_assignment({}, {"n1", "n2", "n3"}, 16, "n1");
  auto b = next_assignment(a, {"n1", "n2", "n3", "n4"}, 16, "n1");
  check_sound(b, {"n1", "n2", "n3", "n4"});
  CHECK(primaries_of(b)["n4"] == 4);
  CHECK(moved_primaries(a, b) == 4);
  CHECK(b.epoch == a.epoch + 1);
}

TEST_CASE("without balancing a joining member gets no primary; the rebalance plan moves them") {
  auto a = next_assignment({}, {"n1", "n2", "n3"}, 16, "n1");
  auto b = next_assignment(a, {"n1", "n2", "n3", "n4"}, 16, "n1", nullptr, false);
  CHECK(moved_primaries(a, b) == 0);
  CHECK(primaries_of(b)["n4"] == 0);
  auto moves = rebalance_plan(b, {"n1", "n2", "n3", "n4"});
  REQUIRE(moves.size() == 4);
  auto c = b;
  for (const auto& m : moves) {
    CAPTURE(m.partition);
    CHECK(m.to == "n4");
    CHECK(m.from == b.partitions[m.partition].primary);
    CHECK(m.reason.find("primaries") != std::string::npos);
    c.partitions[m.partition].primary = m.to;
  }
  auto n = primaries_of(c);
  for (const auto& id : {"n1", "n2", "n3", "n4"}) {
    CHECK(n[id] == 4);
  }
  CHECK(rebalance_plan(c, {"n1", "n2", "n3", "n4"}).empty());
}

TEST_CASE("without balancing a lost primary still fails over to its standby") {
  auto a = next_assignment({}, {"n1", "n2", "n3"}, 6, "n1");
  auto b = next_assignment(a, {"n1", "n2"}, 6, "n1", nullptr, false);
  for (size_t p = 0; p < 6; ++p) {
    CAPTURE(p);
    const auto& before = a.partitions[p];
    const auto& after = b.partitions[p];
    CHECK(after.primary == (before.primary == "n3" ? before.standby : before.primary));
    CHECK(!after.standby.empty());
    CHECK(after.standby != after.primary);
  }
  // A rebalance plan prefers a partition whose standby copy is on the target.
  auto moves = rebalance_plan(b, {"n1", "n2"});
  for (const auto& m : moves) {
    CHECK(b.partitions[m.partition].primary == m.from);
  }
}

TEST_CASE("a drain plan empties the leaving member, primaries onto their standbys first") {
  auto a = next_assignment({}, {"n1", "n2", "n3"}, 6, "n1");
  auto moves = drain_plan(a, {"n1", "n2", "n3"}, "n2");
  auto b = a;
  for (const auto& m : moves) {
    CAPTURE(m.partition);
    auto& o = b.partitions[m.partition];
    CHECK(m.from == "n2");
    CHECK(m.to != "n2");
    CHECK(m.reason.find("member n2 leaves") == 0);
    if (m.standby_only) {
      CHECK(o.standby == "n2");
      CHECK(m.to != o.primary);
      o.standby = m.to;
    } else {
      CHECK(o.primary == "n2");
      // Its standby copy is warm: it takes over.
      CHECK(m.to == o.standby);
      o.primary = m.to;
      o.standby.clear();
    }
  }
  for (const auto& o : b.partitions) {
    CHECK(o.primary != "n2");
    CHECK(o.standby != "n2");
  }
  CHECK(drain_plan(a, {"n2"}, "n2").empty());
  CHECK(drain_plan(b, {"n1", "n2", "n3"}, "n2").empty());
}

TEST_CASE("with every member gone no partition has an owner; they come back assigned") {
  auto a = next_assignment({}, {"n1", "n2"}, 8, "n1");
  auto none = next_assignment(a, {}, 8, "n1");
  for (const auto& o : none.partitions) {
    CHECK(o.primary.empty());
    CHECK(o.standby.empty());
  }
  auto again = next_assignment(none, {"n2"}, 8, "n2");
  check_sound(again, {"n2"});
}

TEST_CASE("a table survives a save and a load; a damaged file is an error") {
  eddy::test::temp_dir dir;
  auto a = next_assignment({}, {"n1", "n2", "n3"}, 16, "n1");
  auto file = dir.path() / "cluster" / "assignment.json";
  auto missing = assignment::load(file);
  REQUIRE(missing);
  CHECK(!missing->has_value());
  REQUIRE(!a.save(file));
  auto back = assignment::load(file);
  REQUIRE(back);
  REQUIRE(back->has_value());
  CHECK((*back)->epoch == a.epoch);
  CHECK((*back)->coordinator == "n1");
  CHECK((*back)->partitions == a.partitions);
  std::ofstream{file} << "{\"epoch\": \"x\"";
  auto damaged = assignment::load(file);
  CHECK(!damaged);
}
