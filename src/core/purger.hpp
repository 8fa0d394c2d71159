// The background purger: a thread that wakes every purge delay and gives
// free pages and cached blocks that have waited long enough back to the OS,
// so an idle process shrinks without calling into the allocator.
// BOP_PURGE_THREAD=0 turns it off (purging then rides on allocation slow
// paths only).
#pragma once

#include <cstdint>

#include "platform/spin_lock.hpp"

namespace bop::core {

// Starts the thread once.  Called where no allocator lock is held: thread
// creation allocates (through us).
void purger_maybe_start() noexcept;

// Fork (process.cpp orders the layers): the round lock; the child restarts
// the thread on demand.
void purger_fork(ForkPhase phase) noexcept;

extern bool g_purge_thread_enabled;

// Stats hook (BOP_STATS_INTERVAL_MS): when set before the thread starts, the
// purger also calls g_purger_tick every g_purger_tick_ms milliseconds, and
// runs for it even when purging itself is off.  Null: no tick, no cost.
extern void (*g_purger_tick)() noexcept;
extern std::uint32_t g_purger_tick_ms;

// True on a thread while it starts the purger: what libc allocates for the new
// thread is the allocator's own doing, not to be sampled as the program's.
extern constinit thread_local bool tl_starting_purger;

}  // namespace bop::core
