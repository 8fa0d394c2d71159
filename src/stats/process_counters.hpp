// The process-wide counters behind BOP_STATS, shaped for the malloc fast
// path: a counted malloc+free adds to its thread's shard (embedded in its
// heap: stats/process_shard.hpp) one histogram `add` and one countdown per
// event, on lines no other thread writes.
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
//
// Peak: no event looks at it.  When a countdown runs out (each side's at
// most every kPublishBytes of the thread's allocated or freed bytes) the
// shard publishes its live-byte change since the last time into g_published
// (one atomic add) and raises g_peak to the sum.  Every shard's published
// figure is then within kPublishBytes of its true one, either way, so g_peak
// is at most (N - 1) * kPublishBytes above a total that really was live with
// N threads writing (never above, with one), and a peak that lasted between
// two publications is missed by at most N * kPublishBytes.  Snapshots
// compute current memory exactly and report max(g_peak, current).
#pragma once

#include <bop/stats.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/alloc.hpp"
#include "core/options.hpp"
#include "core/process.hpp"
#include "stats/leak_sampler.hpp"
#include "stats/process_shard.hpp"
#include "stats/seqlock.hpp"

namespace bop::stats {

// Hidden on the declarations (see core::g_options): direct rip-relative
// addressing on the counted fast paths instead of a GOT load.
// (Both written only when a countdown runs out: no event touches them.)
[[gnu::visibility("hidden")]] extern std::atomic<std::int64_t> g_published;
[[gnu::visibility("hidden")]] extern std::atomic<std::uint64_t> g_peak;

// How far a shard's published live bytes may trail its true ones.
inline constexpr std::int64_t kPublishBytes = 256 * 1024;

// Out of line, rare: a countdown ran out (a sample or a publication is
// due), any event of a huge block or of a thread without a heap.
// (They take the heap, not its shard: the caller then has nothing to compute
// for them ahead of its branch; GCC hoisted the shard's address above it.)
[[gnu::noinline]] void* on_alloc_rare(core::Heap* heap, void* p, std::size_t usable) noexcept;
[[gnu::noinline]] void* record_alloc_slow(void* p) noexcept;
[[gnu::noinline]] void counted_free_slow(void* p) noexcept;  // counts and frees
// Counts and frees p: another heap's block, or one that may be a leak sample.
[[gnu::noinline]] void counted_free_other(core::Heap* heap, core::Segment* seg, void* p) noexcept;
[[gnu::noinline]] void publish_and_free(core::Heap* heap, void* p) noexcept;
void record_resize(std::size_t old_usable, const void* p) noexcept;

// A block of class `cls` (usable bytes `usable`) was handed out from shard
// s; returns p.  Two instructions and a branch: the histogram `add` and the
// countdown's `sub` to memory, whose flags the branch tests.  The rare case
// is one tail call, so the common case saves no registers.
[[gnu::always_inline]] inline void* record_alloc_in(core::Heap* heap, unsigned cls,
                                                    std::size_t usable, void* p) {
  ProcessShard& s = heap->stats;
  bump(s.allocated[cls]);
  if (count_down(s.alloc_left, static_cast<std::int64_t>(usable))) [[unlikely]]
    return on_alloc_rare(heap, p, usable);
  return p;
}

// Returns whether the shard must publish now (a rare tail call for the caller).
[[gnu::always_inline]] inline bool record_free_in(ProcessShard& s, unsigned cls,
                                                  std::size_t usable) {
  bump(s.freed[cls]);
  return count_down(s.free_left, static_cast<std::int64_t>(usable));
}

// Stats on and the environment read: one compare (kText and kJson are 1, 2).
inline bool counting() {
  return static_cast<unsigned>(core::g_options.stats_mode) - 1u < 2u;
}

// Counts block p, just allocated by the calling thread (any path), if stats
// are on (the first allocation reads the environment on its way).
inline void* record_alloc(void* p) noexcept {
  if (p == nullptr || !counting()) return p;
  core::Segment* seg = core::segment_of(p);
  core::Heap* heap = core::tl_heap;
  if (seg->kind == core::SegmentKind::kHuge || heap->is_sentinel) [[unlikely]]
    return record_alloc_slow(p);
  const core::Page* page = seg->page_of(p);
  return record_alloc_in(heap, page->size_class, page->block_size, p);
}

// malloc with the count inside the core's fast path: the same TLS load,
// table load and free-list pop (core::page_pop), and the page at hand gives
// the class and block size.  A block at hand means a real heap (the
// sentinel's pages are empty), whose thread read the environment when it
// got it, so this path needs no "stats on?" test of its own.  Anything else
// (no block at hand, a big or huge size) takes the core's path and counts
// after.
template <bool kZero>
[[gnu::noinline]] void* counted_alloc_other(std::size_t size) noexcept {
  // A huge first allocation installs no heap: read the environment here.
  if (core::g_options.stats_mode == core::StatsMode::kUnknown) core::process_init();
  return record_alloc(core::alloc<kZero>(size));
}

template <bool kZero>
inline void* counted_alloc_block(std::size_t size) noexcept {
  core::Heap* heap = core::tl_heap;
  // Checked builds take the core's (checked) path: a block popped here would
  // miss its canary and zero verification (core/hardening.hpp).
  if (!core::kChecked && size <= core::kDirectMax) [[likely]] {
    core::Page* page = core::direct_page(heap, core::direct_slot(size));
    if (core::Block* b = page->free; b != nullptr) [[likely]] {
      void* p = core::page_pop<kZero>(page, b, size);
      return record_alloc_in(heap, page->size_class, page->block_size, p);
    }
  }
  return counted_alloc_other<kZero>(size);
}

// Counts and frees block p: the core's free fast path with the count
// inside it.  Fast case: a block of the calling thread's own heap (so a
// real heap, whose thread read the environment, and a small or medium block:
// huge blocks and the sentinel own no segment) that is not a leak sample
// (page->sampled says so without the sampler's table for most blocks).  A free of another heap's
// block is counted in the calling thread's shard, then handed back by the core as usual: a block's
// page keeps its class and size while the block is live.
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
  if (seg->owner == heap) [[likely]] {
    core::Page* page = seg->page_of(p);
    // Most pages hold no leak sample: one test.  A page that does goes the
    // other way, where the tag test tells most of its blocks from the sample.
    if (page->sampled.load(std::memory_order_relaxed) == 0) [[likely]] {
      if (record_free_in(heap->stats, page->size_class, page->block_size)) [[unlikely]]
        return publish_and_free(heap, p);
      return core::free_to_page(heap, seg, static_cast<core::Block*>(p), page);
    }
  }
  counted_free_other(heap, seg, p);  // every branch ends in a tail call: no saved registers
}

// Sums of every shard, as a consistent snapshot (see the top of this file).
AllocationStats process_snapshot() noexcept;
// Rebasing reset, as StatsRecorder::reset (see include/bop/stats.hpp).
void process_reset() noexcept;
// Blocks allocated in bucket `b` (the size-class histogram; kHugeBucket: huge).
std::uint64_t bucket_total(unsigned b) noexcept;
// Fork: the snapshot lock, then the shared shard's (process_stats.cpp orders all).
void counters_fork(ForkPhase phase) noexcept;

}  // namespace bop::stats
