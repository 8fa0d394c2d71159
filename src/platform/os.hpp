// The OS layer: address space, memory commit/purge, time.  Nothing above
// src/platform calls mmap, madvise or clock_gettime directly.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bop::os {

inline constexpr std::size_t kPageSize = 4096;  // checked against the OS at start-up

// Maps `size` bytes of zeroed read/write memory whose start is aligned to
// `alignment` (a power of two >= kPageSize).  Pages cost nothing until touched.
// Returns nullptr when the OS refuses.
void* map_aligned(std::size_t size, std::size_t alignment) noexcept;

// Maps `size` bytes (page multiple) so that `base + offset` lands on an address
// aligned to `alignment` while `base` itself is aligned to `base_alignment`.
// Used for huge blocks whose header sits before the aligned block.
void* map_with_offset(std::size_t size, std::size_t base_alignment, std::size_t offset,
                      std::size_t alignment) noexcept;

void unmap(void* p, std::size_t size) noexcept;

// Makes [p, p+size) inaccessible (any access faults), or readable and
// writable again; page-aligned.  false if the OS refused (out of kernel
// mapping records: the range then keeps its old protection).
bool protect_none(void* p, std::size_t size) noexcept;
bool protect_read_write(void* p, std::size_t size) noexcept;

// Gives the physical pages back (RSS drops); the range stays mapped and reads
// back as zero.  Ranges are page-aligned.
void purge(void* p, std::size_t size) noexcept;

// purge() of many ranges at once: one process_madvise call where the kernel
// takes MADV_DONTNEED through it for the calling process (Linux 6.14 and
// later; a third of the cost of one madvise per range) and no seccomp filter
// is installed, else one madvise per range.
struct PurgeRange {
  void* start;
  std::size_t size;
};
inline constexpr std::size_t kPurgeBatchMax = 64;
void purge_batch(const PurgeRange* ranges, std::size_t count) noexcept;

// Grows or shrinks the mapping [p, p+old_size) without moving it; false if the
// address space after it is taken.
bool remap_in_place(void* p, std::size_t old_size, std::size_t new_size) noexcept;

// Maps fresh zero pages at [p+old_size, p+new_size) if nothing is mapped
// there, so the mapping at p grows in place even when it is made of several
// kernel mappings (pages moved in from elsewhere), which mremap cannot grow.
bool extend_in_place(void* p, std::size_t old_size, std::size_t new_size) noexcept;

// Moves the mapping to a fresh place laid out like map_with_offset, without
// copying (page tables move).  Returns the new base or nullptr.
void* remap_moving(void* p, std::size_t old_size, std::size_t new_size, std::size_t base_alignment,
                   std::size_t offset, std::size_t alignment) noexcept;

// Moves the pages of [from, from+size) onto [to, to+size), which must be a
// mapping of ours (it is replaced); the source range is left unmapped.  Page
// tables move, no data is copied and resident pages stay resident, so memory
// faulted in once can be reused elsewhere without faulting again.
bool move_pages(void* from, std::size_t size, void* to) noexcept;

// Milliseconds on a monotonic clock; coarse (a few ms) and cheap (vDSO).
std::uint64_t now_ms() noexcept;

// A random 64-bit value for free-list encoding keys (never allocates).
std::uint64_t random_u64() noexcept;

// Bytes currently mapped through this file (bop's own view of its footprint).
std::size_t mapped_bytes() noexcept;

// This process's resident set in bytes, from /proc/self/statm (0 if unknown).
std::size_t resident_bytes() noexcept;

// Real OS page size, for the start-up check.
std::size_t os_page_size() noexcept;

}  // namespace bop::os
