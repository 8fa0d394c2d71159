// Process-wide start-up: options from the environment, the thread-exit hook
// and the fork handlers.  Runs lazily on the first allocation of the process
// (which may come long before main, from another library's constructor).
#pragma once

#include "platform/spin_lock.hpp"

namespace bop::core {

// Idempotent and thread-safe.  A re-entrant call from inside the start-up
// itself (libc allocating for pthread_atfork) returns at once.
void process_init() noexcept;

// The fork handler of the layer above the core (stats), set once before the
// program can fork.  It runs first on prepare and last on parent and child:
// code holding its locks may call into the core, never the reverse.
void process_set_fork_hook(void (*hook)(ForkPhase) noexcept) noexcept;

// Defined in heap.cpp: creates the pthread key whose destructor pools the
// heap of an exiting thread.
void process_init_thread_exit_key() noexcept;

}  // namespace bop::core
