#pragma once

// Keyed state, all of it. A job author needs cells.hpp (value_state, map_state,
// list_state) and keyed_context.hpp (what `process` gets as `ctx`); the rest is the
// engine's: state_catalog.hpp (state types, ids, schema versions), timer_book.hpp and
// keyed_store.hpp (a partition's keys, cache and commits).

#include "eddy/state/cells.hpp"
#include "eddy/state/keyed_context.hpp"
#include "eddy/state/keyed_store.hpp"
#include "eddy/state/state_catalog.hpp"
#include "eddy/state/timer_book.hpp"
