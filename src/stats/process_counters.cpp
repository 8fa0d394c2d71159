// The process-wide counters' rare paths and reads.  Design: see the header.
#include "stats/process_counters.hpp"

#include "platform/spin_lock.hpp"
#include "stats/leak_sampler.hpp"
#include "stats/peak.hpp"

namespace bop::stats {

// Written when a shard's countdown runs out (process_counters.hpp): apart
// from the hot lines.
alignas(64) constinit std::atomic<std::int64_t> g_published{0};
constinit std::atomic<std::uint64_t> g_peak{0};

namespace {

using core::kClassSize;
using peak::kRelaxed;

constinit ProcessShard g_shared_shard;  // threads without a heap, under g_shared_lock
SpinLock g_shared_lock;
SpinLock g_snapshot_lock;                            // orders snapshots against resets
std::atomic<std::uint64_t> g_base_deallocations{0};  // reset baseline
std::atomic<std::uint64_t> g_base_bytes_deallocated{0};

// fn(shard) for the shared shard and every heap's.  Heaps are never
// unmapped and only ever added (at the head, by a release store), so a
// reader sees each heap's shard zeroed or counting.
template <class Fn>
void for_each_shard(Fn fn) {
  fn(g_shared_shard);
  for (core::Heap* h = core::g_all_heaps.load(std::memory_order_acquire); h != nullptr;
       h = h->next_all)
    fn(h->stats);
}

// The calling thread's shard: its heap's, or the shared one (locked) for a
// thread that cannot get a heap.
class ShardAccess {
 public:
  ShardAccess() {
    core::Heap* heap = core::tl_heap;
    if (heap->is_sentinel) heap = core::heap_get_or_init();
    if (heap == nullptr || heap->is_sentinel) {
      g_shared_lock.lock();
      shard_ = &g_shared_shard;
      shared_ = true;
    } else {
      shard_ = &heap->stats;
    }
  }
  ~ShardAccess() {
    if (shared_) g_shared_lock.unlock();
  }
  ShardAccess(const ShardAccess&) = delete;
  ShardAccess& operator=(const ShardAccess&) = delete;
  ProcessShard& shard() { return *shard_; }

 private:
  ProcessShard* shard_;
  bool shared_ = false;
};

// The countdowns restart: the allocating side's at the nearer of the next
// sample and kPublishBytes (at once, for a sample already due), the freeing
// side's at kPublishBytes.
void arm(ProcessShard& s) {
  s.alloc_left = s.alloc_armed = s.sample_left < kPublishBytes ? s.sample_left : kPublishBytes;
  s.free_left = s.free_armed = kPublishBytes;
}

// A countdown ran out (or realloc moved enough bytes): the bytes counted
// down since the countdowns were armed go to the sampler's gap and, as the
// shard's live-byte change, into g_published; g_peak follows the sum.
// Returns whether the allocation at hand (`allocating`) is sampled; a sample
// that falls due on a free goes to the shard's next allocation.
bool take_countdowns(ProcessShard& s, bool allocating) {
  std::int64_t allocated = s.alloc_armed - s.alloc_left;
  std::int64_t change = allocated - (s.free_armed - s.free_left) + s.resized;
  s.resized = 0;
  if (change != 0) {
    std::int64_t total = g_published.fetch_add(change, std::memory_order_relaxed) + change;
    if (total > 0) peak::atomic_max(g_peak, static_cast<std::uint64_t>(total));
  }
  s.sample_left -= allocated;
  bool sample = false;
  if (allocating && s.sample_left <= 0) {
    sample = s.sample_rng != 0;  // a shard's first allocation only starts the sampler
    s.sample_left = leak_next_gap(s.sample_rng);
  }
  arm(s);
  return sample;
}

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
  for_each_shard([&](const ProcessShard& s) {
    RareWords rare = read_rare(s, allocated_side);
    blocks += rare.huge_blocks;
    bytes += rare.huge_bytes + rare.resized;
    const std::atomic<std::uint64_t>* counts = allocated_side ? s.allocated : s.freed;
    for (unsigned c = 0; c < core::kClassCount; ++c) {
      std::uint64_t n = counts[c].load(std::memory_order_acquire);
      blocks += n;
      bytes += n * kClassSize[c];
    }
  });
}

struct Sums {
  std::uint64_t allocations, bytes_allocated, deallocations, bytes_deallocated;
  std::int64_t best_unfolded_high = 0;  // (none: g_peak is the whole peak; peak::snapshot_from)
};

Sums sum_all() {
  Sums sums;
  // The freed side first: see the header.
  sum_side(false, sums.deallocations, sums.bytes_deallocated);
  sum_side(true, sums.allocations, sums.bytes_allocated);
  return sums;
}

}  // namespace

void* on_alloc_rare(core::Heap* heap, void* p, std::size_t usable) noexcept {
  if (take_countdowns(heap->stats, true)) leak_record(p, usable);
  return p;
}

void publish_and_free(core::Heap* heap, void* p) noexcept {
  take_countdowns(heap->stats, false);
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
    s.alloc_left -= static_cast<std::int64_t>(block.usable);
    if (s.alloc_left <= 0) sample = take_countdowns(s, true);
  }
  if (sample) leak_record(p, block.usable);
  return p;
}

void counted_free_slow(void* p) noexcept {
  if (!counting()) return core::dealloc(p);  // a free before the environment was read
  BlockInfo block = block_info(p);
  leak_sampler_on_free(p);
  {
    ShardAccess access;
    ProcessShard& s = access.shard();
    SeqWrite bracket(s.seq);
    if (block.bucket == kHugeBucket) bump(s.huge_bytes_freed, block.usable);
    bump(s.freed[block.bucket]);
    s.free_left -= static_cast<std::int64_t>(block.usable);
    if (s.free_left <= 0) take_countdowns(s, false);
  }
  core::dealloc(p);
}

void counted_free_other(core::Heap* heap, core::Segment* seg, void* p) noexcept {
  // A real heap: its thread read the environment (see counted_free_block).
  if (seg->kind != core::SegmentKind::kHuge && !heap->is_sentinel) {
    core::Page* page = seg->page_of(p);
    // A page holding samples: p's own sample (if it has one) leaves the
    // table before p can be reused; the count is any block's.  Most such
    // pages hold one sample, of another block: the tag test says so here.
    std::uint32_t word = page->sampled.load(std::memory_order_relaxed);
    if (word != 0 && may_be_sampled(word, sample_tag(p, seg->page_shift))) leak_sampler_on_free(p);
    if (record_free_in(heap->stats, page->size_class, page->block_size))
      return publish_and_free(heap, p);
    if (seg->owner == heap)
      return core::free_to_page(heap, seg, static_cast<core::Block*>(p), page);
    return core::free_slow(heap, seg, p);  // another heap's block: handed back
  }
  counted_free_slow(p);
}

void record_resize(std::size_t old_usable, const void* p) noexcept {
  std::size_t usable = core::usable_size(p);
  if (usable != old_usable) {
    ShardAccess access;
    ProcessShard& s = access.shard();
    SeqWrite bracket(s.seq);
    if (usable > old_usable)
      bump(s.grown, usable - old_usable);
    else
      bump(s.shrunk, old_usable - usable);
    // A live-byte change that is no allocation (the sampler's gap ignores
    // it), published as the countdowns' are, within kPublishBytes.
    s.resized += static_cast<std::int64_t>(usable) - static_cast<std::int64_t>(old_usable);
    if (s.resized >= kPublishBytes || s.resized <= -kPublishBytes) take_countdowns(s, false);
  }
}

void counters_fork(ForkPhase phase) noexcept {
  // Snapshots take the shared shard's lock inside the snapshot lock.
  if (phase == ForkPhase::kPrepare) {
    g_snapshot_lock.on_fork(phase);
    g_shared_lock.on_fork(phase);
  } else {
    g_shared_lock.on_fork(phase);
    g_snapshot_lock.on_fork(phase);
  }
}

AllocationStats process_snapshot() noexcept {
  g_snapshot_lock.lock();
  Sums sums = sum_all();
  std::uint64_t base_n = g_base_deallocations.load(kRelaxed);
  std::uint64_t base_bytes = g_base_bytes_deallocated.load(kRelaxed);
  // A current figure above the published peak becomes the peak, so that
  // successive snapshots (the timeline's) never see the peak go down.
  std::uint64_t current = sums.bytes_allocated - sums.bytes_deallocated;
  peak::atomic_max(g_peak, current);
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
  g_snapshot_lock.unlock();
}

std::uint64_t bucket_total(unsigned b) noexcept {
  std::uint64_t total = 0;
  for_each_shard([&](const ProcessShard& s) { total += s.allocated[b].load(kRelaxed); });
  return total;
}

}  // namespace bop::stats
