#include "eddy/state/keyed_state.hpp"

#include <algorithm>

namespace eddy {

size_t state_registry::id_of(std::string_view name, const std::type_info& cell_type) {
  for (size_t id = 0; id < entries_.size(); ++id) {
    if (entries_[id].name == name) {
      if (*entries_[id].type != cell_type) {
        throw std::logic_error("state '" + std::string{name} +
                               "' is used with two different state types");
      }
      return id;
    }
  }
  entries_.push_back(entry{std::string{name}, &cell_type});
  return entries_.size() - 1;
}

bool key_slot::empty() const noexcept {
  return std::all_of(cells.begin(), cells.end(),
                     [](const auto& cell) { return !cell || cell->empty(); });
}

} // namespace eddy
