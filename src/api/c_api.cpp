// The C API: thin wrappers over core/alloc.hpp's inline paths.
#include <bop/bop.h>

#include <cerrno>

#include "core/alloc.hpp"

using namespace bop::core;

extern "C" {

void* bop_alloc(size_t size) noexcept { return alloc<false>(size); }

void* bop_zalloc(size_t size) noexcept { return alloc<true>(size); }

void* bop_calloc(size_t count, size_t size) noexcept {
  size_t bytes;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return alloc<true>(bytes);
}

void* bop_alloc_aligned(size_t alignment, size_t size) noexcept {
  return alloc_aligned<false>(alignment, size);
}

void* bop_zalloc_aligned(size_t alignment, size_t size) noexcept {
  return alloc_aligned<true>(alignment, size);
}

void* bop_realloc(void* p, size_t size) noexcept { return reallocate(p, size, 0); }

void* bop_realloc_aligned(void* p, size_t alignment, size_t size) noexcept {
  return reallocate(p, size, alignment);
}

void bop_dealloc(void* p) noexcept { dealloc(p); }

void bop_dealloc_sized(void* p, size_t size) noexcept {
#if BOP_CHECKED
  if (p != nullptr && size > usable_size(p)) bop::fatal("sized free with a size larger than the block", p);
#else
  (void)size;
#endif
  dealloc(p);
}

size_t bop_malloc_usable_size(const void* p) noexcept { return usable_size(p); }

void bop_collect(void) noexcept { heap_collect_all(); }

}  // extern "C"
