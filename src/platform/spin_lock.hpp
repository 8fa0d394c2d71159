// A tiny lock for the allocator's rare global paths (segment cache, huge
// cache, heap pool).  Never taken on a malloc/free fast path.  Unlike
// pthread_mutex it can be reset in a fork child without any libc state.
#pragma once

#include <sched.h>

#include <atomic>

namespace bop {

// The three moments of a pthread_atfork handler.
enum class ForkPhase { kPrepare, kParent, kChild };

class SpinLock {
 public:
  constexpr SpinLock() = default;
  void lock() noexcept {
    for (;;) {
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      for (int spins = 0; locked_.load(std::memory_order_relaxed); ++spins) {
        if (spins < 64) {
          __builtin_ia32_pause();
        } else {
          sched_yield();
        }
      }
    }
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }
  // Fork child only: the other threads are gone, whatever they held.
  void reset() noexcept { locked_.store(false, std::memory_order_relaxed); }
  // A fork handler's part: held across fork(), so the child never inherits
  // it half-way through another thread's update.
  void on_fork(ForkPhase phase) noexcept {
    if (phase == ForkPhase::kPrepare)
      lock();
    else if (phase == ForkPhase::kParent)
      unlock();
    else
      reset();
  }

 private:
  std::atomic<bool> locked_{false};
};

class LockGuard {
 public:
  explicit LockGuard(SpinLock& lock) noexcept : lock_(lock) { lock_.lock(); }
  ~LockGuard() { lock_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  SpinLock& lock_;
};

}  // namespace bop
