#include "platform/os.hpp"

#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

namespace bop::os {
namespace {

constexpr std::uintptr_t align_up(std::uintptr_t x, std::size_t a) { return (x + a - 1) & ~(a - 1); }

void* raw_map(std::size_t size) noexcept {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

// Lays out [base, base+size) inside an over-sized reservation so that base is
// base_alignment-aligned and base+offset is alignment-aligned, then trims the
// reservation's unused head and tail.  Returns base.
std::uintptr_t place(std::uintptr_t start, std::size_t reserved, std::size_t size,
                     std::size_t base_alignment, std::size_t offset, std::size_t alignment) {
  std::uintptr_t base;
  if (alignment <= base_alignment) {
    base = align_up(start, base_alignment);  // offset keeps alignment: it divides base_alignment
  } else {
    base = align_up(start + offset, alignment) - offset;
  }
  std::uintptr_t end = start + reserved;
  if (base > start) ::munmap(reinterpret_cast<void*>(start), base - start);
  if (end > base + size) ::munmap(reinterpret_cast<void*>(base + size), end - (base + size));
  return base;
}

}  // namespace

void* map_aligned(std::size_t size, std::size_t alignment) noexcept {
  return map_with_offset(size, alignment, 0, alignment);
}

void* map_with_offset(std::size_t size, std::size_t base_alignment, std::size_t offset,
                      std::size_t alignment) noexcept {
  std::size_t slack = (alignment > base_alignment ? alignment : base_alignment);
  if (size + slack < size) return nullptr;  // overflow
  std::size_t reserved = size + slack;
  void* start = raw_map(reserved);
  if (start == nullptr) return nullptr;
  std::uintptr_t base = place(reinterpret_cast<std::uintptr_t>(start), reserved, size,
                              base_alignment, offset, alignment);
  return reinterpret_cast<void*>(base);
}

void unmap(void* p, std::size_t size) noexcept { ::munmap(p, size); }

void purge(void* p, std::size_t size) noexcept {
  int saved = errno;
  ::madvise(p, size, MADV_DONTNEED);
  errno = saved;
}

bool remap_in_place(void* p, std::size_t old_size, std::size_t new_size) noexcept {
  int saved = errno;
  void* q = ::mremap(p, old_size, new_size, 0);
  errno = saved;
  return q != MAP_FAILED;
}

void* remap_moving(void* p, std::size_t old_size, std::size_t new_size, std::size_t base_alignment,
                   std::size_t offset, std::size_t alignment) noexcept {
  // Reserve a destination with the wanted layout, then move the pages onto it
  // with MREMAP_FIXED (which replaces the reservation atomically).
  void* dest = map_with_offset(new_size, base_alignment, offset, alignment);
  if (dest == nullptr) return nullptr;
  void* q = ::mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, dest);
  if (q == MAP_FAILED) {
    ::munmap(dest, new_size);
    return nullptr;
  }
  return q;
}

std::uint64_t now_ms() noexcept {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1000000u;
}

std::uint64_t random_u64() noexcept {
  std::uint64_t value = 0;
  int saved = errno;
  if (::getrandom(&value, sizeof value, GRND_NONBLOCK) != sizeof value) {
    struct timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    value = static_cast<std::uint64_t>(ts.tv_nsec) * 0x9E3779B97F4A7C15ull ^
            reinterpret_cast<std::uintptr_t>(&value);
  }
  errno = saved;
  return value | 1;
}

std::size_t os_page_size() noexcept { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }

}  // namespace bop::os
