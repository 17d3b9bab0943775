#pragma once

#include <cstdint>
#include <iterator>
#include <limits>
#include <memory>
#include <typeinfo>
#include <vector>

namespace eddy {

/// Event time in milliseconds since the epoch; `no_time` when a record carries none.
using time_ms = int64_t;
inline constexpr time_ms no_time = std::numeric_limits<time_ms>::min();

/// Where a record comes from, for exactly-once replay: the replayable producer that made
/// it (a source instance, or a key partition re-emitting from its outbox) in the high 16
/// bits, and its position in that producer's output (a line number, a generator sequence,
/// an outbox position; >= 1) in the low 48 bits. 0: from a producer that cannot replay
/// (stdin); such records are never taken for duplicates.
using origin_t = uint64_t;
inline constexpr int origin_producer_shift = 48;
inline constexpr origin_t origin_position_mask = (origin_t{1} << origin_producer_shift) - 1;

constexpr origin_t make_origin(uint32_t producer, uint64_t position) noexcept {
  return (origin_t{producer} << origin_producer_shift) | (position & origin_position_mask);
}
constexpr uint32_t origin_producer(origin_t o) noexcept {
  return static_cast<uint32_t>(o >> origin_producer_shift);
}
constexpr uint64_t origin_position(origin_t o) noexcept {
  return o & origin_position_mask;
}

/// One event on an edge: its value, its event time and its origin. Operators copy the
/// origin of the input record to the records they make from it.
template <class T>
struct record {
  T value;
  time_ms time = no_time;
  origin_t origin = 0;
};

/// A type-erased, contiguous vector of records of one type. The runtime moves these
/// between actors without knowing the type; typed code casts to `record_buffer_of<T>`.
/// Owned by exactly one actor at a time (batches hand it over); not thread-safe.
class record_buffer {
public:
  virtual ~record_buffer() = default;

  [[nodiscard]] virtual size_t size() const noexcept = 0;
  [[nodiscard]] bool empty() const noexcept {
    return size() == 0;
  }
  virtual void clear() noexcept = 0;
  /// A new empty buffer of the same record type with room for `capacity` records.
  [[nodiscard]] virtual std::unique_ptr<record_buffer> make_empty(size_t capacity) const = 0;
  [[nodiscard]] virtual const std::type_info& value_type() const noexcept = 0;
  /// Moves every record to the end of `dst` (same record type) and leaves this empty.
  virtual void move_into(record_buffer& dst) = 0;
  /// Removes the records for which `keep(origin)` is false, keeping the order of the rest.
  /// Returns how many were removed.
  template <class Keep>
  size_t remove_unless(Keep&& keep);
  /// The origin of record `i`.
  [[nodiscard]] virtual origin_t origin(size_t i) const noexcept = 0;
  /// Gives the records the origins (producer, position + 1), (producer, position + 2), ...
  /// and advances `position` past them: a partition re-emitting from its outbox.
  virtual void stamp_origins(uint32_t producer, uint64_t& position) noexcept = 0;

protected:
  /// Removes the records whose `keep` flag is 0; `keep` has one flag per record.
  virtual void remove_flagged(const std::vector<uint8_t>& keep) = 0;
};

template <class T>
class record_buffer_of final : public record_buffer {
public:
  std::vector<record<T>> records;

  size_t size() const noexcept override {
    return records.size();
  }
  void clear() noexcept override {
    records.clear();
  }
  std::unique_ptr<record_buffer> make_empty(size_t capacity) const override {
    auto result = std::make_unique<record_buffer_of<T>>();
    result->records.reserve(capacity);
    return result;
  }
  const std::type_info& value_type() const noexcept override {
    return typeid(T);
  }
  void move_into(record_buffer& dst) override {
    auto& to = static_cast<record_buffer_of<T>&>(dst).records;
    if (to.empty()) {
      to.swap(records);
    } else {
      to.insert(to.end(), std::make_move_iterator(records.begin()),
                std::make_move_iterator(records.end()));
    }
    records.clear();
  }
  origin_t origin(size_t i) const noexcept override {
    return records[i].origin;
  }
  void stamp_origins(uint32_t producer, uint64_t& position) noexcept override {
    for (auto& r : records) {
      r.origin = make_origin(producer, ++position);
    }
  }

protected:
  void remove_flagged(const std::vector<uint8_t>& keep) override {
    size_t n = 0;
    for (size_t i = 0; i < records.size(); ++i) {
      if (keep[i] != 0) {
        if (n != i) {
          records[n] = std::move(records[i]);
        }
        ++n;
      }
    }
    records.resize(n);
  }
};

template <class Keep>
size_t record_buffer::remove_unless(Keep&& keep) {
  std::vector<uint8_t> flags(size());
  size_t removed = 0;
  for (size_t i = 0; i < flags.size(); ++i) {
    flags[i] = keep(origin(i)) ? 1 : 0;
    removed += flags[i] == 0 ? 1 : 0;
  }
  if (removed > 0) {
    remove_flagged(flags);
  }
  return removed;
}

/// Casts an erased buffer to its typed form; the job graph guarantees the type.
template <class T>
record_buffer_of<T>& typed(record_buffer& buf) noexcept {
  return static_cast<record_buffer_of<T>&>(buf);
}
template <class T>
const record_buffer_of<T>& typed(const record_buffer& buf) noexcept {
  return static_cast<const record_buffer_of<T>&>(buf);
}

/// Appends records produced by user code, stamping each with the event time and origin of
/// the input record being processed. Lives on the stack of one `process` call.
template <class T>
class collector {
public:
  collector(std::vector<record<T>>& out, time_ms time) noexcept
    : out_(&out)
    , time_(time) {}

  void emit(T value) {
    out_->push_back(record<T>{std::move(value), time_, origin_});
  }
  void emit(T value, time_ms time) {
    out_->push_back(record<T>{std::move(value), time, origin_});
  }
  void set_time(time_ms time) noexcept {
    time_ = time;
  }
  /// @private Set by the runtime for each input record.
  void set_input(time_ms time, origin_t origin) noexcept {
    time_ = time;
    origin_ = origin;
  }

private:
  std::vector<record<T>>* out_;
  time_ms time_;
  origin_t origin_ = 0;
};

} // namespace eddy
