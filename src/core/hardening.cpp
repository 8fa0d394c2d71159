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
  region->set_page_shift(kSegmentShift);  // page_of(any slot) is pages[0], of block size 0
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
// Canaries.  A live page block of request n: byte n is 0, bytes n+1 .. n+16
// (clipped to the tail) hold kCanaryPattern, the last 4 bytes hold n, and
// every other byte past n is zero.  A free block is zero everywhere but its
// link and freed-key words.  Both layouts are kept by touching only
// [0, n + 17) and the tail, never the whole block: the cost of a free follows
// what the program could have written, not the block size.
// ---------------------------------------------------------------------------
std::size_t min_size(std::size_t a, std::size_t b) {
  return a < b ? a : b;
}

// The canary as it stands in memory: the zero byte, then the pattern.
constexpr std::size_t kCanaryBytes = 1 + kPatternBytes;
constexpr auto kCanary = [] {
  std::array<unsigned char, kCanaryBytes> c{};
  for (std::size_t i = 1; i < kCanaryBytes; ++i) c[i] = kCanaryPattern;
  return c;
}();

// End of the canary of request n in a block whose canary area ends at `end`.
std::size_t canary_stop(std::size_t n, std::size_t end) noexcept {
  return min_size(end, n + kCanaryBytes);
}

std::uint64_t load8(const void* p) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

// The first `len` (1..17) bytes of kCanary, at p.  From 8 bytes on: two or
// three overlapping word stores, no loop.
void write_canary_bytes(char* p, std::size_t len) noexcept {
  if (len < 8) {
    std::memcpy(p, kCanary.data(), len);
    return;
  }
  std::memcpy(p, kCanary.data(), 8);
  std::memcpy(p + len - 8, kCanary.data() + len - 8, 8);
  if (len > 16) std::memcpy(p + 8, kCanary.data() + 8, 8);
}

// Bytes [n, stop): 0, then pattern bytes.
void write_canary(char* p, std::size_t n, std::size_t end) noexcept {
  write_canary_bytes(p + n, canary_stop(n, end) - n);
}

// The canary of request n as write_canary left it: two or three word
// compares (overlapping loads, like write_canary_bytes' stores).  Bytes past
// the pattern are not read: a write that skips the canary is caught when the
// block's first line or sampled words are verified at reuse, or when its
// page is verified whole.
bool canary_intact(const char* p, std::size_t n, std::size_t end) noexcept {
  const char* c = p + n;
  std::size_t len = canary_stop(n, end) - n;
  const unsigned char* ref = kCanary.data();
  if (len < 8) return std::memcmp(c, ref, len) == 0;
  std::uint64_t diff = (load8(c) ^ load8(ref)) | (load8(c + len - 8) ^ load8(ref + len - 8));
  if (len > 16) diff |= load8(c + 8) ^ load8(ref + 8);
  return diff == 0;
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

// Back to the free layout: zero what the request and its canary covered,
// and the tail.  The rest of the block is zero already.
void clear_page_block(char* p, std::size_t n, std::size_t block_size) noexcept {
  std::memset(p, 0, canary_stop(n, block_size - kTailBytes));
  set_stored_size(p, block_size, 0);
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
  std::size_t internal = size + kCheckedOverhead;
  if (alignment <= 16) {  // every class is 16-aligned
    return internal <= kLargeBlockMax ? size_to_class(internal) : kClassCount;
  }
  return aligned_class(internal, alignment);
}

// ---------------------------------------------------------------------------
// Block index without a division: for a class size d = odd << k, the
// offset times the inverse of odd (mod 2^32), rotated right by k, is
// offset / d when d divides the offset, and above 2^32 / d (so above any
// page's block count) when it does not.  One multiply, one rotate, and the
// caller's compare with `reserved` is the whole "start of a block" test.
// ---------------------------------------------------------------------------
struct ExactDivisor {
  std::uint32_t inverse;
  std::uint8_t shift;
};

constexpr std::uint32_t odd_inverse(std::uint32_t odd) {
  std::uint32_t x = odd;  // correct to 3 bits; each Newton step doubles them
  for (int i = 0; i < 4; ++i) x *= 2 - odd * x;
  return x;
}

constexpr auto kExactDivisor = [] {
  std::array<ExactDivisor, kClassCount> t{};
  for (unsigned c = 0; c < kClassCount; ++c) {
    auto shift = static_cast<unsigned>(std::countr_zero(kClassSize[c]));
    t[c] = {odd_inverse(kClassSize[c] >> shift), static_cast<std::uint8_t>(shift)};
  }
  return t;
}();
// Every class: multiples map to their index, the offsets between them far
// past any block count.
static_assert([] {
  for (unsigned c = 0; c < kClassCount; ++c) {
    std::uint32_t d = kClassSize[c];
    ExactDivisor e = kExactDivisor[c];
    std::uint32_t blocks = static_cast<std::uint32_t>((std::size_t{1} << kMediumPageShift) / d);
    for (std::uint32_t i = 0; i < blocks; i += 1 + blocks / 64) {
      if (std::rotr(i * d * e.inverse, e.shift) != i) return false;
      for (std::uint32_t off : {1u, 4u, d / 2, d - 1})
        if (std::rotr((i * d + off) * e.inverse, e.shift) <= blocks) return false;
    }
  }
  return true;
}());
static_assert((kLargeBlockMax << 1) <= ~std::uint32_t{0}, "page offsets fit 32 bits");

// offset / block size if the offset is a multiple of it, else a value
// larger than any block count.
std::uint32_t block_index(const Page* page, std::size_t offset) noexcept {
  ExactDivisor d = kExactDivisor[page->size_class];
  return std::rotr(static_cast<std::uint32_t>(offset) * d.inverse, d.shift);
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

// p (registered, in a small or medium segment) is the start of a live block
// of `page`; returns its request size (canary checked).
std::size_t check_page_block_live(Segment* seg, Page* page, char* p) noexcept {
  if (!page->in_use) fatal("free of a pointer into an unused page (double free?)", p);
  // Another thread may be extending the page (page_extend): `reserved` only
  // grows while the page is in use, so any value read covers a live block.
  std::uint32_t reserved =
      std::atomic_ref<std::uint32_t>(page->reserved).load(std::memory_order_relaxed);
  if (block_index(page, static_cast<std::size_t>(p - seg->page_start(page))) >= reserved)
    fatal("free of a pointer that is not the start of a block", p);
  // A freed block (zeroed, then marked) freed again, also by a thread that
  // may not walk the owner's lists: its mark and its cleared size tell.
  std::size_t block_size = page->block_size;
  if (*freed_key_slot(p) == kFreedKey && stored_size(p, block_size) == 0)
    fatal("double free", p);
  return page_block_size_checked(p, block_size);
}

// Bytes of a block verified still zero when it is handed out again: its
// first cache line (past the link word) and sampled words (the middle and
// the last word, which covers the tail).  A write after free elsewhere is
// caught when the page's blocks are verified whole (page release or reuse).
constexpr std::size_t kVerifyLine = 64;

void check_still_zero(const char* p, std::size_t block_size) noexcept {
  std::uint64_t any = 0;
  std::size_t line = min_size(block_size, kVerifyLine);
  for (std::size_t i = 8; i < line; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    any |= w;
  }
  if (block_size > kVerifyLine) {
    std::uint64_t mid, last;
    std::memcpy(&mid, p + (block_size / 2 & ~std::size_t{7}), 8);
    std::memcpy(&last, p + block_size - 8, 8);
    any |= mid | last;
  }
  if (any != 0) fatal("write after free (a freed block was modified before its reuse)", p);
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
    std::uint64_t any = 0;
    for (std::size_t j = skip; j < block_size; j += 8) {
      std::uint64_t w;
      std::memcpy(&w, b + j, 8);
      any |= w;
    }
    if (any != 0) fatal("write after free (a freed block was modified)", b);
  }
}

void checked_note_huge_unmapped(const void* block) noexcept {
  LockGuard guard(g_ring_lock);
  g_unmapped[g_unmapped_next] = block;
  g_unmapped_next = (g_unmapped_next + 1) % kUnmappedRing;
}

void* checked_alloc(std::size_t size, std::size_t alignment) noexcept {
  if (BOP_UNLIKELY(size == 0) && alignment <= kZeroSlot) {
    if (void* p = zero_alloc()) return p;
    size = 1;
  }
  if (BOP_UNLIKELY(size > (std::size_t{1} << 47))) {
    errno = ENOMEM;
    return nullptr;
  }
  std::size_t internal = size + kCheckedOverhead;
  char* p = static_cast<char*>(alignment == 0 ? alloc<false, true>(internal)
                                              : alloc_aligned<false, true>(alignment, internal));
  if (p == nullptr) return nullptr;
  Segment* seg = segment_of(p);
  if (BOP_UNLIKELY(seg->kind == SegmentKind::kHuge)) {
    // A fresh mapping (huge blocks are not cached in checked builds): zero.
    write_canary(p, size, huge_canary_end(seg));
    return p;
  }
  std::size_t block_size = seg->page_of(p)->block_size;
  check_still_zero(p, block_size);
  std::memset(p, 0, 8);  // the free-list link
  write_canary(p, size, block_size - kTailBytes);
  set_stored_size(p, block_size, size);
  return p;
}

void checked_free(void* p, std::size_t size, std::size_t alignment) noexcept {
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
  Page* page = seg->page_of(p);
  std::size_t n = check_page_block_live(seg, page, b);
  check_sized(p, size, alignment, n, page->size_class);
  clear_page_block(b, n, page->block_size);  // reads after free see zeros; reuse verifies them
  // The block is validated and zeroed (no freed key): the owner's push
  // skips free_to_page's misuse test.
  if (BOP_LIKELY(seg->owner == heap))
    return free_to_page</*kCheck=*/false>(heap, seg, static_cast<Block*>(p));
  free_slow(heap, seg, p);
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
      // smaller size to the old canary's end restores the layout: shrinking
      // clears the dropped bytes, growing only the old canary.
      std::size_t block_size = page->block_size;
      std::size_t internal = size + kCheckedOverhead;
      bool aligned = alignment == 0 || (reinterpret_cast<std::uintptr_t>(p) & (alignment - 1)) == 0;
      if (size != 0 && internal <= block_size && realloc_keeps_block(internal, block_size) &&
          aligned) {
        std::size_t end = block_size - kTailBytes;
        std::size_t from = min_size(size, old_size);
        std::memset(b + from, 0, canary_stop(old_size, end) - from);
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
