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
    for (auto& r : src) {
      dst.push_back(record<Out>{fn_(std::as_const(r.value)), r.time});
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
    for (auto& r : src) {
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
    for (auto& r : typed<In>(in).records) {
      col.set_time(r.time);
      fn_(std::as_const(r.value), col);
    }
  }

private:
  F fn_;
};

/// The logic of one key partition: finds the record's key, hands the user function that
/// key's state, and drops the key once the function clears it.
template <class K, class In, class Out, class KeyFn, class F>
class keyed_logic final : public transform_logic {
public:
  keyed_logic(KeyFn key_fn, F fn)
    : key_fn_(std::move(key_fn))
    , fn_(std::move(fn)) {}
  void process(record_buffer& in, record_buffer& out) override {
    auto& dst = typed<Out>(out).records;
    collector<Out> col{dst, no_time};
    for (auto& r : typed<In>(in).records) {
      K key = key_fn_(std::as_const(r.value));
      auto& slot = store_.slot(key);
      keyed_context<K> ctx{key, slot, store_.registry(), r.time};
      col.set_time(r.time);
      fn_(std::as_const(r.value), ctx, col);
      // A key without state takes no memory: stateless functions and cleared keys leave
      // nothing behind.
      if (ctx.cleared() || slot.empty()) {
        store_.erase(key);
      }
    }
  }
  size_t key_count() const noexcept override {
    return store_.key_count();
  }
  [[nodiscard]] const keyed_store<K>& store() const noexcept {
    return store_;
  }

private:
  KeyFn key_fn_;
  F fn_;
  keyed_store<K> store_;
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

} // namespace eddy
