// Huge blocks (above kLargeBlockMax, or aligned beyond kMaxNaturalAlign): one
// mapping each, with a Segment header in the OS page before the block.  Freed
// mappings are cached for reuse (page faults are expensive) and unmapped after
// the purge delay.  A cached mapping is reused for a block of another size by
// moving its pages (mremap): its excess is split off, or a larger block is
// built from several cached mappings, so memory faulted in once is not
// faulted in again.  realloc moves blocks with mremap, never by copying.
#pragma once

#include <cstddef>

#include "core/types.hpp"

namespace bop::core {

// `growing`: the block replaces a smaller one in realloc, so it will likely
// grow again: a larger cached mapping is then reused whole (growth in place,
// no page faults) instead of being trimmed to size.
void* huge_alloc(std::size_t size, std::size_t alignment, bool zero, bool growing = false) noexcept;
void huge_free(Segment* seg) noexcept;
// Resizes in place or by moving pages; nullptr (errno = ENOMEM) if neither works.
void* huge_realloc(Segment* seg, void* p, std::size_t size, std::size_t alignment) noexcept;
// Purges cached mappings older than the purge delay (all if force).
void huge_cache_trim(bool force) noexcept;

// Fork (process.cpp orders the layers): the huge cache's lock.
void huge_fork(ForkPhase phase) noexcept;

}  // namespace bop::core
