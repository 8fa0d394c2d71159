// The malloc family, exported under libc's names.  In libbop.so they
// interpose on glibc's (LD_PRELOAD); in bop::override they are linked into
// the executable itself.  Each is one call into api/entry.hpp.
#include <errno.h>
#include <stddef.h>

#include "api/entry.hpp"

using namespace bop;

#define BOP_PUBLIC extern "C" __attribute__((visibility("default")))

BOP_PUBLIC void* malloc(size_t size) noexcept {
  return api::allocate<false>(size);
}
BOP_PUBLIC void free(void* p) noexcept {
  api::release(p);
}
BOP_PUBLIC void* calloc(size_t count, size_t size) noexcept {
  return api::allocate_array(count, size);
}
BOP_PUBLIC void* realloc(void* p, size_t size) noexcept {
  return api::resize(p, size, 0);
}

BOP_PUBLIC void* reallocarray(void* p, size_t count, size_t size) noexcept {
  size_t bytes;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return api::resize(p, bytes, 0);
}

BOP_PUBLIC int posix_memalign(void** out, size_t alignment, size_t size) noexcept {
  // POSIX: a power of two and a multiple of sizeof(void*); errno untouched.
  if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) return EINVAL;
  int saved = errno;
  void* p = api::allocate_aligned<false>(alignment, size);
  if (p == nullptr) {
    int error = errno;
    errno = saved;
    return error;
  }
  *out = p;
  return 0;
}

BOP_PUBLIC void* aligned_alloc(size_t alignment, size_t size) noexcept {
  return api::allocate_aligned<false>(alignment, size);
}
BOP_PUBLIC void* memalign(size_t alignment, size_t size) noexcept {
  return api::allocate_aligned<false>(alignment, size);
}
BOP_PUBLIC void* valloc(size_t size) noexcept {
  return api::allocate_aligned<false>(4096, size);
}

BOP_PUBLIC void* pvalloc(size_t size) noexcept {
  size_t rounded = (size + 4095) & ~size_t{4095};
  if (rounded < size) {
    errno = ENOMEM;
    return nullptr;
  }
  return api::allocate_aligned<false>(4096, rounded == 0 ? 4096 : rounded);
}

BOP_PUBLIC size_t malloc_usable_size(void* p) noexcept {
  return core::usable_size(p);
}

// C23 sized frees.
BOP_PUBLIC void free_sized(void* p, size_t size) noexcept {
  api::release_sized(p, size, 0);
}
BOP_PUBLIC void free_aligned_sized(void* p, size_t alignment, size_t size) noexcept {
  api::release_sized(p, size, alignment);
}

// glibc's internal aliases, which some programs and libc itself call.
BOP_PUBLIC void* __libc_malloc(size_t size) noexcept {
  return api::allocate<false>(size);
}
BOP_PUBLIC void __libc_free(void* p) noexcept {
  api::release(p);
}
BOP_PUBLIC void* __libc_calloc(size_t count, size_t size) noexcept {
  return api::allocate_array(count, size);
}
BOP_PUBLIC void* __libc_realloc(void* p, size_t size) noexcept {
  return api::resize(p, size, 0);
}
BOP_PUBLIC void* __libc_memalign(size_t alignment, size_t size) noexcept {
  return api::allocate_aligned<false>(alignment, size);
}
