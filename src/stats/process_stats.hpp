// Process-wide statistics (BOP_STATS=1 or json): every malloc-family and
// bop_* call is counted when enabled; the report is printed at exit.
//
// Unlike BopStatsAllocator, free() does not say how big the block was, so
// process-wide bytes are block sizes (what malloc_usable_size reports), on
// both the allocation and the free side, which keeps them exact.
#pragma once

#include <bop/stats.hpp>

#include <cstddef>
#include <cstdint>

#include "core/alloc.hpp"
#include "core/options.hpp"

namespace bop::stats {

// True while stats are on, and before the environment has been read.
inline bool active() noexcept {
  return core::g_options.stats_mode != core::StatsMode::kOff;
}

// The counting versions of the entry points (resize: alignment 0 is the default).
// Out of line and reached by tail calls, so the API's fast paths pay one load
// and one predictable branch for them, and no stack frame; each is one body
// (the core's fast path and the counting fast path inlined), see
// process_counters.hpp.
template <bool kZero>
void* counted_alloc(std::size_t size) noexcept;
template <bool kZero>
void* counted_alloc_aligned(std::size_t alignment, std::size_t size) noexcept;
void counted_free(void* p) noexcept;
void* counted_resize(void* p, std::size_t size, std::size_t alignment) noexcept;

// Writes the report (text or JSON) to file descriptor `fd`.
void write_report(int fd, bool json) noexcept;

}  // namespace bop::stats
