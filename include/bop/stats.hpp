// bop: allocation statistics -- BopStatsAllocator and AllocationStats.
//
//   static bop::BopStatsAllocator GLOBAL;      // constexpr-constructible
//   BOP_GLOBAL_ALLOCATOR(GLOBAL);
//   ...
//   bop::AllocationStats s = GLOBAL.stats();
//   std::cout << s << "\n";
//   if (s.has_leaks()) ...
//
// Semantics (also in README):
// - Bytes are the sizes the caller asked for (Layout::size), never the
//   rounded-up block sizes.
// - realloc is not an allocation event: `allocations` and `deallocations` do
//   not move; growth adds the difference to bytes_allocated, shrinking adds it
//   to bytes_deallocated.
// - A snapshot is consistent: no event is ever seen half-counted, and
//   deallocations <= allocations, bytes_deallocated <= bytes_allocated always.
// - reset_stats() forgets history but keeps what is live: afterwards
//   allocations = live blocks, bytes_allocated = current_memory,
//   deallocations = bytes_deallocated = 0 and peak_memory = current_memory.
//   No counter wraps and the peak never jumps, whatever is live.
// - current_memory is exact.  peak_memory is exact for a single thread (and
//   in the common hand-over patterns: one thread then another); with N
//   threads it may be off by less than (N - 1) * 256 KiB either way: threads
//   fold their counts into the shared total every 256 KiB of change, so no
//   allocation writes a shared cache line, and the others' unfolded changes
//   at the moment of a thread's high-water mark are estimated.
#pragma once

#include <bop/allocator.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <sstream>
#include <string>

namespace bop {

struct AllocationStats {
  std::uint64_t allocations = 0;        // blocks handed out (since the last reset)
  std::uint64_t deallocations = 0;      // blocks given back (since the last reset)
  std::uint64_t bytes_allocated = 0;    // requested bytes handed out, realloc growth included
  std::uint64_t bytes_deallocated = 0;  // requested bytes given back, realloc shrinking included
  std::uint64_t peak_memory = 0;        // highest current_memory seen (since the last reset)
  std::uint64_t current_memory = 0;     // requested bytes live now

  constexpr std::uint64_t outstanding_allocations() const { return allocations - deallocations; }
  constexpr std::uint64_t outstanding_memory() const { return bytes_allocated - bytes_deallocated; }
  constexpr bool has_leaks() const { return outstanding_allocations() != 0; }
  friend constexpr bool operator==(const AllocationStats&, const AllocationStats&) = default;

  std::string to_string() const {
    std::ostringstream out;
    out << *this;
    return out.str();
  }
  friend std::ostream& operator<<(std::ostream& out, const AllocationStats& s) {
    return out << "AllocationStats { allocations: " << s.allocations
               << ", deallocations: " << s.deallocations
               << ", bytes_allocated: " << s.bytes_allocated
               << ", bytes_deallocated: " << s.bytes_deallocated
               << ", peak_memory: " << s.peak_memory << ", current_memory: " << s.current_memory
               << ", outstanding_allocations: " << s.outstanding_allocations() << " }";
  }
};

namespace detail {

inline constexpr unsigned kStatsShards = 64;

// One thread's counters.  Only its thread writes them (plain stores bracketed
// by a sequence number, no locked instruction); readers retry while `seq` is
// odd or changes.  Threads beyond kStatsShards share an extra shard under a lock.
struct alignas(64) StatsShard {
  std::atomic<std::uint64_t> seq{0};
  std::atomic<std::uint64_t> allocations{0};
  std::atomic<std::uint64_t> bytes_allocated{0};
  std::atomic<std::uint64_t> deallocations{0};
  std::atomic<std::uint64_t> bytes_deallocated{0};
  std::atomic<std::int64_t> pending{0};  // live-byte change not folded into the shared total yet
  std::atomic<std::int64_t> pending_max{0};  // highest `pending` since the last fold
  std::atomic<std::int64_t> max_base{0};     // the shared total when pending_max was reached
};

// The counting engine behind BopStatsAllocator and the process-wide report.
class BOP_EXPORT StatsRecorder {
 public:
  constexpr StatsRecorder() = default;
  StatsRecorder(const StatsRecorder&) = delete;
  StatsRecorder& operator=(const StatsRecorder&) = delete;

  void on_alloc(std::uint64_t bytes) noexcept;
  void on_dealloc(std::uint64_t bytes) noexcept;
  // The same for a caller that knows its shard (kStatsShards: the shared one).
  void on_alloc(std::uint64_t bytes, unsigned shard) noexcept;
  void on_dealloc(std::uint64_t bytes, unsigned shard) noexcept;
  void on_resize(std::uint64_t old_bytes, std::uint64_t new_bytes) noexcept;
  AllocationStats snapshot() const noexcept;
  void reset() noexcept;

 private:
  StatsShard shards_[kStatsShards];
  StatsShard shared_shard_;  // for threads past kStatsShards
  std::atomic<bool> shared_lock_{false};
  std::atomic<std::int64_t> folded_{0};  // sum of every shard's folded `pending`
  std::atomic<std::uint64_t> peak_{0};
  std::atomic<std::uint64_t> base_deallocations_{0};  // reset baseline
  std::atomic<std::uint64_t> base_bytes_deallocated_{0};
  mutable std::atomic<bool> snapshot_lock_{false};  // orders snapshot() against reset()

  friend struct StatsRecorderAccess;
};

}  // namespace detail

// BopAllocator that counts what goes through it.  Constexpr-constructible,
// so it can be a static global installed with BOP_GLOBAL_ALLOCATOR.  Each
// block carries a small header with its requested size, so frees without a
// size (plain operator delete) are counted exactly too.  Blocks from it must
// be freed through it.
class BOP_EXPORT BopStatsAllocator {
 public:
  constexpr BopStatsAllocator() noexcept = default;

  void* alloc(Layout layout) noexcept;
  void* alloc_zeroed(Layout layout) noexcept;
  void dealloc(void* p, Layout layout) noexcept;
  void dealloc_unsized(void* p) noexcept;
  void* realloc(void* p, Layout layout, std::size_t new_size) noexcept;
  std::size_t usable_size(const void* p) const noexcept;

  AllocationStats stats() const noexcept { return recorder_.snapshot(); }
  void reset_stats() noexcept { recorder_.reset(); }

 private:
  detail::StatsRecorder recorder_;
};

}  // namespace bop
