#include "core/hardening.hpp"

#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "core/alloc.hpp"
#include "core/misuse.hpp"
#include "core/segment.hpp"
#include "platform/fatal.hpp"
#include "platform/os.hpp"
#include "platform/spin_lock.hpp"

namespace bop::core {
namespace {

// ---------------------------------------------------------------------------
// Zero-size blocks: 16-byte slots of one 4 MiB region whose slot area is
// inaccessible.  The region starts with a Segment header (owner nullptr,
// kind kZeroSize, one page record of block size 0) so code that reads a
// block's header finds something sane; a bitmap after it tells live slots.
// ---------------------------------------------------------------------------
constexpr std::size_t kZeroHeader = 64 * KiB;
constexpr std::size_t kZeroSlot = 16;
constexpr std::size_t kZeroSlots = (kSegmentSize - kZeroHeader) / kZeroSlot;

SpinLock g_zero_lock;
Segment* g_zero_region = nullptr;  // set once, under g_zero_lock
std::size_t g_zero_cursor = 0;     // next-fit: a freed address is not handed out again soon

std::uint64_t* zero_bitmap(Segment* region) {
  return reinterpret_cast<std::uint64_t*>(reinterpret_cast<char*>(region) + sizeof(Segment));
}
static_assert(sizeof(Segment) + kZeroSlots / 8 <= kZeroHeader);

Segment* zero_region_locked() noexcept {
  if (g_zero_region != nullptr) return g_zero_region;
  auto* region = static_cast<Segment*>(os::map_aligned(kSegmentSize, kSegmentSize));
  if (region == nullptr) return nullptr;
  region->owner = nullptr;
  region->kind = SegmentKind::kZeroSize;
  region->set_page_shift(kSegmentShift);  // page_of(any slot) is pages[0], of block size 0
  if (!os::protect_none(reinterpret_cast<char*>(region) + kZeroHeader,
                        kSegmentSize - kZeroHeader)) {
    os::unmap(region, kSegmentSize);  // zero-size requests get 1-byte blocks instead
    return nullptr;
  }
  segment_register(region, kSegmentSize, true);
  g_zero_region = region;
  return region;
}

bool is_zero_block(const void* p) noexcept {
  Segment* region = __atomic_load_n(&g_zero_region, __ATOMIC_ACQUIRE);
  return region != nullptr && segment_of(p) == region;
}

void* zero_alloc() noexcept {
  LockGuard guard(g_zero_lock);
  Segment* region = zero_region_locked();
  if (region == nullptr) return nullptr;
  std::uint64_t* bits = zero_bitmap(region);
  for (std::size_t n = 0; n < kZeroSlots; ++n) {
    std::size_t i = g_zero_cursor;
    g_zero_cursor = (g_zero_cursor + 1) % kZeroSlots;
    if ((bits[i / 64] >> (i % 64) & 1) == 0) {
      bits[i / 64] |= std::uint64_t{1} << (i % 64);
      __atomic_store_n(&g_zero_region, region, __ATOMIC_RELEASE);
      return reinterpret_cast<char*>(region) + kZeroHeader + i * kZeroSlot;
    }
  }
  return nullptr;  // every slot live: the caller serves a 1-byte block instead
}

void zero_free(void* p, std::size_t size) noexcept {
  LockGuard guard(g_zero_lock);
  std::size_t offset =
      static_cast<std::size_t>(static_cast<char*>(p) - reinterpret_cast<char*>(g_zero_region));
  if (offset < kZeroHeader || (offset - kZeroHeader) % kZeroSlot != 0)
    fatal("free of a pointer into the middle of a zero-size block", p);
  std::size_t i = (offset - kZeroHeader) / kZeroSlot;
  std::uint64_t* word = &zero_bitmap(g_zero_region)[i / 64];
  std::uint64_t bit = std::uint64_t{1} << (i % 64);
  if ((*word & bit) == 0) fatal("double free of a zero-size block", p);
  if (size != kSizeUnknown && size != 0)
    fatal("sized free with a size other than the block's (a zero-size block)", p);
  *word &= ~bit;
}

// ---------------------------------------------------------------------------
// Huge blocks freed recently (unmapped): a second free is a double free.
// ---------------------------------------------------------------------------
constexpr unsigned kUnmappedRing = 64;
SpinLock g_ring_lock;
const void* g_unmapped[kUnmappedRing];
unsigned g_unmapped_next = 0;

bool was_huge_unmapped(const void* p) noexcept {
  LockGuard guard(g_ring_lock);
  for (const void* q : g_unmapped)
    if (q == p) return true;
  return false;
}

// ---------------------------------------------------------------------------
// Canaries and the zeroed prefix: hardening_inline.hpp has the layout.
// ---------------------------------------------------------------------------
using checked::canary_intact;
using checked::canary_stop;
using checked::kTailBytes;
using checked::kZeroCap;
using checked::min_size;
using checked::set_stored_size;
using checked::stored_size;
using checked::write_canary;

// A page block's request size, after checking its canary and tail.
std::size_t page_block_size_checked(const char* p, std::size_t block_size) noexcept {
  std::size_t n = stored_size(p, block_size);
  if (n + kCheckedOverhead > block_size || !canary_intact(p, n, block_size - kTailBytes))
    fatal("buffer overflow past the end of a block (canary overwritten)", p);
  return n;
}

std::size_t huge_request(const Segment* seg) noexcept {
  return seg->requested - kCheckedOverhead;
}

std::size_t huge_canary_end(const Segment* seg) noexcept {
  return canary_stop(huge_request(seg), seg->block_size);
}

std::size_t huge_block_size_checked(const Segment* seg, const char* p) noexcept {
  std::size_t n = huge_request(seg);
  if (!canary_intact(p, n, huge_canary_end(seg)))
    fatal("buffer overflow past the end of a huge block (canary overwritten)", p);
  return n;
}

// The class a request of (size, alignment) is served from in checked builds
// (kClassCount: a huge block): what a sized free must match.
unsigned checked_class(std::size_t size, std::size_t alignment) noexcept {
  if (alignment <= 16) {  // every class is 16-aligned
    std::size_t internal = checked::internal_size(size);
    return internal <= kLargeBlockMax ? size_to_class(internal) : kClassCount;
  }
  return aligned_class(size + kCheckedOverhead, alignment);
}

// The block behind a checked request of `internal` bytes (request and
// overhead), through the default build's paths.
template <bool kZero>
char* alloc_internal(std::size_t internal, std::size_t alignment) noexcept {
  return static_cast<char*>(alignment == 0 ? alloc<kZero, true>(internal)
                                           : alloc_aligned<kZero, true>(alignment, internal));
}

// ---------------------------------------------------------------------------
// Validation of a pointer about to be freed or reallocated.
// ---------------------------------------------------------------------------

// Is p a block of a segment bop mapped?  Aborts with the kind of misuse if
// not (before anything is read from its header).
void check_registered(const void* p) noexcept {
  // segment_of maps p - 1: a pointer at a segment's very start belongs to
  // the segment before it, which is what the registry is asked about.
  if (segment_is_registered(static_cast<const char*>(p) - 1)) return;
  if (was_huge_unmapped(p)) fatal("double free of a huge block", p);
  fatal("free of a pointer bop did not allocate", p);
}

void check_huge_live(const Segment* seg, const void* p) noexcept {
  if (seg->owner != nullptr || reinterpret_cast<const char*>(seg) + seg->block_offset != p)
    fatal("invalid free of a huge block (interior pointer?)", p);
  if (seg->huge_freed) fatal("double free of a huge block", p);
}

std::size_t check_page_block_live(Segment* seg, Page* page, char* p) noexcept {
  return checked::page_block_live(seg, page, p);
}

// A block of B bytes laid out free beyond its first two words: zero up to
// kZeroCap, and its tail.
bool free_layout_intact(const char* b, std::size_t block_size) noexcept {
  constexpr std::size_t skip = (kFreedKeyWord + 1) * 8;
  std::uint64_t any = 0;
  std::size_t zeroed = min_size(block_size, kZeroCap);
  // Classes and kZeroCap are multiples of 16: two words a step.
  for (std::size_t j = skip; j < zeroed; j += 16)
    any |= checked::load_word<std::uint64_t>(b + j) | checked::load_word<std::uint64_t>(b + j + 8);
  if (block_size > kZeroCap) any |= stored_size(b, block_size);
  return any == 0;
}

}  // namespace

namespace checked {

void free_page_block_long(Segment* seg, Page* page, char* p, std::size_t len) noexcept {
  std::memset(p, 0, len);
  set_stored_size(p, page->block_size, 0);
  push_page_block(seg, page, p);
}

// Any free of a registered small or medium block, sized or not.
void free_page_block(Segment* seg, void* p, std::size_t size, std::size_t alignment) noexcept {
  char* b = static_cast<char*>(p);
  Page* page = seg->page_of(p);
  std::size_t n = page_block_live(seg, page, b);
  check_sized(p, size, alignment, n, page->size_class);
  std::memset(b, 0, clear_length(n, page->block_size));
  set_stored_size(b, page->block_size, 0);
  push_page_block(seg, page, b);
}

void report_page_free(const Page* page, const char* p) noexcept {
  if (!page->in_use) fatal("free of a pointer into an unused page (double free?)", p);
  Segment* seg = segment_of_page(page);
  std::uint32_t reserved =
      std::atomic_ref<const std::uint32_t>(page->reserved).load(std::memory_order_relaxed);
  if (block_index(page, static_cast<std::size_t>(p - seg->page_start(page))) >= reserved)
    fatal("free of a pointer that is not the start of a block", p);
  // A freed block (cleared, then marked) freed again, also by a thread that
  // may not walk the owner's lists: its mark and its cleared size tell.
  if (*freed_key_slot(const_cast<char*>(p)) == kFreedKey && stored_size(p, page->block_size) == 0)
    fatal("double free", p);
  fatal("buffer overflow past the end of a block (canary overwritten)", p);
}

void report_wrong_size(const void* p) noexcept {
  fatal("sized free with a size other than the block's", p);
}

void check_sized(const void* p, std::size_t size, std::size_t alignment, std::size_t n,
                 unsigned cls) noexcept {
  if (size == kSizeUnknown) return;
  if (size != n) report_wrong_size(p);
  if (alignment == 0) return;  // bop_dealloc_sized and free_sized do not say
  if ((reinterpret_cast<std::uintptr_t>(p) & (alignment - 1)) != 0 ||
      checked_class(size, alignment) != cls)
    fatal("aligned sized free with an alignment the block was not allocated with", p);
}

void* checked_alloc_slow(std::size_t size, std::size_t alignment, bool zero) noexcept {
  if (BOP_UNLIKELY(size == 0) && alignment <= kZeroSlot) {
    if (void* p = zero_alloc()) return p;
    size = 1;
  }
  if (BOP_UNLIKELY(size > (std::size_t{1} << 47))) {
    errno = ENOMEM;
    return nullptr;
  }
  std::size_t internal = alignment <= 16 ? checked::internal_size(size) : size + kCheckedOverhead;
  // A huge block is zero up to kZeroCap at least, fresh or taken from the
  // cache (huge_alloc clears that much of those in checked builds); calloc
  // asks huge_alloc to clear a reused one whole.  Page blocks are cleared below.
  char* p = zero && checked_class(size, alignment) == kClassCount
                ? alloc_internal<true>(internal, alignment)
                : alloc_internal<false>(internal, alignment);
  if (p == nullptr) return nullptr;
  Segment* seg = segment_of(p);
  if (BOP_UNLIKELY(seg->kind == SegmentKind::kHuge)) {
    write_canary(p, size, huge_canary_end(seg));
    return p;
  }
  std::size_t block_size = seg->page_of(p)->block_size;
  // Past kZeroCap the block holds what its previous uses left there.
  if (zero && size > kZeroCap) std::memset(p + kZeroCap, 0, size - kZeroCap);
  return hand_out(p, size, block_size);
}

void checked_free_slow(void* p, std::size_t size, std::size_t alignment) noexcept {
  if (p == nullptr) return;
  if (BOP_UNLIKELY(is_zero_block(p))) return zero_free(p, size);
  check_registered(p);
  Segment* seg = segment_of(p);
  char* b = static_cast<char*>(p);
  Heap* heap = tl_heap;
  if (BOP_UNLIKELY(seg->kind == SegmentKind::kHuge)) {
    check_huge_live(seg, p);
    check_sized(p, size, alignment, huge_block_size_checked(seg, b), kClassCount);
    return free_slow(heap, seg, p);
  }
  free_page_block(seg, p, size, alignment);
}

}  // namespace checked

void checked_verify_free_page(const Page* page, const char* start) noexcept {
  // Every block is free (the page's class and carve count still describe
  // its last use).
  std::size_t block_size = kClassSize[page->size_class];
  for (std::uint32_t i = 0; i < page->reserved; ++i) {
    const char* b = start + std::size_t{i} * block_size;
    if (!free_layout_intact(b, block_size))
      fatal("write after free (a freed block was modified)", b);
  }
}

void checked_prepare_reused_blocks(char* start, std::size_t count,
                                   std::size_t block_size) noexcept {
  if (block_size <= kZeroCap) {
    std::memset(start, 0, count * block_size);
    return;
  }
  for (std::size_t i = 0; i < count; ++i) {
    char* b = start + i * block_size;
    std::memset(b, 0, kZeroCap);
    set_stored_size(b, block_size, 0);
  }
}

void checked_fork(ForkPhase phase) noexcept {
  g_zero_lock.on_fork(phase);
  g_ring_lock.on_fork(phase);
}

void checked_note_huge_unmapped(const void* block) noexcept {
  LockGuard guard(g_ring_lock);
  g_unmapped[g_unmapped_next] = block;
  g_unmapped_next = (g_unmapped_next + 1) % kUnmappedRing;
}

std::size_t checked_usable_size(const void* p) noexcept {
  if (p == nullptr) return 0;
  if (is_zero_block(p)) return 0;
  Segment* seg = segment_of(p);
  validate_block(tl_heap, seg, p, "malloc_usable_size");
  const char* b = static_cast<const char*>(p);
  if (seg->kind == SegmentKind::kHuge) return huge_block_size_checked(seg, b);
  return page_block_size_checked(b, seg->page_of(p)->block_size);
}

void* checked_realloc(void* p, std::size_t size, std::size_t alignment) noexcept {
  if (p == nullptr) return checked_alloc(size, alignment, false);
  std::size_t old_size = 0;
  if (!is_zero_block(p)) {
    check_registered(p);
    Segment* seg = segment_of(p);
    char* b = static_cast<char*>(p);
    if (seg->kind == SegmentKind::kHuge) {
      check_huge_live(seg, p);
      old_size = huge_block_size_checked(seg, b);
      if (size > kLargeBlockMax / 2 && alignment <= seg->block_align) {
        // Grows or shrinks by mremap, as in the default build: the canary
        // moves to the new end.
        std::memset(b + old_size, 0, huge_canary_end(seg) - old_size);
        char* q = static_cast<char*>(huge_realloc(seg, p, size + kCheckedOverhead, alignment));
        if (q == nullptr) {  // p stays as it was
          seg->requested = old_size + kCheckedOverhead;
          write_canary(b, old_size, huge_canary_end(seg));
          return nullptr;
        }
        write_canary(q, size, huge_canary_end(segment_of(q)));
        return q;
      }
    } else {
      Page* page = seg->page_of(p);
      old_size = check_page_block_live(seg, page, b);
      // In place while the request still fits the block and uses half of it,
      // as in the default build; only the canary moves.  Zeroing from the
      // smaller size to the old canary's end (up to kZeroCap: past it
      // nothing is kept zero) restores the layout: shrinking clears the
      // dropped bytes, growing only the old canary.
      std::size_t block_size = page->block_size;
      std::size_t internal = size + kCheckedOverhead;
      bool aligned = alignment == 0 || (reinterpret_cast<std::uintptr_t>(p) & (alignment - 1)) == 0;
      if (size != 0 && internal <= block_size && realloc_keeps_block(internal, block_size) &&
          aligned) {
        std::size_t end = block_size - kTailBytes;
        std::size_t from = min_size(size, old_size);
        std::size_t to = min_size(canary_stop(old_size, end), kZeroCap);
        if (from < to) std::memset(b + from, 0, to - from);
        write_canary(b, size, end);
        set_stored_size(b, block_size, size);
        return p;
      }
    }
  }
  void* q = checked_alloc(size, alignment, false);
  if (q == nullptr) return nullptr;
  std::memcpy(q, p, min_size(old_size, size));
  checked_free(p, kSizeUnknown, 0);
  return q;
}

}  // namespace bop::core
