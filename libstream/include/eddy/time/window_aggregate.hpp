#pragma once

// What a window computes from its elements, in two shapes (Flink's AggregateFunction and
// ProcessWindowFunction):
//
// - an incremental aggregate: the window keeps one accumulator, `add` folds each element
//   into it, `merge` joins two accumulators (needed by session windows, whose windows
//   merge), `result` reads the window's result from it (each time the window fires, so it
//   must not consume the accumulator);
// - "process all elements": the window keeps its elements in a `window_buffer` and a
//   function sees all of them when it fires (`process_all`, itself an aggregate whose
//   accumulator is the buffer).
//
// A keyed operator keeps the accumulator per key and window in keyed state (for instance
// `map_state<window, window_contents<Acc>>`), so durable jobs need accumulators that the
// journal can encode (CAF `inspect` or JSON hooks, see codec/binary.hpp).

#include <concepts>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

namespace eddy {

/// An incremental aggregate of elements of type T:
///   typename A::accumulator;
///   A::accumulator a.create() const;            // the accumulator of an empty window
///   void a.add(accumulator&, const T&) const;   // folds one element in
///   R a.result(const accumulator&) const;       // the window's result (any R)
template <class A, class T>
concept window_aggregate = requires(const A& a, typename A::accumulator& acc,
                                    const typename A::accumulator& cacc, const T& value) {
  typename A::accumulator;
  { a.create() } -> std::convertible_to<typename A::accumulator>;
  a.add(acc, value);
  a.result(cacc);
};

/// An aggregate that session windows can use: also
///   void a.merge(accumulator& into, const accumulator& from) const;
/// with result(merge(create()+xs, create()+ys)) == result(create()+xs+ys) (for
/// order-sensitive results: up to the order of the elements).
template <class A, class T>
concept merging_window_aggregate = window_aggregate<A, T> &&
  requires(const A& a, typename A::accumulator& into, const typename A::accumulator& from) {
  a.merge(into, from);
};

/// The result type of aggregate A.
template <class A>
using aggregate_result_t = std::decay_t<decltype(std::declval<const A&>().result(
  std::declval<const typename A::accumulator&>()))>;

/// The accumulator and flag a window operator keeps per key and window: `emitted` once the
/// window fired (its later firings are updates).
template <class Acc>
struct window_contents {
  Acc acc{};
  bool emitted = false;
  [[nodiscard]] bool operator==(const window_contents&) const = default;
};

template <class Inspector, class Acc>
typename Inspector::result_type inspect(Inspector& f, window_contents<Acc>& x) {
  return f(x.acc, x.emitted);
}

/// The sum of the elements (T with T{} and +=).
template <class T>
struct sum_aggregate {
  using accumulator = T;
  [[nodiscard]] T create() const {
    return T{};
  }
  void add(T& acc, const T& value) const {
    acc += value;
  }
  void merge(T& into, const T& from) const {
    into += from;
  }
  [[nodiscard]] T result(const T& acc) const {
    return acc;
  }
};

/// The number of elements.
struct count_aggregate {
  using accumulator = uint64_t;
  [[nodiscard]] uint64_t create() const noexcept {
    return 0;
  }
  template <class T>
  void add(uint64_t& acc, const T&) const noexcept {
    ++acc;
  }
  void merge(uint64_t& into, uint64_t from) const noexcept {
    into += from;
  }
  [[nodiscard]] uint64_t result(uint64_t acc) const noexcept {
    return acc;
  }
};

/// An aggregate from four functions: `create()` -> Acc, `add(Acc&, const T&)`,
/// `merge(Acc&, const Acc&)`, `result(const Acc&)` -> R. Make with `make_aggregate`.
template <class Create, class Add, class Merge, class Result>
struct fn_aggregate {
  using accumulator = std::decay_t<std::invoke_result_t<const Create&>>;
  Create create_fn;
  Add add_fn;
  Merge merge_fn;
  Result result_fn;

  [[nodiscard]] accumulator create() const {
    return create_fn();
  }
  template <class T>
  void add(accumulator& acc, const T& value) const {
    add_fn(acc, value);
  }
  void merge(accumulator& into, const accumulator& from) const {
    merge_fn(into, from);
  }
  [[nodiscard]] auto result(const accumulator& acc) const {
    return result_fn(acc);
  }
};

template <class Create, class Add, class Merge, class Result>
fn_aggregate<Create, Add, Merge, Result> make_aggregate(Create create, Add add, Merge merge,
                                                        Result result) {
  return {std::move(create), std::move(add), std::move(merge), std::move(result)};
}

/// The elements of one key's window, in the order they were added; after a session merge,
/// the buffers of the merged windows one after the other (in the order of
/// session_merge::absorbed), then the new element.
template <class T>
using window_buffer = std::vector<T>;

/// "Process all elements": keeps every element of the window and calls `fn(span<const T>)`
/// on all of them when the window fires. Make with `process_all<T>(fn)`.
template <class T, class F>
struct process_all_aggregate {
  using accumulator = window_buffer<T>;
  F fn;

  [[nodiscard]] accumulator create() const {
    return {};
  }
  void add(accumulator& acc, const T& value) const {
    acc.push_back(value);
  }
  void merge(accumulator& into, const accumulator& from) const {
    into.insert(into.end(), from.begin(), from.end());
  }
  [[nodiscard]] auto result(const accumulator& acc) const {
    return fn(std::span<const T>{acc.data(), acc.size()});
  }
};

template <class T, class F>
process_all_aggregate<T, F> process_all(F fn) {
  return {std::move(fn)};
}

} // namespace eddy
