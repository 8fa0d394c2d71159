// bop: STL and std::pmr adaptors.
#pragma once

#include <bop/allocator.hpp>

#include <cstddef>
#include <memory_resource>
#include <new>

namespace bop {

// A standard allocator backed by bop, for any container:
//   std::vector<int, bop::stl_allocator<int>> v;
template <class T>
struct stl_allocator {
  using value_type = T;
  using is_always_equal = std::true_type;
  using propagate_on_container_move_assignment = std::true_type;

  constexpr stl_allocator() noexcept = default;
  template <class U>
  constexpr stl_allocator(const stl_allocator<U>&) noexcept {}

  T* allocate(std::size_t n) {
    if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
    void* p = bop_alloc_aligned(alignof(T), n * sizeof(T));
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) noexcept { bop_dealloc_sized(p, n * sizeof(T)); }

  template <class U>
  friend constexpr bool operator==(const stl_allocator&, const stl_allocator<U>&) noexcept {
    return true;
  }
};

// A std::pmr::memory_resource backed by bop.  All instances are equal: memory
// from one may be released through another.
class memory_resource final : public std::pmr::memory_resource {
 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    void* p = bop_alloc_aligned(alignment, bytes);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t) noexcept override {
    bop_dealloc_sized(p, bytes);
  }
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return dynamic_cast<const memory_resource*>(&other) != nullptr;
  }
};

// A process-wide instance, usable as std::pmr::set_default_resource(bop::get_memory_resource()).
inline memory_resource* get_memory_resource() noexcept {
  static memory_resource resource;
  return &resource;
}

}  // namespace bop
