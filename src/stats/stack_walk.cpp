// Built with -fno-omit-frame-pointer (CMakeLists.txt), like the sampler's
// other rare paths, so the chain from here reaches the program's frames.
//
// A chain is trusted only while every link checks out: the frame lies in
// this thread's stack, above the previous one, and its return address lies
// in an executable segment of a loaded module.  Code without frame pointers
// breaks the chain early (its rbp is no frame), and a short chain sends the
// capture to the unwinder, so such programs get the same stacks as before.
#include "stats/stack_walk.hpp"

#include <execinfo.h>
#include <link.h>
#include <pthread.h>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

extern "C" void* __libc_stack_end;  // glibc (ld.so): the stack pointer at process entry

namespace bop::stats {
namespace {

// Fewer trusted frames than this: the program has no usable chain.  (The
// first three are the sampler's own, then the allocating call site, which
// the last frame of ours records even when the program has no chain; one
// more frame means the program's own frame checked out.)
constexpr int kMinFramePointerFrames = 5;

constinit thread_local std::uintptr_t tl_stack_lo __attribute__((tls_model("initial-exec"))) = 0;
constinit thread_local std::uintptr_t tl_stack_hi __attribute__((tls_model("initial-exec"))) = 0;

// The main thread's stack: pthread_getattr_np would read /proc/self/maps
// (about as many instructions as a small program's whole run).  Its frames
// all lie below __libc_stack_end (the stack pointer at process entry) and
// above that less the stack limit.  False: not the main thread, or no limit.
bool main_stack_bounds(std::uintptr_t& lo, std::uintptr_t& hi) {
  if (getpid() != static_cast<pid_t>(syscall(SYS_gettid))) return false;
  rlimit limit;
  if (getrlimit(RLIMIT_STACK, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return false;
  hi = reinterpret_cast<std::uintptr_t>(__libc_stack_end);
  lo = hi > limit.rlim_cur ? hi - limit.rlim_cur : 0;
  return hi != 0;
}

bool stack_bounds(std::uintptr_t& lo, std::uintptr_t& hi) {
  if (tl_stack_hi == 0 && !main_stack_bounds(tl_stack_lo, tl_stack_hi)) {
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) != 0) return false;
    void* base = nullptr;
    std::size_t size = 0;
    int error = pthread_attr_getstack(&attr, &base, &size);
    pthread_attr_destroy(&attr);
    if (error != 0 || base == nullptr) return false;
    tl_stack_lo = reinterpret_cast<std::uintptr_t>(base);
    tl_stack_hi = tl_stack_lo + size;
  }
  lo = tl_stack_lo, hi = tl_stack_hi;
  return true;
}

// Executable segments of the loaded modules, collected by dl_iterate_phdr
// (which does not allocate) and collected again when an address is in none
// of them (a module loaded since).  Written by one sampling thread at a
// time: the ranges are only ever a cache, a stale read just retries.
struct Range {
  std::uintptr_t lo, hi;
};
constexpr int kMaxRanges = 256;
Range g_ranges[kMaxRanges];
int g_range_count = 0;

int collect(dl_phdr_info* info, std::size_t, void* count_ptr) {
  int& count = *static_cast<int*>(count_ptr);
  for (int i = 0; i < info->dlpi_phnum && count < kMaxRanges; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_X) == 0) continue;
    std::uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    g_ranges[count++] = {lo, lo + ph.p_memsz};
  }
  return 0;
}

bool in_ranges(std::uintptr_t address) {
  for (int i = 0; i < g_range_count; ++i)
    if (address >= g_ranges[i].lo && address < g_ranges[i].hi) return true;
  return false;
}

bool is_code(std::uintptr_t address) {
  if (in_ranges(address)) return true;
  int count = 0;
  dl_iterate_phdr(collect, &count);
  g_range_count = count;
  return in_ranges(address);
}

// The frame-pointer chain from here; the number of trusted frames.
[[gnu::noinline]] int walk_frame_pointers(void** frames, int max) {
  std::uintptr_t lo, hi;
  if (!stack_bounds(lo, hi)) return 0;
  auto fp = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  int n = 0;
  while (n < max && fp >= lo && fp + 2 * sizeof(void*) <= hi && fp % sizeof(void*) == 0) {
    auto* frame = reinterpret_cast<std::uintptr_t*>(fp);
    std::uintptr_t next = frame[0], ret = frame[1];
    if (ret == 0 || !is_code(ret)) break;
    frames[n++] = reinterpret_cast<void*>(ret);
    if (next <= fp) break;  // the outermost frame (0) or not a chain
    fp = next;
  }
  return n;
}

}  // namespace

int capture_stack(void** frames, int max) noexcept {
  int n = walk_frame_pointers(frames, max);
  if (n >= kMinFramePointerFrames) return n;
  n = backtrace(frames, max);
  return n < 0 ? 0 : n;
}

}  // namespace bop::stats
