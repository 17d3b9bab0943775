#pragma once

/// Everything a job author needs: the builder API, state, sources, sinks and codecs.
#include "eddy/codec/json.hpp"
#include "eddy/config/options.hpp"
#include "eddy/core/error.hpp"
#include "eddy/graph/job_builder.hpp"
#include "eddy/io/dead_letters.hpp"
#include "eddy/io/sinks.hpp"
#include "eddy/io/sources.hpp"
#include "eddy/state/keyed_state.hpp"
