// Small helpers shared by the bop tests: byte patterns, RSS readings, and
// running a piece of code in a forked child with a timeout.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace bop_test {

inline constexpr std::size_t KiB = 1024;
inline constexpr std::size_t MiB = 1024 * KiB;

// Keep the optimizer from deleting an allocation (or a store) that looks unused.
inline void Escape(const void* p) {
  asm volatile("" : : "g"(p) : "memory");
}

// Returns p after making it escape: a new-expression wrapped in Keep() is
// really performed (and its result really compared), never elided.
template <class T>
inline T* Keep(T* p) {
  Escape(p);
  return p;
}

// A value the compiler cannot see through: keeps purpose-built impossible
// requests (SIZE_MAX, ...) from tripping compile-time alloc_size warnings.
template <class T>
inline T Opaque(T v) {
  asm volatile("" : "+r"(v));
  return v;
}

inline bool IsAligned(const void* p, std::size_t align) {
  return (reinterpret_cast<std::uintptr_t>(p) & (align - 1)) == 0;
}

// A position-dependent pattern: byte j of a block is byte (j % 8) of word
// j / 8, and each word mixes the seed with its index.  Any prefix of a pattern
// is the pattern of that shorter length, so realloc tests can check the kept
// part; shifted or swapped content never matches.
inline std::uint64_t PatternWord(std::uint64_t seed, std::size_t i) {
  std::uint64_t x = (seed + i + 1) * 0x9E3779B97F4A7C15ull;
  return x ^ (x >> 31);
}

inline void FillPattern(void* p, std::size_t n, std::uint64_t seed) {
  auto* b = static_cast<unsigned char*>(p);
  std::size_t words = n / 8;
  for (std::size_t i = 0; i < words; ++i) {
    std::uint64_t w = PatternWord(seed, i);
    std::memcpy(b + i * 8, &w, 8);
  }
  if (n % 8 != 0) {
    std::uint64_t w = PatternWord(seed, words);
    std::memcpy(b + words * 8, &w, n % 8);
  }
}

// Returns the offset of the first byte that differs from the pattern, or n.
inline std::size_t PatternMismatch(const void* p, std::size_t n, std::uint64_t seed) {
  auto* b = static_cast<const unsigned char*>(p);
  std::size_t words = n / 8;
  for (std::size_t i = 0; i < words; ++i) {
    std::uint64_t w = PatternWord(seed, i);
    if (std::memcmp(b + i * 8, &w, 8) != 0) {
      for (std::size_t j = 0; j < 8; ++j)
        if (b[i * 8 + j] != reinterpret_cast<const unsigned char*>(&w)[j]) return i * 8 + j;
    }
  }
  if (n % 8 != 0) {
    std::uint64_t w = PatternWord(seed, words);
    for (std::size_t j = 0; j < n % 8; ++j)
      if (b[words * 8 + j] != reinterpret_cast<const unsigned char*>(&w)[j]) return words * 8 + j;
  }
  return n;
}

inline bool HasPattern(const void* p, std::size_t n, std::uint64_t seed) {
  return PatternMismatch(p, n, seed) == n;
}

// Offset of the first non-zero byte, or n.
inline std::size_t FirstNonZero(const void* p, std::size_t n) {
  auto* b = static_cast<const unsigned char*>(p);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, b + i, 8);
    if (w != 0) break;
  }
  for (; i < n; ++i)
    if (b[i] != 0) return i;
  return n;
}

// Resident and virtual size of this process, from /proc/self/statm.
inline bool ReadStatm(std::size_t* vm_bytes, std::size_t* rss_bytes) {
  int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[128] = {};
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  unsigned long long vm = 0, rss = 0;
  if (std::sscanf(buf, "%llu %llu", &vm, &rss) != 2) return false;
  std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  if (vm_bytes) *vm_bytes = vm * page;
  if (rss_bytes) *rss_bytes = rss * page;
  return true;
}

inline std::size_t RssBytes() {
  std::size_t rss = 0;
  ReadStatm(nullptr, &rss);
  return rss;
}

inline std::size_t VmBytes() {
  std::size_t vm = 0;
  ReadStatm(&vm, nullptr);
  return vm;
}

// How a child process ended.
struct ChildResult {
  bool timed_out = false;
  bool exited = false;
  int exit_code = -1;
  int signal = 0;

  bool ok() const { return !timed_out && exited && exit_code == 0; }
  std::string describe() const {
    if (timed_out) return "child timed out (hung: deadlock?) and was killed";
    if (exited) return "child exited with code " + std::to_string(exit_code);
    return "child killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
  }
};

// Waits for `pid` at most `timeout_s` seconds; kills it with SIGKILL after that.
inline ChildResult WaitChild(pid_t pid, double timeout_s) {
  ChildResult r;
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    int status = 0;
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      if (WIFEXITED(status)) {
        r.exited = true;
        r.exit_code = WEXITSTATUS(status);
      } else if (WIFSIGNALED(status)) {
        r.signal = WTERMSIG(status);
      }
      return r;
    }
    if (w < 0 && errno != EINTR) {
      r.exit_code = -2;
      return r;
    }
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double elapsed = double(now.tv_sec - start.tv_sec) + double(now.tv_nsec - start.tv_nsec) / 1e9;
    if (elapsed > timeout_s) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      r.timed_out = true;
      return r;
    }
    timespec nap{0, 2 * 1000 * 1000};
    nanosleep(&nap, nullptr);
  }
}

// Runs fn() in a forked child; its return value is the exit code.
template <class Fn>
ChildResult RunInChild(Fn&& fn, double timeout_s = 60) {
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = ::fork();
  if (pid < 0) {
    ChildResult r;
    r.exit_code = -3;
    return r;
  }
  if (pid == 0) {
    int code = fn();
    std::fflush(stdout);
    std::fflush(stderr);
    ::_exit(code);
  }
  return WaitChild(pid, timeout_s);
}

}  // namespace bop_test

// For code running in a forked child (no gtest there): report and return 1.
#define CHILD_CHECK(cond)                                                                    \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "%s:%d: child check failed: %s (errno %d)\n", __FILE__, __LINE__, \
                   #cond, errno);                                                            \
      return 1;                                                                              \
    }                                                                                        \
  } while (0)
