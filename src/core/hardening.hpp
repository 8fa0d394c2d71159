// BOP_CHECKED builds: the hardened mode.  Every entry point of alloc.hpp
// forwards here first (an `if constexpr`, so default builds carry none of
// it).  What it adds to misuse.hpp's checks:
//
//  - Freed blocks are zeroed up to their first KiB (hardening_inline.hpp
//    has the exact layout), and verified still zero when handed out again:
//    reads after free and of "uninitialised" memory there see zeros, and a
//    write after free there aborts at the block's reuse or its page's purge
//    at the latest.
//  - A canary after every small and medium block: the request n is served
//    from a block of at least n + kCheckedOverhead bytes; byte n is 0 (a
//    string filling the block stays terminated), the next 7 to 16 bytes hold
//    a pattern, and the block's last 4 bytes hold n.  Checked on free and realloc.  The
//    usable size is n.  Huge blocks get a canary byte and pattern after n too.
//  - A freed huge block's first 64 KiB (kCheckedHugeGuard) are made
//    inaccessible while its mapping is cached, and unmapped after: a later
//    access there faults until the mapping serves another block, which
//    finds its first kZeroCap bytes zero (as a medium block does; the rest
//    may hold what the mapping held before; calloc clears it whole).
//  - Zero-size requests get a unique address in an inaccessible region:
//    reading or writing one faults; freeing it (once) works.
//  - Sized frees (sized delete, free_sized, free_aligned_sized,
//    bop_dealloc_sized) must name the block's size, and an alignment the
//    block has.
// Every check prints one "bop: <kind> (pointer 0x...)" line and aborts.
#pragma once

#include <cstddef>

#include "platform/spin_lock.hpp"

namespace bop::core {

#if BOP_CHECKED
inline constexpr bool kChecked = true;
#else
inline constexpr bool kChecked = false;
#endif

// Bytes a checked block carries past the request, at least: 8 canary bytes
// (so writing and checking the canary takes a fixed run of word stores and
// loads, no branch on its length) and the 4-byte stored request size.
inline constexpr std::size_t kCheckedOverhead = 12;

namespace checked {
// Bytes of a block's start that are zero when it is handed out, and kept
// zero while it is free (verified, sampled, when it is handed out again).
// Huge blocks are cleared that far when their mapping is reused.
inline constexpr std::size_t kZeroCap = 1024;
}  // namespace checked

// A sized free's size when the caller gave none.
inline constexpr std::size_t kSizeUnknown = ~std::size_t{0};

// alignment 0: the default; zero: calloc (the whole request reads as zero).
// Inline (hardening_inline.hpp, included by alloc.hpp): the common case
// stays on the fast path.
inline void* checked_alloc(std::size_t size, std::size_t alignment, bool zero) noexcept;
inline void checked_free(void* p, std::size_t size, std::size_t alignment) noexcept;
void* checked_realloc(void* p, std::size_t size, std::size_t alignment) noexcept;
std::size_t checked_usable_size(const void* p) noexcept;

struct Page;
// segment.cpp: a page whose blocks are all free is purged, or taken again
// before its purge: a write after free into any of its blocks since they
// were freed aborts here.
void checked_verify_free_page(const Page* page, const char* start) noexcept;

// heap.cpp: `count` blocks of `block_size` carved again from a page that
// held other blocks before: laid out free (zero up to kZeroCap, and their
// tails).
void checked_prepare_reused_blocks(char* start, std::size_t count, std::size_t block_size) noexcept;

// huge.cpp: a huge block's mapping was unmapped (a second free of it is
// then named a double free, not a foreign pointer).
void checked_note_huge_unmapped(const void* block) noexcept;

// process.cpp's fork handlers: the zero-size region's and the unmapped
// ring's locks (used by checked builds), leaves inside every other lock.
void checked_fork(ForkPhase phase) noexcept;

}  // namespace bop::core
