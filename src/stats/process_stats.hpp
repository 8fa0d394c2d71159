// Process-wide statistics (BOP_STATS=1 or json): every malloc-family and
// bop_* call is counted when enabled; the report is printed at exit.
//
// Unlike BopStatsAllocator, free() does not say how big the block was, so
// process-wide bytes are block sizes (what malloc_usable_size reports), on
// both the allocation and the free side, which keeps them exact.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/alloc.hpp"
#include "core/options.hpp"
#include "core/process.hpp"

#include <bop/stats.hpp>

namespace bop::stats {

void record_alloc(const void* p) noexcept;
void record_free(const void* p) noexcept;
void record_resize(std::size_t old_usable, const void* q) noexcept;

// The process-wide counters (zero unless BOP_STATS is set).
detail::StatsRecorder& process_recorder() noexcept;

// Writes the report (text or JSON) to file descriptor `fd`.
void write_report(int fd, bool json) noexcept;

// Hooks for the API and override layers: one predictable branch when off.
inline void on_alloc(const void* p) noexcept {
  if (BOP_UNLIKELY(core::g_options.stats_mode != core::StatsMode::kOff) && p != nullptr) record_alloc(p);
}
inline void on_free(const void* p) noexcept {
  if (BOP_UNLIKELY(core::g_options.stats_mode != core::StatsMode::kOff) && p != nullptr) record_free(p);
}

}  // namespace bop::stats
