// BOP_STATS_INTERVAL_MS=N: the background purger thread samples current
// memory, peak, resident set and the allocation count every N ms into a
// fixed table (mapped from the OS on start); the JSON report carries it as
// "timeline".  Off (the default) it costs nothing: no thread wakes for it and
// no allocation path looks at it.
#pragma once

#include "platform/spin_lock.hpp"
#include "platform/text_writer.hpp"

namespace bop::stats {

// Installs the purger tick and starts the thread (once, at start-up).
void timeline_start() noexcept;

// ,"timeline":{...} for the JSON report (nothing when the timeline is off);
// its last point is taken now.
void write_timeline(TextWriter& w) noexcept;

// Fork: the points' lock (process_stats.cpp orders all).
void timeline_fork(ForkPhase phase) noexcept;

}  // namespace bop::stats
