#include "core/hardening.hpp"

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

constexpr unsigned char kCanaryPattern = 0xCB;
constexpr std::size_t kPatternBytes = 16;  // pattern bytes after the zero canary byte, at most
constexpr std::size_t kTailBytes = 4;      // the stored request size at a block's end

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
  region->page_shift = kSegmentShift;  // page_of(any slot) is pages[0], of block size 0
  os::protect_none(reinterpret_cast<char*>(region) + kZeroHeader, kSegmentSize - kZeroHeader);
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
// Canaries.
// ---------------------------------------------------------------------------
std::size_t min_size(std::size_t a, std::size_t b) {
  return a < b ? a : b;
}

// Bytes [n, end): 0, then up to kPatternBytes pattern bytes; the rest stays zero.
void write_canary(char* p, std::size_t n, std::size_t end) noexcept {
  p[n] = 0;
  std::size_t stop = min_size(end, n + 1 + kPatternBytes);
  std::memset(p + n + 1, kCanaryPattern, stop - (n + 1));
}

bool canary_intact(const char* p, std::size_t n, std::size_t end) noexcept {
  if (p[n] != 0) return false;
  std::size_t stop = min_size(end, n + 1 + kPatternBytes);
  for (std::size_t i = n + 1; i < stop; ++i)
    if (static_cast<unsigned char>(p[i]) != kCanaryPattern) return false;
  for (std::size_t i = stop; i < end; ++i)
    if (p[i] != 0) return false;
  return true;
}

std::uint32_t stored_size(const char* p, std::size_t block_size) noexcept {
  std::uint32_t n;
  std::memcpy(&n, p + block_size - kTailBytes, sizeof n);
  return n;
}

void set_stored_size(char* p, std::size_t block_size, std::size_t n) noexcept {
  auto v = static_cast<std::uint32_t>(n);
  std::memcpy(p + block_size - kTailBytes, &v, sizeof v);
}

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
  return min_size(seg->block_size, huge_request(seg) + 1 + kPatternBytes);
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
  std::size_t internal = size + kCheckedOverhead;
  if (alignment <= 16) {  // every class is 16-aligned
    return internal <= kLargeBlockMax ? size_to_class(internal) : kClassCount;
  }
  return aligned_class(internal, alignment);
}

// Is p a live block bop handed out?  Aborts with the kind of misuse if not.
void check_live(Heap* heap, Segment* seg, const void* p) noexcept {
  if (!segment_is_registered(static_cast<const char*>(p) - 1)) {
    if (was_huge_unmapped(p)) fatal("double free of a huge block", p);
    fatal("free of a pointer bop did not allocate", p);
  }
  check_free(heap, seg, p);
}

// Bytes of a block verified still zero when it is handed out again: all of
// a small block, the start of a medium one (a full scan of 512 KiB blocks
// would double the cost of every large allocation).
constexpr std::size_t kVerifyMax = kSmallBlockMax;

// Zeroed memory past the first word (where a free list link sat), or abort.
void check_still_zero(const char* p, std::size_t block_size) noexcept {
  for (std::size_t i = 8; i < min_size(block_size, kVerifyMax); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (w != 0) fatal("write after free (a freed block was modified before its reuse)", p);
  }
}

void check_sized(const void* p, std::size_t size, std::size_t alignment, std::size_t n,
                 unsigned cls) noexcept {
  if (size == kSizeUnknown) return;
  if (size != n) fatal("sized free with a size other than the block's", p);
  if (alignment == 0) return;  // bop_dealloc_sized and free_sized do not say
  if ((reinterpret_cast<std::uintptr_t>(p) & (alignment - 1)) != 0 ||
      checked_class(size, alignment) != cls)
    fatal("aligned sized free with an alignment the block was not allocated with", p);
}

}  // namespace

void checked_verify_free_page(const Page* page, const char* start) noexcept {
  // Every block is free: zero past its link word and its freed key.  (The
  // page's class and carve count still describe its last use.)
  std::size_t block_size = kClassSize[page->size_class];
  constexpr std::size_t skip = (kFreedKeyWord + 1) * 8;
  for (std::uint32_t i = 0; i < page->reserved; ++i) {
    const char* b = start + std::size_t{i} * block_size;
    for (std::size_t j = skip; j < block_size; j += 8) {
      std::uint64_t w;
      std::memcpy(&w, b + j, 8);
      if (w != 0) fatal("write after free (a freed block was modified)", b);
    }
  }
}

void checked_note_huge_unmapped(const void* block) noexcept {
  LockGuard guard(g_ring_lock);
  g_unmapped[g_unmapped_next] = block;
  g_unmapped_next = (g_unmapped_next + 1) % kUnmappedRing;
}

void* checked_alloc(std::size_t size, std::size_t alignment) noexcept {
  if (size == 0 && alignment <= kZeroSlot) {
    if (void* p = zero_alloc()) return p;
    size = 1;
  }
  if (size > (std::size_t{1} << 47)) {
    errno = ENOMEM;
    return nullptr;
  }
  std::size_t internal = size + kCheckedOverhead;
  char* p = static_cast<char*>(alignment == 0 ? alloc<false, true>(internal)
                                              : alloc_aligned<false, true>(alignment, internal));
  if (p == nullptr) return nullptr;
  Segment* seg = segment_of(p);
  if (seg->kind == SegmentKind::kHuge) {
    // A fresh mapping (huge blocks are not cached in checked builds): zero.
    write_canary(p, size, huge_canary_end(seg));
    return p;
  }
  std::size_t block_size = seg->page_of(p)->block_size;
  check_still_zero(p, block_size);
  std::memset(p, 0, 8);
  write_canary(p, size, block_size - kTailBytes);
  set_stored_size(p, block_size, size);
  return p;
}

void checked_free(void* p, std::size_t size, std::size_t alignment) noexcept {
  if (p == nullptr) return;
  if (is_zero_block(p)) return zero_free(p, size);
  Segment* seg = segment_of(p);
  check_live(tl_heap, seg, p);
  char* b = static_cast<char*>(p);
  if (seg->kind == SegmentKind::kHuge) {
    check_sized(p, size, alignment, huge_block_size_checked(seg, b), kClassCount);
  } else {
    Page* page = seg->page_of(p);
    // A freed block (zeroed, then marked) freed again by a thread that may
    // not walk the owner's lists: its mark and its cleared size tell.
    if (*freed_key_slot(b) == kFreedKey && stored_size(b, page->block_size) == 0)
      fatal("double free", p);
    std::size_t n = page_block_size_checked(b, page->block_size);
    check_sized(p, size, alignment, n, page->size_class);
    std::memset(b, 0, page->block_size);  // reads after free see zeros; reuse verifies them
  }
  dealloc</*kUnchecked=*/true>(p);
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
  if (p == nullptr) return checked_alloc(size, alignment);
  std::size_t old_size = 0;
  if (!is_zero_block(p)) {
    Segment* seg = segment_of(p);
    check_live(tl_heap, seg, p);
    old_size = checked_usable_size(p);
    if (seg->kind == SegmentKind::kHuge && size > kLargeBlockMax / 2 &&
        alignment <= seg->block_align) {
      // Grows or shrinks by mremap, as in the default build: the canary
      // moves to the new end.
      char* b = static_cast<char*>(p);
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
    if (seg->kind != SegmentKind::kHuge && size != 0) {
      // In place while the request still fits the block and uses half of it,
      // as in the default build; only the canary moves.
      std::size_t block_size = seg->page_of(p)->block_size;
      std::size_t internal = size + kCheckedOverhead;
      bool aligned = alignment == 0 || (reinterpret_cast<std::uintptr_t>(p) & (alignment - 1)) == 0;
      if (internal <= block_size && realloc_keeps_block(internal, block_size) && aligned) {
        char* b = static_cast<char*>(p);
        std::size_t end = block_size - kTailBytes;
        std::memset(b + min_size(size, old_size), 0, end - min_size(size, old_size));
        write_canary(b, size, end);
        set_stored_size(b, block_size, size);
        return p;
      }
    }
  }
  void* q = checked_alloc(size, alignment);
  if (q == nullptr) return nullptr;
  std::memcpy(q, p, min_size(old_size, size));
  checked_free(p, kSizeUnknown, 0);
  return q;
}

}  // namespace bop::core
