#include "core/huge.hpp"

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

// Best fit from the cache for a default-aligned block.  The whole mapping is
// reused, so a block that later grows by realloc does so in place with no
// syscall.  Unless the block is `growing`:
// - a mapping more than twice the request is left for a larger one (a fresh
//   mapping costs faults only on the pages the block will touch), and
// - what lies past 1.25x the request is purged (still mapped; faults back in
//   if used).
// Without these, every page a mapping's earlier, larger blocks wrote stayed
// resident through its later, smaller lives.  Random churn of 64 KiB - 4 MiB
// blocks (w18_large_churn, scale 0.1, medians of 5): peak RSS 216 -> 181 MiB
// (jemalloc 171), page faults 70k -> 106k (jemalloc 125k).  Purging all the
// excess or reusing only 1.5x fits gets RSS to 157-172 MiB but takes more
// faults than jemalloc.
Segment* cache_take(std::size_t mapping_size, bool growing) {
  std::size_t fit_max = growing ? SIZE_MAX : 2 * mapping_size;
  Segment* best = nullptr;
  {
    LockGuard guard(g_huge_lock);
    unsigned best_index = 0;
    for (unsigned i = 0; i < g_huge_count; ++i) {
      Segment* s = g_huge_cache[i];
      if (s->mapping_size >= mapping_size && s->mapping_size <= fit_max &&
          (best == nullptr || s->mapping_size < best->mapping_size)) {
        best = s;
        best_index = i;
      }
    }
    if (best == nullptr) return nullptr;
    g_huge_cache[best_index] = g_huge_cache[--g_huge_count];
    g_huge_bytes -= best->mapping_size;
  }
  std::size_t keep = round_pages(mapping_size + mapping_size / 4);
  if (!growing && best->mapping_size > keep + 64 * KiB && !best->pages[0].is_zero)
    os::purge(reinterpret_cast<char*>(best) + keep, best->mapping_size - keep);
  return best;
}

void unmap_segment(Segment* seg) {
  register_mapping(seg, false);
  os::unmap(seg, seg->mapping_size);
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
  if (seg->block_offset == kHugeHeaderSize && seg->mapping_size <= kHugeCacheBytesMax / 4) {
    Segment* evicted = nullptr;
    {
      LockGuard guard(g_huge_lock);
      if (g_huge_count == kHugeCacheMax || g_huge_bytes + seg->mapping_size > kHugeCacheBytesMax) {
        // Evict the oldest entry to make room.
        unsigned oldest = 0;
        for (unsigned i = 1; i < g_huge_count; ++i)
          if (g_huge_cache[i]->freed_at_ms < g_huge_cache[oldest]->freed_at_ms) oldest = i;
        if (g_huge_count > 0) {
          evicted = g_huge_cache[oldest];
          g_huge_cache[oldest] = g_huge_cache[--g_huge_count];
          g_huge_bytes -= evicted->mapping_size;
        }
      }
      if (g_huge_count < kHugeCacheMax && g_huge_bytes + seg->mapping_size <= kHugeCacheBytesMax) {
        g_huge_cache[g_huge_count++] = seg;
        g_huge_bytes += seg->mapping_size;
        seg = nullptr;
      }
    }
    if (evicted != nullptr) unmap_segment(evicted);
    if (seg == nullptr) {
      if (g_purge_delay_ms == 0) huge_cache_trim(false);
      return;
    }
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
    seg->mapping_size = mapping_size;
    seg->block_size = mapping_size - offset;
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
    seg->mapping_size = mapping_size;
    seg->block_size = mapping_size - offset;
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
  seg->mapping_size = mapping_size;
  seg->block_size = mapping_size - offset;
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
        victims[n++] = s;
        g_huge_bytes -= s->mapping_size;
        g_huge_cache[i] = g_huge_cache[--g_huge_count];
      } else {
        ++i;
      }
    }
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
