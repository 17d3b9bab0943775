// What stages do about failures: report the record user code threw on, drop the records
// the supervisor sent to the dead-letter journal, and, in a failed actor, send the input
// there instead of processing it.

#include <chrono>
#include <exception>

#include "stage/stage.hpp"

namespace eddy::detail {

namespace {

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

} // namespace

size_t drop_poison(const stage_init& init, record_buffer& in) {
  if (!init.skip || init.skip->empty()) {
    return 0;
  }
  const auto& skip = *init.skip;
  return in.remove_unless([&skip](origin_t o) { return o == 0 || !skip.contains(o); });
}

void process_reporting(stage_init& init, transform_logic& logic, record_buffer& in,
                       record_buffer& out) {
  try {
    logic.process(in, out);
  } catch (...) {
    auto& report = *init.failure;
    report = failure_report{};
    try {
      throw;
    } catch (const std::exception& e) {
      report.error = e.what();
    } catch (...) {
      report.error = "unknown exception";
    }
    auto i = logic.cursor();
    if (i < in.size()) {
      report.set = true;
      report.origin = in.origin(i);
      try {
        report.key = logic.key_text(in, i);
        if (auto describe = input_describer(init)) {
          describe(in, i, report.record, report.payload);
        }
      } catch (const std::exception& e) {
        report.record = std::string{"<cannot render: "} + e.what() + ">";
      }
    }
    throw;
  }
}

caf::error dead_letter_input(const stage_init& init, const record_buffer& in,
                             const transform_logic* logic) {
  if (!init.dead_letters) {
    std::string text = "'";
    text += init.who();
    text += "' failed (";
    text += init.failed_cause;
    text += ") and the job keeps no dead-letter journal";
    return make_error(errc::actor_failed, std::move(text));
  }
  auto describe = input_describer(init);
  for (size_t i = 0; i < in.size(); ++i) {
    failed_record r;
    r.at_ms = now_ms();
    r.job = init.ctx.job;
    r.op = init.ctx.node;
    r.partition = init.ctx.index;
    r.origin = in.origin(i);
    r.error = init.failed_cause;
    try {
      if (logic != nullptr) {
        r.key = logic->key_text(in, i);
      }
      if (describe != nullptr) {
        describe(in, i, r.record, r.payload);
      }
    } catch (const std::exception& e) {
      r.record = std::string{"<cannot render: "} + e.what() + ">";
    }
    auto added = init.dead_letters->add(r);
    if (!added) {
      return added.error();
    }
    if (*added) {
      init.metrics->dead_lettered.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return {};
}

} // namespace eddy::detail

namespace eddy::detail {

namespace {

/// The logic of a failed operator or partition whose own logic cannot be created.
class inert_logic final : public transform_logic {
public:
  void process(record_buffer& in, record_buffer& out) override {
    (void) in;
    (void) out;
  }
};

} // namespace

std::unique_ptr<transform_logic> make_inert_logic() {
  return std::make_unique<inert_logic>();
}

} // namespace eddy::detail
