#include "eddy/state/keyed_state.hpp"

#include <algorithm>

#include "eddy/core/error.hpp"

namespace eddy {

namespace detail {

void throw_not_codable(const std::type_info& type) {
  throw std::logic_error(std::string{"durable state of type "} + type.name() +
                         " cannot be stored: give it a CAF inspect() overload or "
                         "nlohmann-json to_json/from_json, or run with --state.durability none");
}

} // namespace detail

size_t state_registry::id_of(std::string_view name, const std::type_info& cell_type) {
  for (size_t id = 0; id < entries_.size(); ++id) {
    if (entries_[id].name == name) {
      if (*entries_[id].type != cell_type) {
        throw std::logic_error("state '" + std::string{name} +
                               "' is used with two different state types");
      }
      return id;
    }
  }
  entries_.push_back(entry{std::string{name}, &cell_type});
  return entries_.size() - 1;
}

bool key_slot::empty() const noexcept {
  return std::all_of(cells.begin(), cells.end(),
                     [](const auto& cell) { return !cell || cell->empty(); });
}

std::string state_schema::bring_up_to_date(stored_state row, std::string_view name,
                                           std::string_view key) const {
  auto where = "state '" + std::string{name} + "' of key '" + std::string{key} + "'";
  if (row.version > version) {
    throw state_error(errc::state_mismatch,
                      where + " was written by state version " + std::to_string(row.version) +
                        ", newer than this job's version " + std::to_string(version) +
                        "; run the newer job or another --data-dir");
  }
  while (row.version < version) {
    auto i = upgrades.find(row.version);
    if (i == upgrades.end()) {
      throw state_error(errc::state_mismatch,
                        where + " has state version " + std::to_string(row.version) +
                          " and this job's version is " + std::to_string(version) +
                          ", but no upgrade from version " + std::to_string(row.version) +
                          " is registered (keyed_stream::upgrade)");
    }
    row.value = i->second(name, row.value);
    ++row.version;
  }
  return std::move(row.value);
}

void timer_book::add(std::string key, time_ms at, std::string tag, bool durable) {
  timer_id id{at, std::move(key), std::move(tag)};
  if (durable) {
    removed_.erase(id);
    added_.insert(std::move(id));
  } else {
    memory_.insert(std::move(id));
  }
}

void timer_book::remove(std::string key, time_ms at, std::string tag, bool durable) {
  timer_id id{at, std::move(key), std::move(tag)};
  if (durable) {
    added_.erase(id);
    removed_.insert(std::move(id));
  } else {
    memory_.erase(id);
  }
}

void timer_book::collect(commit_batch& batch) {
  auto move_out = [](std::set<timer_id>& from, std::vector<timer_entry>& to) {
    while (!from.empty()) {
      auto node = from.extract(from.begin());
      auto& [at, key, tag] = node.value();
      to.push_back(timer_entry{0, at, std::move(key), std::move(tag)});
    }
  };
  move_out(added_, batch.timers_added);
  move_out(removed_, batch.timers_removed);
}

std::vector<timer_entry> timer_book::take_due(time_ms now, size_t limit) {
  std::vector<timer_entry> result;
  while (!memory_.empty() && result.size() < limit && std::get<0>(*memory_.begin()) <= now) {
    auto node = memory_.extract(memory_.begin());
    auto& [at, key, tag] = node.value();
    result.push_back(timer_entry{0, at, std::move(key), std::move(tag)});
  }
  return result;
}

std::optional<time_ms> timer_book::earliest() const {
  std::optional<time_ms> result;
  for (const auto* timers : {&memory_, &added_}) {
    if (!timers->empty() && (!result || std::get<0>(*timers->begin()) < *result)) {
      result = std::get<0>(*timers->begin());
    }
  }
  return result;
}

} // namespace eddy
