// A user-written global allocator: wraps bop::BopAllocator and counts calls.
// global_allocator_def.cpp installs one with BOP_GLOBAL_ALLOCATOR.
#pragma once

#include <bop/allocator.hpp>

#include <atomic>
#include <cstddef>

class CountingAllocator {
 public:
  constexpr CountingAllocator() noexcept = default;

  void* alloc(bop::Layout layout) noexcept {
    allocs.fetch_add(1, std::memory_order_relaxed);
    if (layout.align > alignof(std::max_align_t))
      over_aligned.fetch_add(1, std::memory_order_relaxed);
    std::size_t seen = max_align.load(std::memory_order_relaxed);
    while (layout.align > seen && !max_align.compare_exchange_weak(seen, layout.align)) {
    }
    void* p = inner_.alloc(layout);
    if (p == nullptr) failures.fetch_add(1, std::memory_order_relaxed);
    return p;
  }
  void dealloc(void* p, bop::Layout layout) noexcept {
    sized_deallocs.fetch_add(1, std::memory_order_relaxed);
    inner_.dealloc(p, layout);
  }
  void dealloc_unsized(void* p) noexcept {
    unsized_deallocs.fetch_add(1, std::memory_order_relaxed);
    inner_.dealloc_unsized(p);
  }

  long deallocs() const { return sized_deallocs.load() + unsized_deallocs.load(); }

  std::atomic<long> allocs{0};
  std::atomic<long> failures{0};
  std::atomic<long> over_aligned{0};
  std::atomic<std::size_t> max_align{0};
  std::atomic<long> sized_deallocs{0};
  std::atomic<long> unsized_deallocs{0};

 private:
  bop::BopAllocator inner_;
};

// The installed instance (defined in global_allocator_def.cpp).
CountingAllocator& Counting();
// How many allocations happened before main (a static constructor allocates).
long AllocsSeenByStaticInit();
