// The allocator's entry points as inline functions: the fast paths live here
// so the C API and the malloc override compile them into their own bodies.
//
// Fast path of alloc (sizes <= 1 KiB): TLS load, table load, pop a free-list
// head, bump `used`.  No atomics, no calls, no size-class arithmetic.
// Fast path of free: mask the pointer to its segment header, compare the
// owner with our heap, push on the page's free list.  One LIFO list per page
// means the next allocation of the class gets the block freed last, whose
// cache lines are still hot (a second list for frees, swapped in when the
// first runs dry, handed out the coldest blocks first).
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "core/hardening.hpp"
#include "core/heap.hpp"
#include "core/huge.hpp"
#include "core/misuse.hpp"
#include "core/size_classes.hpp"
#include "core/types.hpp"
#include "platform/fatal.hpp"

#define BOP_LIKELY(x) __builtin_expect(!!(x), 1)
#define BOP_UNLIKELY(x) __builtin_expect(!!(x), 0)

namespace bop::core {

// Checked builds: a free-list link must stay inside its own page.
inline void check_link(const Page* page, const Block* b, const Block* next) {
#if BOP_CHECKED
  // Same page: the addresses agree above the page shift (no block starts
  // at its page's end, and page 0, the header, has no blocks).
  // One branch: `&` on the two tests, not `&&` (a list's last link is
  // null at random in programs that mix sizes).
  unsigned shift = segment_of_page(page)->page_shift;
  bool off_page = ((reinterpret_cast<std::uintptr_t>(next) ^ reinterpret_cast<std::uintptr_t>(b)) >>
                   shift) != 0;
  if (BOP_UNLIKELY(off_page & (next != nullptr)))
    fatal("corrupted free list (use after free or buffer overflow?)", b);
#else
  (void)page, (void)b, (void)next;
#endif
}

// Takes the head block of `page`'s free list (known non-empty).
template <bool kZero>
inline void* page_pop(Page* page, Block* b, std::size_t size) {
  Block* next = block_next(b);
  check_link(page, b, next);
  page->free = next;
  page->used++;
  if constexpr (kZero) {
    // Blocks page_extend threaded from fresh OS memory are zero but for
    // their link word, and lack the freed key that every free writes: so a
    // block without the key on a page whose last run was fresh is zero, and
    // frees need not keep any "list is zero" flag up to date.
    if (page->fresh_is_zero && *freed_key_slot(b) != kFreedKey)
      b->link = 0;
    else
      std::memset(b, 0, size);  // clears the key too
    return b;
  }
  clear_freed_key(b);
  return b;
}

// A block from `page` if its free list has one: a load, a test and the pop.
// nullptr sends the caller to the slow path (which also collects the blocks
// other threads freed: remote.cpp).
template <bool kZero>
inline void* page_alloc(Page* page, std::size_t size) {
  if (Block* b = page->free; BOP_LIKELY(b != nullptr)) return page_pop<kZero>(page, b, size);
  return nullptr;
}

// Pages reached through a class queue (sizes above kDirectMax, strict
// alignments) are out of the direct table's reach, so a poke (remote.cpp)
// cannot send their allocations to the slow path: they test remote_in
// themselves, one load of a line only other threads' hand-overs write.
inline bool remote_frees_wait(Heap* heap) noexcept {
  return heap->remote_in.load(std::memory_order_relaxed) != nullptr;
}

template <bool kZero>
inline void* alloc_generic(Heap* heap, std::size_t size) noexcept {
  if (BOP_LIKELY(size <= kLargeBlockMax)) {
    unsigned cls = size_to_class(size);
    Page* page = heap->classes[cls].first;
    if (BOP_LIKELY(page != nullptr && !remote_frees_wait(heap))) {
      if (void* p = page_alloc<kZero>(page, size)) return p;
    }
    return alloc_slow<kZero>(heap, size, cls);
  }
  return huge_alloc(size, 0, kZero);
}

// A request of at most kDirectMax bytes: the direct table names the page.
// Release builds' entry points call it first (see g_direct_limit).  No test
// of remote_in here: when remote frees pile up, the sender pokes the direct
// table (remote.cpp), and this path finds an empty page.
template <bool kZero>
inline void* alloc_small(std::size_t size) noexcept {
  Heap* heap = tl_heap;
  std::size_t slot = direct_slot(size);
  Page* page = direct_page(heap, slot);
  if (void* p = page_alloc<kZero>(page, size); BOP_LIKELY(p != nullptr)) return p;
  return alloc_slow<kZero>(heap, size, kDirectClass[slot]);
}

// kUnchecked: hardening.cpp's own calls (checked builds route every other
// call through it first).
template <bool kZero, bool kUnchecked = false>
inline void* alloc(std::size_t size) noexcept {
  if constexpr (kChecked && !kUnchecked) return checked_alloc(size, 0, kZero);
  if (BOP_LIKELY(size <= kDirectMax)) return alloc_small<kZero>(size);
  return alloc_generic<kZero>(tl_heap, size);
}

// Any power-of-two alignment.  Most become an ordinary request of a class
// whose blocks are naturally aligned; the rest are huge blocks.
template <bool kZero, bool kUnchecked = false>
inline void* alloc_aligned(std::size_t alignment, std::size_t size) noexcept {
  if (BOP_UNLIKELY(alignment == 0 || (alignment & (alignment - 1)) != 0)) {
    errno = EINVAL;
    return nullptr;
  }
  if constexpr (kChecked && !kUnchecked) return checked_alloc(size, alignment, kZero);
  if (alignment <= 16) {
    // Every class is 16-aligned.
    return alloc<kZero, kUnchecked>(size);
  }
  unsigned cls = aligned_class(size, alignment);
  if (cls >= kClassCount) return huge_alloc(size, alignment, kZero);
  Heap* heap = tl_heap;
  Page* page = heap->classes[cls].first;
  if (page != nullptr && !remote_frees_wait(heap)) {
    if (void* p = page_alloc<kZero>(page, size)) return p;
  }
  return alloc_slow<kZero>(heap, size, cls);
}

// --used, true when the result is <= 0 (the page became empty, or was full:
// kFullBit makes `used` negative).  On x86-64 one read-modify-write and a
// jump; GCC otherwise loads, subtracts, stores and tests (3 instructions more
// on every free).  `used` is the owner's alone, so no atomicity is needed.
inline bool release_one_reaches_zero(std::int32_t& used) noexcept {
#if defined(__x86_64__) && !defined(__clang_analyzer__)
  asm goto("subl $1, %0\n\tjle %l[low]" : "+m"(used) : : "cc" : low);
  return false;
low:
  return true;
#else
  return --used <= 0;
#endif
}

// A block of this heap goes back to its page: the free fast path, also used
// for blocks other threads handed back (drain_remote).
// kCheck = false: free_suspect, after it cleared a suspect block.
// `page` is seg->page_of(b) (the counted free has it at hand already).
template <bool kCheck = true>
inline void free_to_page(Heap* heap, Segment* seg, Block* b, Page* page) noexcept {
  if constexpr (kCheck) {
    // Misuse checks (misuse.hpp): a misaligned pointer or a block already
    // marked freed leaves through a tail call, so this path keeps no frame.
    if (free_is_suspect(page, b)) return free_suspect(heap, seg, b);
  }
  mark_freed(b);
  block_set_next(b, page->free);
  page->free = b;  // b carries the freed key now: page_pop will not take it for fresh
  if (BOP_UNLIKELY(release_one_reaches_zero(page->used))) {  // empty, or was full
    // Cheap early out for the common "only page of its class became empty"
    // (a malloc/free loop): prev == next only when both are null.  Mirrors
    // the keep rule in page_after_free.
    if (page->used == 0 && page->prev == page->next && page->block_size <= kSmallBlockMax) {
      if (BOP_UNLIKELY(heap->trim_request.load(std::memory_order_relaxed))) heap_trim(heap);
      return;
    }
    page_after_free(heap, page);
  }
}

template <bool kCheck = true>
inline void free_to_page(Heap* heap, Segment* seg, Block* b) noexcept {
  free_to_page<kCheck>(heap, seg, b, seg->page_of(b));  // a shift and an add: no lookup table
}

template <bool kUnchecked = false>
inline void dealloc(void* p) noexcept {
  if constexpr (kChecked && !kUnchecked) return checked_free(p, kSizeUnknown, 0);
  if (BOP_UNLIKELY(p == nullptr)) return;
  Segment* seg = segment_of(p);
  Heap* heap = tl_heap;
  if (BOP_LIKELY(seg->owner == heap)) return free_to_page(heap, seg, static_cast<Block*>(p));
  free_slow(heap, seg, p);
}

// A free that names the block's size (and alignment, 0 = default): checked
// builds verify both against the block; default builds ignore them.
inline void dealloc_sized(void* p, std::size_t size, std::size_t alignment) noexcept {
  if constexpr (kChecked) return checked_free(p, size, alignment);
  (void)size, (void)alignment;
  dealloc(p);
}

inline std::size_t usable_size(const void* p) noexcept {
  if constexpr (kChecked) return checked_usable_size(p);
  if (p == nullptr) return 0;
  Segment* seg = segment_of(p);
  validate_block(tl_heap, seg, p, "malloc_usable_size");
  if (seg->kind == SegmentKind::kHuge) return seg->block_size;
  return seg->page_of(p)->block_size;
}

// Resizes keeping `alignment` (0 = default).  In place while the new size
// fits the block and does not waste more than half of it (or no smaller
// class exists); huge blocks grow and shrink by mremap.
inline void* reallocate(void* p, std::size_t size, std::size_t alignment) noexcept {
  if (alignment != 0 && (alignment & (alignment - 1)) != 0) {
    errno = EINVAL;
    return nullptr;
  }
  if constexpr (kChecked) return checked_realloc(p, size, alignment);
  if (p == nullptr)
    return alignment == 0 ? alloc<false>(size) : alloc_aligned<false>(alignment, size);
  Segment* seg = segment_of(p);
  validate_block(tl_heap, seg, p, "realloc");
  std::size_t old_size;
  if (seg->kind == SegmentKind::kHuge) {
    // Stays huge unless it shrinks to a size a page serves well; a stricter
    // alignment than the block was laid out for needs a new block.
    if (size > kLargeBlockMax / 2 && alignment <= seg->block_align)
      return huge_realloc(seg, p, size, alignment);  // nullptr + ENOMEM: p untouched
    old_size = seg->block_size;
  } else {
    old_size = seg->page_of(p)->block_size;
    bool aligned = alignment == 0 || (reinterpret_cast<std::uintptr_t>(p) & (alignment - 1)) == 0;
    if (size <= old_size && realloc_keeps_block(size, old_size) && aligned) return p;
  }
  void* q;
  if (size > kLargeBlockMax && size > old_size && alignment <= kMaxNaturalAlign) {
    q = huge_alloc(size, alignment, false, /*growing=*/true);  // a buffer on its way up
  } else {
    q = alignment == 0 ? alloc<false>(size) : alloc_aligned<false>(alignment, size);
  }
  if (q == nullptr) return nullptr;
  std::memcpy(q, p, old_size < size ? old_size : size);
  dealloc(p);
  return q;
}

}  // namespace bop::core

// The checked build's inline paths build on the ones above.
#include "core/hardening_inline.hpp"
