// Process-wide start-up: options from the environment, the thread-exit hook
// and the fork handlers.  Runs lazily on the first allocation of the process
// (which may come long before main, from another library's constructor).
#pragma once

namespace bop::core {

// Idempotent and thread-safe.  A re-entrant call from inside the start-up
// itself (libc allocating for pthread_atfork) returns at once.
void process_init() noexcept;

// Defined in heap.cpp: creates the pthread key whose destructor pools the
// heap of an exiting thread.
void process_init_thread_exit_key() noexcept;

}  // namespace bop::core
