// The CAF baseline of eddy-bench (see caf_baseline.hpp).

#include "caf_baseline.hpp"

#include <chrono>
#include <memory>
#include <unordered_map>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "eddy/actors/messages.hpp"

namespace bench {

/// The message of the baseline: a batch of values, shared so that CAF copies a pointer.
struct raw_batch {
  std::shared_ptr<std::vector<int64_t>> values;
};

/// Only the size travels if CAF ever serializes it (it never does: all actors are local).
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, raw_batch& x) {
  uint64_t size = x.values ? x.values->size() : 0;
  return f(size);
}

} // namespace bench

CAF_BEGIN_TYPE_ID_BLOCK(eddy_bench, caf::id_block::eddy::end)

CAF_ADD_TYPE_ID(eddy_bench, (bench::raw_batch))

/// Consumer -> producer: one batch consumed, one more may be sent.
CAF_ADD_ATOM(eddy_bench, bench, ack_atom, "ack")
/// Producer -> consumer: no more batches.
CAF_ADD_ATOM(eddy_bench, bench, done_atom, "done")
/// Main -> producer: start sending.
CAF_ADD_ATOM(eddy_bench, bench, go_atom, "go")

CAF_END_TYPE_ID_BLOCK(eddy_bench)

namespace bench {
namespace {

struct baseline_params {
  bool keyed = false;
  uint64_t events = 0;
  size_t batch = 1024;
  uint32_t window = 8;
};

/// Filled by the consumer before it quits; read by main after await_all_actors_done.
struct baseline_result {
  uint64_t events = 0;
  uint64_t out = 0;
  uint64_t keys = 0;
};

struct producer_state {
  uint64_t next = 0;
  uint32_t in_flight = 0;
  bool done_sent = false;
};

caf::behavior producer(caf::stateful_actor<producer_state>* self, caf::actor consumer,
                       baseline_params p) {
  // Sends one batch if values remain; false once all are out.
  auto send_one = [self, consumer, p] {
    auto& st = self->state;
    if (st.next >= p.events) {
      return false;
    }
    auto values = std::make_shared<std::vector<int64_t>>();
    values->reserve(p.batch);
    auto end = std::min(p.events, st.next + p.batch);
    if (p.keyed) {
      for (auto i = st.next; i < end; ++i) {
        values->push_back(keyed_value(i));
      }
    } else {
      for (auto i = st.next; i < end; ++i) {
        values->push_back(stateless_value(i));
      }
    }
    st.next = end;
    ++st.in_flight;
    self->send(consumer, raw_batch{std::move(values)});
    return true;
  };
  auto fill = [self, consumer, p, send_one] {
    auto& st = self->state;
    while (st.in_flight < p.window && send_one()) {
      // Keep the window full.
    }
    if (st.in_flight == 0 && !st.done_sent) {
      st.done_sent = true;
      self->send(consumer, done_atom::value);
      self->quit();
    }
  };
  return {
    [fill](go_atom) { fill(); },
    [self, fill](ack_atom) {
      --self->state.in_flight;
      fill();
    },
  };
}

struct consumer_state {
  uint64_t events = 0;
  uint64_t out = 0;
  std::unordered_map<int64_t, int64_t> counts;
};

caf::behavior consumer(caf::stateful_actor<consumer_state>* self, bool keyed,
                       std::shared_ptr<baseline_result> result) {
  auto on_done = [self, result](done_atom) {
    auto& st = self->state;
    result->events = st.events;
    result->out = st.out;
    result->keys = st.counts.size();
    self->quit();
  };
  auto ack = [self] {
    self->send(caf::actor_cast<caf::actor>(self->current_sender()), ack_atom::value);
  };
  if (keyed) {
    return {
      [self, ack](raw_batch& b) {
        auto& st = self->state;
        for (auto k : *b.values) {
          ++st.counts[k];
        }
        st.events += b.values->size();
        ack();
      },
      on_done,
    };
  }
  return {
    [self, ack](raw_batch& b) {
      auto& st = self->state;
      uint64_t kept = 0;
      for (auto x : *b.values) {
        if (stateless_keep(stateless_map(x))) {
          ++kept;
        }
      }
      st.out += kept;
      st.events += b.values->size();
      ack();
    },
    on_done,
  };
}

} // namespace

run_result run_caf_baseline(bool keyed, uint64_t events, const eddy::runtime_options& rt) {
  caf::actor_system_config cfg;
  cfg.add_message_types<caf::id_block::eddy_bench>();
  if (rt.threads > 0) {
    cfg.set("scheduler.max-threads", static_cast<size_t>(rt.threads));
  }
  caf::actor_system sys{cfg};
  baseline_params p{keyed, events, rt.batch_events_max, rt.credit_batches_max};
  auto result = std::make_shared<baseline_result>();
  auto begin = std::chrono::steady_clock::now();
  auto cons = sys.spawn(consumer, keyed, result);
  auto prod = sys.spawn(producer, cons, p);
  caf::anon_send(prod, go_atom::value);
  sys.await_all_actors_done();
  run_result r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  r.events = result->events;
  r.out = result->out;
  r.keys = result->keys;
  return r;
}

} // namespace bench
