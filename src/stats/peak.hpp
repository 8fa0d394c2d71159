// Peak tracking without a shared write per event, shared by StatsRecorder
// (BopStatsAllocator) and the process-wide counters (BOP_STATS).
//
// Each shard (one writer) keeps its live-byte change since it last folded
// (`pending`), the highest value of that change (`pending_max`) and the
// shared total at that moment (`max_base`).  Every kFoldBytes of change the
// shard folds: it publishes a candidate peak and adds `pending` to the shared
// total.  A candidate is exact when the other shards did not move since their
// last fold, else off by at most their unfolded change, so with N writing
// threads the peak is off by less than (N - 1) * kFoldBytes.
//
// reset() marks every shard's high-water mark unknown (kNoHigh): its next
// event restarts it there (any pending exceeds kNoHigh), so the writers need
// no test for resets, and the candidate of a shard that has not written
// since is far below zero, so it never counts.  A reset racing with a
// writer's update loses at most that writer's high of the same instant (its
// value then).
#pragma once

#include <bop/stats.hpp>

#include <atomic>
#include <cstdint>

namespace bop::stats::peak {

inline constexpr std::int64_t kFoldBytes = 256 * 1024;
inline constexpr auto kRelaxed = std::memory_order_relaxed;

// A high-water mark that predates the last reset; low enough that no sum of
// it with totals overflows or comes near zero.
inline constexpr std::int64_t kNoHigh = -(std::int64_t{1} << 62);

// The shared side: folded total, published peak.
struct Totals {
  std::atomic<std::int64_t>& folded;
  std::atomic<std::uint64_t>& peak;
};

inline void atomic_max(std::atomic<std::uint64_t>& target, std::uint64_t value) {
  std::uint64_t seen = target.load(kRelaxed);
  while (value > seen && !target.compare_exchange_weak(seen, value, kRelaxed)) {
  }
}

// The total when shard `s` reached its high-water mark: the shared total
// then, its own excursion, and the others' unfolded changes (as they are now).
// Far below zero for a shard without one since the last reset.
template <class Shard>
std::int64_t candidate_peak(const Shard& s, std::int64_t others) {
  return s.max_base.load(kRelaxed) + s.pending_max.load(kRelaxed) + others;
}

// reset(): the shard's high-water mark restarts at its next event.
template <class Shard>
inline void forget_high(Shard& s) {
  s.pending_max.store(kNoHigh, kRelaxed);
}

// Publishes the shard's candidate peak and folds its change into the total.
// `unfolded()` sums every shard's `pending` (read only here, every
// kFoldBytes of a thread's change, and by snapshots).
template <class Shard, class Unfolded>
[[gnu::noinline]] void fold(Shard& s, Totals t, Unfolded unfolded) {
  std::int64_t pending = s.pending.load(kRelaxed);
  std::int64_t high = candidate_peak(s, unfolded() - pending);
  if (high > 0) atomic_max(t.peak, static_cast<std::uint64_t>(high));
  std::int64_t after = t.folded.fetch_add(pending, std::memory_order_acq_rel) + pending;
  s.pending.store(0, kRelaxed);
  s.pending_max.store(0, kRelaxed);
  s.max_base.store(after, kRelaxed);
}

// The shard's live bytes changed by `delta`.
template <class Shard, class Unfolded>
inline void track(Shard& s, Totals t, std::int64_t delta, Unfolded unfolded) {
  std::int64_t pending = s.pending.load(kRelaxed) + delta;
  s.pending.store(pending, kRelaxed);
  if (pending > s.pending_max.load(kRelaxed)) {
    s.pending_max.store(pending, kRelaxed);
    s.max_base.store(t.folded.load(kRelaxed), kRelaxed);
  }
  if (pending >= kFoldBytes || pending <= -kFoldBytes) [[unlikely]]
    fold(s, t, unfolded);
}

// The snapshot both recorders report, from their shards' sums (any type with
// the four counters and best_unfolded_high) and the reset baselines: counts
// since the reset, and a peak at least the current memory, raised by the
// highest unfolded candidate of a shard.
template <class Sums>
AllocationStats snapshot_from(const Sums& sums, std::uint64_t base_n, std::uint64_t base_bytes,
                              std::uint64_t peak) noexcept {
  AllocationStats out;
  out.allocations = sums.allocations - base_n;
  out.deallocations = sums.deallocations - base_n;
  out.bytes_allocated = sums.bytes_allocated - base_bytes;
  out.bytes_deallocated = sums.bytes_deallocated - base_bytes;
  out.current_memory = sums.bytes_allocated - sums.bytes_deallocated;
  if (sums.best_unfolded_high > 0 && static_cast<std::uint64_t>(sums.best_unfolded_high) > peak)
    peak = static_cast<std::uint64_t>(sums.best_unfolded_high);
  out.peak_memory = peak > out.current_memory ? peak : out.current_memory;
  return out;
}

}  // namespace bop::stats::peak
