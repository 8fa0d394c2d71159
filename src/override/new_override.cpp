// Every replaceable operator new / delete form, served by bop.  new throws
// std::bad_alloc after trying the new_handler; nothrow forms return nullptr.
//
// libbop.so does not link libstdc++ (it would cost every C program ~1 MiB of
// resident memory): the two C++ runtime functions needed on the failure path
// are weak references, present whenever the program is C++.
#include <dlfcn.h>

#include <atomic>
#include <cstddef>
#include <new>

#include "api/entry.hpp"
#include "platform/fatal.hpp"

#define BOP_PUBLIC __attribute__((visibility("default")))

// std::get_new_handler() and std::__throw_bad_alloc(), by their mangled names.
extern "C" {
[[gnu::weak]] std::new_handler _ZSt15get_new_handlerv() noexcept;
[[gnu::weak, noreturn]] void _ZSt17__throw_bad_allocv();
}

namespace {

constexpr std::size_t kNewAlign = __STDCPP_DEFAULT_NEW_ALIGNMENT__;

inline void* try_alloc(std::size_t size, std::size_t alignment) noexcept {
  return alignment <= kNewAlign ? bop::api::allocate<false>(size)
                                : bop::api::allocate_aligned<false>(alignment, size);
}

std::new_handler current_handler() noexcept {
  return _ZSt15get_new_handlerv != nullptr ? _ZSt15get_new_handlerv() : nullptr;
}

// Slow path of operator new: the new_handler loop, kept out of line.  The
// handler may throw; this frame has nothing to clean up, so it unwinds
// through without needing the C++ personality routine.
[[gnu::noinline]] void* new_retry(std::size_t size, std::size_t alignment) {
  for (;;) {
    std::new_handler handler = current_handler();
    if (handler == nullptr) {
      if (_ZSt17__throw_bad_allocv != nullptr) _ZSt17__throw_bad_allocv();
      bop::fatal("operator new: out of memory, and no C++ runtime to throw std::bad_alloc");
    }
    handler();
    if (void* p = try_alloc(size, alignment)) return p;
  }
}

inline void* new_impl(std::size_t size, std::size_t alignment) {
  if (void* p = try_alloc(size, alignment)) [[likely]]
    return p;
  return new_retry(size, alignment);
}

// The nothrow forms must turn a std::bad_alloc thrown by the new_handler into
// nullptr, which takes a catch.  Rather than link the C++ runtime for that,
// they defer to libstdc++'s own nothrow operator new, which catches around
// our (interposed) throwing operator new.
using NothrowNew = void* (*)(std::size_t, const std::nothrow_t&) noexcept;
using NothrowAlignedNew = void* (*)(std::size_t, std::align_val_t, const std::nothrow_t&) noexcept;

[[gnu::noinline]] void* nothrow_retry(std::size_t size, std::size_t alignment) noexcept {
  if (current_handler() == nullptr) return nullptr;  // nothing to retry with
  const std::nothrow_t tag{};                        // our own: std::nothrow lives in libstdc++
  if (alignment <= kNewAlign) {
    static std::atomic<NothrowNew> next{nullptr};
    NothrowNew fn = next.load(std::memory_order_acquire);
    if (fn == nullptr) {
      fn = reinterpret_cast<NothrowNew>(dlsym(RTLD_NEXT, "_ZnwmRKSt9nothrow_t"));
      next.store(fn, std::memory_order_release);
    }
    return fn != nullptr ? fn(size, tag) : nullptr;
  }
  static std::atomic<NothrowAlignedNew> next_aligned{nullptr};
  NothrowAlignedNew fn = next_aligned.load(std::memory_order_acquire);
  if (fn == nullptr) {
    fn =
        reinterpret_cast<NothrowAlignedNew>(dlsym(RTLD_NEXT, "_ZnwmSt11align_val_tRKSt9nothrow_t"));
    next_aligned.store(fn, std::memory_order_release);
  }
  return fn != nullptr ? fn(size, std::align_val_t(alignment), tag) : nullptr;
}

inline void* new_nothrow(std::size_t size, std::size_t alignment) noexcept {
  if (void* p = try_alloc(size, alignment)) [[likely]]
    return p;
  return nothrow_retry(size, alignment);
}

// The alignment an aligned sized delete names, as the matching new served it
// (alignments up to the default went the unaligned way: see try_alloc).
inline std::size_t sized_delete_alignment(std::align_val_t a) noexcept {
  std::size_t alignment = static_cast<std::size_t>(a);
  return alignment <= kNewAlign ? 0 : alignment;
}

}  // namespace

BOP_PUBLIC void* operator new(std::size_t n) {
  return new_impl(n, kNewAlign);
}
BOP_PUBLIC void* operator new[](std::size_t n) {
  return new_impl(n, kNewAlign);
}
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

BOP_PUBLIC void operator delete(void* p) noexcept {
  bop::api::release(p);
}
BOP_PUBLIC void operator delete[](void* p) noexcept {
  bop::api::release(p);
}
// Sized delete does not use the size to find the block (checked builds
// verify it against the block): the unsized free finds the block's page by
// masking the pointer (no size lookup to skip), and the page shift it needs
// sits in the segment header line the owner check loads anyway.  Using the
// size would take a range check to stay safe for medium pages, costing what
// it saves (callgrind, new+delete pair with 64 live: 58.1 instructions
// unsized, 59.1 sized -- the extra one is the caller passing the size).
BOP_PUBLIC void operator delete(void* p, std::size_t n) noexcept {
  bop::api::release_sized(p, n, 0);
}
BOP_PUBLIC void operator delete[](void* p, std::size_t n) noexcept {
  bop::api::release_sized(p, n, 0);
}
BOP_PUBLIC void operator delete(void* p, std::align_val_t) noexcept {
  bop::api::release(p);
}
BOP_PUBLIC void operator delete[](void* p, std::align_val_t) noexcept {
  bop::api::release(p);
}
BOP_PUBLIC void operator delete(void* p, std::size_t n, std::align_val_t a) noexcept {
  bop::api::release_sized(p, n, sized_delete_alignment(a));
}
BOP_PUBLIC void operator delete[](void* p, std::size_t n, std::align_val_t a) noexcept {
  bop::api::release_sized(p, n, sized_delete_alignment(a));
}
BOP_PUBLIC void operator delete(void* p, const std::nothrow_t&) noexcept {
  bop::api::release(p);
}
BOP_PUBLIC void operator delete[](void* p, const std::nothrow_t&) noexcept {
  bop::api::release(p);
}
BOP_PUBLIC void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  bop::api::release(p);
}
BOP_PUBLIC void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  bop::api::release(p);
}
