// Returning the free parts of sparse pages to the OS.
//
// A page goes back to its segment (and its memory to the OS) only once every
// block on it is free.  After a program frees most of a phase's blocks in
// random order (a cache's eviction storm, the end of a parse), nearly every
// page keeps a few live blocks, and each one keeps its whole 64 KiB resident.
// The owner therefore gives back the 4 KiB OS pages inside such a sparse page
// that hold free blocks only (heap_purge_sparse, from housekeeping).  Their
// blocks leave the free list, since their links now read as zero, and the
// page records the returned OS pages in `purged_os_pages`; when its free list
// runs dry, page_unpurge threads those blocks again (their memory faults back
// in as zero).
//
// Only small pages of classes >= kSparseMinBlock: smaller blocks rarely leave
// a whole OS page free.  Checked builds keep their pages whole (their
// free-block checks read every free block).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/config.hpp"
#include "core/types.hpp"
#include "platform/os.hpp"

namespace bop::core {

inline constexpr std::size_t kSparseMinBlock = 512;
inline constexpr std::size_t kOsPageBytes = os::kPageSize;
inline constexpr unsigned kOsPagesPerSmallPage = (1u << kSmallPageShift) / kOsPageBytes;
static_assert(kOsPagesPerSmallPage <= 16, "Page::purged_os_pages has a bit per OS page");

// The `used` count at or below which a fresh (or refilled) page of
// `capacity` blocks is sparse enough to look at.
constexpr std::uint16_t sparse_mark_initial(std::uint32_t capacity) {
  return static_cast<std::uint16_t>(capacity / 4);
}

// Owner only: returns the free OS pages of the heap's sparse pages, looking
// at `budget` pages of its class queues, from where the last call stopped
// (so repeated calls sweep the heap).
inline constexpr std::size_t kSparseScanAll = SIZE_MAX;  // bop_collect
inline constexpr std::size_t kSparseScanRound = 256;     // a purger round
inline constexpr std::size_t kSparseScanNewPage = 16;    // before each new page
void heap_purge_sparse(Heap* heap, std::size_t budget) noexcept;

// Owner only: page's free list is empty; threads the blocks of its returned
// OS pages onto it.  False if it had none.
bool page_unpurge(Page* page) noexcept;

// The OS pages of a small page that bytes [offset, offset + size) overlap,
// as a mask of purged_os_pages bits.
constexpr std::uint32_t os_pages_spanned(std::size_t offset, std::size_t size) {
  std::size_t first = offset / kOsPageBytes;
  std::size_t last = (offset + size - 1) / kOsPageBytes;
  return (2u << last) - (1u << first);  // bits first..last
}

// Is block b (on a small page) free because its memory went back to the OS?
// The misuse checks count such blocks as free.
inline bool block_is_purged(const Page* page, const void* b) noexcept {
  std::uint16_t mask = page->purged_os_pages;
  if (mask == 0) return false;
  std::uintptr_t offset =
      reinterpret_cast<std::uintptr_t>(b) & ((std::uintptr_t{1} << kSmallPageShift) - 1);
  return (os_pages_spanned(offset, page->block_size) & mask) != 0;
}

}  // namespace bop::core
