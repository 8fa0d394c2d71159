// Every replaceable operator new / delete form, served by bop.  new throws
// std::bad_alloc after trying the new_handler; nothrow forms return nullptr.
#include <cstddef>
#include <new>

#include "api/entry.hpp"

using namespace bop::core;

#define BOP_PUBLIC __attribute__((visibility("default")))

namespace {

constexpr std::size_t kNewAlign = __STDCPP_DEFAULT_NEW_ALIGNMENT__;

inline void* try_alloc(std::size_t size, std::size_t alignment) noexcept {
  return alignment <= kNewAlign ? bop::api::allocate<false>(size)
                                : bop::api::allocate_aligned<false>(alignment, size);
}

// Slow path of operator new: the new_handler loop, kept out of line.
[[gnu::noinline]] void* new_retry(std::size_t size, std::size_t alignment, bool nothrow) {
  for (;;) {
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) {
      if (nothrow) return nullptr;
      throw std::bad_alloc();
    }
    if (nothrow) {
      try {
        handler();
      } catch (...) {
        return nullptr;
      }
    } else {
      handler();
    }
    if (void* p = try_alloc(size, alignment)) return p;
  }
}

inline void* new_impl(std::size_t size, std::size_t alignment) {
  if (void* p = try_alloc(size, alignment)) [[likely]]
    return p;
  return new_retry(size, alignment, false);
}

inline void* new_nothrow(std::size_t size, std::size_t alignment) noexcept {
  if (void* p = try_alloc(size, alignment)) [[likely]]
    return p;
  return new_retry(size, alignment, true);
}

}  // namespace

BOP_PUBLIC void* operator new(std::size_t n) { return new_impl(n, kNewAlign); }
BOP_PUBLIC void* operator new[](std::size_t n) { return new_impl(n, kNewAlign); }
BOP_PUBLIC void* operator new(std::size_t n, std::align_val_t a) {
  return new_impl(n, static_cast<std::size_t>(a));
}
BOP_PUBLIC void* operator new[](std::size_t n, std::align_val_t a) {
  return new_impl(n, static_cast<std::size_t>(a));
}
BOP_PUBLIC void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return new_nothrow(n, kNewAlign);
}
BOP_PUBLIC void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return new_nothrow(n, kNewAlign);
}
BOP_PUBLIC void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_nothrow(n, static_cast<std::size_t>(a));
}
BOP_PUBLIC void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_nothrow(n, static_cast<std::size_t>(a));
}

BOP_PUBLIC void operator delete(void* p) noexcept { bop::api::release(p); }
BOP_PUBLIC void operator delete[](void* p) noexcept { bop::api::release(p); }
BOP_PUBLIC void operator delete(void* p, std::size_t) noexcept { bop::api::release(p); }
BOP_PUBLIC void operator delete[](void* p, std::size_t) noexcept { bop::api::release(p); }
BOP_PUBLIC void operator delete(void* p, std::align_val_t) noexcept { bop::api::release(p); }
BOP_PUBLIC void operator delete[](void* p, std::align_val_t) noexcept { bop::api::release(p); }
BOP_PUBLIC void operator delete(void* p, std::size_t, std::align_val_t) noexcept { bop::api::release(p); }
BOP_PUBLIC void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { bop::api::release(p); }
BOP_PUBLIC void operator delete(void* p, const std::nothrow_t&) noexcept { bop::api::release(p); }
BOP_PUBLIC void operator delete[](void* p, const std::nothrow_t&) noexcept { bop::api::release(p); }
BOP_PUBLIC void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { bop::api::release(p); }
BOP_PUBLIC void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  bop::api::release(p);
}
