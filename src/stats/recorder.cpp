// StatsRecorder: per-thread counters merged when read.
//
// Writes: each thread owns one shard (indexed by its heap's index) and updates
// it with plain loads and stores inside a sequence-number bracket -- no
// locked instruction, no shared cache line.  Every 256 KiB of live-byte change
// a thread folds its running total into the shared `folded_` sum and the peak.
//
// Reads: deallocation counters are summed before allocation counters.  A
// block is always counted as allocated (on some shard) before it can be
// counted as freed (on any shard), and the acquire/release pairs carry that
// order to the reader, so a snapshot never shows more deallocations than
// allocations.
#include "stats/recorder_access.hpp"

namespace bop::detail {
namespace recorder_detail {

void spin_lock(std::atomic<bool>& lock) noexcept {
  while (lock.exchange(true, std::memory_order_acquire))
    while (lock.load(kRelaxed)) __builtin_ia32_pause();
}
void spin_unlock(std::atomic<bool>& lock) noexcept {
  lock.store(false, std::memory_order_release);
}

namespace {

// Reads a consistent pair of counters from a shard.
void read_pair(const StatsShard& s, const std::atomic<std::uint64_t>& a,
               const std::atomic<std::uint64_t>& b, std::uint64_t& out_a, std::uint64_t& out_b) {
  for (;;) {
    std::uint64_t before = s.seq.load(std::memory_order_acquire);
    if (before & 1) {
      __builtin_ia32_pause();
      continue;
    }
    // Acquire loads (plain movs on x86-64) pair with bump's release stores and
    // keep the second sequence load after them: no standalone fence needed.
    out_a = a.load(std::memory_order_acquire);
    out_b = b.load(std::memory_order_acquire);
    if (s.seq.load(kRelaxed) == before) return;
  }
}

}  // namespace
}  // namespace recorder_detail

using namespace recorder_detail;

StatsRecorderAccess::Sums StatsRecorderAccess::sum(const StatsRecorder& r) noexcept {
  Sums sums;
  auto each = [&](auto&& visit) {
    for (const StatsShard& s : r.shards_) visit(s);
    visit(r.shared_shard_);
  };
  // Deallocations first: see the header comment of this file.
  each([&](const StatsShard& s) {
    std::uint64_t n, bytes;
    read_pair(s, s.deallocations, s.bytes_deallocated, n, bytes);
    sums.deallocations += n;
    sums.bytes_deallocated += bytes;
  });
  std::int64_t unfolded = unfolded_total(r);
  each([&](const StatsShard& s) {
    std::uint64_t n, bytes;
    read_pair(s, s.allocations, s.bytes_allocated, n, bytes);
    sums.allocations += n;
    sums.bytes_allocated += bytes;
    // (Far below zero for a shard with no high since the reset: peak.hpp.)
    std::int64_t high = stats::peak::candidate_peak(s, unfolded - s.pending.load(kRelaxed));
    if (high > sums.best_unfolded_high) sums.best_unfolded_high = high;
  });
  return sums;
}

void StatsRecorder::on_alloc(std::uint64_t bytes, unsigned shard) noexcept {
  StatsRecorderAccess::alloc(*this, bytes, shard);
}
void StatsRecorder::on_dealloc(std::uint64_t bytes, unsigned shard) noexcept {
  StatsRecorderAccess::dealloc(*this, bytes, shard);
}
void StatsRecorder::on_alloc(std::uint64_t bytes) noexcept {
  if (StatsShard* due = StatsRecorderAccess::alloc(*this, bytes))
    StatsRecorderAccess::finish(*this, due, true, bytes);
}
void StatsRecorder::on_dealloc(std::uint64_t bytes) noexcept {
  if (StatsShard* due = StatsRecorderAccess::dealloc(*this, bytes))
    StatsRecorderAccess::finish(*this, due, false, bytes);
}

void StatsRecorder::on_resize(std::uint64_t old_bytes, std::uint64_t new_bytes) noexcept {
  StatsRecorderAccess::write(*this, stats_thread_shard(), [old_bytes, new_bytes](StatsShard& s) {
    if (new_bytes > old_bytes)
      bump(s.bytes_allocated, new_bytes - old_bytes);
    else
      bump(s.bytes_deallocated, old_bytes - new_bytes);
    return static_cast<std::int64_t>(new_bytes) - static_cast<std::int64_t>(old_bytes);
  });
}

AllocationStats StatsRecorder::snapshot() const noexcept {
  spin_lock(snapshot_lock_);
  StatsRecorderAccess::Sums sums = StatsRecorderAccess::sum(*this);
  std::uint64_t base_n = base_deallocations_.load(kRelaxed);
  std::uint64_t base_bytes = base_bytes_deallocated_.load(kRelaxed);
  std::uint64_t peak = peak_.load(kRelaxed);
  spin_unlock(snapshot_lock_);

  return stats::peak::snapshot_from(sums, base_n, base_bytes, peak);
}

void StatsRecorder::reset() noexcept {
  spin_lock(snapshot_lock_);
  StatsRecorderAccess::Sums sums = StatsRecorderAccess::sum(*this);
  // Rebase: what was freed is forgotten; what is live stays counted.
  base_deallocations_.store(sums.deallocations, kRelaxed);
  base_bytes_deallocated_.store(sums.bytes_deallocated, kRelaxed);
  std::uint64_t current = sums.bytes_allocated - sums.bytes_deallocated;
  peak_.store(current, kRelaxed);
  for (StatsShard& s : shards_) stats::peak::forget_high(s);
  stats::peak::forget_high(shared_shard_);
  spin_unlock(snapshot_lock_);
}

}  // namespace bop::detail
