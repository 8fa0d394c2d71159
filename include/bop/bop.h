/* bop: a fast general-purpose memory allocator -- the C API.
 *
 * Every function is thread-safe and may be called before main, during thread
 * exit and in the child of fork().  Failure never crashes: allocation
 * functions return NULL and set errno (ENOMEM, or EINVAL for a bad alignment).
 */
#ifndef BOP_BOP_H
#define BOP_BOP_H

#include <stddef.h>

/* BOP_VERSION_MAJOR/MINOR/PATCH, BOP_VERSION_STRING, BOP_VERSION: generated
 * by CMake into the build tree's include/ and installed beside this file. */
#include <bop/version.h>

#ifdef __cplusplus
extern "C" {
#define BOP_NOEXCEPT noexcept
#else
#define BOP_NOEXCEPT
#endif

#define BOP_EXPORT __attribute__((visibility("default")))

/* Allocate `size` bytes, 16-aligned.  size 0 returns a unique pointer that
 * bop_dealloc accepts.  NULL + ENOMEM on failure. */
BOP_EXPORT void* bop_alloc(size_t size) BOP_NOEXCEPT __attribute__((malloc, alloc_size(1)));

/* Like bop_alloc, but the memory is zero.  Memory known to be fresh from the
 * OS is not cleared a second time. */
BOP_EXPORT void* bop_zalloc(size_t size) BOP_NOEXCEPT __attribute__((malloc, alloc_size(1)));

/* count * size zeroed bytes; NULL + ENOMEM if the product overflows. */
BOP_EXPORT void* bop_calloc(size_t count, size_t size) BOP_NOEXCEPT
    __attribute__((malloc, alloc_size(1, 2)));

/* `size` bytes aligned to `alignment`, which must be a power of two (any,
 * including above the page size).  NULL + EINVAL for a bad alignment. */
BOP_EXPORT void* bop_alloc_aligned(size_t alignment, size_t size) BOP_NOEXCEPT
    __attribute__((malloc, alloc_size(2), alloc_align(1)));
BOP_EXPORT void* bop_zalloc_aligned(size_t alignment, size_t size) BOP_NOEXCEPT
    __attribute__((malloc, alloc_size(2), alloc_align(1)));

/* Resize `p` keeping its content up to the smaller size.  p == NULL acts as
 * bop_alloc; size 0 frees p and returns a fresh minimal block (glibc-compatible
 * callers get a valid pointer, never a dangling one).  On failure returns NULL,
 * sets ENOMEM and leaves p untouched.  The block stays in place when the new
 * size fits; big blocks move with mremap, never by copying. */
BOP_EXPORT void* bop_realloc(void* p, size_t size) BOP_NOEXCEPT __attribute__((alloc_size(2)));

/* bop_realloc that keeps `alignment` (a power of two) for the resized block. */
BOP_EXPORT void* bop_realloc_aligned(void* p, size_t alignment, size_t size) BOP_NOEXCEPT
    __attribute__((alloc_size(3)));

/* Free a block from any bop function (NULL is ignored), from any thread. */
BOP_EXPORT void bop_dealloc(void* p) BOP_NOEXCEPT;

/* Free with the size that was asked for (or any size between that and
 * bop_malloc_usable_size(p)).  Checked builds verify the size. */
BOP_EXPORT void bop_dealloc_sized(void* p, size_t size) BOP_NOEXCEPT;

/* Bytes usable at p (>= the size asked for); 0 for NULL. */
BOP_EXPORT size_t bop_malloc_usable_size(const void* p) BOP_NOEXCEPT;

/* Return free memory held by this thread and the process to the OS now,
 * instead of after the purge delay. */
BOP_EXPORT void bop_collect(void) BOP_NOEXCEPT;

/* The library's version, encoded as BOP_VERSION (major * 10000 + minor * 100
 * + patch): compare it with BOP_VERSION to check that the header a program
 * was built with matches the libbop it runs with. */
BOP_EXPORT int bop_version(void) BOP_NOEXCEPT;

/* ---- Process-wide statistics --------------------------------------------
 * Counted only when the process starts with BOP_STATS=1 (or BOP_STATS=json,
 * which also makes the exit report JSON); otherwise every counter reads 0.
 * Bytes are block sizes (what bop_malloc_usable_size reports): free() does
 * not say how much was asked for.  Snapshots are consistent: deallocations
 * never exceed allocations.  current_memory is exact; peak_memory may trail
 * the true peak by up to 256 KiB per thread and, with N threads, lie up to
 * (N - 1) x 256 KiB above it (each thread publishes its live bytes every
 * 256 KiB it allocates or frees, so no event writes shared memory or tests
 * a peak).  With BOP_STATS set a report goes to stderr at
 * exit, including sampled leak stacks (BOP_SAMPLE_BYTES, default 512 KiB). */
typedef struct bop_stats {
  unsigned long long allocations;
  unsigned long long deallocations;
  unsigned long long bytes_allocated;
  unsigned long long bytes_deallocated;
  unsigned long long peak_memory;
  unsigned long long current_memory;
  unsigned long long mapped_bytes;   /* address space bop holds from the OS */
  unsigned long long resident_bytes; /* the process's resident set (all of it) */
} bop_stats;

/* 1 when BOP_STATS is set for this process. */
BOP_EXPORT int bop_stats_enabled(void) BOP_NOEXCEPT;
BOP_EXPORT void bop_stats_get(bop_stats* out) BOP_NOEXCEPT;
/* Forgets history, keeps what is live (see bop::BopStatsAllocator::reset_stats). */
BOP_EXPORT void bop_stats_reset(void) BOP_NOEXCEPT;
/* Writes the report to file descriptor fd (-1: stderr); json != 0 for JSON. */
BOP_EXPORT void bop_stats_print(int fd, int json) BOP_NOEXCEPT;

#ifdef __cplusplus
}
#endif
#undef BOP_NOEXCEPT

#endif /* BOP_BOP_H */
