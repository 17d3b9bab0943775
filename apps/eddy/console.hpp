#pragma once

#include <string>
#include <vector>

namespace eddy::console {

/// `eddy console HOST:PORT [-c COMMAND] [--json]`: `argv` without "console". Returns the
/// exit status: 0, 1 (node unreachable, error answer), 2 (usage).
int main(const std::vector<std::string>& argv);

} // namespace eddy::console
