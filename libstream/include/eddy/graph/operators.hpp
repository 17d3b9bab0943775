#pragma once

#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
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

/// The key spelled `text` (as `encode_key` spells it); throws std::invalid_argument naming
/// the text when it does not spell a K.
template <class K>
K parse_key(std::string_view text) {
  try {
    return decode_key<K>(text);
  } catch (const std::exception& e) {
    throw std::invalid_argument("'" + std::string{text} + "' is not a key of this operator (" +
                                e.what() + ")");
  }
}

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
/// state is durable (see `keyed_store`) and the timers live in the journal. The state types
/// its function uses are recorded in `catalog` (shared by the operator's partitions; a new
/// one when null) for `eddy console`'s inspection and edits.
template <class K, class In, class Out, class KeyFn, class F, class T = no_timer_fn>
class keyed_logic final : public transform_logic {
public:
  keyed_logic(KeyFn key_fn, F fn, T on_timer = {}, state_schema schema = {},
              std::shared_ptr<state_catalog> catalog = nullptr)
    : key_fn_(std::move(key_fn))
    , fn_(std::move(fn))
    , on_timer_(std::move(on_timer))
    , schema_(std::move(schema))
    , catalog_(catalog ? std::move(catalog) : std::make_shared<state_catalog>()) {
    store_.registry().set_catalog(catalog_.get());
  }
  void process(record_buffer& in, record_buffer& out) override {
    auto& dst = typed<Out>(out).records;
    collector<Out> col{dst, no_time};
    auto& src = typed<In>(in).records;
    for (cursor_ = 0; cursor_ < src.size(); ++cursor_) {
      auto& r = src[cursor_];
      K key = key_fn_(std::as_const(r.value));
      keyed_context<K> ctx{key, store_, timers_, r.time, &event_timers_, watermark_};
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
  /// The state types known to the operator.
  [[nodiscard]] const state_catalog& catalog() const noexcept {
    return *catalog_;
  }
  std::string key_type() const override {
    return detail::type_name(typeid(K));
  }
  std::vector<std::pair<std::string, std::string>> state_types() const override {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& name : catalog_->names()) {
      if (auto e = catalog_->find(name)) {
        out.emplace_back(name, e->type_name);
      }
    }
    return out;
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
    event_timers_.collect(batch);
    batch.deferred = true;
  }
  void compacted() override {
    store_.compacted();
  }
  bool wants_compaction() const noexcept override {
    return store_.over_budget();
  }
  size_t fire_timers(time_ms now, record_buffer& out, size_t limit) override {
    return fire(timers_, now, out, limit);
  }
  size_t fire_event_timers(time_ms watermark, record_buffer& out, size_t limit) override {
    watermark_ = std::max(watermark_, watermark);
    return fire(event_timers_, watermark, out, limit);
  }
  std::optional<time_ms> next_event_timer() override {
    return next_of(event_timers_);
  }
  void set_watermark(time_ms watermark) override {
    watermark_ = std::max(watermark_, watermark);
  }
  std::optional<time_ms> next_timer() override {
    return next_of(timers_);
  }

  /// The journal's rows of the key overridden by its cells in memory (see
  /// `keyed_store::inspect`).
  std::string inspect_state(std::string_view key) override {
    return detail::json_text(store_.inspect(parse_key<K>(key), *catalog_));
  }
  std::string inspect_timers(std::string_view key) override {
    auto encoded = encode_key(parse_key<K>(key));
    std::vector<timer_entry> committed;
    if (journal_ != nullptr) {
      auto rows = journal_->timers_of(encoded);
      if (!rows) {
        throw state_error(errc::io_failure, describe(rows.error()));
      }
      committed = std::move(*rows);
    }
    auto result = nlohmann::json::array();
    for (const auto* book : {&timers_, &event_timers_}) {
      for (const auto& t : book->of_key(encoded, committed)) {
        result.push_back(
          nlohmann::json{{"kind", t.kind == event_timer_kind ? "event" : "processing"},
                         {"at", t.at_ms},
                         {"tag", t.tag}});
      }
    }
    return detail::json_text(result);
  }
  /// A clear of every state of the key has the state name "".
  std::string inspect_history(std::string_view key, size_t limit) override {
    auto& journal = durable_journal("history");
    auto entries = journal.history(encode_key(parse_key<K>(key)), limit);
    if (!entries) {
      throw state_error(errc::io_failure, describe(entries.error()));
    }
    auto result = nlohmann::json::array();
    for (const auto& e : *entries) {
      result.push_back(
        nlohmann::json{{"seq", e.seq},
                       {"at_ms", e.at_ms},
                       {"state", e.name},
                       {"value", e.value ? catalog_->render(e.name, *e.value) : nlohmann::json{}},
                       {"origin", e.origin}});
    }
    return detail::json_text(result);
  }
  /// See `state_as_of` for what the journal must still hold.
  std::string replay_state(std::string_view key, uint64_t seq, size_t keep_per_key) override {
    auto& journal = durable_journal("replay");
    auto encoded_key = encode_key(parse_key<K>(key));
    auto rows = journal.states_of(encoded_key);
    if (!rows) {
      throw state_error(errc::io_failure, describe(rows.error()));
    }
    auto entries = journal.history(encoded_key, std::numeric_limits<size_t>::max());
    if (!entries) {
      throw state_error(errc::io_failure, describe(entries.error()));
    }
    auto states = state_as_of(encoded_key, *entries, std::move(*rows), seq, keep_per_key,
                              journal.last_seq(), journal.meta().state_version);
    auto result = nlohmann::json::object();
    for (auto& [name, row] : states) {
      result[name] = store_.render_row(*catalog_, std::move(row), name, encoded_key);
    }
    return detail::json_text(result);
  }
  /// Obtains the cell as the keyed function would (read from the journal, marked as used),
  /// so that the next `collect` carries the change. The value is checked first: a failed
  /// edit changes nothing.
  std::string admin_set(std::string_view key, std::string_view name,
                        std::string_view value) override {
    K k = parse_key<K>(key);
    auto parsed = nlohmann::json::parse(value, nullptr, false);
    if (parsed.is_discarded()) {
      throw std::invalid_argument("the new value of state '" + std::string{name} +
                                  "' is not valid JSON: " + std::string{value});
    }
    auto type = catalog_->find(name);
    if (!type) {
      throw std::invalid_argument(unknown_state(name));
    }
    type->make()->from_json(parsed);
    auto id = store_.registry().id_of(name, *type->type, type->make);
    auto& slot = store_.slot(k);
    nlohmann::json old;
    try {
      auto& cell = store_.cell(k, slot, id, type->make);
      if (!cell.empty()) {
        old = cell.to_json();
      }
      cell.from_json(parsed);
    } catch (...) {
      store_.done_with(k, slot, false);
      throw;
    }
    store_.done_with(k, slot, false);
    return detail::json_text(old);
  }

private:
  journal_store& durable_journal(const char* what) const {
    if (journal_ == nullptr) {
      throw std::logic_error(std::string{what} +
                             " needs durable state (--state.durability process or machine)");
    }
    return *journal_;
  }

  std::string unknown_state(std::string_view name) const {
    std::string known;
    for (const auto& n : catalog_->names()) {
      known += (known.empty() ? "'" : ", '") + n + "'";
    }
    return "no state '" + std::string{name} +
           "' is known to this operator (known: " + (known.empty() ? std::string{"none"} : known) +
           "); a state is known once the keyed function used it since the job started, or "
           "when keyed_stream::declare_state declared it";
  }

  KeyFn key_fn_;
  F fn_;
  T on_timer_;
  state_schema schema_;
  std::shared_ptr<state_catalog> catalog_;
  keyed_store<K> store_;
  /// Durable: what the journal holds of `book` due at `up_to` after `after` (none: from the
  /// start), in (at, key, tag) order.
  struct journal_window {
    /// The timers read, less those removed since the last commit.
    std::vector<timer_entry> due;
    /// The last one read when the read was cut at its limit: the journal may hold more
    /// after it.
    std::optional<timer_entry> end;
  };
  journal_window journal_due(const timer_book& book, time_ms up_to, size_t limit,
                             const std::optional<timer_entry>& after) const {
    auto rows = journal_->due_timers(book.kind(), up_to, limit, after ? &*after : nullptr);
    if (!rows) {
      throw state_error(errc::io_failure, describe(rows.error()));
    }
    journal_window w;
    if (rows->size() == limit && limit > 0) {
      w.end = rows->back();
    }
    for (auto& t : *rows) {
      if (!book.removed(t)) {
        w.due.push_back(std::move(t));
      }
    }
    return w;
  }

  /// The earliest timer of `book` that has not fired (durable: of the journal's after the
  /// last one fired since the commit and not removed since, and of the added ones).
  std::optional<time_ms> next_of(const timer_book& book) const {
    auto result = book.earliest();
    if (journal_ == nullptr) {
      return result;
    }
    // Removed ones stay in the journal until the commit: read past them, a few at a time
    // (there are at most as many as the book removed).
    auto after = book.fired_through();
    for (;;) {
      auto w = journal_due(book, std::numeric_limits<time_ms>::max(), 4, after);
      if (!w.due.empty()) {
        auto at = w.due.front().at_ms;
        return result && *result < at ? result : std::optional<time_ms>{at};
      }
      if (!w.end) {
        return result;
      }
      after = std::move(w.end);
    }
  }

  /// Durable: up to `limit` due timers of `book`, merged in (at, key, tag) order from the
  /// journal (what the commits before put there, less what fired or was removed since) and
  /// from the timers added since the last commit, which fire without a commit first. Each
  /// is marked fired in the book as it is taken.
  std::vector<timer_entry> take_durable_due(timer_book& book, time_ms up_to, size_t limit) {
    auto w = journal_due(book, up_to, limit, book.fired_through());
    auto pending = book.pending_due(up_to, limit);
    auto id = [](const timer_entry& t) {
      return std::tie(t.at_ms, t.key, t.tag);
    };
    std::vector<timer_entry> due;
    size_t i = 0;
    size_t j = 0;
    while (due.size() < limit) {
      // A pending timer after the journal's window may equal one beyond it: it waits.
      bool pending_ok = j < pending.size() && (!w.end || id(pending[j]) <= id(*w.end));
      bool stored_ok = i < w.due.size();
      if (stored_ok && (!pending_ok || id(w.due[i]) <= id(pending[j]))) {
        if (pending_ok && id(w.due[i]) == id(pending[j])) {
          ++j; // registered again since the commit: one timer, fired once
        }
        book.fired(w.due[i].key, w.due[i].at_ms, w.due[i].tag);
        due.push_back(std::move(w.due[i++]));
      } else if (pending_ok) {
        book.fired_pending(pending[j]);
        due.push_back(std::move(pending[j++]));
      } else {
        break;
      }
    }
    return due;
  }

  /// Runs the timer function for up to `limit` timers of `book` due at `up_to`, earliest
  /// first (durable: see `take_durable_due`).
  size_t fire(timer_book& book, time_ms up_to, record_buffer& out, size_t limit) {
    auto due =
      journal_ != nullptr ? take_durable_due(book, up_to, limit) : book.take_due(up_to, limit);
    auto& dst = typed<Out>(out).records;
    collector<Out> col{dst, no_time};
    bool event_time = book.kind() == event_timer_kind;
    for (auto& t : due) {
      K key = decode_key<K>(t.key);
      keyed_context<K> ctx{key, store_, timers_, t.at_ms, &event_timers_, watermark_};
      col.set_input(t.at_ms, 0);
      on_timer_(timer_fired{t.at_ms, t.tag, event_time}, ctx, col);
      store_.done_with(key, ctx.slot(), ctx.cleared());
    }
    return due.size();
  }

  static constexpr int event_timer_kind = 1;
  timer_book timers_;
  timer_book event_timers_{event_timer_kind};
  /// The highest watermark the partition told this logic (`fire_event_timers`).
  time_ms watermark_ = no_time;
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
