#include "eddy/state/keyed_state.hpp"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <set>

#include <cxxabi.h>

#include "eddy/core/error.hpp"

namespace eddy {

namespace detail {

std::string type_name(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> raw{
    abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free};
  std::string result = status == 0 && raw ? raw.get() : type.name();
  // Spell the common library types as people write them.
  auto replace_all = [&result](std::string_view from, std::string_view to) {
    for (auto i = result.find(from); i != std::string::npos; i = result.find(from, i + to.size())) {
      result.replace(i, from.size(), to);
    }
  };
  replace_all("std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >",
              "std::string");
  replace_all("std::__cxx11::", "std::");
  replace_all("eddy::", "");
  replace_all(" >", ">");
  return result;
}

void throw_no_json_codec(const std::type_info& type) {
  throw std::invalid_argument("state type " + type_name(type) +
                              " has no JSON codec (give it to_json/from_json, e.g. with "
                              "NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE): it can be shown but not set");
}

void throw_wrong_json(const std::string& expected, const nlohmann::json& got,
                      const std::string& reason) {
  constexpr size_t shown_max = 80;
  auto text = got.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > shown_max) {
    text = text.substr(0, shown_max) + "...";
  }
  auto what = "expected " + expected + ", got " + got.type_name() + " " + text;
  throw std::invalid_argument(reason.empty() ? what : what + " (" + reason + ")");
}

void throw_not_codable(const std::type_info& type) {
  throw std::logic_error(std::string{"durable state of type "} + type.name() +
                         " cannot be stored: give it a CAF inspect() overload or "
                         "nlohmann-json to_json/from_json, or run with --state.durability none");
}

} // namespace detail

void state_catalog::add(std::string_view name, const std::type_info& type, cell_factory make) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = entries_.find(name);
  if (i == entries_.end()) {
    entries_.emplace(std::string{name}, entry{&type, detail::type_name(type), make});
  } else if (*i->second.type != type) {
    throw std::logic_error("state '" + std::string{name} +
                           "' is used with two different state types: " + i->second.type_name +
                           " and " + detail::type_name(type));
  }
}

std::optional<state_catalog::entry> state_catalog::find(std::string_view name) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = entries_.find(name);
  if (i == entries_.end()) {
    return std::nullopt;
  }
  return i->second;
}

std::vector<std::string> state_catalog::names() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<std::string> result;
  for (const auto& [name, e] : entries_) {
    result.push_back(name);
  }
  return result;
}

nlohmann::json state_catalog::render(std::string_view name, std::string_view bytes) const {
  auto e = find(name);
  if (!e) {
    return undecoded_state(bytes.size(),
                           "state '" + std::string{name} +
                             "' has not been used since the job started; declare it with "
                             "keyed_stream::declare_state<...>");
  }
  try {
    auto cell = e->make();
    cell->decode(bytes);
    return cell->to_json();
  } catch (const std::exception& ex) {
    return undecoded_state(bytes.size(), "cannot decode it as " + e->type_name + ": " + ex.what());
  }
}

nlohmann::json undecoded_state(size_t size, std::string why) {
  return nlohmann::json{{"undecoded_bytes", size}, {"why", std::move(why)}};
}

size_t state_registry::id_of(std::string_view name, const std::type_info& cell_type,
                             cell_factory make) {
  for (size_t id = 0; id < entries_.size(); ++id) {
    if (entries_[id].name == name) {
      if (*entries_[id].type != cell_type) {
        throw std::logic_error("state '" + std::string{name} +
                               "' is used with two different state types");
      }
      return id;
    }
  }
  // First use in this partition: the only time the shared catalog (and its lock) is visited.
  if (catalog_ != nullptr && make != nullptr) {
    catalog_->add(name, cell_type, make);
  }
  entries_.push_back(entry{std::string{name}, &cell_type});
  return entries_.size() - 1;
}

namespace {

/// A change without a name and a value clears every state of its key (see `state_change`).
bool clears_key(const journal_entry& e) {
  return e.name.empty() && !e.value;
}

/// The oldest sequence number of a key that `state_as_of` can rebuild once compaction may
/// have trimmed its entries (`sorted`, oldest first; `oldest_of`: per state, its oldest).
uint64_t oldest_rebuildable(const std::vector<const journal_entry*>& sorted,
                            const std::map<std::string, uint64_t, std::less<>>& oldest_of,
                            uint64_t last_seq) {
  if (sorted.empty()) {
    // Nothing kept: only the current state, whichever change made it.
    return last_seq;
  }
  // Trimming drops a key's oldest entries, so a state is known from its oldest kept entry
  // on, and every state from the oldest kept clear of the whole key on. States without kept
  // entries keep their rows, written before the oldest kept entry; states set and cleared
  // before it are invisible, hence never before the oldest kept entry.
  uint64_t covered = 0;
  uint64_t oldest_clear = std::numeric_limits<uint64_t>::max();
  for (const auto& [name, first] : oldest_of) {
    covered = std::max(covered, first);
  }
  for (const auto* e : sorted) {
    if (clears_key(*e)) {
      oldest_clear = e->seq;
      break;
    }
  }
  return std::max(sorted.front()->seq, std::min(covered, oldest_clear));
}

} // namespace

std::map<std::string, stored_state>
state_as_of(std::string_view key, const std::vector<journal_entry>& entries,
            std::vector<std::pair<std::string, stored_state>> rows, uint64_t seq,
            size_t keep_per_key, uint64_t last_seq, uint32_t entry_version) {
  std::vector<const journal_entry*> sorted;
  std::set<uint64_t> kept;
  for (const auto& e : entries) {
    sorted.push_back(&e);
    kept.insert(e.seq);
  }
  std::sort(sorted.begin(), sorted.end(), [](auto* x, auto* y) { return x->seq < y->seq; });
  std::map<std::string, uint64_t, std::less<>> oldest_of;
  for (const auto* e : sorted) {
    if (!clears_key(*e)) {
      oldest_of.try_emplace(e->name, e->seq);
    }
  }
  // Fewer folded entries than a compaction keeps (entries still in the log were never
  // trimmed), and every row's change among them: nothing of this key was trimmed, so every
  // sequence number can be rebuilt.
  auto folded =
    std::count_if(entries.begin(), entries.end(), [](const journal_entry& e) { return !e.logged; });
  bool complete = static_cast<size_t>(folded) < keep_per_key &&
                  std::all_of(rows.begin(), rows.end(),
                              [&kept](const auto& row) { return kept.count(row.second.seq) > 0; });
  if (!complete) {
    auto oldest = oldest_rebuildable(sorted, oldest_of, last_seq);
    if (seq < oldest) {
      throw std::out_of_range(
        "key '" + std::string{key} + "': the journal no longer holds what seq " +
        std::to_string(seq) + " needs (compaction keeps the newest " +
        std::to_string(keep_per_key) + " changes of each key, over all its states); the oldest " +
        "seq it can rebuild is " + std::to_string(oldest) +
        " (raise --state.keep-changes to keep more)");
    }
  }
  std::map<std::string, stored_state> result;
  for (auto& [name, row] : rows) {
    if (oldest_of.count(name) == 0) {
      result.emplace(name, std::move(row));
    }
  }
  for (const auto* e : sorted) {
    if (e->seq > seq) {
      break;
    }
    if (clears_key(*e)) {
      result.clear();
    } else if (e->value) {
      result.insert_or_assign(e->name, stored_state{*e->value, entry_version, e->seq});
    } else {
      result.erase(e->name);
    }
  }
  return result;
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

void timer_book::fired(std::string key, time_ms at, std::string tag) {
  timer_id id{at, std::move(key), std::move(tag)};
  added_.erase(id);
  if (!fired_through_ || *fired_through_ < id) {
    fired_through_ = std::move(id);
  }
}

void timer_book::collect(commit_batch& batch) {
  auto move_out = [kind = kind_](std::set<timer_id>& from, std::vector<timer_entry>& to) {
    while (!from.empty()) {
      auto node = from.extract(from.begin());
      auto& [at, key, tag] = node.value();
      to.push_back(timer_entry{kind, at, std::move(key), std::move(tag)});
    }
  };
  move_out(added_, batch.timers_added);
  move_out(removed_, batch.timers_removed);
  if (fired_through_) {
    auto& [at, key, tag] = *fired_through_;
    batch.timers_fired.push_back(timer_entry{kind_, at, std::move(key), std::move(tag)});
    fired_through_.reset();
  }
}

std::vector<timer_entry> timer_book::take_due(time_ms now, size_t limit) {
  std::vector<timer_entry> result;
  while (!memory_.empty() && result.size() < limit && std::get<0>(*memory_.begin()) <= now) {
    auto node = memory_.extract(memory_.begin());
    auto& [at, key, tag] = node.value();
    result.push_back(timer_entry{kind_, at, std::move(key), std::move(tag)});
  }
  return result;
}

std::vector<timer_entry> timer_book::pending_due(time_ms now, size_t limit) const {
  std::vector<timer_entry> result;
  for (auto i = added_.begin(); i != added_.end() && result.size() < limit; ++i) {
    const auto& [at, key, tag] = *i;
    if (at > now) {
      break;
    }
    result.push_back(timer_entry{kind_, at, key, tag});
  }
  return result;
}

void timer_book::fired_pending(const timer_entry& t) {
  added_.erase(timer_id{t.at_ms, t.key, t.tag});
}

std::optional<timer_entry> timer_book::fired_through() const {
  if (!fired_through_) {
    return std::nullopt;
  }
  const auto& [at, key, tag] = *fired_through_;
  return timer_entry{kind_, at, key, tag};
}

bool timer_book::removed(const timer_entry& t) const {
  return removed_.count(timer_id{t.at_ms, t.key, t.tag}) > 0;
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

std::vector<timer_entry> timer_book::of_key(const std::string& key,
                                            std::vector<timer_entry> committed) const {
  std::vector<timer_entry> result;
  for (auto& t : committed) {
    timer_id id{t.at_ms, t.key, t.tag};
    bool fired = fired_through_ && !(*fired_through_ < id);
    if (t.kind == kind_ && !fired && removed_.count(id) == 0) {
      result.push_back(std::move(t));
    }
  }
  for (const auto* timers : {&memory_, &added_}) {
    for (const auto& [at, k, tag] : *timers) {
      if (k == key) {
        result.push_back(timer_entry{kind_, at, k, tag});
      }
    }
  }
  return result;
}

} // namespace eddy
