/* bop: BopStatsAllocator instances from C -- what the Rust crate's
 * bop_rs::allocator::BopStatsAllocator calls, so both languages count with
 * the same recorder and report the same numbers.
 *
 * Each function forwards to the bop::BopStatsAllocator method of the same
 * name (include/bop/stats.hpp), which documents the semantics: bytes are the
 * sizes asked for, realloc counts bytes but no event, snapshots are
 * consistent, reset keeps what is live.  Blocks from an instance must be freed
 * through the same instance.
 */
#ifndef BOP_STATS_ALLOCATOR_H
#define BOP_STATS_ALLOCATOR_H

#include <bop/bop.h>

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#define BOP_NOEXCEPT noexcept
#else
#define BOP_NOEXCEPT
#endif

typedef struct bop_stats_allocator bop_stats_allocator;

/* A snapshot of one instance's counters (bop::AllocationStats). */
typedef struct bop_allocation_stats {
  unsigned long long allocations;
  unsigned long long deallocations;
  unsigned long long bytes_allocated;
  unsigned long long bytes_deallocated;
  unsigned long long peak_memory;
  unsigned long long current_memory;
} bop_allocation_stats;

/* A new instance with every counter at 0 (its own memory comes from bop and
 * is not counted).  NULL + ENOMEM when memory runs out. */
BOP_EXPORT bop_stats_allocator* bop_stats_allocator_create(void) BOP_NOEXCEPT;
/* Frees the instance (NULL is ignored); its blocks must be gone first. */
BOP_EXPORT void bop_stats_allocator_destroy(bop_stats_allocator* a) BOP_NOEXCEPT;

/* `size` bytes aligned to `alignment` (a power of two; NULL + EINVAL
 * otherwise).  size 0 gives a unique aligned pointer. */
BOP_EXPORT void* bop_stats_allocator_alloc(bop_stats_allocator* a, size_t alignment,
                                           size_t size) BOP_NOEXCEPT;
BOP_EXPORT void* bop_stats_allocator_zalloc(bop_stats_allocator* a, size_t alignment,
                                            size_t size) BOP_NOEXCEPT;
/* `alignment` and `size` are the ones the block was allocated with (checked
 * builds abort on a different size). */
BOP_EXPORT void bop_stats_allocator_dealloc(bop_stats_allocator* a, void* p, size_t alignment,
                                            size_t size) BOP_NOEXCEPT;
/* Resizes keeping `alignment`; NULL + ENOMEM on failure, p stays valid. */
BOP_EXPORT void* bop_stats_allocator_realloc(bop_stats_allocator* a, void* p, size_t alignment,
                                             size_t old_size, size_t new_size) BOP_NOEXCEPT;
BOP_EXPORT size_t bop_stats_allocator_usable_size(const bop_stats_allocator* a,
                                                  const void* p) BOP_NOEXCEPT;

BOP_EXPORT void bop_stats_allocator_get(const bop_stats_allocator* a,
                                        bop_allocation_stats* out) BOP_NOEXCEPT;
BOP_EXPORT void bop_stats_allocator_reset(bop_stats_allocator* a) BOP_NOEXCEPT;

#ifdef __cplusplus
}
#endif
#undef BOP_NOEXCEPT

#endif /* BOP_STATS_ALLOCATOR_H */
