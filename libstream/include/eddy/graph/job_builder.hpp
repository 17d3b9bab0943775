#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include <caf/expected.hpp>

#include "eddy/codec/records.hpp"
#include "eddy/graph/job_graph.hpp"
#include "eddy/graph/operators.hpp"
#include "eddy/time/global_window.hpp"
#include "eddy/time/join.hpp"
#include "eddy/time/window_join.hpp"
#include "eddy/time/window_operator.hpp"

namespace eddy {

template <class T>
class stream;
template <class K, class T, class KeyFn>
class keyed_stream;

/// @private Sets the codec of a node producing `T`.
template <class T>
void set_codec(node_spec& spec) {
  spec.encode_output = &encode_records<T>;
  spec.decode_output = &decode_records<T>;
  spec.describe_output = &describe_record<T>;
  if constexpr (json_codable<T>) {
    spec.parse_output = &parse_record<T>;
  }
}

/// @private A `key_partitioner` for keys of type K: the partition `hash_router` sends the
/// key's records to.
template <class K>
uint32_t partition_of_key_text(std::string_view key, uint32_t partitions) {
  return partition_of(key_hash(parse_key<K>(key)), partitions);
}

/// Declares a job: sources, operators, keyed functions and sinks, then `build()` validates
/// the graph. Not thread-safe; streams refer back to their builder, which must outlive them.
class job_builder {
public:
  explicit job_builder(std::string name)
    : name_(std::move(name)) {}

  /// Sets the number of key partitions P of every keyed node (default 128).
  job_builder& partitions(uint32_t count) {
    partitions_ = count;
    return *this;
  }

  template <class T>
  stream<T> source(std::string name, source_def<T> def);

  /// Validates the graph and hands it over; the builder is empty afterwards.
  [[nodiscard]] caf::expected<job_graph> build();

  /// @private Used by `stream` to add nodes.
  size_t add(node_spec spec, std::optional<size_t> input);
  /// @private
  node_spec& node(size_t id) {
    return nodes_.at(id);
  }
  /// @private
  [[nodiscard]] size_t size() const noexcept {
    return nodes_.size();
  }

private:
  std::string name_;
  uint32_t partitions_ = default_partitions;
  std::vector<node_spec> nodes_;
};

/// Refers to a sink node, to set its parallelism.
class sink_ref {
public:
  sink_ref(job_builder& jb, size_t id)
    : jb_(&jb)
    , id_(id) {}
  sink_ref& parallelism(uint32_t n) {
    auto& spec = jb_->node(id_);
    spec.parallelism = n;
    spec.parallelism_set = true;
    return *this;
  }
  /// What the supervisor does when an instance of the sink fails (default: restart).
  sink_ref& on_failure(failure_policy policy) {
    jb_->node(id_).on_failure = policy;
    return *this;
  }

private:
  job_builder* jb_;
  size_t id_;
};

/// The typed output of a node. Copyable handle; each method adds a node reading it.
template <class T>
class stream {
public:
  stream(job_builder& jb, size_t id)
    : jb_(&jb)
    , id_(id) {}

  /// Sets the instance count of the node producing this stream.
  stream& parallelism(uint32_t n) {
    auto& spec = jb_->node(id_);
    spec.parallelism = n;
    spec.parallelism_set = true;
    return *this;
  }

  /// Event time, on a source's stream: every record's timestamp is `ts_fn(const T&) ->
  /// time_ms`, and the source's watermarks follow `strategy` (see eddy/time/watermark.hpp);
  /// they travel with the batches to every downstream stage.
  template <class F>
  stream& event_time(F ts_fn, watermark_strategy strategy) {
    auto& spec = jb_->node(id_);
    spec.watermarks = strategy;
    spec.stamp_times = [ts_fn = std::move(ts_fn)](record_buffer& buf, size_t from) {
      time_ms highest = no_time;
      auto& records = typed<T>(buf).records;
      for (size_t i = from; i < records.size(); ++i) {
        records[i].time = static_cast<time_ms>(ts_fn(std::as_const(records[i].value)));
        highest = std::max(highest, records[i].time);
      }
      return highest;
    };
    return *this;
  }

  /// What the supervisor does when an instance (or partition) of the node producing this
  /// stream fails (default: restart; `--supervision.policy` overrides it).
  stream& on_failure(failure_policy policy) {
    jb_->node(id_).on_failure = policy;
    return *this;
  }

  /// One output per input: `fn(const T&) -> Out`.
  template <class F>
  auto map(std::string name, F fn) {
    using out = std::decay_t<std::invoke_result_t<F&, const T&>>;
    return then<out>(std::move(name), node_kind::transform,
                     transform_factory{[fn](const instance_context&) {
                       return std::make_unique<map_logic<T, out, F>>(fn);
                     }});
  }

  /// Keeps the records for which `fn(const T&)` is true.
  template <class F>
  stream<T> filter(std::string name, F fn) {
    return then<T>(std::move(name), node_kind::transform,
                   transform_factory{[fn](const instance_context&) {
                     return std::make_unique<filter_logic<T, F>>(fn);
                   }});
  }

  /// Any number of outputs per input: `fn(const T&, collector<Out>&)`.
  template <class Out, class F>
  stream<Out> flat_map(std::string name, F fn) {
    return then<Out>(std::move(name), node_kind::transform,
                     transform_factory{[fn](const instance_context&) {
                       return std::make_unique<flat_map_logic<T, Out, F>>(fn);
                     }});
  }

  /// One stream of the records of this one and `other` (an operator `name` reading both;
  /// event time: its watermark is the lower of theirs).
  stream<T> union_with(const stream<T>& other, std::string name) {
    auto united = map(std::move(name), [](const T& value) { return value; });
    jb_->node(united.id_).more_inputs.push_back(other.id_);
    jb_->node(other.id_).consumers.push_back(united.id_);
    return united;
  }

  /// Partitions the stream by `key_fn(const T&) -> K`; a stable hash of the key picks one
  /// of the job's P partitions.
  template <class F>
  auto key_by(F key_fn) {
    using key = std::decay_t<std::invoke_result_t<F&, const T&>>;
    static_assert(stable_hashable<key>, "key_by needs a string or integer key, or a type with "
                                        "an ADL eddy_stable_hash(const K&)");
    return keyed_stream<key, T, F>(*jb_, id_, std::move(key_fn));
  }

  /// Writes the stream to a sink.
  sink_ref sink(std::string name, sink_def<T> def) {
    node_spec spec;
    spec.name = std::move(name);
    spec.kind = node_kind::sink;
    spec.in_type = &typeid(T);
    spec.parallelism_max = def.parallelism_max;
    spec.make_sink = std::move(def.make);
    return sink_ref{*jb_, jb_->add(std::move(spec), id_)};
  }

  /// @private Adds a one-input node producing `Out`.
  template <class Out>
  stream<Out> then(std::string name, node_kind kind, transform_factory make,
                   router_factory make_router = {}, key_partitioner partition_of_key = nullptr) {
    node_spec spec;
    spec.name = std::move(name);
    spec.kind = kind;
    spec.in_type = &typeid(T);
    spec.out_type = &typeid(Out);
    spec.make_transform = std::move(make);
    spec.make_router = std::move(make_router);
    spec.partition_of_key = partition_of_key;
    spec.make_output_buffer = [](size_t capacity) {
      return record_buffer_of<Out>{}.make_empty(capacity);
    };
    spec.make_origin_router = [] {
      return std::make_unique<origin_router<Out>>();
    };
    set_codec<Out>(spec);
    return stream<Out>{*jb_, jb_->add(std::move(spec), id_)};
  }

private:
  job_builder* jb_;
  size_t id_;
};

/// A stream partitioned by key, waiting for the keyed function that consumes it.
template <class K, class T, class KeyFn>
class keyed_stream {
public:
  keyed_stream(job_builder& jb, size_t id, KeyFn key_fn)
    : jb_(&jb)
    , id_(id)
    , key_fn_(std::move(key_fn)) {}

  /// Declares the version of the keyed function's state encoding (default 1). Durable state
  /// written by an older version is upgraded on read by the functions given to `upgrade`;
  /// without one, reading it fails with an error naming both versions.
  keyed_stream& state_version(uint32_t version) {
    schema_.version = version;
    return *this;
  }
  /// Registers `fn(state name, bytes of version from) -> bytes of version from + 1`.
  keyed_stream& upgrade(uint32_t from, state_schema::upgrade_fn fn) {
    schema_.upgrades[from] = std::move(fn);
    return *this;
  }

  /// Declares that the keyed function keeps state `name` in a `Cell`
  /// (`.declare_state<value_state<int64_t>>("count")`), so that `eddy console` can decode
  /// and set it before a record used it in a partition (right after a restart, say).
  /// `process` throws std::logic_error when a name is declared with two types.
  template <class Cell>
  keyed_stream& declare_state(std::string name) {
    static_assert(std::is_base_of_v<state_cell, Cell>,
                  "declare_state takes a state type: value_state<T>, map_state<K, V> or "
                  "list_state<T>");
    declared_.push_back(declared_state{std::move(name), &typeid(Cell), &make_cell<Cell>});
    return *this;
  }

  /// A keyed function with per-key state: `fn(const T&, keyed_context<K>&, collector<Out>&)`.
  /// Runs on P partition actors; all records of a key reach the same partition in order.
  template <class Out, class F>
  stream<Out> process(std::string name, F fn) {
    return process<Out>(std::move(name), std::move(fn), no_timer_fn{});
  }

  /// Event-time windows (see eddy/time/window_operator.hpp): `assigner` (tumbling, sliding,
  /// session) groups each key's elements by their timestamps, `aggregate` folds them (a
  /// sum_aggregate, count_aggregate, make_aggregate(...) or process_all(fn)); a window's
  /// result goes out once the watermark passes its end, again as an update when an element
  /// comes within `allowed_lateness` ms after that, and later elements go out as "late"
  /// with the reason. The stream's records need event time (`event_time` on the source).
  template <class A>
  auto window(std::string name, window_assigner assigner, A aggregate,
              time_ms allowed_lateness = 0) {
    using fn_type = window_function<K, T, A>;
    auto fn = std::make_shared<const fn_type>(assigner, std::move(aggregate), allowed_lateness);
    return process<typename fn_type::output>(
      std::move(name),
      [fn](const T& value, auto& ctx, auto& out) { fn->on_element(value, ctx, out); },
      [fn](const timer_fired& t, auto& ctx, auto& out) { fn->on_timer(t, ctx, out); });
  }

  /// The global window of each key with a custom trigger (see eddy/time/global_window.hpp:
  /// count_trigger{n}, period_trigger{ms}, or your own): the trigger says when the result of
  /// `aggregate` over the key's elements goes out and when the window starts empty again.
  template <class Trig, class A>
  auto global_window(std::string name, Trig trigger, A aggregate) {
    using fn_type = global_window_function<K, T, A, Trig>;
    auto fn = std::make_shared<const fn_type>(std::move(trigger), std::move(aggregate));
    return process<typename fn_type::output>(
      std::move(name),
      [fn](const T& value, auto& ctx, auto& out) { fn->on_element(value, ctx, out); },
      [fn](const timer_fired& t, auto& ctx, auto& out) { fn->on_timer(t, ctx, out); });
  }

  /// On a keyed stream of `connect`ed records (`either<A, B>`): pairs every left record a
  /// with every right record b of its key whose timestamp lies in [a.ts + lower, a.ts +
  /// upper], emitting `fn(a, b)`; see eddy/time/join.hpp.
  template <class Out, class F>
  stream<Out> interval_join(std::string name, time_ms lower, time_ms upper, F fn) {
    using A = decltype(std::declval<T>().left);
    using B = decltype(std::declval<T>().right);
    auto join =
      std::make_shared<const interval_join_function<A, B, F>>(lower, upper, std::move(fn));
    return process<Out>(
      std::move(name), [join](const T& e, auto& ctx, auto& out) { join->on_element(e, ctx, out); },
      [join](const timer_fired& t, auto& ctx, auto& out) { join->on_timer(t, ctx, out); });
  }

  /// On a keyed stream of `connect`ed records: emits `fn(a, b)` for every left and right
  /// record of a key that share a window of `assigner` (tumbling or sliding), once per
  /// shared window, when the watermark passes its end; see eddy/time/window_join.hpp.
  template <class Out, class F>
  stream<Out> window_join(std::string name, window_assigner assigner, F fn) {
    using A = decltype(std::declval<T>().left);
    using B = decltype(std::declval<T>().right);
    auto join = std::make_shared<const window_join_function<A, B, F>>(assigner, std::move(fn));
    return process<Out>(
      std::move(name), [join](const T& e, auto& ctx, auto& out) { join->on_element(e, ctx, out); },
      [join](const timer_fired& t, auto& ctx, auto& out) { join->on_timer(t, ctx, out); });
  }

  /// The same with processing-time timers: `on_timer(const timer_fired&, keyed_context<K>&,
  /// collector<Out>&)` runs for a key when a timer it registered falls due.
  template <class Out, class F, class OnTimer>
  stream<Out> process(std::string name, F fn, OnTimer on_timer) {
    auto key_fn = key_fn_;
    auto schema = schema_;
    // One catalog for every partition and every incarnation of the operator.
    auto catalog = std::make_shared<state_catalog>();
    for (const auto& d : declared_) {
      catalog->add(d.name, *d.type, d.make);
    }
    auto make = [key_fn, fn, on_timer, schema, catalog](const instance_context&) {
      return std::make_unique<keyed_logic<K, T, Out, KeyFn, F, OnTimer>>(key_fn, fn, on_timer,
                                                                         schema, catalog);
    };
    auto make_router = [key_fn] {
      return std::make_unique<hash_router<T, KeyFn>>(key_fn);
    };
    auto out = stream<T>{*jb_, id_}.template then<Out>(
      std::move(name), node_kind::keyed, transform_factory{make}, router_factory{make_router},
      &partition_of_key_text<K>);
    // `then` added the keyed node last.
    jb_->node(jb_->size() - 1).commit_interval_ms = commit_interval_ms_;
    return out;
  }

  /// Durable state: this operator's partitions commit every `ms` milliseconds (0: after
  /// each group of batches) whatever `--state.commit-interval-ms` says. Between commits
  /// the state lives in memory and the output waits for the commit that covers it: a
  /// longer interval costs latency and saves writes.
  keyed_stream& commit_interval_ms(uint32_t ms) {
    commit_interval_ms_ = ms;
    return *this;
  }

private:
  struct declared_state {
    std::string name;
    const std::type_info* type;
    cell_factory make;
  };

  job_builder* jb_;
  size_t id_;
  KeyFn key_fn_;
  state_schema schema_;
  std::vector<declared_state> declared_;
  std::optional<uint32_t> commit_interval_ms_;
};

template <class T>
stream<T> job_builder::source(std::string name, source_def<T> def) {
  node_spec spec;
  spec.name = std::move(name);
  spec.kind = node_kind::source;
  spec.out_type = &typeid(T);
  spec.parallelism_max = def.parallelism_max;
  spec.make_source = std::move(def.make);
  spec.make_output_buffer = [](size_t capacity) {
    return record_buffer_of<T>{}.make_empty(capacity);
  };
  spec.make_origin_router = [] {
    return std::make_unique<origin_router<T>>();
  };
  set_codec<T>(spec);
  return stream<T>{*this, add(std::move(spec), std::nullopt)};
}

/// One stream of the records of `a` and `b` as `either<A, B>` (two maps and a union named
/// after `name`), to key by a key both share and process with shared state, e.g.
/// `interval_join`.
template <class A, class B>
stream<either<A, B>> connect(stream<A> a, stream<B> b, const std::string& name) {
  auto left = a.map(name + "_left", [](const A& x) { return either<A, B>{true, x, B{}}; });
  auto right = b.map(name + "_right", [](const B& x) { return either<A, B>{false, A{}, x}; });
  return left.union_with(right, name);
}

} // namespace eddy
