// One writer's share of the BOP_STATS counters.  Every heap carries one
// (core::Heap::stats), so the counted fast paths address it at a fixed
// offset from the heap pointer they already hold: no shard index, no bounds
// test, no shared shard for threads past a fixed count.  Threads without a
// heap share one more, under a lock (process_counters.cpp).
//
// Only the heap's thread writes it; readers (snapshots) load the atomics.
// Field meanings: see process_counters.hpp and peak.hpp.
#pragma once

#include <atomic>
#include <cstdint>

#include "core/size_classes.hpp"

namespace bop::stats {

inline constexpr unsigned kBuckets = core::kClassCount + 1;  // the classes, then huge
inline constexpr unsigned kHugeBucket = core::kClassCount;

struct alignas(64) ProcessShard {
  // Hot: written by the shard's owner on every event.
  std::atomic<std::uint64_t> allocated[kBuckets];  // blocks handed out, per class
  std::atomic<std::uint64_t> freed[kBuckets];      // blocks given back, per class
  std::atomic<std::int64_t> pending{0};            // peak tracking: see stats/peak.hpp
  std::atomic<std::int64_t> pending_max{0};
  std::atomic<std::int64_t> max_base{0};
  // Owner only.  `countdown`: allocated bytes left before the next look at
  // the rare cases, set to at most both the bytes left to the next leak
  // sample and the growth left before `pending` must fold, so one test per
  // allocation covers both.  `countdown_set`: its value when set, so the
  // rare path knows how many bytes went by.  `sample_left`: bytes to the next
  // sample as of then.  `sample_rng`: the sampler's random source (0: not
  // seeded; the shard's first allocation only starts its countdown).
  std::int64_t countdown = 0;
  std::int64_t countdown_set = 0;
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
