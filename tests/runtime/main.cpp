// The runtime suite: real jobs on eddy::engine, compared with references computed in the
// tests themselves. Each test file covers one behaviour of the runtime.

#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
