#include "platform/os.hpp"

#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>

#include <atomic>
#include <cerrno>

namespace bop::os {
namespace {

std::atomic<std::size_t> g_mapped{0};

constexpr std::uintptr_t align_up(std::uintptr_t x, std::size_t a) {
  return (x + a - 1) & ~(a - 1);
}

void* raw_map(std::size_t size) noexcept {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
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

namespace {

// Where the last aligned mapping went.  The next one is first tried right
// below it (mappings are placed top-down anyway): one mmap, where the
// over-sized reservation below costs an mmap and up to two trims.
std::atomic<std::uintptr_t> g_next_hint{0};

void* map_at_hint(std::size_t size, std::size_t base_alignment) noexcept {
#ifndef MAP_FIXED_NOREPLACE
  constexpr int MAP_FIXED_NOREPLACE = 0x100000;
#endif
  std::uintptr_t hint = g_next_hint.load(std::memory_order_relaxed);
  std::uintptr_t span = align_up(size, base_alignment);
  if (hint < span + (std::uintptr_t{1} << 32)) return nullptr;  // none yet, or near the bottom
  auto* want = reinterpret_cast<void*>((hint - span) & ~(base_alignment - 1));
  int saved = errno;
  void* p = ::mmap(want, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  errno = saved;
  if (p == MAP_FAILED) return nullptr;
  if (p != want) {  // older kernels take the flag as a mere hint
    ::munmap(p, size);
    return nullptr;
  }
  return p;
}

}  // namespace

void* map_with_offset(std::size_t size, std::size_t base_alignment, std::size_t offset,
                      std::size_t alignment) noexcept {
  if (alignment <= base_alignment) {  // base alignment alone places base + offset right
    if (void* p = map_at_hint(size, base_alignment)) {
      g_next_hint.store(reinterpret_cast<std::uintptr_t>(p), std::memory_order_relaxed);
      g_mapped.fetch_add(size, std::memory_order_relaxed);
      return p;
    }
  }
  std::size_t slack = (alignment > base_alignment ? alignment : base_alignment);
  if (size + slack < size) return nullptr;  // overflow
  std::size_t reserved = size + slack;
  void* start = raw_map(reserved);
  if (start == nullptr) return nullptr;
  std::uintptr_t base = place(reinterpret_cast<std::uintptr_t>(start), reserved, size,
                              base_alignment, offset, alignment);
  g_next_hint.store(base, std::memory_order_relaxed);
  g_mapped.fetch_add(size, std::memory_order_relaxed);
  return reinterpret_cast<void*>(base);
}

bool protect_none(void* p, std::size_t size) noexcept {
  int saved = errno;
  bool done = mprotect(p, size, PROT_NONE) == 0;
  errno = saved;
  return done;
}

bool protect_read_write(void* p, std::size_t size) noexcept {
  int saved = errno;
  bool done = mprotect(p, size, PROT_READ | PROT_WRITE) == 0;
  errno = saved;
  return done;
}

void unmap(void* p, std::size_t size) noexcept {
  ::munmap(p, size);
  g_mapped.fetch_sub(size, std::memory_order_relaxed);
}

void purge(void* p, std::size_t size) noexcept {
  int saved = errno;
  ::madvise(p, size, MADV_DONTNEED);
  errno = saved;
}

namespace {
// The calling process as a pidfd, without opening one (Linux 6.14's
// PIDFD_SELF_THREAD_GROUP): nothing to inherit, close or renew after fork.
constexpr int kPidfdSelf = -10001;

enum BatchPurge : int { kBatchUnknown, kBatchWorks, kBatchRefused };
std::atomic<int> g_batch_purge{kBatchUnknown};

// Whether the process runs under no seccomp filter (/proc/self/status says
// "Seccomp: 0").  A filter that does not know process_madvise may kill the
// process instead of failing the call (systemd's SystemCallFilter does by
// default), so under any filter bop keeps to madvise.
bool no_seccomp_filter() noexcept {
  int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char text[4096];
  ssize_t n = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  if (n <= 0) return false;
  text[n] = '\0';
  constexpr char kKey[] = "\nSeccomp:\t";
  for (const char* c = text; *c != '\0'; ++c) {
    std::size_t i = 0;
    while (kKey[i] != '\0' && c[i] == kKey[i]) ++i;
    if (kKey[i] == '\0') return c[i] == '0' && (c[i + 1] == '\n' || c[i + 1] == '\0');
  }
  return false;
}
}  // namespace

void purge_batch(const PurgeRange* ranges, std::size_t count) noexcept {
  for (; count > kPurgeBatchMax; count -= kPurgeBatchMax, ranges += kPurgeBatchMax)
    purge_batch(ranges, kPurgeBatchMax);
  if (count == 0) return;
  int saved = errno;
  int batch = g_batch_purge.load(std::memory_order_relaxed);
  if (batch == kBatchUnknown) {
    batch = no_seccomp_filter() ? kBatchWorks : kBatchRefused;
    g_batch_purge.store(batch, std::memory_order_relaxed);
  }
  if (count > 1 && batch == kBatchWorks) {
    iovec vec[kPurgeBatchMax];
    std::size_t total = 0;
    for (std::size_t i = 0; i < count; ++i) {
      vec[i] = {ranges[i].start, ranges[i].size};
      total += ranges[i].size;
    }
    long done = ::syscall(SYS_process_madvise, kPidfdSelf, vec, count, MADV_DONTNEED, 0u);
    if (done == static_cast<long>(total)) {
      errno = saved;
      return;
    }
    // Older kernels refuse (EBADF, EINVAL or ENOSYS): never again.
    if (done < 0) g_batch_purge.store(kBatchRefused, std::memory_order_relaxed);
    // Refused or cut short: every range one by one (purging twice is harmless).
  }
  errno = saved;
  for (std::size_t i = 0; i < count; ++i) purge(ranges[i].start, ranges[i].size);
}

bool remap_in_place(void* p, std::size_t old_size, std::size_t new_size) noexcept {
  int saved = errno;
  void* q = ::mremap(p, old_size, new_size, 0);
  errno = saved;
  if (q == MAP_FAILED) return false;
  g_mapped.fetch_add(new_size - old_size,
                     std::memory_order_relaxed);  // wraps correctly when shrinking
  return true;
}

bool extend_in_place(void* p, std::size_t old_size, std::size_t new_size) noexcept {
#ifndef MAP_FIXED_NOREPLACE
  constexpr int MAP_FIXED_NOREPLACE = 0x100000;
#endif
  int saved = errno;
  char* want = static_cast<char*>(p) + old_size;
  std::size_t size = new_size - old_size;
  // Older kernels take the flag as a mere hint: a mapping elsewhere is undone.
  void* q = ::mmap(want, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  errno = saved;
  if (q == MAP_FAILED) return false;
  if (q != want) {
    ::munmap(q, size);
    return false;
  }
  g_mapped.fetch_add(size, std::memory_order_relaxed);
  return true;
}

void* remap_moving(void* p, std::size_t old_size, std::size_t new_size, std::size_t base_alignment,
                   std::size_t offset, std::size_t alignment) noexcept {
  // Reserve a destination with the wanted layout, then move the pages onto it
  // with MREMAP_FIXED (which replaces that part of the reservation
  // atomically).  Growing moves only the old pages, onto the destination's
  // start: a range made of several kernel mappings (pages moved in from
  // elsewhere) can be moved as is since Linux 6.17, never resized.
  void* dest = map_with_offset(new_size, base_alignment, offset, alignment);
  if (dest == nullptr) return nullptr;
  std::size_t moved = old_size < new_size ? old_size : new_size;
  int saved = errno;
  void* q = ::mremap(p, old_size, moved, MREMAP_MAYMOVE | MREMAP_FIXED, dest);
  errno = saved;
  if (q == MAP_FAILED) {
    unmap(dest, new_size);
    return nullptr;
  }
  g_mapped.fetch_sub(old_size, std::memory_order_relaxed);  // dest's size was counted when mapped
  return q;
}

bool move_pages(void* from, std::size_t size, void* to) noexcept {
  int saved = errno;
  void* q = ::mremap(from, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, to);
  errno = saved;
  if (q == MAP_FAILED) return false;
  g_mapped.fetch_sub(size, std::memory_order_relaxed);  // the destination was counted when mapped
  return true;
}

std::uint64_t now_ms() noexcept {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000u +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1000000u;
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

std::size_t mapped_bytes() noexcept {
  return g_mapped.load(std::memory_order_relaxed);
}

std::size_t resident_bytes() noexcept {
  int saved = errno;
  int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    errno = saved;
    return 0;
  }
  char text[128];
  ssize_t n = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  errno = saved;
  if (n <= 0) return 0;
  text[n] = '\0';
  // "size resident shared ...": skip the first field.
  const char* c = text;
  while (*c != '\0' && *c != ' ') ++c;
  std::size_t pages = 0;
  for (++c; *c >= '0' && *c <= '9'; ++c) pages = pages * 10 + static_cast<std::size_t>(*c - '0');
  return pages * kPageSize;
}

std::size_t os_page_size() noexcept {
  return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace bop::os
