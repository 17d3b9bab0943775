#pragma once

// Engine-internal: the timers of one partition, one book per kind (processing time, event
// time). A keyed function registers timers through keyed_context.

#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "eddy/flow/record.hpp"
#include "eddy/state/journal_store.hpp"

namespace eddy {

/// The time of a fired timer, with its tag; `event_time` for an event-time timer (it fired
/// because the watermark passed `at`).
struct timer_fired {
  time_ms at = 0;
  std::string tag;
  bool event_time = false;
};

/// The timers of one kind (processing time, or event time: firing when the watermark
/// passes them) of one partition. In memory: all of them. Durable: only the changes since
/// the last commit; the journal holds the rest. Between commits durable timers fire from
/// both: the journal's after the last one fired, less the removed ones, and the added ones
/// (see `keyed_logic::fire`).
class timer_book {
public:
  /// 0 = processing time, 1 = event time (the journal's `timer_entry::kind`).
  explicit timer_book(int kind = 0)
    : kind_(kind) {}
  [[nodiscard]] int kind() const noexcept {
    return kind_;
  }
  void add(std::string key, time_ms at, std::string tag, bool durable);
  void remove(std::string key, time_ms at, std::string tag, bool durable);
  /// Durable: a timer read from the journal by `journal_store::due_timers` fired. The
  /// commit deletes it with every earlier one of the kind in one statement (the due timers
  /// come earliest first); registering it again keeps it.
  void fired(std::string key, time_ms at, std::string tag);
  /// Moves the pending changes into `batch`.
  void collect(commit_batch& batch);
  /// In memory only: the due timers, earliest first, removed from the book.
  std::vector<timer_entry> take_due(time_ms now, size_t limit);
  /// Durable: the timers added since the last commit that are due at `now`, earliest
  /// first, at most `limit` (they stay in the book until `fired_pending`).
  [[nodiscard]] std::vector<timer_entry> pending_due(time_ms now, size_t limit) const;
  /// Durable: a timer of `pending_due` fired; it never reaches the journal.
  void fired_pending(const timer_entry& t);
  /// Durable: the last timer fired from the journal since the last commit; the journal's
  /// timers up to it are gone once the commit is made.
  [[nodiscard]] std::optional<timer_entry> fired_through() const;
  /// Durable: a timer of the journal removed since the last commit.
  [[nodiscard]] bool removed(const timer_entry& t) const;
  /// In memory: the earliest timer; durable: the earliest added and not yet committed.
  [[nodiscard]] std::optional<time_ms> earliest() const;
  /// The timers of `key` (encoded): `committed` (durable: the journal's) with the changes
  /// since the last commit applied; in memory the book's own.
  [[nodiscard]] std::vector<timer_entry> of_key(const std::string& key,
                                                std::vector<timer_entry> committed) const;

private:
  /// A timer by (time, encoded key, tag), ordered by time.
  using timer_id = std::tuple<time_ms, std::string, std::string>;

  int kind_;
  std::set<timer_id> memory_;
  std::set<timer_id> added_;
  std::set<timer_id> removed_;
  /// The latest timer fired from the journal since the last commit.
  std::optional<timer_id> fired_through_;
};

} // namespace eddy
