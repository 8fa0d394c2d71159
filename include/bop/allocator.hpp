// bop: the C++ API -- Layout, BopAllocator and the bop::utils free functions.
#pragma once

#include <bop/bop.h>

#include <cstddef>
#include <cstring>

namespace bop {

// Size and alignment of a request, as in Rust's core::alloc::Layout.
// `align` must be a power of two; a zero `size` is allowed and still yields a
// unique, non-null, aligned pointer.
struct Layout {
  std::size_t size = 0;
  std::size_t align = alignof(std::max_align_t);

  constexpr Layout() = default;
  constexpr Layout(std::size_t size_, std::size_t align_ = alignof(std::max_align_t))
      : size(size_), align(align_) {}

  template <class T>
  static constexpr Layout of() {
    return Layout(sizeof(T), alignof(T));
  }
  template <class T>
  static constexpr Layout array(std::size_t n) {
    return Layout(sizeof(T) * n, alignof(T));
  }
  constexpr bool is_valid() const { return align != 0 && (align & (align - 1)) == 0; }
  friend constexpr bool operator==(const Layout&, const Layout&) = default;
};

// The plain bop allocator.  Stateless and constexpr-constructible, so it can be
// a static global and be installed with BOP_GLOBAL_ALLOCATOR (global.hpp).
// Every method returns nullptr on failure (errno = ENOMEM, or EINVAL for an
// invalid Layout) and never throws.
class BopAllocator {
 public:
  constexpr BopAllocator() noexcept = default;

  void* alloc(Layout layout) const noexcept { return bop_alloc_aligned(layout.align, layout.size); }
  void* alloc_zeroed(Layout layout) const noexcept {
    return bop_zalloc_aligned(layout.align, layout.size);
  }
  // `layout` is the one the block was allocated with.
  void dealloc(void* p, Layout layout) const noexcept { bop_dealloc_sized(p, layout.size); }
  // For callers that lost the size (unsized operator delete).
  void dealloc_unsized(void* p) const noexcept { bop_dealloc(p); }
  // Resize to new_size keeping layout.align; on failure returns nullptr and p
  // stays valid.  Content is kept up to min(layout.size, new_size).
  void* realloc(void* p, Layout layout, std::size_t new_size) const noexcept {
    return bop_realloc_aligned(p, layout.align, new_size);
  }
  std::size_t usable_size(const void* p) const noexcept { return bop_malloc_usable_size(p); }
};

// Thin free functions over the C API for code that wants no Layout.
namespace utils {
inline void* alloc(std::size_t size) noexcept {
  return bop_alloc(size);
}
inline void* zalloc(std::size_t size) noexcept {
  return bop_zalloc(size);
}
// (alignment, size): the order of the C API (bop_alloc_aligned, aligned_alloc)
// and of the Rust crate's bop_rs::allocator::utils.  Layout is (size, align).
inline void* alloc_aligned(std::size_t alignment, std::size_t size) noexcept {
  return bop_alloc_aligned(alignment, size);
}
inline void* zalloc_aligned(std::size_t alignment, std::size_t size) noexcept {
  return bop_zalloc_aligned(alignment, size);
}
inline void* realloc(void* p, std::size_t size) noexcept {
  return bop_realloc(p, size);
}
inline void dealloc(void* p) noexcept {
  bop_dealloc(p);
}
inline void dealloc_sized(void* p, std::size_t size) noexcept {
  bop_dealloc_sized(p, size);
}
inline std::size_t malloc_usable_size(const void* p) noexcept {
  return bop_malloc_usable_size(p);
}
}  // namespace utils

}  // namespace bop

// BopStatsAllocator and AllocationStats belong to this API too.
#include <bop/stats.hpp>
