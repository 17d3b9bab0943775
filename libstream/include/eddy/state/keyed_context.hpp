#pragma once

// What a keyed function sees of the current record's key (`ctx` in `process`): its state
// cells (cells.hpp) and its timers.

#include <stdexcept>
#include <string>
#include <string_view>
#include <typeinfo>

#include "eddy/flow/record.hpp"
#include "eddy/state/cells.hpp"
#include "eddy/state/keyed_store.hpp"
#include "eddy/state/timer_book.hpp"

namespace eddy {

/// What a keyed function sees of the current record's key: its id, its state and its
/// timers. Lives on the stack of one call.
template <class K>
class keyed_context {
public:
  keyed_context(const K& key, keyed_store<K>& store, timer_book& timers, time_ms time,
                timer_book* event_timers = nullptr, time_ms watermark = no_time)
    : key_(&key)
    , store_(&store)
    , slot_(&store.slot(key))
    , timers_(&timers)
    , event_timers_(event_timers)
    , time_(time)
    , watermark_(watermark) {}

  [[nodiscard]] const K& key() const noexcept {
    return *key_;
  }
  /// Event time of the record being processed (no_time if it has none).
  [[nodiscard]] time_ms time() const noexcept {
    return time_;
  }
  /// The partition's current watermark: no event older than it is expected any more
  /// (no_time before the first one).
  [[nodiscard]] time_ms watermark() const noexcept {
    return watermark_;
  }

  template <class T>
  value_state<T>& value(std::string_view name) {
    return cell<value_state<T>>(name);
  }

  template <class MK, class MV>
  map_state<MK, MV>& map(std::string_view name) {
    return cell<map_state<MK, MV>>(name);
  }

  template <class T>
  list_state<T>& list(std::string_view name) {
    return cell<list_state<T>>(name);
  }

  /// Drops every state of this key once the function returns.
  void clear() noexcept {
    cleared_ = true;
  }
  [[nodiscard]] bool cleared() const noexcept {
    return cleared_;
  }

  /// Calls the partition's timer function for this key at processing time `at_ms` (wall
  /// clock, ms since the epoch), once; again after a restart if it fell due meanwhile.
  /// A timer is identified by (key, time, tag): registering it twice keeps one.
  void register_timer(time_ms at_ms, std::string tag = {}) {
    timers_->add(encode_key(*key_), at_ms, std::move(tag), store_->durable());
  }
  void delete_timer(time_ms at_ms, std::string tag = {}) {
    timers_->remove(encode_key(*key_), at_ms, std::move(tag), store_->durable());
  }
  /// Calls the timer function for this key once the partition's watermark reaches `at_ms`
  /// (event time), once, in timestamp order with the key's other event-time timers; kept
  /// in the journal like the state. (key, time, tag) identifies it.
  void register_event_timer(time_ms at_ms, std::string tag = {}) {
    event_book().add(encode_key(*key_), at_ms, std::move(tag), store_->durable());
  }
  void delete_event_timer(time_ms at_ms, std::string tag = {}) {
    event_book().remove(encode_key(*key_), at_ms, std::move(tag), store_->durable());
  }

  /// @private Used by the runtime once the function returned.
  key_slot& slot() noexcept {
    return *slot_;
  }

private:
  template <class Cell>
  Cell& cell(std::string_view name) {
    auto id = store_->registry().id_of(name, typeid(Cell), &make_cell<Cell>);
    return store_->template cell<Cell>(*key_, *slot_, id);
  }

  timer_book& event_book() {
    if (event_timers_ == nullptr) {
      throw std::logic_error("event-time timers need a keyed operator with event time");
    }
    return *event_timers_;
  }

  const K* key_;
  keyed_store<K>* store_;
  key_slot* slot_;
  timer_book* timers_;
  timer_book* event_timers_;
  time_ms time_;
  time_ms watermark_;
  bool cleared_ = false;
};

} // namespace eddy
