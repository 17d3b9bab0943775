#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace eddy {

// The framing of Eddy's own binary encodings (map and list state, outbox entries, the
// journal's log): fixed-width little-endian integers and length-prefixed fields. Readers
// throw std::runtime_error when the bytes end early.

void append_u64(std::string& out, uint64_t x);
uint64_t next_u64(std::string_view in, size_t& pos);

/// Appends `bytes` with a 4-byte length prefix (std::length_error beyond 4 GiB).
void append_field(std::string& out, std::string_view bytes);
/// The next field written by `append_field` at `pos`, which moves past it.
std::string_view next_field(std::string_view in, size_t& pos);

} // namespace eddy
