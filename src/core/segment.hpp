// Segments and pages: carving 4 MiB segments into pages for a heap, giving
// pages back, and returning their memory to the OS after the purge delay.
#pragma once

#include <atomic>
#include <cstdint>

#include "core/types.hpp"

namespace bop::core {

// A fresh page of size class `cls` for `heap`, with no block carved yet;
// nullptr when the OS has no memory left.
Page* page_acquire(Heap* heap, unsigned cls) noexcept;

// `page` has no block in use: it goes back to its segment and waits in the
// heap's purge queue (its memory stays until the purge delay has passed), or
// with `purge_now` returns its memory to the OS at once (pages trimmed on the
// purger's request, which comes once a purge round).
void page_release(Heap* heap, Page* page, bool purge_now = false) noexcept;

// Purges free pages that waited longer than the purge delay (all of them if
// `force`), and releases segments that became entirely free and clean.
void heap_purge(Heap* heap, std::uint32_t now_ms, bool force) noexcept;

// Gives purged cached segments back to the OS (all if `force`).
void segment_cache_trim(bool force) noexcept;

// Is p inside a live segment (or huge mapping) of ours?  Slow-path misuse checks.
bool segment_is_registered(const void* p) noexcept;
void segment_register(const void* segment, std::size_t size, bool live) noexcept;

// The registry: one bit per 4 MiB of the 47-bit address space (mapped at the
// first query or registration, then never moved).  The checked build's free
// fast path tests p's bit itself (hardening_inline.hpp).
inline constexpr std::size_t kRegistryBits = std::size_t{1} << (47 - kSegmentShift);
extern std::atomic<std::atomic<std::uint64_t>*> g_segment_registry;

// segment_is_registered without the call, for slow paths that run often
// (every cross-thread free): a load, a shift and a bit test.  No registry
// yet means no segment registered either, or its mapping failed: either
// way "cannot tell", so do not accuse.
// p's bit in a registry that exists.
inline bool registry_has(const std::atomic<std::uint64_t>* registry, const void* p) noexcept {
  std::uintptr_t bit = (reinterpret_cast<std::uintptr_t>(p) >> kSegmentShift) & (kRegistryBits - 1);
  return (registry[bit / 64].load(std::memory_order_relaxed) >> (bit % 64)) & 1;
}

inline bool segment_is_registered_inline(const void* p) noexcept {
  auto* registry = g_segment_registry.load(std::memory_order_acquire);  // a plain mov on x86-64
  return registry == nullptr || registry_has(registry, p);
}

// Fork (process.cpp orders the layers): the segment cache's lock.
void segment_fork(ForkPhase phase) noexcept;

// The purge delay in milliseconds (BOP_PURGE_DELAY_MS; 0 = purge at once).
extern std::uint32_t g_purge_delay_ms;

// Zero-size queue helpers, shared by heap.cpp.
void queue_push_front(PageQueue& q, Page* page) noexcept;
void queue_push_back(PageQueue& q, Page* page) noexcept;
void queue_remove(PageQueue& q, Page* page) noexcept;

inline std::uint32_t clock_ms32(std::uint64_t ms) {
  return static_cast<std::uint32_t>(ms);
}

}  // namespace bop::core
