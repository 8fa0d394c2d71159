// Which per-thread counter shard the calling thread writes.
#pragma once

#include <bop/stats.hpp>

#include "core/heap.hpp"

namespace bop::detail {

// The thread's heap index: unique among live threads, reused after a thread
// exits (with the heap), so each shard has one writer at a time.  Threads past
// kStatsShards get kStatsShards: the shared, locked shard.
inline unsigned stats_thread_shard() noexcept {
  core::Heap* heap = core::tl_heap;
  if (heap->is_sentinel) heap = core::heap_get_or_init();
  if (heap == nullptr || heap->index >= kStatsShards) return kStatsShards;
  return heap->index;
}

}  // namespace bop::detail
