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
std::size_t g_huge_bytes = 0;  // mapped bytes in the cache
// Mapped bytes of live default-aligned huge blocks, and the most seen (it
// decays as the purger trims the cache).
std::atomic<std::size_t> g_huge_live{0};
std::atomic<std::size_t> g_huge_live_peak{0};

// How many mapped bytes the cache may hold: what live blocks gave up since
// their peak, plus a little.  Every page of a cached mapping may be resident,
// so this bounds the footprint (live + cached) near the live peak, while the
// memory a program frees stays for its next climb.  With pages moved rather
// than faulted (below), a footprint that does not grow means no page faults.
std::size_t cache_cap() {
  std::size_t live = g_huge_live.load(std::memory_order_relaxed);
  std::size_t peak = g_huge_live_peak.load(std::memory_order_relaxed);
  return kHugeCacheFloor + (peak > live ? peak - live : 0);
}

// Live huge bytes went from `before` to `after` (unsigned wrap-around adds the
// difference either way).
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
  seg->set_page_shift(63);
  seg->page_count = 0;
  seg->mapping_size = mapping_size;
  seg->block_offset = offset;
  seg->block_size = mapping_size - offset;
  seg->block_align = alignment;
  seg->freed_at_ms = 0;
  seg->huge_freed = false;
  seg->huge_sampled.store(0, std::memory_order_relaxed);
}

// A header made on pages that held block data: cleared first, so no stale
// field (is_zero, list links) survives; pages[0].is_zero reads false, which
// is right since the pages behind it are not known to be zero.
Segment* claim_header(void* base, std::size_t mapping_size) {
  auto* seg = static_cast<Segment*>(std::memset(base, 0, sizeof(Segment)));
  format(seg, mapping_size, kHugeHeaderSize, os::kPageSize);
  return seg;
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

// Checked builds keep the first kCheckedHugeGuard bytes of a cached mapping's
// block inaccessible (huge_free), so a use after free there faults while the
// mapping waits; a mapping leaves the cache accessible again, whole (guards
// moved in with other cached mappings' pages included).  mprotect skips the
// parts already accessible, so this costs the guards' pages only.  false:
// the OS refused, and the caller maps afresh.
bool reopen(void* base, std::size_t mapping_size) {
  if constexpr (kChecked) return os::protect_read_write(base, mapping_size);
  return true;
}

// Removes entry i (the last one takes its place); lock held.
Segment* cache_remove(unsigned i) {
  Segment* seg = g_huge_cache[i];
  g_huge_bytes -= seg->mapping_size;
  g_huge_cache[i] = g_huge_cache[--g_huge_count];
  return seg;
}

// Adds a free mapping (huge_freed set, freed_at_ms stamped) to the cache,
// first unmapping the oldest entries while the cache would be over its caps.
void cache_put(Segment* seg) {
  std::size_t cap = cache_cap();
  if (seg->mapping_size > cap || seg->mapping_size > kHugeCacheBytesMax) {
    unmap_segment(seg);
    return;
  }
  for (;;) {
    Segment* evicted = nullptr;
    {
      LockGuard guard(g_huge_lock);
      if (g_huge_count < kHugeCacheMax && g_huge_bytes + seg->mapping_size <= kHugeCacheBytesMax &&
          g_huge_bytes + seg->mapping_size <= cap) {
        g_huge_cache[g_huge_count++] = seg;
        g_huge_bytes += seg->mapping_size;
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
    unmap_segment(evicted);  // outside the lock: unmapping resident pages is slow
  }
  unmap_segment(seg);
}

// A fresh, registered mapping of `size` bytes laid out for a huge block.
void* map_fresh(std::size_t size) {
  void* p = os::map_with_offset(size, kSegmentSize, kHugeHeaderSize, os::kPageSize);
  if (p == nullptr) {
    heap_collect_all();  // cached and purgeable memory may be what stands in the way
    p = os::map_with_offset(size, kSegmentSize, kHugeHeaderSize, os::kPageSize);
    if (p == nullptr) return nullptr;
  }
  segment_register(p, size, true);
  return p;
}

// Moves the last `size` bytes of the mapping `from` (out of the cache) onto a
// fresh mapping and returns that; `from` keeps the rest.  Nothing is copied:
// the pages the earlier blocks faulted in come along.  nullptr (nothing
// changed) if the OS refuses.
void* move_tail(Segment* from, std::size_t size) {
  void* dst = map_fresh(size);
  if (dst == nullptr) return nullptr;
  std::size_t keep = from->mapping_size - size;
  unregister_beyond(from, from->mapping_size, keep);
  if (!os::move_pages(reinterpret_cast<char*>(from) + keep, size, dst)) {
    register_mapping(from, true);
    segment_register(dst, size, false);
    os::unmap(dst, size);
    return nullptr;
  }
  from->mapping_size = keep;
  return dst;
}

// Grows a cached mapping (out of the cache) to mapping_size in place, or by
// moving its pages.  A mapping built from moved pages is several kernel
// mappings, which mremap cannot grow: fresh pages are then mapped after it.
// nullptr (the mapping cached again) if neither works.
Segment* grow_cached(Segment* seg, std::size_t mapping_size) {
  if (os::remap_in_place(seg, seg->mapping_size, mapping_size) ||
      os::extend_in_place(seg, seg->mapping_size, mapping_size)) {
    seg->mapping_size = mapping_size;
    register_mapping(seg, true);
    return seg;
  }
  register_mapping(seg, false);
  void* moved = os::remap_moving(seg, seg->mapping_size, mapping_size, kSegmentSize,
                                 kHugeHeaderSize, os::kPageSize);
  if (moved == nullptr) {
    register_mapping(seg, true);
    cache_put(seg);
    return nullptr;
  }
  seg = static_cast<Segment*>(moved);
  seg->mapping_size = mapping_size;
  register_mapping(seg, true);
  return seg;
}

// Fills [seg+from, seg+to), fresh pages of seg's grown mapping, with pages
// moved from other cached mappings, so the block does not fault where the
// cache holds pages faulted in before.  Whole entries go first (the largest
// that fits the gap): that is how pieces split apart come back together.
// At most kHugeFillMoves moves; what is left faults in when touched.
void fill_from_cache(Segment* seg, std::size_t from, std::size_t to) {
  char* base = reinterpret_cast<char*>(seg);
  for (unsigned moves = 0; moves < kHugeFillMoves && from < to; ++moves) {
    std::size_t gap = to - from;
    Segment* donor = nullptr;
    {
      LockGuard guard(g_huge_lock);
      unsigned pick = g_huge_count;
      for (unsigned i = 0; i < g_huge_count; ++i) {
        std::size_t size = g_huge_cache[i]->mapping_size;
        std::size_t best = pick < g_huge_count ? g_huge_cache[pick]->mapping_size : 0;
        // The largest entry within the gap, else the smallest beyond it.
        bool better = pick == g_huge_count ||
                      (size <= gap ? (best > gap || size > best) : (best > gap && size < best));
        if (better) pick = i;
      }
      if (pick == g_huge_count) return;
      donor = cache_remove(pick);
    }
    std::size_t size = donor->mapping_size;
    if (size <= gap) {  // the whole donor, header pages included, becomes block pages
      register_mapping(donor, false);
      if (!os::move_pages(donor, size, base + from)) {
        register_mapping(donor, true);
        cache_put(donor);
        return;
      }
      from += size;
      continue;
    }
    unregister_beyond(donor, size, size - gap);  // the donor's last `gap` bytes come over
    if (os::move_pages(reinterpret_cast<char*>(donor) + size - gap, gap, base + from))
      donor->mapping_size = size - gap;
    else {
      register_mapping(donor, true);
    }
    cache_put(donor);
    return;
  }
}

// Excess a block may carry past its request rather than pay a move to split
// it off: it comes back with the block, but counts in the live footprint.
// Up to the request itself (a mapping at most twice the request): splitting
// costs a placeholder mmap and an mremap, the kernel's work on the extra
// mappings, and later moves to put pieces back together, while the pages
// carried along are the ones a later, larger request reuses without a fault.
// w18_large_churn, scale 0.2, same run: 0.81x the time of a quarter's
// threshold (1.05x mimalloc's, was 1.29x) for 1.03x the peak RSS (207 vs
// 200 MiB; mimalloc 226, tcmalloc 224, jemalloc 175).
std::size_t split_threshold(std::size_t mapping_size) {
  return mapping_size < kHugeSplitMin ? kHugeSplitMin : mapping_size;
}

// A mapping of mapping_size bytes for a default-aligned block, built from the
// cache: nullptr if the cache is empty or the OS refused.
// - the smallest entry that holds it, used whole up to twice the request;
// - else the request is moved off that entry's end (the fewer pages to move);
// - no entry holds it: the largest grows and other entries fill it.
// `growing` (realloc) keeps a larger entry whole: it will grow in place.
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
    if (best == nullptr && below == nullptr) return nullptr;
    cache_remove(best != nullptr ? best_index : below_index);
  }
  Segment* seg = best;
  if (best == nullptr) {
    std::size_t had = below->mapping_size;
    seg = grow_cached(below, mapping_size);
    if (seg == nullptr) return nullptr;
    fill_from_cache(seg, had, mapping_size);
  } else if (!growing && best->mapping_size - mapping_size >= split_threshold(mapping_size)) {
    // The excess is past the request itself (split_threshold), so the
    // request is the smaller part: move it off the end; the rest stays cached.
    void* p = move_tail(best, mapping_size);
    cache_put(best);
    if (p == nullptr) return nullptr;
    if (!reopen(p, mapping_size)) {  // before its header is written
      segment_register(p, mapping_size, false);
      os::unmap(p, mapping_size);
      return nullptr;
    }
    return claim_header(p, mapping_size);
  }
  if (!reopen(seg, seg->mapping_size)) {
    unmap_segment(seg);
    return nullptr;
  }
  return seg;
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
  if (!is_zero) {
    if (zero)
      std::memset(p, 0, size);
    else if constexpr (kChecked)  // what a checked block promises (hardening.hpp)
      std::memset(p, 0, size < checked::kZeroCap ? size : checked::kZeroCap);
  }
  return p;
}

void huge_free(Segment* seg) noexcept {
  if (seg->block_offset == kHugeHeaderSize) note_live(seg->mapping_size, 0);
  if constexpr (kChecked) {
    // A use after free of the block's first kCheckedHugeGuard bytes faults:
    // they stay inaccessible while the mapping is cached (reopen), and are
    // unmapped after it.  The ring names a free of the block after its unmap
    // a double free.
    char* block = reinterpret_cast<char*>(seg) + seg->block_offset;
    checked_note_huge_unmapped(block);
    std::size_t guarded = seg->mapping_size - seg->block_offset;
    if (guarded > kCheckedHugeGuard) guarded = kCheckedHugeGuard;
    if (seg->block_offset != kHugeHeaderSize || !os::protect_none(block, guarded)) {
      unmap_segment(seg);
      return;
    }
  }
  seg->freed_at_ms = static_cast<std::uint32_t>(os::now_ms());
  seg->huge_freed = true;  // checked builds report a second free of a cached block
  seg->pages[0].is_zero = false;
  // Only default-aligned mappings are reused; the rest go back at once.
  if (seg->block_offset == kHugeHeaderSize) {
    cache_put(seg);
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
  std::size_t old_requested = seg->requested;
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
  if (os::remap_in_place(seg, seg->mapping_size, mapping_size) ||
      os::extend_in_place(seg, seg->mapping_size, mapping_size)) {
    resize_live(seg, mapping_size);
    register_mapping(seg, true);
    return p;
  }
  register_mapping(seg, false);
  void* moved = os::remap_moving(seg, seg->mapping_size, mapping_size, kSegmentSize, offset,
                                 seg->block_align);
  if (moved == nullptr) {
    register_mapping(seg, true);
    seg->requested = old_requested;
    // A block built from moved pages is several kernel mappings, which
    // older kernels cannot move as one: copy it then.
    if (offset != kHugeHeaderSize) {
      errno = ENOMEM;
      return nullptr;
    }
    void* q = huge_alloc(size, 0, false, /*growing=*/true);
    if (q == nullptr) return nullptr;
    std::memcpy(q, p, old_requested < size ? old_requested : size);
    huge_free(seg);
    return q;
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
    // Once mappings expire, the peak decays to what is held now (never above
    // it: the cap would creep up), so a burst long gone no longer lets the
    // cache grow.
    std::size_t held = g_huge_live.load(std::memory_order_relaxed) + g_huge_bytes;
    if (n > 0 && held < g_huge_live_peak.load(std::memory_order_relaxed))
      g_huge_live_peak.store(held, std::memory_order_relaxed);
  }
  // Expired mappings are unmapped: a purge would keep the address space for
  // little gain, since the next huge request maps fresh zero pages just as cheaply.
  for (unsigned i = 0; i < n; ++i) unmap_segment(victims[i]);
}

void huge_fork(ForkPhase phase) noexcept {
  g_huge_lock.on_fork(phase);
}

}  // namespace bop::core
