// The allocator's data structures: pages, segments and thread heaps.
//
// Ownership rule that keeps the fast paths free of atomics: every page and
// every segment belongs to exactly one heap, and only the thread that holds
// that heap touches them.  Another thread that frees a block never touches the
// page; it batches the block and hands the batch to the owning heap's
// `remote_in` list with one atomic operation (see remote.hpp).
#pragma once

#include <atomic>
#include <climits>
#include <cstddef>
#include <cstdint>

#include "core/block.hpp"
#include "core/config.hpp"
#include "core/size_classes.hpp"
#include "platform/spin_lock.hpp"
#include "stats/process_shard.hpp"

namespace bop::core {

struct Heap;
struct Segment;

// One page: blocks of one size class.  Its owner's free blocks sit on one
// LIFO list, `free`: allocation pops its head and the owner's frees push on
// it, so the block handed out next is the one freed last (still in cache).
// Blocks other threads free reach the page through the heap's `remote_in`
// (see remote.cpp), never directly.
//
// `used` doubles as the full flag: a page parked on the full list has its
// sign bit set (kFullBit), so the free fast path's single `--used <= 0` test
// catches both "page became empty" and "page was full".
struct alignas(64) Page {
  static constexpr std::int32_t kFullBit = INT32_MIN;

  Block* free;             // free blocks: the owner pops and pushes here (LIFO)
  std::int32_t used;       // blocks handed out (incl. remote transit) | kFullBit
  std::uint16_t capacity;  // blocks that fit in the page (at most 64 KiB / 16)
  // Checked builds: blocks from the page start still laid out free for the
  // page's class (verified when the page was taken back before its purge),
  // so page_extend need not clear them again.
  std::uint16_t checked_clean;
  std::uint32_t reserved;    // blocks carved so far (the rest were never touched)
  std::uint32_t block_size;  // bytes; 0 while the page is unassigned
  std::uint8_t size_class;
  std::uint8_t index;  // position in the segment
  // Flags as bits so 64 page records plus the header fit one 4 KiB OS page.
  bool in_use : 1;          // assigned to a size class
  bool is_zero : 1;         // never-carved blocks read as zero (fresh or purged memory)
  bool in_purge_queue : 1;  // free, dirty, waiting for the purge delay
  // The blocks page_extend last threaded came from fresh (zero) memory: those
  // of them still on `free` (the ones without the freed key, misuse.hpp) are
  // zero past their link word.  Frees leave it alone: they write the key.
  bool fresh_is_zero;
  // Stats: the page's blocks in the leak sampler's table, exactly (low 16
  // bits: how many; high 16: the XOR of their tags, so with one it names
  // that block; stats/leak_sampler.hpp).  0: frees skip the sampler.
  // Written under the sampler's lock, read without it.
  std::atomic<std::uint32_t> sampled;
  std::uint32_t freed_at_ms;  // when it became free (purge clock)
  std::uint32_t align_mask;   // every block start has these address bits clear (misuse.hpp)
  Page* next;                 // class queue, full list or purge queue
  Page* prev;
  // Small pages: bit k set when the page's k-th OS page went back to the OS
  // while all its blocks were free; those blocks sit on no list until
  // page_unpurge threads them again (sparse_purge.hpp).
  std::uint16_t purged_os_pages;
  // sparse_purge.cpp looks at the page again once `used` falls to this.
  std::uint16_t sparse_mark;

  bool is_full() const { return used < 0; }
};
static_assert(sizeof(Page) == 64, "page records are indexed with a shift");
inline constexpr unsigned kPageRecordShift = 6;  // log2(sizeof(Page))

// A page list threaded through Page::next/prev.
struct PageQueue {
  Page* first = nullptr;
  Page* last = nullptr;
};

// Header at the start of every segment (and of every huge block's mapping).
struct Segment {
  Heap* owner;  // nullptr for huge blocks (they never match a heap)
  SegmentKind kind;
  std::uint8_t page_shift;         // log2 of the page size (set_page_shift)
  std::uint8_t page_record_shift;  // page_shift - log2(sizeof(Page)), for page_of
  std::uint8_t page_count;         // pages in the segment (page 0 is the header for small/medium)
  std::uint8_t pages_in_use;       // pages assigned to a size class
  std::uint8_t dirty_pages;        // free pages still waiting in the purge queue
  std::uint64_t free_mask;         // bit i set: page i is free
  Segment* next;                   // heap's list of segments with a free page of this kind
  Segment* prev;
  bool in_free_list;
  // Huge blocks only.
  std::size_t mapping_size;  // bytes mapped from the header on
  std::size_t block_offset;  // block start - header
  std::size_t block_size;    // usable bytes of the block
  std::size_t requested;     // bytes last asked for (tells realloc growth from shrinking)
  std::size_t block_align;   // alignment the block was laid out for
  std::uint32_t freed_at_ms;
  bool huge_freed;                          // sits in the huge cache
  std::atomic<std::uint32_t> huge_sampled;  // stats: as Page::sampled, for the one block
  Page pages[kMaxPagesPerSegment];

  char* page_start(const Page* page) const {
    const char* base = reinterpret_cast<const char*>(this);
    return const_cast<char*>(base) + (std::size_t{page->index} << page_shift);
  }
  void set_page_shift(unsigned shift) {
    page_shift = static_cast<std::uint8_t>(shift);
    page_record_shift = static_cast<std::uint8_t>(shift - kPageRecordShift);
  }
  // The free fast path's lookup: (offset >> page_shift) * sizeof(Page) as
  // one shift and a mask, so no page index has to be kept or scaled.
  Page* page_of(const void* p) {
    std::uintptr_t offset =
        reinterpret_cast<std::uintptr_t>(p) & kSegmentMask;  // segments are aligned
    std::uintptr_t record = (offset >> page_record_shift) & ~std::uintptr_t{sizeof(Page) - 1};
    return reinterpret_cast<Page*>(reinterpret_cast<char*>(pages) + record);
  }
};
static_assert(sizeof(Segment) <= kHugeHeaderSize, "a huge block's header must fit before it");
static_assert(sizeof(Segment) <= (std::size_t{1} << kSmallPageShift));

inline Segment* segment_of(const void* p) {
  return reinterpret_cast<Segment*>((reinterpret_cast<std::uintptr_t>(p) - 1) & ~kSegmentMask);
}

// Page records live inside their segment's header.
inline Segment* segment_of_page(const Page* page) {
  return segment_of(page + 1);
}

// Frees bound for one other heap, collected until the batch is worth one
// atomic hand-over.
struct RemoteBatch {
  Heap* heap;
  Block* head;
  Block* tail;
  std::uint32_t count;
};

// A thread's heap.  Found through one initial-exec TLS pointer; recycled (with
// all its pages) when its thread exits, so heaps are never destroyed.
struct Heap {
  // Hot: current page for each 16-byte size step up to kDirectMax.  Slots
  // without a page point at an empty sentinel page so the fast path needs no
  // null check.  Another thread may "poke" them (point them all at that
  // empty page, remote.cpp) to send the owner into its slow path, so they are
  // accessed through direct_page/set_direct_page: relaxed atomics, plain movs.
  Page* direct[kDirectSlots] = {};
  PageQueue classes[kClassCount] = {};           // pages with free blocks, current first
  PageQueue full = {};                           // pages with no free block
  PageQueue purge_queue = {};                    // free pages, oldest first
  Segment* with_free_pages[kSegmentKinds] = {};  // per kind: segments with a free page
  std::atomic<Block*> remote_in{nullptr};        // blocks other threads freed (MPSC stack)
  // Set when the direct slots were poked (remote.cpp: heap_poke), so only the
  // first of several senders rewrites them; cleared by the owner's drain.
  std::atomic<bool> poked{false};
  // Set by the purger each round: the owner then lets go of the empty pages
  // it keeps per class, so they can be purged too (see heap_trim).
  std::atomic<bool> trim_request{false};
  RemoteBatch remote_out[kRemoteSlots] = {};
  std::uint32_t slow_calls = 0;  // paces housekeeping
  // Where heap_purge_sparse's next call goes on: a class, and a page of its
  // queue (or nullptr: the class's first page; page_release clears it).
  std::uint8_t sparse_class = 0;
  Page* sparse_page = nullptr;
  bool is_sentinel = false;
  // Creation order; unique among live threads.  BopStatsAllocator: it picks
  // the thread's counter shard; the sentinel's is past every shard, so a
  // thread without a heap takes the counting slow path with no extra test.
  std::uint32_t index = 0;
  // Guards the page/segment bookkeeping (purge queue, segment free lists)
  // against the background purger.  Taken per page event, never per block.
  SpinLock page_lock;
  Heap* next_all = nullptr;      // list of every heap ever made (for the purger)
  Heap* next_in_pool = nullptr;  // abandoned-heap pool link
  // BOP_STATS counters of the heap's thread (unused in the sentinel): the
  // counted fast paths reach them from the heap pointer they hold.
  stats::ProcessShard stats;

  // Every direct slot starts at `empty_page`, whose free list is empty.
  constexpr explicit Heap(Page* empty_page, bool sentinel = false)
      : is_sentinel(sentinel), index(sentinel ? UINT32_MAX : 0) {
    for (auto& slot : direct) slot = empty_page;
  }
};

// The direct table's accessors.  Relaxed atomic accesses compile to the
// same single mov as plain ones on x86-64; they only make the cross-thread
// poke (a benign race: its worst outcome is one extra slow call) well-defined.
inline Page* direct_page(Heap* heap, std::size_t slot) noexcept {
  return std::atomic_ref<Page*>(heap->direct[slot]).load(std::memory_order_relaxed);
}
inline void set_direct_page(Heap* heap, std::size_t slot, Page* page) noexcept {
  std::atomic_ref<Page*>(heap->direct[slot]).store(page, std::memory_order_relaxed);
}

}  // namespace bop::core
