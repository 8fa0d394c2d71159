// The C face of bop::BopStatsAllocator (include/bop/stats_allocator.h): each
// function forwards to the public method, nothing is counted here.
#include <bop/stats_allocator.h>
#include <bop/stats.hpp>

#include <new>

#include "core/alloc.hpp"

using bop::BopStatsAllocator;
using bop::Layout;

// The C handle is the C++ object itself.
struct bop_stats_allocator : BopStatsAllocator {};

extern "C" {

bop_stats_allocator* bop_stats_allocator_create(void) noexcept {
  void* memory =
      bop::core::alloc_aligned<false>(alignof(bop_stats_allocator), sizeof(bop_stats_allocator));
  if (memory == nullptr) return nullptr;
  return new (memory) bop_stats_allocator();
}

void bop_stats_allocator_destroy(bop_stats_allocator* a) noexcept {
  if (a == nullptr) return;
  a->~bop_stats_allocator();
  bop::core::dealloc(a);
}

void* bop_stats_allocator_alloc(bop_stats_allocator* a, size_t alignment, size_t size) noexcept {
  return a->alloc(Layout(size, alignment));
}

void* bop_stats_allocator_zalloc(bop_stats_allocator* a, size_t alignment, size_t size) noexcept {
  return a->alloc_zeroed(Layout(size, alignment));
}

void bop_stats_allocator_dealloc(bop_stats_allocator* a, void* p, size_t alignment,
                                 size_t size) noexcept {
  a->dealloc(p, Layout(size, alignment));
}

void* bop_stats_allocator_realloc(bop_stats_allocator* a, void* p, size_t alignment,
                                  size_t old_size, size_t new_size) noexcept {
  return a->realloc(p, Layout(old_size, alignment), new_size);
}

size_t bop_stats_allocator_usable_size(const bop_stats_allocator* a, const void* p) noexcept {
  return a->usable_size(p);
}

void bop_stats_allocator_get(const bop_stats_allocator* a, bop_allocation_stats* out) noexcept {
  if (out == nullptr) return;
  bop::AllocationStats s = a->stats();
  *out = bop_allocation_stats{s.allocations,       s.deallocations, s.bytes_allocated,
                              s.bytes_deallocated, s.peak_memory,   s.current_memory};
}

void bop_stats_allocator_reset(bop_stats_allocator* a) noexcept {
  a->reset_stats();
}

}  // extern "C"
