// Thread heaps: the slow paths behind alloc.hpp's inline fast paths.
#pragma once

#include <cstddef>

#include "core/types.hpp"

namespace bop::core {

// The calling thread's heap.  Starts as the sentinel (whose pages are all
// empty), so a thread's first allocation falls into the slow path, which
// installs a real heap.  initial-exec TLS: one %fs-relative load.
extern constinit thread_local Heap* tl_heap __attribute__((tls_model("initial-exec")));

// Refills a page of class `cls` (or installs the thread's heap) and pops a
// block, zeroed when kZero.
// Returns nullptr with errno = ENOMEM when memory is exhausted.
template <bool kZero>
void* alloc_slow(Heap* heap, std::size_t size, unsigned cls) noexcept;

// Points every direct slot at the empty page, so the owner's next small
// allocation takes the slow path (which collects remote frees: remote.hpp).
// Any thread may call it.  Without `force`, only if the heap is not marked
// poked already; the purger forces it (an owner's update_direct may have
// overwritten part of an earlier poke, leaving the mark set).
void heap_poke(Heap* heap, bool force) noexcept;

// The owner points every direct slot at its class's current page again.
void heap_restore_direct(Heap* heap) noexcept;

// Releases the empty pages kept as their class's only page (purger request).
void heap_trim(Heap* heap) noexcept;

// A local free made the page empty or un-full.
void page_after_free(Heap* heap, Page* page) noexcept;

// Frees that are not local to the calling thread's heap: remote and huge.
void free_slow(Heap* heap, Segment* seg, void* p) noexcept;
// free_slow past its validation of p (checked builds validated it already).
void free_slow_validated(Heap* heap, Segment* seg, void* p) noexcept;

// The calling thread's heap, installing one if it has none.
Heap* heap_get_or_init() noexcept;

// Thread exit (pthread key destructor): hand everything back, pool the heap.
void heap_thread_exit(void* heap) noexcept;

// Returns free memory of this thread and of abandoned heaps to the OS now.
void heap_collect_all() noexcept;

// Calls fn(heap, arg) for every heap ever made (live, pooled or in use).
template <class Arg>
void for_each_heap(void (*fn)(Heap*, Arg), Arg arg) noexcept;

// Fork (process.cpp orders the layers): the pool lock and every heap's page lock.
void heap_fork(ForkPhase phase) noexcept;

extern std::atomic<Heap*> g_all_heaps;

template <class Arg>
void for_each_heap(void (*fn)(Heap*, Arg), Arg arg) noexcept {
  for (Heap* h = g_all_heaps.load(std::memory_order_acquire); h != nullptr; h = h->next_all)
    fn(h, arg);
}

}  // namespace bop::core
