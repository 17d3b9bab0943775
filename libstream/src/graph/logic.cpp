#include "eddy/graph/logic.hpp"

#include <stdexcept>

namespace eddy {

namespace {

[[noreturn]] void no_keyed_state() {
  throw std::logic_error("the operator keeps no keyed state (only keyed functions do)");
}

} // namespace

std::string transform_logic::inspect_state(std::string_view) {
  no_keyed_state();
}

std::string transform_logic::inspect_timers(std::string_view) {
  no_keyed_state();
}

std::string transform_logic::inspect_history(std::string_view, size_t) {
  no_keyed_state();
}

std::string transform_logic::replay_state(std::string_view, uint64_t, size_t) {
  no_keyed_state();
}

std::string transform_logic::admin_set(std::string_view, std::string_view, std::string_view) {
  no_keyed_state();
}

} // namespace eddy
