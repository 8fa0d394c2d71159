// Single-writer counters that other threads read: one `add` to memory.
//
// A counter of a stats shard has one writer (the shard's thread) and any
// number of readers (snapshots).  As a std::atomic load, add and store it is
// three instructions and a register; x86-64 does the same in one `add` to
// memory, whose store readers see whole (an aligned 8-byte access), and
// whose order against the thread's other stores is the hardware's (stores
// are never reordered with older stores), which is the release order the
// snapshots' acquire loads pair with (process_counters.hpp).
//
// ThreadSanitizer cannot see into asm: its builds use the atomic form.
#pragma once

#include <atomic>
#include <cstdint>

namespace bop::stats {

#if defined(__SANITIZE_THREAD__)
inline constexpr bool kAtomicOwnerWords = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kAtomicOwnerWords = true;
#else
inline constexpr bool kAtomicOwnerWords = false;
#endif
#else
inline constexpr bool kAtomicOwnerWords = false;
#endif

// counter += by, by the counter's only writer; a release store for readers.
[[gnu::always_inline]] inline void owner_add(std::atomic<std::uint64_t>& counter,
                                             std::uint64_t by = 1) noexcept {
  static_assert(sizeof(std::atomic<std::uint64_t>) == sizeof(std::uint64_t));
  if constexpr (kAtomicOwnerWords) {
    counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_release);
  } else {
    // volatile: never merged with a neighbour or dropped; the "+m" operand
    // tells the compiler exactly which word changes.
    asm volatile("addq %1, %0" : "+m"(*reinterpret_cast<std::uint64_t*>(&counter)) : "er"(by));
  }
}

// left -= by; returns left <= 0.  One `sub` to memory whose flags the
// caller's branch tests: the compiler, given the plain expression, loads,
// subtracts, stores and tests again (five instructions for two).
[[gnu::always_inline]] inline bool count_down(std::int64_t& left, std::int64_t by) noexcept {
  if constexpr (kAtomicOwnerWords) {
    left -= by;
    return left <= 0;
  } else {
    bool expired;
    asm("subq %2, %0" : "+m"(left), "=@ccle"(expired) : "er"(by));
    return expired;
  }
}

}  // namespace bop::stats
