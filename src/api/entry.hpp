// The public entry points' bodies, shared by the C API (bop_*) and the malloc
// override: the core's fast path plus the statistics hooks (one predictable
// branch when BOP_STATS is off).
#pragma once

#include <cerrno>
#include <cstddef>

#include "core/alloc.hpp"
#include "stats/leak_sampler.hpp"
#include "stats/process_stats.hpp"

namespace bop::api {

template <bool kZero>
inline void* allocate(std::size_t size) noexcept {
  void* p = core::alloc<kZero>(size);
  stats::on_alloc(p);  // after: the first allocation of the process reads BOP_STATS
  return p;
}

template <bool kZero>
inline void* allocate_aligned(std::size_t alignment, std::size_t size) noexcept {
  void* p = core::alloc_aligned<kZero>(alignment, size);
  stats::on_alloc(p);
  return p;
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
  stats::on_free(p);
  core::dealloc(p);
}

// alignment 0: the default.
inline void* resize(void* p, std::size_t size, std::size_t alignment) noexcept {
  if (BOP_LIKELY(core::g_options.stats_mode == core::StatsMode::kOff) || p == nullptr) {
    void* q = core::reallocate(p, size, alignment);
    if (p == nullptr) stats::on_alloc(q);
    return q;
  }
  std::size_t old_usable = core::usable_size(p);
  void* q = core::reallocate(p, size, alignment);
  if (q != nullptr) {
    stats::record_resize(old_usable, q);
    if (q != p) stats::leak_sampler_on_move(p, q);
  }
  return q;
}

}  // namespace bop::api
