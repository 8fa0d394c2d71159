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

template <bool kZero>
void* alloc_with_header(detail::StatsRecorder& recorder, Layout layout) noexcept {
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
  char* p = raw + header_len;
  *header_of(p) = Header{header_len, layout.size};
  detail::StatsRecorderAccess::alloc(recorder, layout.size);  // inline: no call per event
  return p;
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
  detail::StatsRecorderAccess::dealloc(recorder_, header_of(p)->size);
  core::dealloc(raw_of(p));
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
