#include "core/huge.hpp"

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "core/hardening.hpp"
#include "core/heap.hpp"
#include "core/segment.hpp"
#include "platform/os.hpp"
#include "platform/spin_lock.hpp"

namespace bop::core {
namespace {

SpinLock g_huge_lock;
Segment* g_huge_cache[kHugeCacheMax];
unsigned g_huge_count = 0;
std::size_t g_huge_bytes = 0;
std::size_t g_huge_resident[kHugeCacheMax];  // per entry: bytes in memory when cached (mincore)
std::size_t g_huge_resident_total = 0;
// Bytes of live default-aligned huge mappings, and the most seen (decays as
// the purger trims the cache).  The cache may hold what live blocks gave up
// since the peak: it serves them back when the program climbs again.
std::atomic<std::size_t> g_huge_live{0};
std::atomic<std::size_t> g_huge_live_peak{0};

// How many resident bytes the cache may hold.  Counting resident bytes, not
// mapped ones: a cached mapping whose earlier block touched three pages costs
// three pages.  Keeping up to (peak - live) bounds the footprint near the
// live peak (peak RSS) while memory the program just freed stays for reuse.
std::size_t cache_resident_cap() {
  std::size_t live = g_huge_live.load(std::memory_order_relaxed);
  std::size_t peak = g_huge_live_peak.load(std::memory_order_relaxed);
  return kHugeCacheFloor + (peak > live ? peak - live : 0);
}

// Live huge bytes grew or shrank by (after - before).
void note_live(std::size_t before, std::size_t after) {
  std::size_t live =
      g_huge_live.fetch_add(after - before, std::memory_order_relaxed) + (after - before);
  std::size_t peak = g_huge_live_peak.load(std::memory_order_relaxed);
  while (live > peak &&
         !g_huge_live_peak.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
  }
}

constexpr std::size_t round_pages(std::size_t n) {
  return (n + os::kPageSize - 1) & ~(os::kPageSize - 1);
}

// Where the block starts relative to its header: right after it, or at the
// alignment (for alignments up to a segment), or one segment on (above that;
// segment_of's "-1" maps the block back to its header).
constexpr std::size_t block_offset_for(std::size_t alignment) {
  if (alignment <= kHugeHeaderSize) return kHugeHeaderSize;
  return alignment < kSegmentSize ? alignment : kSegmentSize;
}

void register_mapping(Segment* seg, bool live) {
  segment_register(seg, seg->mapping_size, live);
}

void format(Segment* seg, std::size_t mapping_size, std::size_t offset, std::size_t alignment) {
  seg->owner = nullptr;
  seg->kind = SegmentKind::kHuge;
  seg->page_shift = 63;
  seg->page_count = 0;
  seg->mapping_size = mapping_size;
  seg->block_offset = offset;
  seg->block_size = mapping_size - offset;
  seg->block_align = alignment;
  seg->freed_at_ms = 0;
  seg->huge_freed = false;
  seg->huge_sampled.store(0, std::memory_order_relaxed);
}

void unmap_segment(Segment* seg) {
  register_mapping(seg, false);  // first: once unmapped, the range may be another thread's
  os::unmap(seg, seg->mapping_size);
}

// Clears the registry windows of [seg, seg+old_size) that [seg, seg+new_size)
// no longer reaches.  Called BEFORE the address space goes back to the OS:
// afterwards another thread's fresh mapping may sit there and be registered.
void unregister_beyond(Segment* seg, std::size_t old_size, std::size_t new_size) {
  std::size_t kept = (new_size + kSegmentMask) & ~kSegmentMask;
  if (old_size > kept)
    segment_register(reinterpret_cast<char*>(seg) + kept, old_size - kept, false);
}

// Removes entry i (the last one takes its place); lock held.
Segment* cache_remove(unsigned i) {
  Segment* seg = g_huge_cache[i];
  g_huge_bytes -= seg->mapping_size;
  g_huge_resident_total -= g_huge_resident[i];
  --g_huge_count;
  g_huge_cache[i] = g_huge_cache[g_huge_count];
  g_huge_resident[i] = g_huge_resident[g_huge_count];
  return seg;
}

// Adds a freed mapping with `resident` bytes in memory to the cache, first
// unmapping the oldest entries while the cache would be over its caps.
void cache_put(Segment* seg, std::size_t resident) {
  std::size_t cap = cache_resident_cap();
  if (resident > cap || seg->mapping_size > kHugeCacheBytesMax / 4) {
    unmap_segment(seg);
    return;
  }
  for (;;) {
    Segment* evicted = nullptr;
    {
      LockGuard guard(g_huge_lock);
      if (g_huge_count < kHugeCacheMax && g_huge_bytes + seg->mapping_size <= kHugeCacheBytesMax &&
          g_huge_resident_total + resident <= cap) {
        g_huge_cache[g_huge_count] = seg;
        g_huge_resident[g_huge_count++] = resident;
        g_huge_bytes += seg->mapping_size;
        g_huge_resident_total += resident;
        return;
      }
      if (g_huge_count > 0) {
        unsigned oldest = 0;
        for (unsigned i = 1; i < g_huge_count; ++i)
          if (g_huge_cache[i]->freed_at_ms < g_huge_cache[oldest]->freed_at_ms) oldest = i;
        evicted = cache_remove(oldest);
      }
    }
    if (evicted == nullptr) break;
    unmap_segment(evicted);  // outside the lock: munmap of resident pages is slow
  }
  unmap_segment(seg);
}

// Cuts [keep, mapping_size) off a cached mapping and makes it a cached
// mapping of its own (its first two pages become the new header).  The pages
// the tail's earlier blocks faulted in then serve another request instead of
// sitting unused past the end of a smaller block; no data is copied.
// Nothing changes if the OS refuses.
void split_tail(Segment* seg, std::size_t keep) {
  std::size_t tail = seg->mapping_size - keep;
  void* dst = os::map_with_offset(tail, kSegmentSize, kHugeHeaderSize, os::kPageSize);
  if (dst == nullptr) return;
  segment_register(dst, tail, true);
  unregister_beyond(seg, seg->mapping_size, keep);
  if (!os::move_pages(reinterpret_cast<char*>(seg) + keep, tail, dst)) {
    register_mapping(seg, true);
    segment_register(dst, tail, false);
    os::unmap(dst, tail);
    return;
  }
  std::uint32_t freed_at = seg->freed_at_ms;
  seg->mapping_size = keep;
  // The new header sits on what was block data: clear it before use.
  auto* t = static_cast<Segment*>(std::memset(dst, 0, sizeof(Segment)));
  format(t, tail, kHugeHeaderSize, os::kPageSize);
  t->freed_at_ms = freed_at;  // the tail ages from the original free, not from now
  t->huge_freed = true;
  cache_put(t, os::resident_in(t, tail));
}

// Grows a cached mapping to mapping_size: in place when the address space
// after it is free, else by moving its pages.  The pages it had stay
// resident; the new ones cost a fault only when touched.
Segment* grow_cached(Segment* seg, std::size_t mapping_size) {
  if (os::remap_in_place(seg, seg->mapping_size, mapping_size)) {
    seg->mapping_size = mapping_size;
    register_mapping(seg, true);
    return seg;
  }
  register_mapping(seg, false);
  void* moved = os::remap_moving(seg, seg->mapping_size, mapping_size, kSegmentSize,
                                 kHugeHeaderSize, os::kPageSize);
  if (moved == nullptr) {
    os::unmap(seg, seg->mapping_size);
    return nullptr;
  }
  seg = static_cast<Segment*>(moved);
  seg->mapping_size = mapping_size;
  register_mapping(seg, true);
  return seg;
}

// Takes the cached mapping that best serves a default-aligned request of
// mapping_size bytes: the smallest that holds it, else the largest smaller
// one of at least half the size (grown to fit).
// Unless the block is `growing` (realloc: it keeps the whole mapping and
// grows in place), what lies past the request is split off as a cached
// mapping of its own when big enough to serve a huge block, so faulted-in
// pages are not pinned by a smaller block.
Segment* cache_take(std::size_t mapping_size, bool growing) {
  Segment* best = nullptr;
  Segment* below = nullptr;
  {
    LockGuard guard(g_huge_lock);
    unsigned best_index = 0, below_index = 0;
    for (unsigned i = 0; i < g_huge_count; ++i) {
      Segment* s = g_huge_cache[i];
      if (s->mapping_size >= mapping_size) {
        if (best == nullptr || s->mapping_size < best->mapping_size) {
          best = s;
          best_index = i;
        }
      } else if (below == nullptr || s->mapping_size > below->mapping_size) {
        below = s;
        below_index = i;
      }
    }
    if (best == nullptr && (below == nullptr || 2 * below->mapping_size < mapping_size))
      return nullptr;
    unsigned index = best != nullptr ? best_index : below_index;
    cache_remove(index);
  }
  if (best == nullptr) return grow_cached(below, mapping_size);
  std::size_t excess = best->mapping_size - mapping_size;
  if (!growing && excess >= kHugeSplitMin) split_tail(best, mapping_size);
  return best;
}

// A live block's mapping changed size (realloc).
void resize_live(Segment* seg, std::size_t mapping_size) {
  if (seg->block_offset == kHugeHeaderSize) note_live(seg->mapping_size, mapping_size);
  seg->mapping_size = mapping_size;
  seg->block_size = mapping_size - seg->block_offset;
}

}  // namespace

void* huge_alloc(std::size_t size, std::size_t alignment, bool zero, bool growing) noexcept {
  std::size_t offset = block_offset_for(alignment);
  // Refuse sizes no address space can hold (also catches overflow below).
  if (size > (std::size_t{1} << 47)) {
    errno = ENOMEM;
    return nullptr;
  }
  std::size_t block = round_pages(size == 0 ? 1 : size);
  std::size_t mapping_size = offset + block;
  std::size_t block_align = alignment < os::kPageSize ? os::kPageSize : alignment;

  Segment* seg = nullptr;
  bool is_zero = true;
  if (offset == kHugeHeaderSize) {
    seg = cache_take(mapping_size, growing);
    if (seg != nullptr) is_zero = seg->pages[0].is_zero;
  }
  if (seg == nullptr) {
    seg =
        static_cast<Segment*>(os::map_with_offset(mapping_size, kSegmentSize, offset, block_align));
    if (seg == nullptr) {
      heap_collect_all();  // cached and purgeable memory may be what stands in the way
      seg = static_cast<Segment*>(
          os::map_with_offset(mapping_size, kSegmentSize, offset, block_align));
      if (seg == nullptr) {
        errno = ENOMEM;
        return nullptr;
      }
    }
    seg->mapping_size = mapping_size;
    register_mapping(seg, true);
  }
  format(seg, seg->mapping_size, offset, block_align);
  seg->requested = size;
  if (offset == kHugeHeaderSize) note_live(0, seg->mapping_size);
  char* p = reinterpret_cast<char*>(seg) + offset;
  if (zero && !is_zero) std::memset(p, 0, size);
  return p;
}

void huge_free(Segment* seg) noexcept {
  if constexpr (kChecked) {  // never cached: a use after free faults
    checked_note_huge_unmapped(reinterpret_cast<char*>(seg) + seg->block_offset);
    unmap_segment(seg);
    return;
  }
  seg->freed_at_ms = static_cast<std::uint32_t>(os::now_ms());
  seg->huge_freed = true;  // checked builds report a second free of a cached block
  seg->pages[0].is_zero = false;
  // Only default-aligned mappings are reused; the rest go back at once.
  if (seg->block_offset == kHugeHeaderSize) {
    note_live(seg->mapping_size, 0);
    cache_put(seg, os::resident_in(seg, seg->mapping_size));
    if (g_purge_delay_ms == 0) huge_cache_trim(false);
    return;
  }
  unmap_segment(seg);
}

void* huge_realloc(Segment* seg, void* p, std::size_t size, std::size_t alignment) noexcept {
  if (size > (std::size_t{1} << 47)) {
    errno = ENOMEM;
    return nullptr;
  }
  if (alignment > seg->block_align) return nullptr;  // needs a new layout: caller copies
  std::size_t offset = seg->block_offset;
  std::size_t mapping_size = offset + round_pages(size == 0 ? 1 : size);
  // Growth that still fits (the mapping may be a larger cached one or carry
  // headroom), or a shrink that keeps at least a quarter: nothing to do.
  if (mapping_size <= seg->mapping_size &&
      (size >= seg->requested || mapping_size >= seg->mapping_size / 4)) {
    seg->requested = size;
    return p;
  }
  seg->requested = size;
  if (mapping_size < seg->mapping_size) {  // real shrink: the tail goes back to the OS now
    register_mapping(seg, false);
    os::unmap(reinterpret_cast<char*>(seg) + mapping_size, seg->mapping_size - mapping_size);
    resize_live(seg, mapping_size);
    register_mapping(seg, true);
    return p;
  }
  // Grow with 50% headroom: buffers grown in small steps then take one
  // mremap per half again instead of one per step.  Untouched headroom costs
  // address space only.
  std::size_t headroom = seg->mapping_size + seg->mapping_size / 2;
  if (headroom > mapping_size && headroom - mapping_size <= 256 * MiB)
    mapping_size = round_pages(headroom);
  register_mapping(seg, false);
  if (os::remap_in_place(seg, seg->mapping_size, mapping_size)) {
    resize_live(seg, mapping_size);
    register_mapping(seg, true);
    return p;
  }
  void* moved = os::remap_moving(seg, seg->mapping_size, mapping_size, kSegmentSize, offset,
                                 seg->block_align);
  if (moved == nullptr) {
    register_mapping(seg, true);
    errno = ENOMEM;
    return nullptr;
  }
  seg = static_cast<Segment*>(moved);
  resize_live(seg, mapping_size);
  register_mapping(seg, true);
  return reinterpret_cast<char*>(seg) + offset;
}

void huge_cache_trim(bool force) noexcept {
  std::uint32_t now = static_cast<std::uint32_t>(os::now_ms());
  Segment* victims[kHugeCacheMax];
  unsigned n = 0;
  {
    LockGuard guard(g_huge_lock);
    for (unsigned i = 0; i < g_huge_count;) {
      Segment* s = g_huge_cache[i];
      bool old = static_cast<std::uint32_t>(now - s->freed_at_ms) >= g_purge_delay_ms;
      if (force || old) {
        victims[n++] = cache_remove(i);
      } else {
        ++i;
      }
    }
    // The peak decays to what is held now, so a burst long gone no longer
    // lets the cache grow.
    g_huge_live_peak.store(g_huge_live.load(std::memory_order_relaxed) + g_huge_resident_total,
                           std::memory_order_relaxed);
  }
  // Expired mappings are unmapped: a purge would keep the address space for
  // little gain, since the next huge request maps fresh zero pages just as cheaply.
  for (unsigned i = 0; i < n; ++i) unmap_segment(victims[i]);
}

void huge_fork_prepare() noexcept {
  g_huge_lock.lock();
}
void huge_fork_parent() noexcept {
  g_huge_lock.unlock();
}
void huge_fork_child() noexcept {
  g_huge_lock.reset();
}

}  // namespace bop::core
