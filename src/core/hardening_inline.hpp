// BOP_CHECKED builds: the block layout (canary, stored size, zeroed prefix)
// and the inline fast paths of checked_alloc and checked_free.  Included at
// the end of alloc.hpp, after the default build's fast paths it reuses;
// everything rare (huge and zero-size blocks, aligned requests, cross-thread
// frees, sized frees, misuse reports) is out of line in hardening.cpp.
//
// Layout of a small or medium block of B bytes holding a request of n bytes:
//
//   [0, n)              the program's bytes
//   [n, stop)           the canary: byte n is 0, then kCanaryPattern bytes;
//                       stop = min(n + 17, B - 4), at least n + 8
//   [B - 4, B)          n (the tail; 0 while the block is free)
//   the rest of [0, min(B, kZeroCap)) is zero.
//
// A free block is zero in [16, min(B, kZeroCap)) and in its tail (words 0
// and 1 hold the free-list link and the freed key).  Bytes at and past
// kZeroCap of a block above kZeroCap are not kept zero: a free clears the
// request only up to kZeroCap, so its cost stays bounded by kZeroCap however
// large the block (calloc still zeroes the whole request).
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>

#include "core/alloc.hpp"
#include "core/block_index.hpp"
#include "core/misuse.hpp"
#include "core/segment.hpp"
#include "platform/fatal.hpp"

namespace bop::core {
namespace checked {

inline constexpr unsigned char kCanaryPattern = 0xCB;
inline constexpr std::size_t kCanaryBytes = 17;  // the zero byte and 16 pattern bytes, at most
inline constexpr std::size_t kTailBytes = 4;     // the stored request size at a block's end
// Requests the inline alloc path serves: their blocks (at most kDirectMax
// bytes) lie within kZeroCap, so they are zero whole.
inline constexpr std::size_t kInlineMax = kDirectMax - kCheckedOverhead;
static_assert(kDirectMax <= kZeroCap);

// The canary as little-endian words: the zero byte, then the pattern.
inline constexpr std::uint64_t kPatternWord = 0xCBCBCBCBCBCBCBCBull;
inline constexpr std::uint64_t kHeadWord = kPatternWord << 8;  // byte 0 is zero

// Unaligned word access (one mov each once inlined).
template <class Word>
inline Word load_word(const void* p) noexcept {
  Word w;
  std::memcpy(&w, p, sizeof w);
  return w;
}
template <class Word>
inline void store_word(void* p, Word w) noexcept {
  std::memcpy(p, &w, sizeof w);
}

inline std::size_t min_size(std::size_t a, std::size_t b) noexcept {
  return a < b ? a : b;
}

// End of the canary of request n in a block whose canary area ends at `end`.
inline std::size_t canary_stop(std::size_t n, std::size_t end) noexcept {
  return min_size(end, n + kCanaryBytes);
}

// The canary occupies [c, c + len), len 8..17 (kCheckedOverhead leaves 8
// bytes at least before the tail): three overlapping words, at c, c + len - 8
// and c + min(8, len - 8); the last two are the same word when len <= 16.
// Only the word at c holds the zero byte, and when len is 8 the word at
// c + len - 8 is that word too.
inline std::size_t canary_mid(std::size_t len) noexcept {
  return min_size(8, len - 8);
}
inline std::uint64_t canary_end_word(std::size_t len) noexcept {
  return len == 8 ? kHeadWord : kPatternWord;  // a cmov, not a branch
}

inline void write_canary_at(char* c, std::size_t len) noexcept {
  store_word<std::uint64_t>(c + len - 8, kPatternWord);
  store_word<std::uint64_t>(c + canary_mid(len), kPatternWord);
  store_word<std::uint64_t>(c, kHeadWord);  // last: a pattern word may have covered byte c
}

inline bool canary_intact_at(const char* c, std::size_t len) noexcept {
  std::uint64_t end = canary_end_word(len);
  std::uint64_t diff = (load_word<std::uint64_t>(c) ^ kHeadWord) |
                       (load_word<std::uint64_t>(c + len - 8) ^ end) |
                       (load_word<std::uint64_t>(c + canary_mid(len)) ^ end);
  return diff == 0;
}

inline void write_canary(char* p, std::size_t n, std::size_t end) noexcept {
  write_canary_at(p + n, canary_stop(n, end) - n);
}
inline bool canary_intact(const char* p, std::size_t n, std::size_t end) noexcept {
  return canary_intact_at(p + n, canary_stop(n, end) - n);
}

inline std::uint32_t stored_size(const char* p, std::size_t block_size) noexcept {
  return load_word<std::uint32_t>(p + block_size - kTailBytes);
}
inline void set_stored_size(char* p, std::size_t block_size, std::size_t n) noexcept {
  store_word<std::uint32_t>(p + block_size - kTailBytes, static_cast<std::uint32_t>(n));
}

// The block size a checked request of n bytes (default alignment) asks of
// the default build's paths: n plus the overhead, but twice n for a power of
// two from 16 B to 64 KiB.  Blocks of a power-of-two class are aligned to
// their size, so such a request stays naturally aligned (README: alignment
// of plain allocations) although its overhead moves it past its own class.
constexpr std::size_t internal_size(std::size_t n) noexcept {
  bool power_of_two = n >= 16 && n <= 64 * KiB && (n & (n - 1)) == 0;
  return power_of_two ? 2 * n : n + kCheckedOverhead;
}
static_assert(internal_size(kInlineMax) <= kDirectMax && internal_size(512) <= kDirectMax,
              "the inline path's requests stay in the direct table");

// Out of line (hardening.cpp): every other case, and the misuse reports.
void* checked_alloc_slow(std::size_t size, std::size_t alignment, bool zero) noexcept;
void checked_free_slow(void* p, std::size_t size, std::size_t alignment) noexcept;
[[noreturn, gnu::cold]] void report_page_free(const Page* page, const char* p) noexcept;
[[noreturn, gnu::cold]] void report_wrong_size(const void* p) noexcept;
void check_sized(const void* p, std::size_t size, std::size_t alignment, std::size_t n,
                 unsigned cls) noexcept;

// Bytes of a handed-out block verified still zero: its first cache line
// past the freed-key word (where a write after free through a stale pointer
// most likely lands), and for longer blocks the last word of the zeroed
// prefix and the tail.  Other writes after free into the first KiB are
// caught when the page's blocks are verified whole (its purge or its reuse).
inline constexpr std::size_t kVerifyLine = 64;

inline bool still_zero(const char* p, std::size_t block_size) noexcept {
  // Every class is a multiple of 16: below the line, blocks of 16, 32 or 48.
  std::uint64_t any = 0;
  if (block_size >= kVerifyLine) {
    any = load_word<std::uint64_t>(p + 16) | load_word<std::uint64_t>(p + 24) |
          load_word<std::uint64_t>(p + 32) | load_word<std::uint64_t>(p + 40) |
          load_word<std::uint64_t>(p + 48) | load_word<std::uint64_t>(p + 56);
  } else if (block_size >= 32) {
    any = load_word<std::uint64_t>(p + 16) | load_word<std::uint64_t>(p + 24);
    if (block_size == 48)
      any |= load_word<std::uint64_t>(p + 32) | load_word<std::uint64_t>(p + 40);
  }
  static_assert(kVerifyLine == 64);
  // The tail's line is written now anyway; a middle word would cost a
  // cache miss per allocation.
  if (block_size > kVerifyLine)
    any |= load_word<std::uint64_t>(p + min_size(block_size, kZeroCap) - 8) |
           stored_size(p, block_size);
  return any == 0;
}

// A page block popped for request n: verified, then laid out live.
[[gnu::always_inline]] inline void* hand_out(char* p, std::size_t n,
                                             std::size_t block_size) noexcept {
  if (BOP_UNLIKELY(!still_zero(p, block_size)))
    fatal("write after free (a freed block was modified before its reuse)", p);
  store_word<std::uint64_t>(p, 0);  // the free-list link (the freed key is cleared by page_pop)
  write_canary(p, n, block_size - kTailBytes);
  set_stored_size(p, block_size, n);
  return p;
}

// p (registered, in a small or medium segment) must be the start of a live
// block of `page`; returns its request size (canary checked).
[[gnu::always_inline]] inline std::size_t page_block_live(Segment* seg, Page* page,
                                                          char* p) noexcept {
  // Another thread may be extending the page (page_extend): `reserved` only
  // grows while the page is in use, so any value read covers a live block.
  std::uint32_t reserved =
      std::atomic_ref<std::uint32_t>(page->reserved).load(std::memory_order_relaxed);
  // Pages are aligned to their size: p's offset in its page is its low bits.
  std::uintptr_t offset =
      reinterpret_cast<std::uintptr_t>(p) & ((std::uintptr_t{1} << seg->page_shift) - 1);
  if (BOP_UNLIKELY(block_index(page, offset) >= reserved)) report_page_free(page, p);
  // A live block's tail holds its request size (at least 1); a freed one's
  // is 0 and its second word the freed key.  A page not in use has block
  // size 0 (page_release), so this fails for it too: the read, at p - 4,
  // stays inside p's (mapped) segment.
  std::size_t block_size = page->block_size;
  std::size_t n = stored_size(p, block_size);
  if (BOP_UNLIKELY(n + kCheckedOverhead > block_size ||
                   !canary_intact(p, n, block_size - kTailBytes)))
    report_page_free(page, p);
  return n;
}

// Back to the free layout: zero what the request and its canary covered,
// [0, min(stop, kZeroCap)), and the tail.  Words 0 and 1 are left to the
// caller, which overwrites them with the free-list link and the freed key.
// Up to 64 bytes (most frees) as overlapping 16-byte stores; longer through
// memset, which the caller calls out of line (inlined, the compiler picks
// `rep stos`, slow to start).
[[gnu::always_inline]] inline std::size_t clear_length(std::size_t n,
                                                       std::size_t block_size) noexcept {
  return min_size(canary_stop(n, block_size - kTailBytes), kZeroCap);
}
[[gnu::always_inline]] inline void clear_short(char* p, std::size_t len) noexcept {
  constexpr char zero[16] = {};
  if (len > 16) std::memcpy(p + len - 16, zero, 16);
  if (len > 32) {
    std::memcpy(p + 16, zero, 16);
    std::memcpy(p + len - 32, zero, 16);
  }
}
inline constexpr std::size_t kClearShortMax = 64;

}  // namespace checked

// Fast path: a default-aligned request of at most kInlineMax bytes whose
// direct page has a block at hand (the default build's fast path on the
// request plus the overhead), then the zero check and the canary.
[[gnu::always_inline]] inline void* checked_alloc(std::size_t size, std::size_t alignment,
                                                  bool zero) noexcept {
  if (BOP_LIKELY(alignment == 0 && size - 1 < checked::kInlineMax)) {  // size 0 wraps around
    Heap* heap = tl_heap;
    std::size_t internal = checked::internal_size(size);  // at most kDirectMax
    Page* page = direct_page(heap, direct_slot(internal));
    if (void* p = page_alloc<false>(page, internal); BOP_LIKELY(p != nullptr))
      return checked::hand_out(static_cast<char*>(p), size, page->block_size);
  }
  return checked::checked_alloc_slow(size, alignment, zero);
}

namespace checked {

void free_page_block_long(Segment* seg, Page* page, char* p, std::size_t len) noexcept;

// The end of every free of a page block: the freed key and the link (the
// owner's push), or the remote hand-over, whose link leaves word 1 alone:
// cleared here so a read after free sees no data past the link.
[[gnu::always_inline]] inline void push_page_block(Segment* seg, Page* page, char* p) noexcept {
  Heap* heap = tl_heap;
  // Validated and cleared: the owner's push skips free_to_page's misuse test.
  if (BOP_LIKELY(seg->owner == heap))
    return free_to_page</*kCheck=*/false>(heap, seg, reinterpret_cast<Block*>(p), page);
  store_word<std::uint64_t>(p + 8, 0);
  free_slow_validated(heap, seg, p);
}

}  // namespace checked

// Fast path: a free (sized or not, but without an alignment) of a
// registered small or medium block, cleared inline when its request and
// canary end within 64 bytes (longer ones in a tail call).  The registry is
// asked before anything is read from p's segment header: nullptr and
// foreign pointers fail it, and the slow path sorts them out, as it does
// aligned sized frees, huge and zero-size blocks.
[[gnu::always_inline]] inline void checked_free(void* p, std::size_t size,
                                                std::size_t alignment) noexcept {
  if (BOP_UNLIKELY(p == nullptr || alignment != 0))
    return checked::checked_free_slow(p, size, alignment);
  // segment_of maps p - 1: the registry is asked about the same address.
  auto* registry = g_segment_registry.load(std::memory_order_acquire);  // a plain mov on x86-64
  if (BOP_UNLIKELY(registry == nullptr || !registry_has(registry, static_cast<const char*>(p) - 1)))
    return checked::checked_free_slow(p, size, alignment);
  Segment* seg = segment_of(p);
  if (BOP_UNLIKELY(seg->kind != SegmentKind::kSmall && seg->kind != SegmentKind::kMedium))
    return checked::checked_free_slow(p, size, alignment);
  char* b = static_cast<char*>(p);
  Page* page = seg->page_of(p);
  std::size_t n = checked::page_block_live(seg, page, b);
  // A sized free without an alignment: the size must be the request's.
  if (BOP_UNLIKELY(size != kSizeUnknown && size != n)) checked::report_wrong_size(p);
  std::size_t block_size = page->block_size;
  std::size_t len = checked::clear_length(n, block_size);
  if (BOP_UNLIKELY(len > checked::kClearShortMax))
    return checked::free_page_block_long(seg, page, b, len);
  checked::clear_short(b, len);
  checked::set_stored_size(b, block_size, 0);
  checked::push_page_block(seg, page, b);
}

}  // namespace bop::core
