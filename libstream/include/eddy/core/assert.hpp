#pragma once

#include <cstdio>
#include <cstdlib>

/// Always-on assertion for Eddy's own invariants (never for input validation): prints the
/// file, line and condition and aborts, independent of NDEBUG.
#define EDDY_ASSERT(cond)                                                                          \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      std::fprintf(stderr, "%s:%d: EDDY_ASSERT failed: %s\n", __FILE__, __LINE__, #cond);          \
      std::abort();                                                                                \
    }                                                                                              \
  } while (false)
