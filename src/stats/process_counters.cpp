// The process-wide counters' rare paths and reads.  Design: see the header.
#include "stats/process_counters.hpp"

#include "platform/spin_lock.hpp"
#include "stats/leak_sampler.hpp"
#include "stats/thread_shard.hpp"

namespace bop::stats {

constinit ProcessShard g_shards[detail::kStatsShards + 1];
// g_epoch is read by every allocation and written by reset() only: its own
// cache line, away from the folded total and the peak that folds write.
alignas(64) constinit std::atomic<std::uint32_t> g_epoch{0};
alignas(64) constinit std::atomic<std::int64_t> g_folded{0};
constinit std::atomic<std::uint64_t> g_peak{0};

namespace {

using core::kClassSize;
using peak::kRelaxed;
constexpr unsigned kSharedShard = detail::kStatsShards;

SpinLock g_shared_lock;                              // writers of the shared shard
SpinLock g_snapshot_lock;                            // orders snapshots against resets
std::atomic<std::uint64_t> g_base_deallocations{0};  // reset baseline
std::atomic<std::uint64_t> g_base_bytes_deallocated{0};

std::int64_t unfolded_total() {
  std::int64_t sum = 0;
  for (const ProcessShard& s : g_shards) sum += s.pending.load(kRelaxed);
  return sum;
}

// The calling thread's shard, locked when it is the shared one.
class ShardAccess {
 public:
  ShardAccess() : index_(detail::stats_thread_shard()) {
    if (index_ >= kSharedShard) g_shared_lock.lock();
  }
  ~ShardAccess() {
    if (index_ >= kSharedShard) g_shared_lock.unlock();
  }
  ShardAccess(const ShardAccess&) = delete;
  ShardAccess& operator=(const ShardAccess&) = delete;
  ProcessShard& shard() { return g_shards[index_ >= kSharedShard ? kSharedShard : index_]; }

 private:
  unsigned index_;
};

struct BlockInfo {
  unsigned bucket;
  std::size_t usable;
};
BlockInfo block_info(const void* p) {
  core::Segment* seg = core::segment_of(p);
  if (seg->kind == core::SegmentKind::kHuge) return {kHugeBucket, seg->block_size};
  const core::Page* page = seg->page_of(p);
  return {page->size_class, page->block_size};
}

// The rare words of one side of a shard, read consistently.
struct RareWords {
  std::uint64_t huge_blocks, huge_bytes, resized;
};
RareWords read_rare(const ProcessShard& s, bool allocated_side) {
  for (;;) {
    std::uint64_t before = s.seq.load(std::memory_order_acquire);
    if (before & 1) {
      __builtin_ia32_pause();
      continue;
    }
    RareWords w;
    if (allocated_side) {
      w = {s.allocated[kHugeBucket].load(std::memory_order_acquire),
           s.huge_bytes_allocated.load(std::memory_order_acquire),
           s.grown.load(std::memory_order_acquire)};
    } else {
      w = {s.freed[kHugeBucket].load(std::memory_order_acquire),
           s.huge_bytes_freed.load(std::memory_order_acquire),
           s.shrunk.load(std::memory_order_acquire)};
    }
    // Acquire loads (plain movs on x86-64) pair with bump's release stores
    // and keep the sequence load below after them: no standalone fence.
    if (s.seq.load(kRelaxed) == before) return w;
  }
}

// Blocks and bytes of one side (allocated or freed) of every shard.
void sum_side(bool allocated_side, std::uint64_t& blocks, std::uint64_t& bytes) {
  blocks = bytes = 0;
  for (const ProcessShard& s : g_shards) {
    RareWords rare = read_rare(s, allocated_side);
    blocks += rare.huge_blocks;
    bytes += rare.huge_bytes + rare.resized;
    const std::atomic<std::uint64_t>* counts = allocated_side ? s.allocated : s.freed;
    for (unsigned c = 0; c < core::kClassCount; ++c) {
      std::uint64_t n = counts[c].load(std::memory_order_acquire);
      blocks += n;
      bytes += n * kClassSize[c];
    }
  }
}

struct Sums {
  std::uint64_t allocations, bytes_allocated, deallocations, bytes_deallocated;
  std::int64_t best_unfolded_high = 0;
};

Sums sum_all() {
  Sums sums;
  // The freed side first: see the header.
  sum_side(false, sums.deallocations, sums.bytes_deallocated);
  std::uint32_t epoch = g_epoch.load(kRelaxed);
  std::int64_t unfolded = unfolded_total();
  for (const ProcessShard& s : g_shards) {
    if (s.epoch.load(kRelaxed) != epoch) continue;  // its high-water mark predates the reset
    std::int64_t high = peak::candidate_peak(s, unfolded - s.pending.load(kRelaxed));
    if (high > sums.best_unfolded_high) sums.best_unfolded_high = high;
  }
  sum_side(true, sums.allocations, sums.bytes_allocated);
  return sums;
}

}  // namespace

void* on_alloc_rare(ProcessShard& s, void* p, std::size_t usable) noexcept {
  peak::resync_epoch(s, process_totals());
  std::int64_t pending = s.pending.load(kRelaxed);
  if (pending > s.pending_max.load(kRelaxed)) {
    s.pending_max.store(pending, kRelaxed);
    s.max_base.store(g_folded.load(kRelaxed), kRelaxed);
  }
  if (pending >= peak::kFoldBytes) peak::fold(s, process_totals(), unfolded_total);
  if (s.sample_countdown <= 0) {
    bool first = s.sample_rng == 0;  // a shard's first allocation only starts its countdown
    s.sample_countdown = leak_next_gap(s.sample_rng);
    if (!first) leak_record(p, usable);
  }
  return p;
}

void fold_and_free(ProcessShard& s, void* p) noexcept {
  peak::resync_epoch(s, process_totals());
  peak::fold(s, process_totals(), unfolded_total);
  core::dealloc(p);
}

void* record_alloc_slow(void* p) noexcept {
  BlockInfo block = block_info(p);
  bool sample = false;
  {
    ShardAccess access;
    ProcessShard& s = access.shard();
    SeqWrite bracket(s.seq);
    if (block.bucket == kHugeBucket) bump(s.huge_bytes_allocated, block.usable);
    // As record_alloc_in, but the stack walk waits until the lock is let go.
    bump(s.allocated[block.bucket]);
    peak::resync_epoch(s, process_totals());
    peak::track(s, process_totals(), static_cast<std::int64_t>(block.usable), unfolded_total);
    s.sample_countdown -= static_cast<std::int64_t>(block.usable);
    if (s.sample_countdown <= 0) {
      sample = s.sample_rng != 0;
      s.sample_countdown = leak_next_gap(s.sample_rng);
    }
  }
  if (sample) leak_record(p, block.usable);
  return p;
}

void counted_free_slow(void* p) noexcept {
  BlockInfo block = block_info(p);
  leak_sampler_on_free(p);
  {
    ShardAccess access;
    ProcessShard& s = access.shard();
    SeqWrite bracket(s.seq);
    if (block.bucket == kHugeBucket) bump(s.huge_bytes_freed, block.usable);
    bump(s.freed[block.bucket]);
    peak::resync_epoch(s, process_totals());
    peak::track(s, process_totals(), -static_cast<std::int64_t>(block.usable), unfolded_total);
  }
  core::dealloc(p);
}

void record_resize(const void* old_block, std::size_t old_usable, const void* p) noexcept {
  std::size_t usable = core::usable_size(p);
  if (usable != old_usable) {
    ShardAccess access;
    ProcessShard& s = access.shard();
    SeqWrite bracket(s.seq);
    if (usable > old_usable)
      bump(s.grown, usable - old_usable);
    else
      bump(s.shrunk, old_usable - usable);
    peak::resync_epoch(s, process_totals());
    peak::track(s, process_totals(),
                static_cast<std::int64_t>(usable) - static_cast<std::int64_t>(old_usable),
                unfolded_total);
  }
  if (p != old_block) leak_sampler_on_move(old_block, p);
}

AllocationStats process_snapshot() noexcept {
  g_snapshot_lock.lock();
  Sums sums = sum_all();
  std::uint64_t base_n = g_base_deallocations.load(kRelaxed);
  std::uint64_t base_bytes = g_base_bytes_deallocated.load(kRelaxed);
  std::uint64_t peak = g_peak.load(kRelaxed);
  g_snapshot_lock.unlock();

  return peak::snapshot_from(sums, base_n, base_bytes, peak);
}

void process_reset() noexcept {
  g_snapshot_lock.lock();
  Sums sums = sum_all();
  // Rebase: what was freed is forgotten; what is live stays counted.
  g_base_deallocations.store(sums.deallocations, kRelaxed);
  g_base_bytes_deallocated.store(sums.bytes_deallocated, kRelaxed);
  g_peak.store(sums.bytes_allocated - sums.bytes_deallocated, kRelaxed);
  g_epoch.fetch_add(1, kRelaxed);
  g_snapshot_lock.unlock();
}

std::uint64_t bucket_total(unsigned b) noexcept {
  std::uint64_t total = 0;
  for (const ProcessShard& s : g_shards) total += s.allocated[b].load(kRelaxed);
  return total;
}

}  // namespace bop::stats
