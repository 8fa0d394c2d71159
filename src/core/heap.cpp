#include "core/heap.hpp"

#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <new>

#include "core/alloc.hpp"
#include "core/misuse.hpp"
#include "core/process.hpp"
#include "core/purger.hpp"
#include "core/remote.hpp"
#include "core/segment.hpp"
#include "core/sparse_purge.hpp"
#include "platform/fatal.hpp"
#include "platform/os.hpp"
#include "platform/spin_lock.hpp"

namespace bop::core {
namespace {

// ---------------------------------------------------------------------------
// The sentinel: a heap whose direct slots all point at one page with no free
// block, so a thread without a heap takes the slow path on its first call.
// ---------------------------------------------------------------------------
constinit Page g_empty_page{};

constinit Heap g_sentinel(&g_empty_page, /*sentinel=*/true);

// For each class served through the direct table: its first and last slot.
struct SlotRange {
  std::uint8_t first, last;
};
constexpr auto kClassSlots = [] {
  std::array<SlotRange, kClassCount> ranges{};
  for (auto& r : ranges) r = {1, 0};  // empty
  for (std::size_t slot = kDirectSlots; slot-- > 0;) {
    auto& r = ranges[kDirectClass[slot]];
    if (r.first > r.last) r.last = static_cast<std::uint8_t>(slot);
    r.first = static_cast<std::uint8_t>(slot);
  }
  return ranges;
}();

// ---------------------------------------------------------------------------
// Heap pool: heaps of exited threads wait here, with all their pages, for the
// next thread.  Heap records come from an OS-backed arena: never from malloc.
// ---------------------------------------------------------------------------
SpinLock g_pool_lock;
Heap* g_pool = nullptr;
char* g_arena_next = nullptr;
char* g_arena_end = nullptr;
pthread_key_t g_exit_key;
bool g_exit_key_ready = false;

Heap* heap_new_record() noexcept {
  constexpr std::size_t kChunk = 256 * KiB;
  std::size_t need = (sizeof(Heap) + 63) & ~std::size_t{63};
  if (g_arena_next == nullptr || g_arena_end - g_arena_next < static_cast<std::ptrdiff_t>(need)) {
    void* chunk = os::map_aligned(kChunk, os::kPageSize);
    if (chunk == nullptr) return nullptr;
    g_arena_next = static_cast<char*>(chunk);
    g_arena_end = g_arena_next + kChunk;
  }
  static std::uint32_t next_index = 0;  // guarded by g_pool_lock, like the arena
  Heap* h = new (g_arena_next) Heap(&g_empty_page);
  h->index = next_index++;
  g_arena_next += need;
  h->next_all = g_all_heaps.load(std::memory_order_relaxed);
  g_all_heaps.store(h, std::memory_order_release);
  return h;
}

// Points the direct slots of class `cls` at its current page.
inline void update_direct(Heap* heap, unsigned cls) noexcept {
  SlotRange r = kClassSlots[cls];
  Page* page = heap->classes[cls].first;
  if (page == nullptr) page = &g_empty_page;
  for (unsigned slot = r.first; slot <= r.last; ++slot) set_direct_page(heap, slot, page);
}

// Threads the next run of never-used blocks onto the free list.
void page_extend(Page* page) noexcept {
  Segment* seg = segment_of_page(page);
  std::size_t size = page->block_size;
  std::size_t per_run = kExtendBytes / size;
  std::uint32_t n = static_cast<std::uint32_t>(per_run == 0 ? 1 : per_run);
  if (n > page->capacity - page->reserved) n = page->capacity - page->reserved;
  char* start = seg->page_start(page) + std::size_t{page->reserved} * size;
  // Checked builds hand out blocks zeroed up to kZeroCap; a reused page
  // still holds the links, keys and data of its previous blocks (but for
  // the first checked_clean, verified free blocks of this same class).
  if constexpr (kChecked) {
    if (!page->is_zero) {
      std::uint32_t skip =
          page->checked_clean > page->reserved ? page->checked_clean - page->reserved : 0;
      if (skip < n) checked_prepare_reused_blocks(start + std::size_t{skip} * size, n - skip, size);
    }
  }
  for (std::uint32_t i = 0; i + 1 < n; ++i)
    block_set_next(reinterpret_cast<Block*>(start + i * size),
                   reinterpret_cast<Block*>(start + (i + 1) * size));
  block_set_next(reinterpret_cast<Block*>(start + (n - 1) * size), nullptr);
  page->free = reinterpret_cast<Block*>(start);
  // An atomic store (a plain mov on x86-64): checked builds read `reserved`
  // from other threads (hardening.cpp's check of a cross-thread free) while we extend.
  std::atomic_ref<std::uint32_t>(page->reserved)
      .store(page->reserved + n, std::memory_order_relaxed);
  page->fresh_is_zero = page->is_zero;
}

void page_unlink(Heap* heap, Page* page) noexcept {
  if (page->is_full()) {
    queue_remove(heap->full, page);
    page->used &= ~Page::kFullBit;
  } else {
    unsigned cls = page->size_class;
    bool was_current = heap->classes[cls].first == page;
    queue_remove(heap->classes[cls], page);
    if (was_current) update_direct(heap, cls);
  }
}

// Drains, purges and trims for a heap this thread holds exclusively.
void heap_housekeeping(Heap* heap, bool force) noexcept {
  remote_flush_all(heap);
  heap_take_remote(heap);
  if (force || heap->trim_request.load(std::memory_order_relaxed)) {
    // Once a purger round (or at once on bop_collect); alloc_slow also asks
    // before it takes a new page.
    heap_purge_sparse(heap, force ? kSparseScanAll : kSparseScanRound);
    heap_trim(heap);
  }
  heap_purge(heap, clock_ms32(os::now_ms()), force);
}

// Housekeeping of one pooled heap whose thread exited, so its free memory
// goes back to the OS even if no thread ever adopts it.
void collect_one_pooled(bool force) noexcept {
  Heap* h;
  {
    LockGuard guard(g_pool_lock);
    h = g_pool;
    if (h == nullptr) return;
    g_pool = h->next_in_pool;
  }
  heap_housekeeping(h, force);
  LockGuard guard(g_pool_lock);
  h->next_in_pool = g_pool;
  g_pool = h;
}

// Takes `wanted` out of the pool if it waits there (looking at the first
// kPoolSearch entries only: this runs under the pool lock), else the most
// recently pooled heap; nullptr when the pool is empty.
Heap* pool_take_locked(const Heap* wanted) noexcept {
  constexpr unsigned kPoolSearch = 64;
  Heap** link = &g_pool;
  if (wanted != nullptr) {
    unsigned n = 0;
    for (Heap** l = &g_pool; *l != nullptr && n < kPoolSearch; l = &(*l)->next_in_pool, ++n) {
      if (*l == wanted) {
        link = l;
        break;
      }
    }
  }
  Heap* h = *link;
  if (h != nullptr) {
    *link = h->next_in_pool;
    h->next_in_pool = nullptr;
  }
  return h;
}

// `wanted`: the heap to adopt if it is pooled (see free_slow).
Heap* heap_init_thread(const Heap* wanted = nullptr) noexcept {
  process_init();
  Heap* h;
  {
    LockGuard guard(g_pool_lock);
    h = pool_take_locked(wanted);
    if (h == nullptr) h = heap_new_record();
  }
  if (h == nullptr) return nullptr;
  tl_heap = h;
  // Registers the exit hook.  Done after tl_heap is set: should libc allocate
  // here, that allocation is served by this heap.
  if (g_exit_key_ready) pthread_setspecific(g_exit_key, h);
  return h;
}

}  // namespace

std::atomic<Heap*> g_all_heaps{nullptr};

void heap_restore_direct(Heap* heap) noexcept {
  for (unsigned cls = 0; cls < kClassCount; ++cls)
    if (kClassSlots[cls].first <= kClassSlots[cls].last) update_direct(heap, cls);
}

void heap_poke(Heap* heap, bool force) noexcept {
  // The relaxed load first: many senders may find the heap poked already,
  // and a load keeps the flag's line shared among them.
  if (!force && heap->poked.load(std::memory_order_relaxed)) return;
  if (heap->poked.exchange(true, std::memory_order_seq_cst) && !force) return;
  for (std::size_t slot = 0; slot < kDirectSlots; ++slot)
    set_direct_page(heap, slot, &g_empty_page);
}

constinit thread_local Heap* tl_heap __attribute__((tls_model("initial-exec"))) = &g_sentinel;

void process_init_thread_exit_key() noexcept {
  if (pthread_key_create(&g_exit_key, heap_thread_exit) == 0) g_exit_key_ready = true;
}

Heap* heap_get_or_init() noexcept {
  Heap* h = tl_heap;
  if (h->is_sentinel) h = heap_init_thread();
  return h;
}

template <bool kZero>
void* alloc_slow(Heap* heap, std::size_t size, unsigned cls) noexcept {
  if (heap->is_sentinel) {
    heap = heap_get_or_init();
    if (heap == nullptr) {
      errno = ENOMEM;
      return nullptr;
    }
  }
  // Housekeeping rides on the slow path.  Remote frees are collected on
  // every call: it runs when a page's free list runs dry, and when a poke
  // (remote.hpp) sent the owner here to take them.
  if ((++heap->slow_calls & 63) == 0) {
    heap_housekeeping(heap, false);
    segment_cache_trim(false);
    huge_cache_trim(false);
    collect_one_pooled(false);
    purger_maybe_start();
  } else {
    heap_take_remote(heap);
  }

  PageQueue& queue = heap->classes[cls];
  // The page the allocation comes from becomes the class's current page.
  auto serve_from = [&](Page* page) {
    if (page != queue.first) {
      queue_remove(queue, page);
      queue_push_front(queue, page);
    }
    update_direct(heap, cls);
    return page_pop<kZero>(page, page->free, size);
  };
  // The first page with a free block, or never-used blocks to carve, as
  // long as no page with free blocks waits behind the one that could carve:
  // carving while other pages hold free blocks (say ones other threads
  // freed) grows the RSS past the live peak.  So past a carvable page the
  // walk looks a few pages further for one with a good many free blocks
  // (not one: pages that got a block back wait at the back, and taking them
  // one block at a time would send every allocation here).  Then blocks of
  // OS pages a sparse page returned (sparse_purge.hpp), then a new page.
  // Pages with no block of any kind go to the full list; pages whose only
  // free blocks went back to the OS (dormant) to the back of the queue,
  // where the walk stops.
  constexpr unsigned kLookPastCarvable = 8;
  Page* carvable = nullptr;
  Page* dormant = nullptr;
  unsigned looked_past = 0;
  for (Page* page = queue.first; page != nullptr && page != dormant;) {
    Page* next = page->next;
    if (page->free != nullptr) {
      if (carvable == nullptr) return serve_from(page);
      std::uint32_t free_blocks = page->reserved - static_cast<std::uint32_t>(page->used);
      if (free_blocks >= (page->capacity >= 128 ? 16u : page->capacity / 8u + 1u))
        return serve_from(page);
    } else if (page->reserved < page->capacity) {
      if (carvable == nullptr) carvable = page;
    } else if (page->purged_os_pages != 0) {
      queue_remove(queue, page);
      queue_push_back(queue, page);
      if (dormant == nullptr) dormant = page;
    } else {
      // No block left: park it on the full list until a free comes back.
      queue_remove(queue, page);
      page->used |= Page::kFullBit;
      page->sparse_mark = sparse_mark_initial(page->capacity);  // full again: may thin out anew
      queue_push_back(heap->full, page);
    }
    if (carvable != nullptr && ++looked_past > kLookPastCarvable) break;
    page = next;
  }
  if (carvable != nullptr) {
    page_extend(carvable);
    return serve_from(carvable);
  }
  if (dormant != nullptr) {
    page_unpurge(dormant);
    return serve_from(dormant);
  }

  Page* page = page_acquire(heap, cls);
  if (page == nullptr) {
    // Out of address space or memory: give back what we can and retry once.
    heap_collect_all();
    page = page_acquire(heap, cls);
    if (page == nullptr) {
      update_direct(heap, cls);
      errno = ENOMEM;
      return nullptr;
    }
  }
  // A page whose memory is not resident (fresh, or purged): the heap's RSS
  // is about to grow, so first the free OS pages of sparse pages go back.
  // When a program's sizes shift, its RSS then stays flat instead of
  // growing by what the old sizes left free.  (Not for a page still
  // resident: a heap that recycles its pages in a steady state would return
  // memory only to fault it back in soon after.)
  if (page->is_zero) heap_purge_sparse(heap, kSparseScanNewPage);
  queue_push_front(queue, page);
  update_direct(heap, cls);
  page_extend(page);
  return page_pop<kZero>(page, page->free, size);
}

template void* alloc_slow<false>(Heap*, std::size_t, unsigned) noexcept;
template void* alloc_slow<true>(Heap*, std::size_t, unsigned) noexcept;

void heap_trim(Heap* heap) noexcept {
  heap->trim_request.store(false, std::memory_order_relaxed);
  for (unsigned cls = 0; cls < kClassCount; ++cls) {
    Page* page = heap->classes[cls].first;
    if (page != nullptr && page == heap->classes[cls].last && page->used == 0) {
      // Purged now, not queued for the delay: the purger asked because a
      // round went by, and a class still in use (an idle program's timer)
      // would take the page back before its purge, keeping every OS page
      // its busy past touched resident.
      page_unlink(heap, page);
      page_release(heap, page, /*purge_now=*/true);
    }
  }
}

void page_after_free(Heap* heap, Page* page) noexcept {
  if (!page->in_use) fatal("double free (the block's page is already free)", nullptr);
  unsigned cls = page->size_class;
  if (page->is_full()) {
    // A block came back to a full page: it can serve again.  Queue it last:
    // it holds one free block now, and taken up again at once it would run
    // dry after one allocation and go full again (a misprediction and two
    // list moves per block under random replacement).  At the back it
    // gathers frees until the pages ahead of it are used up.
    queue_remove(heap->full, page);
    page->used &= ~Page::kFullBit;
    PageQueue& queue = heap->classes[cls];
    bool was_empty = queue.first == nullptr;
    queue_push_back(queue, page);
    if (was_empty) update_direct(heap, cls);
  }
  if (page->used != 0) return;
  // Empty.  A small class keeps its only page to avoid thrashing on a
  // malloc/free loop (at most 64 KiB a class, and only while the heap's
  // thread uses it); otherwise the page goes back to its segment, where the
  // purger can return its memory.
  PageQueue& queue = heap->classes[cls];
  if (queue.first == page && queue.last == page && kClassSize[cls] <= kSmallBlockMax) {
    if (heap->trim_request.load(std::memory_order_relaxed)) heap_trim(heap);
    return;
  }
  page_unlink(heap, page);
  page_release(heap, page);
}

void free_slow(Heap* heap, Segment* seg, void* p) noexcept {
  validate_block(heap, seg, p, "free");
  free_slow_validated(heap, seg, p);
}

void free_slow_validated(Heap* heap, Segment* seg, void* p) noexcept {
  if (seg->kind == SegmentKind::kHuge) {
    huge_free(seg);
    return;
  }
  if (heap->is_sentinel) {
    // A thread whose first call is a free: adopt the heap that owns the
    // block if its thread has exited.  A successor that inherits its
    // predecessor's data (thread hand-off, larson) then frees it locally
    // instead of sending every block back to a heap it may never meet.
    heap = heap_init_thread(seg->owner);
    if (heap == nullptr) fatal("out of memory for a thread heap while freeing", p);
    if (seg->owner == heap) {
      free_to_page(heap, seg, static_cast<Block*>(p));
      return;
    }
  }
  free_remote(heap, seg, static_cast<Block*>(p));
}

void heap_thread_exit(void* arg) noexcept {
  Heap* heap = static_cast<Heap*>(arg);
  if (heap == nullptr || heap->is_sentinel) return;
  heap_housekeeping(heap, false);
  // Later frees in this thread (other destructors) install a heap again.
  tl_heap = &g_sentinel;
  LockGuard guard(g_pool_lock);
  heap->next_in_pool = g_pool;
  g_pool = heap;
}

void heap_collect_all() noexcept {
  Heap* heap = tl_heap;
  if (!heap->is_sentinel) heap_housekeeping(heap, true);
  // Every pooled heap once: pop them all, collect, put them back.
  Heap* list;
  {
    LockGuard guard(g_pool_lock);
    list = g_pool;
    g_pool = nullptr;
  }
  Heap* last = nullptr;
  for (Heap* h = list; h != nullptr; h = h->next_in_pool) {
    heap_housekeeping(h, true);
    last = h;
  }
  if (last != nullptr) {
    LockGuard guard(g_pool_lock);
    last->next_in_pool = g_pool;
    g_pool = list;
  }
  segment_cache_trim(true);
  huge_cache_trim(true);
}

// Every heap's page lock is held across fork() too: a thread that held its
// own in page_acquire when another forked left it locked in the child, where
// the purger's next round (which purges every heap) then spun on it forever.
// Page locks nest inside the purger's round lock and outside the segment
// cache's; the pool lock, held here, also keeps the heap list from growing.
void heap_fork(ForkPhase phase) noexcept {
  if (phase == ForkPhase::kPrepare) g_pool_lock.on_fork(phase);
  for_each_heap<ForkPhase>([](Heap* h, ForkPhase ph) { h->page_lock.on_fork(ph); }, phase);
  if (phase != ForkPhase::kPrepare) g_pool_lock.on_fork(phase);
}

}  // namespace bop::core
