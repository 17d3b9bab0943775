#pragma once

#include <string>
#include <vector>

namespace eddy::savepoint_cli {

/// `eddy savepoint list|info|verify|delete ...`: `argv` without "savepoint". Returns the exit
/// status: 0, 1 (a savepoint that does not verify or cannot be read), 2 (usage).
int main(const std::vector<std::string>& argv);

} // namespace eddy::savepoint_cli
