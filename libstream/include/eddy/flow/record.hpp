#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <typeinfo>
#include <vector>

namespace eddy {

/// Event time in milliseconds since the epoch; `no_time` when a record carries none.
using time_ms = int64_t;
inline constexpr time_ms no_time = std::numeric_limits<time_ms>::min();

/// One event on an edge: its value and its event time.
template <class T>
struct record {
  T value;
  time_ms time = no_time;
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
};

/// Casts an erased buffer to its typed form; the job graph guarantees the type.
template <class T>
record_buffer_of<T>& typed(record_buffer& buf) noexcept {
  return static_cast<record_buffer_of<T>&>(buf);
}

/// Appends records produced by user code, stamping each with the current event time.
/// Lives on the stack of one `process` call.
template <class T>
class collector {
public:
  collector(std::vector<record<T>>& out, time_ms time) noexcept
    : out_(&out)
    , time_(time) {}

  void emit(T value) {
    out_->push_back(record<T>{std::move(value), time_});
  }
  void emit(T value, time_ms time) {
    out_->push_back(record<T>{std::move(value), time});
  }
  void set_time(time_ms time) noexcept {
    time_ = time;
  }

private:
  std::vector<record<T>>* out_;
  time_ms time_;
};

} // namespace eddy
