// The public entry points' bodies, shared by the C API (bop_*) and the malloc
// override: the core's fast path, or -- when BOP_STATS is on -- its counting
// twin.  The test is one load and one predictable branch (for small
// allocations none: see allocate); both arms are tail calls, so the fast
// path needs no stack frame.
#pragma once

#include <cerrno>
#include <cstddef>

#include "core/alloc.hpp"
#include "stats/process_stats.hpp"

namespace bop::api {

template <bool kZero>
inline void* allocate(std::size_t size) noexcept {
  // Small requests: one compare rules out stats too (core::g_direct_limit).
  if constexpr (!core::kChecked)
    if (BOP_LIKELY(size < core::g_direct_limit)) return core::alloc_small<kZero>(size);
  if (BOP_UNLIKELY(stats::active())) return stats::counted_alloc<kZero>(size);
  return core::alloc<kZero>(size);
}

template <bool kZero>
inline void* allocate_aligned(std::size_t alignment, std::size_t size) noexcept {
  if (BOP_UNLIKELY(stats::active())) return stats::counted_alloc_aligned<kZero>(alignment, size);
  return core::alloc_aligned<kZero>(alignment, size);
}

inline void* allocate_array(std::size_t count, std::size_t size) noexcept {
  std::size_t bytes;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return allocate<true>(bytes);
}

inline void release(void* p) noexcept {
  if (BOP_UNLIKELY(stats::active())) return stats::counted_free(p);
  core::dealloc(p);
}

// A free that names the size (and alignment, 0 = default) of the block.
inline void release_sized(void* p, std::size_t size, std::size_t alignment) noexcept {
  if (BOP_UNLIKELY(stats::active())) return stats::counted_free(p);
  core::dealloc_sized(p, size, alignment);
}

// alignment 0: the default.
inline void* resize(void* p, std::size_t size, std::size_t alignment) noexcept {
  if (BOP_UNLIKELY(stats::active())) return stats::counted_resize(p, size, alignment);
  return core::reallocate(p, size, alignment);
}

}  // namespace bop::api
