#pragma once

// Private to the inspector: the console's command language. The commands with their usage
// (`help` lists them), how a command line splits into words and options, the answers'
// envelope ({"ok": true, "command", "data"} or {"ok": false, "error"}), and the errors
// that name a mistyped word. Pure functions, no actor; thread-safe.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <nlohmann/json.hpp>

namespace eddy::detail::inspect {

/// Answers keep the order of their keys, so that the console renders any table as built.
using json = nlohmann::ordered_json;
using words = std::vector<std::string>;

/// One console command as `help` describes it.
struct command_info {
  const char* name;
  const char* args;
  const char* summary;
  const char* example;
};

/// Every command, in the order `help` lists them.
std::span<const command_info> commands();

/// "usage: NAME ARGS, e.g. EXAMPLE" of command `name` ("usage: " alone for none).
std::string usage_of(std::string_view name);

/// The closest of `names` to `word`, if close enough to be a typo (empty otherwise).
std::string suggestion(std::string_view word, const std::vector<std::string>& names);
/// "; did you mean 'NAME'?" for the closest of `names`, empty when none is close.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& names);

/// Splits a command line into words. A word in double or single quotes may hold spaces
/// ("new york"); a word starting with { or [ runs to its matching bracket, so that JSON
/// values need no quoting. Fails for an unclosed quote or bracket.
[[nodiscard]] caf::expected<words> split_words(std::string_view line);

/// Removes `--name VALUE` from `args`; returns VALUE (nullopt when absent). Fails when the
/// value is missing.
[[nodiscard]] caf::expected<std::optional<std::string>> take_option(words& args,
                                                                    const std::string& name);

/// The decimal number `text`; fails naming `what` ("--limit takes a number, not 'x'").
[[nodiscard]] caf::expected<uint64_t> parse_number(const std::string& text,
                                                   const std::string& what);

/// A partition number of at most 9 digits; nullopt for anything else.
std::optional<uint32_t> parse_partition(const std::string& text);

/// Milliseconds since the epoch as UTC "2026-11-29T10:00:00.123Z".
std::string utc_text(int64_t ms);

/// A watermark for the console: null when there is none, "idle", "end", or the time.
json watermark_json(int64_t watermark);

/// The failed answer {"ok": false, "error": message}.
json fail(const std::string& message);
/// The answer {"ok": true, "command": command, "data": data}.
json answer(const std::string& command, json data);

/// An error about the console's request: a mistyped command, operator, key or argument.
/// Its message is what the console shows.
caf::error bad_request(std::string message);
/// What the console shows of `err`: the message of an Eddy error, else its description.
std::string message_of(const caf::error& err);
/// The failed answer's text for `err`.
std::string failed(const caf::error& err);

} // namespace eddy::detail::inspect
