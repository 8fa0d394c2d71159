// Misuse checks of every build (not only BOP_CHECKED): double frees, and
// frees, reallocs and usable-size queries of pointers that are not the start
// of a live bop block.  What runs on the owner's fast paths is a few
// instructions per malloc+free pair; everything else lives on paths that are
// slow already (cross-thread and huge frees, realloc, malloc_usable_size).
// A detected misuse prints one "bop: <kind> (pointer 0x...)" line and aborts.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/types.hpp"

#define BOP_MISUSE_UNLIKELY(x) __builtin_expect(!!(x), 0)

namespace bop::core {

// The word a local free writes into every block it frees, at word
// kFreedKeyWord (the block's second word, which the free-list link leaves
// alone), and which the allocation that hands the block out again clears.
// A free that finds it already there is almost surely a double free, even
// with other frees in between; free_suspect confirms by walking the page's
// free lists (a live block could hold the same value as data).  Every class
// has a second word (the smallest is 16 bytes, size_classes.hpp), so the
// offset is a constant: the test, the mark and the clear are one
// instruction each, addressing the block directly.  A sign-extended 32-bit
// immediate, for the same reason.
inline constexpr std::uint64_t kFreedKey = 0xFFFFFFFFB0FFBEEFull;
inline constexpr std::size_t kFreedKeyWord = 1;

inline std::uint64_t* freed_key_slot(void* b) {
  return static_cast<std::uint64_t*>(b) + kFreedKeyWord;
}

// Out of line: a local free whose pointer is misaligned for its class or
// whose block carries the freed key.  Aborts, unless the key turns out to be
// the program's own data (the block is on no free list): then it frees the
// block as usual.
[[gnu::cold]] void free_suspect(Heap* heap, Segment* seg, Block* b) noexcept;

// Every local free (and every block the owner takes back from other
// threads): a pointer off its class's alignment is interior or unaligned; a
// block already marked freed is probably a double free.
inline bool free_is_suspect(const Page* page, Block* b) noexcept {
  return BOP_MISUSE_UNLIKELY((reinterpret_cast<std::uintptr_t>(b) & page->align_mask) != 0) ||
         BOP_MISUSE_UNLIKELY(*freed_key_slot(b) == kFreedKey);
}

inline void mark_freed(Block* b) noexcept {
  *freed_key_slot(b) = kFreedKey;
}

// The allocation side: a block handed out carries no freed key, so freeing
// it once is never mistaken for a double free.
inline void clear_freed_key(Block* b) noexcept {
  *freed_key_slot(b) = 0;
}

// Slow-path validation of a pointer about to be freed (by another thread
// than its owner, or a huge block), reallocated or measured: it must lie in
// a segment bop mapped (checked before anything is read from its header) and
// be the start of a live block.  `what` names the operation in the message.
void validate_block(Heap* heap, Segment* seg, const void* p, const char* what) noexcept;

}  // namespace bop::core
