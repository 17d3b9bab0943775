#include "eddy/core/error.hpp"

#include <caf/atom.hpp>
#include <caf/message.hpp>

namespace eddy {

std::string to_string(errc x) {
  switch (x) {
    case errc::none:
      return "none";
    case errc::invalid_graph:
      return "invalid_graph";
    case errc::invalid_config:
      return "invalid_config";
    case errc::io_failure:
      return "io_failure";
    case errc::user_code_failed:
      return "user_code_failed";
    case errc::actor_failed:
      return "actor_failed";
    case errc::state_mismatch:
      return "state_mismatch";
    case errc::disk_full:
      return "disk_full";
    case errc::corrupt_journal:
      return "corrupt_journal";
    case errc::fenced:
      return "fenced";
    case errc::invalid_request:
      return "invalid_request";
    case errc::invalid_savepoint:
      return "invalid_savepoint";
  }
  return "unknown";
}

caf::error make_error(errc code, std::string message) {
  return caf::error{static_cast<uint8_t>(code), caf::atom("eddy"),
                    caf::make_message(std::move(message))};
}

std::string describe(const caf::error& err) {
  if (!err) {
    return "no error";
  }
  std::string result;
  if (err.category() == caf::atom("eddy")) {
    result = to_string(static_cast<errc>(err.code()));
  } else {
    result = to_string(err.category()) + " error " + std::to_string(err.code());
  }
  const auto& ctx = err.context();
  if (ctx.size() == 1 && ctx.match_element<std::string>(0)) {
    result += ": ";
    result += ctx.get_as<std::string>(0);
  } else if (!ctx.empty()) {
    result += ": ";
    result += to_string(ctx);
  }
  return result;
}

} // namespace eddy
