// BopStatsAllocator: bop plus exact per-allocator counters.
//
// Each block gets a header in front of it holding the requested size and the
// header's own length (which is the block's alignment, at least 16), so a
// free with no size still counts the requested bytes exactly:
//
//   raw                         p (returned, aligned)
//   | ... padding ... | header_len | size | user bytes ...
#include <bop/stats.hpp>

#include <cerrno>
#include <cstdint>

#include "core/alloc.hpp"
#include "platform/fatal.hpp"
#include "stats/recorder_access.hpp"

namespace bop {
namespace {

constexpr std::size_t kMinHeader = 16;

struct Header {
  std::uint64_t header_len;  // bytes from the raw block to the user pointer
  std::uint64_t size;        // requested size
};

inline Header* header_of(const void* p) {
  return reinterpret_cast<Header*>(const_cast<char*>(static_cast<const char*>(p)) - sizeof(Header));
}
inline char* raw_of(const void* p) {
  return const_cast<char*>(static_cast<const char*>(p)) - header_of(p)->header_len;
}

// The rare ends of an event (see StatsRecorderAccess::write_own), out of
// line so the common path of alloc and free saves no registers.
[[gnu::noinline]] void* finish_alloc(detail::StatsRecorder& recorder, detail::StatsShard* due,
                                     std::uint64_t size, void* p) noexcept {
  detail::StatsRecorderAccess::finish(recorder, due, true, size);
  return p;
}
[[gnu::noinline]] void finish_free(detail::StatsRecorder& recorder, detail::StatsShard* due,
                                   std::uint64_t size, void* raw) noexcept {
  detail::StatsRecorderAccess::finish(recorder, due, false, size);
  core::dealloc(raw);
}

// Writes the header in front of the block at `raw` and counts it.
inline void* finish_block(detail::StatsRecorder& recorder, char* raw, std::size_t header_len,
                          std::size_t size) noexcept {
  char* p = raw + header_len;
  *header_of(p) = Header{header_len, size};
  // Inline, no call per event; the rare case (a fold) is a tail call.
  if (detail::StatsShard* due = detail::StatsRecorderAccess::alloc(recorder, size)) [[unlikely]]
    return finish_alloc(recorder, due, size, p);
  return p;
}

// Every case: checks, any alignment, the core's slow paths.
template <bool kZero>
[[gnu::noinline]] void* alloc_with_header_slow(detail::StatsRecorder& recorder,
                                               Layout layout) noexcept {
  if (!layout.is_valid()) {
    errno = EINVAL;
    return nullptr;
  }
  std::size_t header_len = layout.align > kMinHeader ? layout.align : kMinHeader;
  std::size_t total;
  // A zero-size block still gets a byte, so the user pointer stays inside it.
  if (__builtin_add_overflow(layout.size == 0 ? 1 : layout.size, header_len, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  char* raw = static_cast<char*>(core::alloc_aligned<kZero>(header_len, total));
  if (raw == nullptr) return nullptr;
  return finish_block(recorder, raw, header_len, layout.size);
}

// The common case in the shape of the core's fast path: alignment up to 16
// (a 16-byte header keeps the block 16-aligned), header + size up to
// kDirectMax, a block at hand on the page (core::page_pop).  Anything else
// is one tail call, so this path saves no registers.
template <bool kZero>
inline void* alloc_with_header(detail::StatsRecorder& recorder, Layout layout) noexcept {
  std::size_t total = layout.size + kMinHeader;  // size 0 still gets its 16 bytes: inside
  // Checked builds take the core's checked path (alloc_with_header_slow): a
  // block popped here would miss its canary (core/hardening.hpp).
  if (!core::kChecked && layout.align <= kMinHeader &&
      layout.size <= core::kDirectMax - kMinHeader && layout.is_valid()) [[likely]] {
    core::Page* page = core::direct_page(core::tl_heap, core::direct_slot(total));
    if (core::Block* b = page->free; b != nullptr) [[likely]] {
      char* raw = static_cast<char*>(core::page_pop<kZero>(page, b, total));
      return finish_block(recorder, raw, kMinHeader, layout.size);
    }
  }
  return alloc_with_header_slow<kZero>(recorder, layout);
}

}  // namespace

void* BopStatsAllocator::alloc(Layout layout) noexcept {
  return alloc_with_header<false>(recorder_, layout);
}

void* BopStatsAllocator::alloc_zeroed(Layout layout) noexcept {
  return alloc_with_header<true>(recorder_, layout);
}

void BopStatsAllocator::dealloc(void* p, Layout layout) noexcept {
  if (p == nullptr) return;
#if BOP_CHECKED
  if (layout.size != header_of(p)->size)
    fatal("BopStatsAllocator::dealloc with a Layout size that differs from the allocation", p);
#else
  (void)layout;
#endif
  dealloc_unsized(p);
}

void BopStatsAllocator::dealloc_unsized(void* p) noexcept {
  if (p == nullptr) return;
  char* raw = raw_of(p);
  std::uint64_t size = header_of(p)->size;
  if (detail::StatsShard* due = detail::StatsRecorderAccess::dealloc(recorder_, size)) [[unlikely]]
    return finish_free(recorder_, due, size, raw);
  core::dealloc(raw);  // its own slow paths stay tail calls
}

void* BopStatsAllocator::realloc(void* p, Layout layout, std::size_t new_size) noexcept {
  if (p == nullptr) return alloc(Layout(new_size, layout.align));
  Header old = *header_of(p);
  std::size_t total;
  // As in alloc: a zero-size block keeps a byte so the user pointer stays inside.
  if (__builtin_add_overflow(new_size == 0 ? 1 : new_size, old.header_len, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  char* raw = static_cast<char*>(core::reallocate(raw_of(p), total, old.header_len));
  if (raw == nullptr) return nullptr;
  char* q = raw + old.header_len;
  header_of(q)->size = new_size;
  recorder_.on_resize(old.size, new_size);
  return q;
}

std::size_t BopStatsAllocator::usable_size(const void* p) const noexcept {
  if (p == nullptr) return 0;
  return core::usable_size(raw_of(p)) - header_of(p)->header_len;
}

}  // namespace bop
