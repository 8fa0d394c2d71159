#include "core/segment.hpp"

#include <atomic>
#include <cstring>

#include "core/hardening.hpp"
#include "core/sparse_purge.hpp"
#include "platform/os.hpp"
#include "platform/spin_lock.hpp"

namespace bop::core {

std::uint32_t g_purge_delay_ms = 250;

// ---------------------------------------------------------------------------
// Page queues (intrusive doubly linked lists).
// ---------------------------------------------------------------------------
void queue_push_front(PageQueue& q, Page* page) noexcept {
  page->prev = nullptr;
  page->next = q.first;
  if (q.first != nullptr)
    q.first->prev = page;
  else
    q.last = page;
  q.first = page;
}

void queue_push_back(PageQueue& q, Page* page) noexcept {
  page->next = nullptr;
  page->prev = q.last;
  if (q.last != nullptr)
    q.last->next = page;
  else
    q.first = page;
  q.last = page;
}

void queue_remove(PageQueue& q, Page* page) noexcept {
  if (page->prev != nullptr)
    page->prev->next = page->next;
  else
    q.first = page->next;
  if (page->next != nullptr)
    page->next->prev = page->prev;
  else
    q.last = page->prev;
  page->next = page->prev = nullptr;
}

std::atomic<std::atomic<std::uint64_t>*> g_segment_registry{nullptr};

namespace {

// ---------------------------------------------------------------------------
// Global cache of empty, purged segments: reusing one costs no mmap.
// ---------------------------------------------------------------------------
SpinLock g_cache_lock;
Segment* g_cache[kSegmentCacheMax];
unsigned g_cache_count = 0;

// ---------------------------------------------------------------------------
// Misuse checks (misuse.cpp): one bit per 4 MiB of the 47-bit address space tells whether
// a segment of ours lives there (4 MiB of lazily touched address space).
// ---------------------------------------------------------------------------
std::atomic<std::uint64_t>* registry() noexcept {
  auto* r = g_segment_registry.load(std::memory_order_acquire);
  if (r != nullptr) return r;
  void* fresh = os::map_aligned(kRegistryBits / 8, os::kPageSize);
  if (fresh == nullptr) return nullptr;
  auto* expected = static_cast<std::atomic<std::uint64_t>*>(nullptr);
  auto* mine = static_cast<std::atomic<std::uint64_t>*>(fresh);
  if (!g_segment_registry.compare_exchange_strong(expected, mine)) {
    os::unmap(fresh, kRegistryBits / 8);
    return expected;
  }
  return mine;
}

constexpr std::size_t kPageShiftOf[kSegmentKinds] = {kSmallPageShift, kMediumPageShift};

void segment_format(Segment* seg, Heap* heap, SegmentKind kind, bool is_zero) noexcept {
  unsigned k = static_cast<unsigned>(kind);
  seg->owner = heap;
  seg->kind = kind;
  seg->set_page_shift(static_cast<unsigned>(kPageShiftOf[k]));
  seg->page_count = static_cast<std::uint8_t>(kSegmentSize >> kPageShiftOf[k]);
  seg->pages_in_use = 0;
  seg->dirty_pages = 0;
  seg->next = seg->prev = nullptr;
  seg->in_free_list = false;
  // Page 0 holds this header: only its first OS pages are ever touched.
  seg->free_mask = 0;
  for (unsigned i = 0; i < seg->page_count; ++i) {
    Page* page = &seg->pages[i];
    std::memset(static_cast<void*>(page), 0, sizeof(Page));
    page->index = static_cast<std::uint8_t>(i);
    page->is_zero = is_zero;
    if (i >= 1) seg->free_mask |= std::uint64_t{1} << i;
  }
}

Segment* segment_acquire(Heap* heap, SegmentKind kind) noexcept {
  Segment* seg = nullptr;
  {
    LockGuard guard(g_cache_lock);
    if (g_cache_count > 0) seg = g_cache[--g_cache_count];
  }
  if (seg == nullptr) {
    seg = static_cast<Segment*>(os::map_aligned(kSegmentSize, kSegmentSize));
    if (seg == nullptr) return nullptr;
    segment_register(seg, kSegmentSize, true);
  }
  // Cached segments were purged whole, so their pages read as zero too.
  segment_format(seg, heap, kind, true);
  return seg;
}

void segment_release(Segment* seg) noexcept {
  {
    LockGuard guard(g_cache_lock);
    if (g_cache_count < kSegmentCacheMax) {
      seg->owner = nullptr;
      g_cache[g_cache_count++] = seg;
      return;
    }
  }
  segment_register(seg, kSegmentSize, false);
  os::unmap(seg, kSegmentSize);
}

void free_list_push(Heap* heap, Segment* seg) noexcept {
  if (seg->in_free_list) return;
  Segment*& head = heap->with_free_pages[static_cast<unsigned>(seg->kind)];
  seg->prev = nullptr;
  seg->next = head;
  if (head != nullptr) head->prev = seg;
  head = seg;
  seg->in_free_list = true;
}

void free_list_remove(Heap* heap, Segment* seg) noexcept {
  if (!seg->in_free_list) return;
  Segment*& head = heap->with_free_pages[static_cast<unsigned>(seg->kind)];
  if (seg->prev != nullptr)
    seg->prev->next = seg->next;
  else
    head = seg->next;
  if (seg->next != nullptr) seg->next->prev = seg->prev;
  seg->next = seg->prev = nullptr;
  seg->in_free_list = false;
}

std::size_t page_bytes(const Segment* seg) {
  return std::size_t{1} << seg->page_shift;
}

void page_purge(Heap* heap, Segment* seg, Page* page) noexcept {
  queue_remove(heap->purge_queue, page);
  page->in_purge_queue = false;
  seg->dirty_pages--;
  // Checked builds verify a free page once, here or where it is taken back
  // before its purge (page_acquire): a write after free into any of its
  // blocks since they were freed aborts.
  if constexpr (kChecked) checked_verify_free_page(page, seg->page_start(page));
  os::purge(seg->page_start(page), page_bytes(seg));
  page->is_zero = true;
}

void purge_locked(Heap* heap, std::uint32_t now_ms, bool force) noexcept;

// An empty segment whose pages are all purged leaves the heap.
void segment_maybe_release(Heap* heap, Segment* seg) noexcept {
  if (seg->pages_in_use != 0 || seg->dirty_pages != 0) return;
  free_list_remove(heap, seg);
  segment_release(seg);
}

}  // namespace

namespace {

// A page waiting for its purge that last served class `cls`, youngest first,
// or nullptr.  Its blocks sit at the offsets the new life will carve, so the
// OS pages it has resident are the ones the class touches again; any other
// page would be touched anew while this one stays resident until its purge.
// Looks at the youngest few only: this runs under the page lock.
Page* dirty_page_of_class(Heap* heap, unsigned cls) noexcept {
  constexpr unsigned kSearch = 8;
  unsigned n = 0;
  for (Page* page = heap->purge_queue.last; page != nullptr && n < kSearch;
       page = page->prev, ++n) {
    if (page->size_class == cls) return page;  // size_class outlives page_release
  }
  return nullptr;
}

// The free page page_acquire takes: the class's own dirty page if one waits,
// else the lowest free page of the first segment with one (keeps a segment's
// used part dense), from a new segment if none has.
Page* pick_free_page(Heap* heap, unsigned cls) noexcept {
  if (Page* dirty = dirty_page_of_class(heap, cls)) return dirty;
  SegmentKind kind = class_kind(cls);
  Segment* seg = heap->with_free_pages[static_cast<unsigned>(kind)];
  if (seg == nullptr) {
    seg = segment_acquire(heap, kind);
    if (seg == nullptr) return nullptr;
    free_list_push(heap, seg);
  }
  return &seg->pages[__builtin_ctzll(seg->free_mask)];
}

}  // namespace

Page* page_acquire(Heap* heap, unsigned cls) noexcept {
  LockGuard guard(heap->page_lock);
  Page* page = pick_free_page(heap, cls);
  if (page == nullptr) return nullptr;
  Segment* seg = segment_of_page(page);
  unsigned i = page->index;
  seg->free_mask &= ~(std::uint64_t{1} << i);
  seg->pages_in_use++;
  if (seg->free_mask == 0) free_list_remove(heap, seg);

  // A page still waiting for its purge is reused as is (no page faults) and
  // leaves the queue.
  static_assert((std::size_t{1} << kSmallPageShift) / 16 <= 0xFFFF,
                "capacity and checked_clean fit 16 bits");
  std::uint32_t clean = 0;
  if (page->in_purge_queue) {
    if constexpr (kChecked) {
      checked_verify_free_page(page, seg->page_start(page));
      if (page->size_class == cls) clean = page->reserved;  // same layout: reusable as is
    }
    queue_remove(heap->purge_queue, page);
    page->in_purge_queue = false;
    seg->dirty_pages--;
    page->is_zero = false;
  }
  std::uint32_t size = kClassSize[cls];
  page->free = nullptr;
  page->used = 0;
  page->reserved = 0;
  page->block_size = size;
  page->capacity = static_cast<std::uint16_t>(page_bytes(seg) / size);
  page->size_class = static_cast<std::uint8_t>(cls);
  page->in_use = true;
  page->fresh_is_zero = false;
  page->sampled.store(0, std::memory_order_relaxed);
  page->checked_clean = static_cast<std::uint16_t>(clean);
  page->align_mask = static_cast<std::uint32_t>(class_alignment(cls) - 1);
  page->purged_os_pages = 0;
  page->sparse_mark = sparse_mark_initial(page->capacity);
  page->next = page->prev = nullptr;
  return page;
}

void page_release(Heap* heap, Page* page, bool purge_now) noexcept {
  LockGuard guard(heap->page_lock);
  // Its segment may leave the heap: heap_purge_sparse must not resume here.
  if (heap->sparse_page == page) heap->sparse_page = nullptr;
  Segment* seg = segment_of_page(page);
  page->in_use = false;
  page->block_size = 0;
  page->free = nullptr;
  seg->pages_in_use--;
  seg->free_mask |= std::uint64_t{1} << page->index;
  free_list_push(heap, seg);
  if (page->reserved == 0 && page->is_zero) {  // never touched: nothing to purge
    segment_maybe_release(heap, seg);
    return;
  }
  page->is_zero = false;
  page->freed_at_ms = clock_ms32(os::now_ms());
  page->in_purge_queue = true;
  seg->dirty_pages++;
  queue_push_back(heap->purge_queue, page);
  if (g_purge_delay_ms == 0) {
    purge_locked(heap, page->freed_at_ms, true);
  } else if (purge_now) {
    page_purge(heap, seg, page);
    segment_maybe_release(heap, seg);
  }
}

void heap_purge(Heap* heap, std::uint32_t now_ms, bool force) noexcept {
  LockGuard guard(heap->page_lock);
  purge_locked(heap, now_ms, force);
}

namespace {

void purge_locked(Heap* heap, std::uint32_t now_ms, bool force) noexcept {
  // The queue is in release order, so stop at the first page still young.
  while (Page* page = heap->purge_queue.first) {
    if (!force && static_cast<std::uint32_t>(now_ms - page->freed_at_ms) < g_purge_delay_ms) break;
    Segment* seg = segment_of_page(page);
    page_purge(heap, seg, page);
    segment_maybe_release(heap, seg);
  }
}

}  // namespace

void segment_cache_trim(bool force) noexcept {
  Segment* victims[kSegmentCacheMax];
  unsigned n = 0;
  {
    LockGuard guard(g_cache_lock);
    unsigned keep = force ? 0u : kSegmentCacheMax / 2;
    while (g_cache_count > keep) victims[n++] = g_cache[--g_cache_count];
  }
  for (unsigned i = 0; i < n; ++i) {
    segment_register(victims[i], kSegmentSize, false);
    os::unmap(victims[i], kSegmentSize);
  }
}

bool segment_is_registered(const void* p) noexcept {
  auto* r = registry();
  return r == nullptr || registry_has(r, p);  // no registry: cannot tell, do not accuse
}

void segment_register(const void* segment, std::size_t size, bool live) noexcept {
  auto* r = registry();
  if (r == nullptr) return;
  std::uintptr_t first = reinterpret_cast<std::uintptr_t>(segment) >> kSegmentShift;
  std::uintptr_t count = (size + kSegmentSize - 1) >> kSegmentShift;
  for (std::uintptr_t i = 0; i < count; ++i) {
    std::uintptr_t bit = (first + i) & (kRegistryBits - 1);
    std::uint64_t mask = std::uint64_t{1} << (bit % 64);
    if (live)
      r[bit / 64].fetch_or(mask, std::memory_order_relaxed);
    else
      r[bit / 64].fetch_and(~mask, std::memory_order_relaxed);
  }
}

void segment_fork(ForkPhase phase) noexcept {
  g_cache_lock.on_fork(phase);
}

}  // namespace bop::core
