#pragma once

// The parent side of eddy-bench: runs variants in child processes and reads what they print.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cases.hpp"
#include "eddy/config/options.hpp"

namespace bench {

/// The key=value fields of a child's report line.
using fields = std::map<std::string, std::string>;

/// Field `key` of `f` as a number; throws when it is missing or not a number.
double number(const fields& f, const std::string& key);

/// A fresh directory `<root>/eddy-bench-XXXXXX`, removed with its content on destruction.
/// The variants' data dirs: under --data-dir, so that durable state goes to the disk the
/// user picked (a tmpfs /tmp would make fsync free). Not thread-safe; owned by the parent.
class scratch_dir {
public:
  explicit scratch_dir(const std::filesystem::path& root);
  ~scratch_dir();
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const noexcept {
    return path_;
  }

private:
  std::filesystem::path root_;
  bool created_root_;
  std::filesystem::path path_;
};

/// Runs this executable with `args` and returns the key=value fields of its last stdout line.
std::optional<fields> run_child(const std::vector<std::string>& args);

/// The options a child needs to reproduce the parent's configuration, with `data_dir` as its
/// --data-dir. The state durability comes from the variant.
std::vector<std::string> child_args(const case_info& c, const variant_info& v, uint64_t events,
                                    uint32_t run_index, const std::filesystem::path& data_dir,
                                    const eddy::command_line& cli);

/// Runs variant `v` once in a child with a fresh data dir; nullopt after a failure.
std::optional<fields> run_fresh(const case_info& c, const variant_info& v, uint64_t events,
                                const eddy::command_line& cli);

} // namespace bench
