// StatsRecorder's write path, inline so BopStatsAllocator's alloc and free
// compile it into their own bodies (no call per event); recorder.cpp holds
// the reads (snapshot, reset).  Design: see recorder.cpp.
#pragma once

#include <bop/stats.hpp>

#include "core/heap.hpp"
#include "stats/peak.hpp"
#include "stats/seqlock.hpp"
#include "stats/thread_shard.hpp"

namespace bop::detail {
namespace recorder_detail {

constexpr auto kRelaxed = std::memory_order_relaxed;

void spin_lock(std::atomic<bool>& lock) noexcept;
void spin_unlock(std::atomic<bool>& lock) noexcept;

using stats::bump;  // seqlock.hpp: the shards' single-writer increments and brackets
using stats::SeqWrite;

}  // namespace recorder_detail

// Access to StatsRecorder's private parts from this file's helpers.
struct StatsRecorderAccess {
  static stats::peak::Totals totals(StatsRecorder& r) noexcept { return {r.folded_, r.peak_}; }

  template <class Update>
  static void write(StatsRecorder& r, unsigned index, Update update) noexcept {
    using namespace recorder_detail;
    bool shared = index >= kStatsShards;
    StatsShard& shard = shared ? r.shared_shard_ : r.shards_[index];
    if (shared) [[unlikely]]
      spin_lock(r.shared_lock_);
    {
      SeqWrite bracket(shard.seq);
      std::int64_t delta = update(shard);
      stats::peak::track(shard, totals(r), delta, [&r] { return unfolded_total(r); });
    }
    if (shared) [[unlikely]]
      spin_unlock(r.shared_lock_);
  }

  // The fast path of an event of the calling thread: its own shard, the peak
  // update inline.  Returns nullptr when done, else what is left to do, for
  // the caller to finish out of line at its end (as a tail call, so the
  // common path needs no saved registers): the shard, when a fold is due,
  // or kNotCounted for a thread
  // without its own shard (no heap yet, or past kStatsShards: see write()).
  static inline StatsShard* const kNotCounted = reinterpret_cast<StatsShard*>(alignof(StatsShard));

  template <class Update>
  [[gnu::always_inline]] static StatsShard* write_own(StatsRecorder& r, Update update) noexcept {
    using namespace recorder_detail;
    unsigned index = core::tl_heap->index;  // the sentinel's is past every shard
    if (index >= kStatsShards) [[unlikely]]
      return kNotCounted;
    StatsShard& s = r.shards_[index];
    std::int64_t pending;
    {
      SeqWrite bracket(s.seq);
      pending = s.pending.load(kRelaxed) + update(s);
      s.pending.store(pending, kRelaxed);
      if (pending > s.pending_max.load(kRelaxed)) {
        s.pending_max.store(pending, kRelaxed);
        s.max_base.store(r.folded_.load(kRelaxed), kRelaxed);
      }
    }
    bool rare = pending >= stats::peak::kFoldBytes || pending <= -stats::peak::kFoldBytes;
    return rare ? &s : nullptr;
  }
  // Out of line: the fold (its words are read without the sequence
  // bracket, so it runs after it).
  [[gnu::noinline]] static void finish_rare(StatsRecorder& r, StatsShard& s) noexcept {
    stats::peak::fold(s, totals(r), [&r] { return unfolded_total(r); });
  }

  // One allocation or free of `bytes` requested bytes.
  static std::int64_t count_alloc(StatsShard& s, std::uint64_t bytes) {
    recorder_detail::bump(s.allocations, 1);
    recorder_detail::bump(s.bytes_allocated, bytes);
    return static_cast<std::int64_t>(bytes);
  }
  static std::int64_t count_dealloc(StatsShard& s, std::uint64_t bytes) {
    recorder_detail::bump(s.deallocations, 1);
    recorder_detail::bump(s.bytes_deallocated, bytes);
    return -static_cast<std::int64_t>(bytes);
  }
  [[gnu::always_inline]] static StatsShard* alloc(StatsRecorder& r, std::uint64_t bytes) noexcept {
    return write_own(r, [bytes](StatsShard& s) { return count_alloc(s, bytes); });
  }
  [[gnu::always_inline]] static StatsShard* dealloc(StatsRecorder& r,
                                                    std::uint64_t bytes) noexcept {
    return write_own(r, [bytes](StatsShard& s) { return count_dealloc(s, bytes); });
  }
  // Finishes what alloc() or dealloc() left (`due`, not nullptr).
  [[gnu::noinline]] static void finish(StatsRecorder& r, StatsShard* due, bool allocated,
                                       std::uint64_t bytes) noexcept {
    if (due != kNotCounted) return finish_rare(r, *due);
    write(r, stats_thread_shard(), [allocated, bytes](StatsShard& s) {
      return allocated ? count_alloc(s, bytes) : count_dealloc(s, bytes);
    });
  }
  // The same for a caller that knows its shard (kStatsShards: the shared one).
  static void alloc(StatsRecorder& r, std::uint64_t bytes, unsigned shard) noexcept {
    write(r, shard, [bytes](StatsShard& s) { return count_alloc(s, bytes); });
  }
  static void dealloc(StatsRecorder& r, std::uint64_t bytes, unsigned shard) noexcept {
    write(r, shard, [bytes](StatsShard& s) { return count_dealloc(s, bytes); });
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
