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
#include <bop/stats.hpp>

#include "stats/thread_shard.hpp"

namespace bop::detail {
namespace {

constexpr std::int64_t kFoldBytes = 256 * 1024;
constexpr auto kRelaxed = std::memory_order_relaxed;

void spin_lock(std::atomic<bool>& lock) {
  while (lock.exchange(true, std::memory_order_acquire))
    while (lock.load(kRelaxed)) __builtin_ia32_pause();
}
void spin_unlock(std::atomic<bool>& lock) {
  lock.store(false, std::memory_order_release);
}

// Single-writer increment: the shard's owner is the only thread storing here.
// A release store (a plain mov on x86-64, like a relaxed one): a reader whose
// acquire load sees this value also sees the odd sequence number stored
// before it, so read_pair retries.  This is the seqlock's ordering written on
// the variables themselves instead of a standalone fence, which
// ThreadSanitizer cannot model (g++ -fsanitize=thread warns about it).
inline void bump(std::atomic<std::uint64_t>& counter, std::uint64_t by) {
  counter.store(counter.load(kRelaxed) + by, std::memory_order_release);
}

// Writer side of a shard's sequence lock: odd while the shard is mid-update.
// The counters' release stores (bump) keep the odd store ahead of them.
class ShardWrite {
 public:
  explicit ShardWrite(StatsShard& shard) : shard_(shard), seq_(shard.seq.load(kRelaxed)) {
    shard_.seq.store(seq_ + 1, kRelaxed);
  }
  ~ShardWrite() { shard_.seq.store(seq_ + 2, std::memory_order_release); }

 private:
  StatsShard& shard_;
  std::uint64_t seq_;
};

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

void atomic_max(std::atomic<std::uint64_t>& target, std::uint64_t value) {
  std::uint64_t seen = target.load(kRelaxed);
  while (value > seen && !target.compare_exchange_weak(seen, value, kRelaxed)) {
  }
}

}  // namespace

// Access to StatsRecorder's private parts from this file's helpers.
struct StatsRecorderAccess {
  template <class Update>
  static void write(StatsRecorder& r, unsigned index, Update update) noexcept {
    bool shared = index >= kStatsShards;
    StatsShard& shard = shared ? r.shared_shard_ : r.shards_[index];
    if (shared) spin_lock(r.shared_lock_);
    {
      ShardWrite bracket(shard);
      // First write since a reset: the high-water mark restarts from here.
      std::uint32_t epoch = r.epoch_.load(kRelaxed);
      if (shard.epoch.load(kRelaxed) != epoch) {
        shard.epoch.store(epoch, kRelaxed);
        shard.pending_max.store(shard.pending.load(kRelaxed), kRelaxed);
        shard.max_base.store(r.folded_.load(kRelaxed), kRelaxed);
      }
      std::int64_t delta = update(shard);
      track(r, shard, delta);
    }
    if (shared) spin_unlock(r.shared_lock_);
  }

  // Running live-byte change of this shard and its high-water mark since the
  // last fold (with the shared total at that moment); folding publishes both
  // to the shared total and the peak.
  static void track(StatsRecorder& r, StatsShard& s, std::int64_t delta) noexcept {
    std::int64_t pending = s.pending.load(kRelaxed) + delta;
    s.pending.store(pending, kRelaxed);
    if (pending > s.pending_max.load(kRelaxed)) {
      s.pending_max.store(pending, kRelaxed);
      s.max_base.store(r.folded_.load(kRelaxed), kRelaxed);
    }
    if (pending >= kFoldBytes || pending <= -kFoldBytes) {
      std::int64_t high = candidate_peak(s, unfolded_total(r) - s.pending.load(kRelaxed));
      if (high > 0) atomic_max(r.peak_, static_cast<std::uint64_t>(high));
      std::int64_t after = r.folded_.fetch_add(pending, std::memory_order_acq_rel) + pending;
      s.pending.store(0, kRelaxed);
      s.pending_max.store(0, kRelaxed);
      s.max_base.store(after, kRelaxed);
    }
  }

  // Every shard's change not folded yet.  Read at fold time (every 256 KiB
  // of a thread's change) and by snapshots, never per allocation.
  static std::int64_t unfolded_total(const StatsRecorder& r) {
    std::int64_t sum = r.shared_shard_.pending.load(kRelaxed);
    for (const StatsShard& s : r.shards_) sum += s.pending.load(kRelaxed);
    return sum;
  }

  // The total when shard `s` reached its high-water mark: the shared total
  // then, its own excursion, and the others' unfolded changes (as they are
  // now: exact when the others did not move since, i.e. when threads take
  // turns; otherwise off by at most their unfolded change).
  static std::int64_t candidate_peak(const StatsShard& s, std::int64_t others) {
    return s.max_base.load(kRelaxed) + s.pending_max.load(kRelaxed) + others;
  }

  struct Sums {
    std::uint64_t allocations = 0, bytes_allocated = 0, deallocations = 0, bytes_deallocated = 0;
    std::int64_t best_unfolded_high = 0;  // highest candidate_peak of a shard not folded yet
  };

  static Sums sum(const StatsRecorder& r) noexcept {
    Sums sums;
    std::uint32_t epoch = r.epoch_.load(kRelaxed);
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
      if (s.epoch.load(kRelaxed) != epoch) return;  // its high-water mark predates the reset
      std::int64_t high = candidate_peak(s, unfolded - s.pending.load(kRelaxed));
      if (high > sums.best_unfolded_high) sums.best_unfolded_high = high;
    });
    return sums;
  }
};

void StatsRecorder::on_alloc(std::uint64_t bytes, unsigned shard) noexcept {
  StatsRecorderAccess::write(*this, shard, [bytes](StatsShard& s) {
    bump(s.allocations, 1);
    bump(s.bytes_allocated, bytes);
    return static_cast<std::int64_t>(bytes);
  });
}

void StatsRecorder::on_dealloc(std::uint64_t bytes, unsigned shard) noexcept {
  StatsRecorderAccess::write(*this, shard, [bytes](StatsShard& s) {
    bump(s.deallocations, 1);
    bump(s.bytes_deallocated, bytes);
    return -static_cast<std::int64_t>(bytes);
  });
}

void StatsRecorder::on_alloc(std::uint64_t bytes) noexcept {
  on_alloc(bytes, stats_thread_shard());
}
void StatsRecorder::on_dealloc(std::uint64_t bytes) noexcept {
  on_dealloc(bytes, stats_thread_shard());
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

void StatsRecorder::reset() noexcept {
  spin_lock(snapshot_lock_);
  StatsRecorderAccess::Sums sums = StatsRecorderAccess::sum(*this);
  // Rebase: what was freed is forgotten; what is live stays counted.
  base_deallocations_.store(sums.deallocations, kRelaxed);
  base_bytes_deallocated_.store(sums.bytes_deallocated, kRelaxed);
  std::uint64_t current = sums.bytes_allocated - sums.bytes_deallocated;
  peak_.store(current, kRelaxed);
  epoch_.fetch_add(1, kRelaxed);
  spin_unlock(snapshot_lock_);
}

}  // namespace bop::detail
