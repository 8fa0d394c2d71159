// One writer's share of the BOP_STATS counters.  Every heap carries one
// (core::Heap::stats), so the counted fast paths address it at a fixed
// offset from the heap pointer they already hold: no shard index, no bounds
// test, no shared shard for threads past a fixed count.  Threads without a
// heap share one more, under a lock (process_counters.cpp).
//
// Only the heap's thread writes it; readers (snapshots) load the atomics.
// Field meanings: see process_counters.hpp.
#pragma once

#include <atomic>
#include <cstdint>

#include "core/size_classes.hpp"

namespace bop::stats {

inline constexpr unsigned kBuckets = core::kClassCount + 1;  // the classes, then huge
inline constexpr unsigned kHugeBucket = core::kClassCount;

struct alignas(64) ProcessShard {
  // Hot: written by the shard's owner on every event (one `add` each).
  std::atomic<std::uint64_t> allocated[kBuckets];  // blocks handed out, per class
  std::atomic<std::uint64_t> freed[kBuckets];      // blocks given back, per class
  // Owner only, hot: bytes left before the rare path, one countdown per
  // side, so each event touches one.  `alloc_left` is armed at the nearer of
  // the next leak sample and kPublishBytes, `free_left` at kPublishBytes;
  // `*_armed` hold the values they were armed at, so the rare path knows how
  // many bytes went by (process_counters.cpp).
  std::int64_t alloc_left = 0;
  std::int64_t free_left = 0;
  std::int64_t alloc_armed = 0;
  std::int64_t free_armed = 0;
  // Owner only, rare: realloc's live-byte change not published yet, bytes to
  // the next sample, the sampler's random source (0: not seeded; the shard's
  // first allocation only starts it).
  std::int64_t resized = 0;
  std::int64_t sample_left = 0;
  std::uint64_t sample_rng = 0;
  // Rare multi-word events (huge blocks, realloc), under `seq` (odd: mid-update).
  std::atomic<std::uint64_t> seq{0};
  std::atomic<std::uint64_t> huge_bytes_allocated{0};
  std::atomic<std::uint64_t> huge_bytes_freed{0};
  std::atomic<std::uint64_t> grown{0};   // realloc growth in usable bytes
  std::atomic<std::uint64_t> shrunk{0};  // realloc shrinking in usable bytes
};

}  // namespace bop::stats
