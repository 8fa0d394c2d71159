// StatsRecorder's write path, inline so BopStatsAllocator's alloc and free
// compile it into their own bodies (no call per event); recorder.cpp holds
// the reads (snapshot, reset).  Design: see recorder.cpp.
#pragma once

#include <bop/stats.hpp>

#include "stats/peak.hpp"
#include "stats/thread_shard.hpp"

namespace bop::detail {
namespace recorder_detail {

constexpr auto kRelaxed = std::memory_order_relaxed;

void spin_lock(std::atomic<bool>& lock) noexcept;
void spin_unlock(std::atomic<bool>& lock) noexcept;

// Single-writer increment: the shard's owner is the only thread storing here.
inline void bump(std::atomic<std::uint64_t>& counter, std::uint64_t by) {
  counter.store(counter.load(kRelaxed) + by, kRelaxed);
}

// Writer side of a shard's sequence lock: odd while the shard is mid-update.
// On x86 these are plain stores (the fence only orders the compiler).
class ShardWrite {
 public:
  explicit ShardWrite(StatsShard& shard) : shard_(shard), seq_(shard.seq.load(kRelaxed)) {
    shard_.seq.store(seq_ + 1, kRelaxed);
    std::atomic_thread_fence(std::memory_order_release);
  }
  ~ShardWrite() { shard_.seq.store(seq_ + 2, std::memory_order_release); }

 private:
  StatsShard& shard_;
  std::uint64_t seq_;
};

}  // namespace recorder_detail

// Access to StatsRecorder's private parts from this file's helpers.
struct StatsRecorderAccess {
  static stats::peak::Totals totals(StatsRecorder& r) noexcept { return {r.folded_, r.peak_, r.epoch_}; }

  template <class Update>
  static void write(StatsRecorder& r, unsigned index, Update update) noexcept {
    using namespace recorder_detail;
    bool shared = index >= kStatsShards;
    StatsShard& shard = shared ? r.shared_shard_ : r.shards_[index];
    if (shared) [[unlikely]]
      spin_lock(r.shared_lock_);
    {
      ShardWrite bracket(shard);
      stats::peak::resync_epoch(shard, totals(r));
      std::int64_t delta = update(shard);
      stats::peak::track(shard, totals(r), delta, [&r] { return unfolded_total(r); });
    }
    if (shared) [[unlikely]]
      spin_unlock(r.shared_lock_);
  }

  // One allocation or free of `bytes` requested bytes, by the calling thread
  // unless the caller knows its shard.
  static void alloc(StatsRecorder& r, std::uint64_t bytes,
                    unsigned shard = stats_thread_shard()) noexcept {
    write(r, shard, [bytes](StatsShard& s) {
      recorder_detail::bump(s.allocations, 1);
      recorder_detail::bump(s.bytes_allocated, bytes);
      return static_cast<std::int64_t>(bytes);
    });
  }
  static void dealloc(StatsRecorder& r, std::uint64_t bytes,
                      unsigned shard = stats_thread_shard()) noexcept {
    write(r, shard, [bytes](StatsShard& s) {
      recorder_detail::bump(s.deallocations, 1);
      recorder_detail::bump(s.bytes_deallocated, bytes);
      return -static_cast<std::int64_t>(bytes);
    });
  }

  // Every shard's change not folded yet (read at fold time and by snapshots).
  static std::int64_t unfolded_total(const StatsRecorder& r) noexcept {
    std::int64_t sum = r.shared_shard_.pending.load(recorder_detail::kRelaxed);
    for (const StatsShard& s : r.shards_) sum += s.pending.load(recorder_detail::kRelaxed);
    return sum;
  }

  struct Sums {
    std::uint64_t allocations = 0, bytes_allocated = 0, deallocations = 0, bytes_deallocated = 0;
    std::int64_t best_unfolded_high = 0;  // highest candidate_peak of a shard not folded yet
  };
  static Sums sum(const StatsRecorder& r) noexcept;  // recorder.cpp
};

}  // namespace bop::detail
