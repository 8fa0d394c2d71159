// The process-wide counters behind BOP_STATS, shaped for the malloc fast
// path: a counted malloc+free adds to its thread's shard a histogram bump, a
// peak update and a sampler countdown, all plain loads and stores on lines no
// other thread writes.
//
// The size-class histogram is the allocation counter: every block of class c
// has exactly kClassSize[c] usable bytes, so counting blocks per class
// (allocated and freed) gives the counts and the bytes at once, one word per
// event.  Huge blocks (the last bucket) and realloc's size changes add bytes
// that the histogram cannot derive; those rare events keep their own words
// under a sequence bracket, so a snapshot never sees them half-done.
//
// Consistency: a snapshot reads every shard's freed side before any
// allocated side.  A block is counted as allocated (release store) before it
// can be freed on any thread, so deallocations <= allocations in every
// snapshot, and bytes follow counts.
#pragma once

#include <bop/stats.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/alloc.hpp"
#include "stats/peak.hpp"
#include "stats/seqlock.hpp"

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
  std::atomic<std::uint32_t> epoch{0};
  // Leak sampler: bytes left before the next sample, and its random source
  // (owner only; a heap's next thread continues the countdown).
  std::int64_t sample_countdown = 0;
  std::uint64_t sample_rng = 0;
  // Rare multi-word events (huge blocks, realloc), under `seq` (odd: mid-update).
  std::atomic<std::uint64_t> seq{0};
  std::atomic<std::uint64_t> huge_bytes_allocated{0};
  std::atomic<std::uint64_t> huge_bytes_freed{0};
  std::atomic<std::uint64_t> grown{0};   // realloc growth in usable bytes
  std::atomic<std::uint64_t> shrunk{0};  // realloc shrinking in usable bytes
};

// Shards 0..kStatsShards-1 belong to the heap of that index; the last one is
// shared by heap-less and surplus threads (written under a lock).
// Hidden on the declarations (see core::g_options): direct rip-relative
// addressing on the counted fast paths instead of a GOT load.
[[gnu::visibility("hidden")]] extern ProcessShard g_shards[detail::kStatsShards + 1];
[[gnu::visibility("hidden")]] extern std::atomic<std::uint32_t> g_epoch;
[[gnu::visibility("hidden")]] extern std::atomic<std::int64_t> g_folded;
[[gnu::visibility("hidden")]] extern std::atomic<std::uint64_t> g_peak;

inline peak::Totals process_totals() noexcept {
  return {g_folded, g_peak, g_epoch};
}

// Out of line, rare: a new high-water mark of the shard (or its first event
// since a reset), a fold, a sample due, any event of a huge block or of a thread
// without its own shard.
[[gnu::noinline]] void* on_alloc_rare(ProcessShard& s, void* p, std::size_t usable) noexcept;
[[gnu::noinline]] void* record_alloc_slow(void* p) noexcept;
[[gnu::noinline]] void counted_free_slow(void* p) noexcept;  // counts and frees
[[gnu::noinline]] void fold_and_free(ProcessShard& s, void* p) noexcept;
void record_resize(const void* old_block, std::size_t old_usable, const void* p) noexcept;

// A block of class `cls` (usable bytes `usable`) was handed out from shard
// s; returns p.  A new high-water mark (every allocation while a thread's
// live bytes grow) is two stores here; the rare cases (time to fold -- which
// happens at a new high on this side --, the first event since a reset, a
// sample due) are one tail call, so the common case saves no registers.
inline void* record_alloc_in(ProcessShard& s, unsigned cls, std::size_t usable, void* p) {
  bump(s.allocated[cls]);
  std::int64_t pending = s.pending.load(peak::kRelaxed) + static_cast<std::int64_t>(usable);
  s.pending.store(pending, peak::kRelaxed);
  std::int64_t countdown = s.sample_countdown - static_cast<std::int64_t>(usable);
  s.sample_countdown = countdown;
  if (pending > s.pending_max.load(peak::kRelaxed)) {
    s.pending_max.store(pending, peak::kRelaxed);
    s.max_base.store(g_folded.load(peak::kRelaxed), peak::kRelaxed);
    if (pending >= peak::kFoldBytes) [[unlikely]]
      return on_alloc_rare(s, p, usable);
  }
  if (countdown <= 0 || s.epoch.load(peak::kRelaxed) != g_epoch.load(peak::kRelaxed)) [[unlikely]]
    return on_alloc_rare(s, p, usable);
  return p;
}

// Returns whether the shard must fold now (a rare tail call for the caller).
inline bool record_free_in(ProcessShard& s, unsigned cls, std::size_t usable) {
  bump(s.freed[cls]);
  std::int64_t pending = s.pending.load(peak::kRelaxed) - static_cast<std::int64_t>(usable);
  s.pending.store(pending, peak::kRelaxed);
  return pending <= -peak::kFoldBytes;
}

// Counts block p, just allocated by the calling thread (any path).  Fast
// case: a small or medium block (so the thread has a heap) whose heap has its
// own shard.
inline void* record_alloc(void* p) noexcept {
  core::Segment* seg = core::segment_of(p);
  unsigned index = core::tl_heap->index;
  if (seg->kind == core::SegmentKind::kHuge || index >= detail::kStatsShards) [[unlikely]]
    return record_alloc_slow(p);
  const core::Page* page = seg->page_of(p);
  return record_alloc_in(g_shards[index], page->size_class, page->block_size, p);
}

// malloc with the count inside the core's fast path: the same TLS load,
// table load and free-list pop (core::page_pop), and the page at hand gives
// the class and block size.  Anything else (no block at hand, a big or huge
// size, a heap without its own shard) takes the core's path and counts after.
template <bool kZero>
inline void* counted_alloc_block(std::size_t size) noexcept {
  core::Heap* heap = core::tl_heap;
  // Checked builds take the core's (checked) path: a block popped here would
  // miss its canary and zero verification (core/hardening.hpp).
  if (!core::kChecked && size <= core::kDirectMax) [[likely]] {
    core::Page* page = heap->direct[core::direct_slot(size)];
    core::Block* b = page->free;
    if (b != nullptr && heap->index < detail::kStatsShards) [[likely]] {
      void* p = core::page_pop<kZero>(page, b, size);
      return record_alloc_in(g_shards[heap->index], page->size_class, page->block_size, p);
    }
  }
  void* p = core::alloc<kZero>(size);
  return p == nullptr ? nullptr : record_alloc(p);
}

// Counts and frees block p: the core's free fast path with the count
// inside it.  Fast case: a small or medium block on a page holding no leak
// sample, freed by a thread with its own shard (the sentinel heap's index is
// past every shard).  The calling thread's shard counts the free, also when
// another heap owns the block (the core then hands it back as usual): a
// block's page keeps its class and size while the block is live.
inline void counted_free_block(void* p) noexcept {
  core::Segment* seg = core::segment_of(p);
  core::Heap* heap = core::tl_heap;
  if constexpr (core::kChecked) {
    // Checked builds: validate p before it is counted (a bad pointer aborts
    // here), then count and free through the core's checked path
    // (counted_free_slow ends in core::dealloc), which verifies the canary.
    (void)core::usable_size(p);
    return counted_free_slow(p);
  }
  if (seg->kind != core::SegmentKind::kHuge && heap->index < detail::kStatsShards) [[likely]] {
    core::Page* page = seg->page_of(p);
    if (page->sampled.load(std::memory_order_relaxed) == 0) [[likely]] {
      ProcessShard& shard = g_shards[heap->index];
      if (record_free_in(shard, page->size_class, page->block_size)) [[unlikely]]
        return fold_and_free(shard, p);
      if (seg->owner == heap) [[likely]]
        return core::free_to_page(heap, seg, static_cast<core::Block*>(p));
      return core::free_slow(heap, seg, p);  // another heap's block
    }
  }
  counted_free_slow(p);  // every branch ends in a tail call: no saved registers
}

// Sums of every shard, as a consistent snapshot (see the top of this file).
AllocationStats process_snapshot() noexcept;
// Rebasing reset, as StatsRecorder::reset (see include/bop/stats.hpp).
void process_reset() noexcept;
// Blocks allocated in bucket `b` (the size-class histogram; kHugeBucket: huge).
std::uint64_t bucket_total(unsigned b) noexcept;

}  // namespace bop::stats
