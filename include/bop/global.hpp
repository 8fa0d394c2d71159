// bop: install an allocator object as the program's global allocator.
//
//   static bop::BopAllocator GLOBAL;
//   BOP_GLOBAL_ALLOCATOR(GLOBAL)
//
// Put this in exactly one translation unit (at namespace scope).  Every
// operator new / delete form of the program (plain, array, sized, aligned,
// nothrow) is then served by GLOBAL -- the C++ twin of Rust's
// #[global_allocator].  The object needs the BopAllocator interface:
// alloc(Layout), dealloc(void*, Layout); optionally dealloc_unsized(void*),
// used when C++ does not pass the size (plain operator delete).
// The object must be usable before its constructor runs, so make it
// constexpr-constructible (all bop allocators are).
#pragma once

#include <bop/allocator.hpp>

#include <concepts>
#include <cstddef>
#include <new>

namespace bop::detail {

template <class A>
concept GlobalAllocator = requires(A& a, void* p, Layout l) {
  { a.alloc(l) } -> std::same_as<void*>;
  a.dealloc(p, l);
};

// operator new semantics: retry through the new_handler, then throw.
template <GlobalAllocator A>
void* global_new(A& a, Layout layout) {
  if (layout.size == 0) layout.size = 1;
  for (;;) {
    if (void* p = a.alloc(layout)) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}

template <GlobalAllocator A>
void* global_new_nothrow(A& a, Layout layout) noexcept {
  try {
    return global_new(a, layout);
  } catch (...) {
    return nullptr;
  }
}

template <GlobalAllocator A>
void global_delete(A& a, void* p, Layout layout) noexcept {
  if (p != nullptr) a.dealloc(p, layout);
}

// Unsized delete: prefer the allocator's own lookup when it has one.
template <GlobalAllocator A>
void global_delete_unsized(A& a, void* p, std::size_t align) noexcept {
  if (p == nullptr) return;
  if constexpr (requires { a.dealloc_unsized(p); }) {
    a.dealloc_unsized(p);
  } else {
    a.dealloc(p, Layout(0, align));
  }
}

inline constexpr std::size_t kNewAlign = __STDCPP_DEFAULT_NEW_ALIGNMENT__;

}  // namespace bop::detail

// The macro only spells out the replaceable signatures C++ requires; every
// body is one call into the templates above.
#define BOP_GLOBAL_ALLOCATOR(object)                                                              \
  static_assert(::bop::detail::GlobalAllocator<decltype(object)>,                                 \
                "BOP_GLOBAL_ALLOCATOR needs alloc(Layout) and dealloc(void*, Layout)");           \
  void* operator new(std::size_t n) {                                                             \
    return ::bop::detail::global_new(object, ::bop::Layout(n, ::bop::detail::kNewAlign));         \
  }                                                                                               \
  void* operator new[](std::size_t n) {                                                           \
    return ::bop::detail::global_new(object, ::bop::Layout(n, ::bop::detail::kNewAlign));         \
  }                                                                                               \
  void* operator new(std::size_t n, std::align_val_t a) {                                         \
    return ::bop::detail::global_new(object, ::bop::Layout(n, static_cast<std::size_t>(a)));      \
  }                                                                                               \
  void* operator new[](std::size_t n, std::align_val_t a) {                                       \
    return ::bop::detail::global_new(object, ::bop::Layout(n, static_cast<std::size_t>(a)));      \
  }                                                                                               \
  void* operator new(std::size_t n, const std::nothrow_t&) noexcept {                             \
    return ::bop::detail::global_new_nothrow(object, ::bop::Layout(n, ::bop::detail::kNewAlign)); \
  }                                                                                               \
  void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {                           \
    return ::bop::detail::global_new_nothrow(object, ::bop::Layout(n, ::bop::detail::kNewAlign)); \
  }                                                                                               \
  void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {         \
    return ::bop::detail::global_new_nothrow(object,                                              \
                                             ::bop::Layout(n, static_cast<std::size_t>(a)));      \
  }                                                                                               \
  void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {       \
    return ::bop::detail::global_new_nothrow(object,                                              \
                                             ::bop::Layout(n, static_cast<std::size_t>(a)));      \
  }                                                                                               \
  void operator delete(void* p) noexcept {                                                        \
    ::bop::detail::global_delete_unsized(object, p, ::bop::detail::kNewAlign);                    \
  }                                                                                               \
  void operator delete[](void* p) noexcept {                                                      \
    ::bop::detail::global_delete_unsized(object, p, ::bop::detail::kNewAlign);                    \
  }                                                                                               \
  void operator delete(void* p, std::size_t n) noexcept {                                         \
    ::bop::detail::global_delete(object, p, ::bop::Layout(n, ::bop::detail::kNewAlign));          \
  }                                                                                               \
  void operator delete[](void* p, std::size_t n) noexcept {                                       \
    ::bop::detail::global_delete(object, p, ::bop::Layout(n, ::bop::detail::kNewAlign));          \
  }                                                                                               \
  void operator delete(void* p, std::align_val_t a) noexcept {                                    \
    ::bop::detail::global_delete_unsized(object, p, static_cast<std::size_t>(a));                 \
  }                                                                                               \
  void operator delete[](void* p, std::align_val_t a) noexcept {                                  \
    ::bop::detail::global_delete_unsized(object, p, static_cast<std::size_t>(a));                 \
  }                                                                                               \
  void operator delete(void* p, std::size_t n, std::align_val_t a) noexcept {                     \
    ::bop::detail::global_delete(object, p, ::bop::Layout(n, static_cast<std::size_t>(a)));       \
  }                                                                                               \
  void operator delete[](void* p, std::size_t n, std::align_val_t a) noexcept {                   \
    ::bop::detail::global_delete(object, p, ::bop::Layout(n, static_cast<std::size_t>(a)));       \
  }                                                                                               \
  void operator delete(void* p, const std::nothrow_t&) noexcept {                                 \
    ::bop::detail::global_delete_unsized(object, p, ::bop::detail::kNewAlign);                    \
  }                                                                                               \
  void operator delete[](void* p, const std::nothrow_t&) noexcept {                               \
    ::bop::detail::global_delete_unsized(object, p, ::bop::detail::kNewAlign);                    \
  }                                                                                               \
  void operator delete(void* p, std::align_val_t a, const std::nothrow_t&) noexcept {             \
    ::bop::detail::global_delete_unsized(object, p, static_cast<std::size_t>(a));                 \
  }                                                                                               \
  void operator delete[](void* p, std::align_val_t a, const std::nothrow_t&) noexcept {           \
    ::bop::detail::global_delete_unsized(object, p, static_cast<std::size_t>(a));                 \
  }                                                                                               \
  static_assert(true, "BOP_GLOBAL_ALLOCATOR wants a trailing semicolon")
