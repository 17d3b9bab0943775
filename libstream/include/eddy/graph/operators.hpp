#pragma once

#include <utility>
#include <vector>

#include "eddy/graph/logic.hpp"
#include "eddy/partition/stable_hash.hpp"
#include "eddy/state/keyed_state.hpp"

namespace eddy {

/// The logic behind `stream::map`: the user function is a template parameter, so the loop
/// over a batch inlines it (one virtual call per batch, none per record).
template <class In, class Out, class F>
class map_logic final : public transform_logic {
public:
  explicit map_logic(F fn)
    : fn_(std::move(fn)) {}
  void process(record_buffer& in, record_buffer& out) override {
    auto& src = typed<In>(in).records;
    auto& dst = typed<Out>(out).records;
    dst.reserve(dst.size() + src.size());
    for (cursor_ = 0; cursor_ < src.size(); ++cursor_) {
      auto& r = src[cursor_];
      dst.push_back(record<Out>{fn_(std::as_const(r.value)), r.time, r.origin});
    }
  }

private:
  F fn_;
};

template <class T, class F>
class filter_logic final : public transform_logic {
public:
  explicit filter_logic(F fn)
    : fn_(std::move(fn)) {}
  void process(record_buffer& in, record_buffer& out) override {
    auto& src = typed<T>(in).records;
    auto& dst = typed<T>(out).records;
    for (cursor_ = 0; cursor_ < src.size(); ++cursor_) {
      auto& r = src[cursor_];
      if (fn_(std::as_const(r.value))) {
        dst.push_back(std::move(r));
      }
    }
  }

private:
  F fn_;
};

template <class In, class Out, class F>
class flat_map_logic final : public transform_logic {
public:
  explicit flat_map_logic(F fn)
    : fn_(std::move(fn)) {}
  void process(record_buffer& in, record_buffer& out) override {
    auto& dst = typed<Out>(out).records;
    collector<Out> col{dst, no_time};
    auto& src = typed<In>(in).records;
    for (cursor_ = 0; cursor_ < src.size(); ++cursor_) {
      auto& r = src[cursor_];
      col.set_input(r.time, r.origin);
      fn_(std::as_const(r.value), col);
    }
  }

private:
  F fn_;
};

/// The timer function of a keyed function that registers no timers.
struct no_timer_fn {
  template <class Ctx, class Out>
  void operator()(const timer_fired&, Ctx&, Out&) const {
    throw std::logic_error("a timer fired but the keyed function has no timer function "
                           "(pass one to process())");
  }
};

/// The logic of one key partition: finds the record's key, hands the user function that
/// key's state, and drops the key once the function clears it. With a journal attached the
/// state is durable (see `keyed_store`) and the timers live in the journal.
template <class K, class In, class Out, class KeyFn, class F, class T = no_timer_fn>
class keyed_logic final : public transform_logic {
public:
  keyed_logic(KeyFn key_fn, F fn, T on_timer = {}, state_schema schema = {})
    : key_fn_(std::move(key_fn))
    , fn_(std::move(fn))
    , on_timer_(std::move(on_timer))
    , schema_(std::move(schema)) {}
  void process(record_buffer& in, record_buffer& out) override {
    auto& dst = typed<Out>(out).records;
    collector<Out> col{dst, no_time};
    auto& src = typed<In>(in).records;
    for (cursor_ = 0; cursor_ < src.size(); ++cursor_) {
      auto& r = src[cursor_];
      K key = key_fn_(std::as_const(r.value));
      keyed_context<K> ctx{key, store_, timers_, r.time};
      col.set_input(r.time, r.origin);
      fn_(std::as_const(r.value), ctx, col);
      // A key without state takes no memory: stateless functions and cleared keys leave
      // nothing behind.
      store_.done_with(key, ctx.slot(), ctx.cleared());
    }
  }
  size_t key_count() const noexcept override {
    return store_.key_count();
  }
  std::string key_text(const record_buffer& in, size_t i) const override {
    return encode_key(key_fn_(std::as_const(typed<In>(in).records.at(i).value)));
  }
  [[nodiscard]] const keyed_store<K>& store() const noexcept {
    return store_;
  }
  uint32_t state_version() const noexcept override {
    return schema_.version;
  }
  void attach(journal_store& journal, size_t cache_bytes) override {
    journal_ = &journal;
    store_.attach(&journal, &schema_, cache_bytes);
  }
  void collect(commit_batch& batch) override {
    store_.collect(batch.changes);
    timers_.collect(batch);
    batch.deferred = true;
  }
  void compacted() override {
    store_.compacted();
  }
  bool wants_compaction() const noexcept override {
    return store_.over_budget();
  }
  size_t fire_timers(time_ms now, record_buffer& out, size_t limit) override {
    std::vector<timer_entry> due;
    if (journal_ != nullptr) {
      auto rows = journal_->due_timers(0, now, limit);
      if (!rows) {
        throw state_error(errc::io_failure, describe(rows.error()));
      }
      due = std::move(*rows);
    } else {
      due = timers_.take_due(now, limit);
    }
    auto& dst = typed<Out>(out).records;
    collector<Out> col{dst, no_time};
    for (auto& t : due) {
      if (journal_ != nullptr) {
        timers_.remove(t.key, t.at_ms, t.tag, true);
      }
      K key = decode_key<K>(t.key);
      keyed_context<K> ctx{key, store_, timers_, t.at_ms};
      col.set_input(t.at_ms, 0);
      on_timer_(timer_fired{t.at_ms, t.tag}, ctx, col);
      store_.done_with(key, ctx.slot(), ctx.cleared());
    }
    return due.size();
  }
  std::optional<time_ms> next_timer() override {
    auto result = timers_.earliest();
    if (journal_ != nullptr) {
      auto stored = journal_->next_timer(0);
      if (!stored) {
        throw state_error(errc::io_failure, describe(stored.error()));
      }
      if (*stored && (!result || **stored < *result)) {
        result = **stored;
      }
    }
    return result;
  }

private:
  KeyFn key_fn_;
  F fn_;
  T on_timer_;
  state_schema schema_;
  keyed_store<K> store_;
  timer_book timers_;
  journal_store* journal_ = nullptr;
};

/// Routes records to partitions by `partition_of(key_hash(key_fn(value)), P)`.
template <class T, class KeyFn>
class hash_router final : public router {
public:
  explicit hash_router(KeyFn key_fn)
    : key_fn_(std::move(key_fn)) {}
  void route(record_buffer& out, std::vector<output_channel>& channels) override {
    auto partitions = static_cast<uint32_t>(channels.size());
    for (auto& r : typed<T>(out).records) {
      auto p = partition_of(key_hash(key_fn_(std::as_const(r.value))), partitions);
      typed<T>(channels[p].builder()).records.push_back(std::move(r));
    }
  }

private:
  KeyFn key_fn_;
};

/// Spreads records over several receivers of a non-keyed edge by their origin, in runs of
/// `run` consecutive positions of a producer. Replay then takes the path the first run
/// took, which keeps every producer-to-consumer path FIFO: what exactly-once needs (see
/// `replay_filter`). Records without an origin go round-robin in runs.
template <class T>
class origin_router final : public router {
public:
  static constexpr uint64_t run = 256;

  void route(record_buffer& out, std::vector<output_channel>& channels) override {
    auto n = channels.size();
    for (auto& r : typed<T>(out).records) {
      uint64_t lane = r.origin != 0 ? origin_position(r.origin) / run + origin_producer(r.origin)
                                    : unstamped_++ / run;
      typed<T>(channels[lane % n].builder()).records.push_back(std::move(r));
    }
  }

private:
  uint64_t unstamped_ = 0;
};

} // namespace eddy
