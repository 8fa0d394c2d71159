#include "core/sparse_purge.hpp"

#include <cstdint>

#include "core/block.hpp"
#include "core/block_index.hpp"
#include "core/hardening.hpp"
#include "core/misuse.hpp"
#include "core/size_classes.hpp"
#include "platform/fatal.hpp"
#include "platform/os.hpp"

namespace bop::core {
namespace {

constexpr unsigned kFirstSparseClass = size_to_class(kSparseMinBlock);
constexpr unsigned kLastSparseClass = size_to_class(kSmallBlockMax);
constexpr unsigned kSparseClasses = kLastSparseClass - kFirstSparseClass + 1;
static_assert(kClassSize[kFirstSparseClass] == kSparseMinBlock);
static_assert(class_kind(kLastSparseClass) == SegmentKind::kSmall);

constexpr std::size_t kMaxBlocks = (std::size_t{1} << kSmallPageShift) / kSparseMinBlock;

// One bit per block of a page: which blocks are free.
struct BlockSet {
  std::uint64_t words[kMaxBlocks / 64] = {};
  void add(std::uint32_t i) { words[i / 64] |= std::uint64_t{1} << (i % 64); }
  bool has(std::uint32_t i) const { return (words[i / 64] >> (i % 64)) & 1; }
};

// The OS pages block i of size `size` overlaps, as a bit mask.
std::uint32_t os_pages_of_block(std::uint32_t i, std::size_t size) {
  return os_pages_spanned(i * size, size);
}

Block* block_at(char* start, std::uint32_t i, std::size_t size) {
  return reinterpret_cast<Block*>(start + i * size);
}

// OS ranges to return, collected over pages so that one system call returns
// many (os::purge_batch).  Blocks leave their lists before their memory goes:
// nothing reads them in between (the owner runs this).
struct PurgeBatch {
  os::PurgeRange ranges[os::kPurgeBatchMax];
  std::size_t count = 0;
  void add(char* start, std::size_t size) {
    if (count == os::kPurgeBatchMax) flush();
    ranges[count++] = {start, size};
  }
  void flush() {
    os::purge_batch(ranges, count);
    count = 0;
  }
};

// Takes the OS pages of `page` whose blocks are all free off the free list,
// and queues them to go back to the OS.  The page is carved whole
// (heap_purge_sparse looks at no other): no block past `reserved` is ever
// carved into a returned OS page.
void purge_sparse_page(Page* page, PurgeBatch& batch) noexcept {
  Segment* seg = segment_of_page(page);
  char* start = seg->page_start(page);
  std::size_t size = page->block_size;
  std::uint32_t carved = page->reserved;

  // Free blocks: those on the list, and those of OS pages returned before.
  BlockSet free_blocks;
  for (std::uint32_t i = 0; i < carved; ++i)
    if ((os_pages_of_block(i, size) & page->purged_os_pages) != 0) free_blocks.add(i);
  // The list is in free order, all over the page: one cache miss per link,
  // each waiting for the last.  Prefetching every block's first line first
  // (at most kMaxBlocks independent loads, which the CPU overlaps) lets the
  // walk hit the cache.
  for (std::uint32_t i = 0; i < carved; ++i) __builtin_prefetch(start + i * size);
  std::uint32_t listed = 0;
  for (Block* b = page->free; b != nullptr; b = block_next(b)) {
    std::uint32_t i =
        block_index(page, static_cast<std::size_t>(reinterpret_cast<char*>(b) - start));
    // A link off the page's blocks, or a cycle: a write after free broke the
    // list.  Leave the page alone; the misuse checks report such a list.
    if (i >= carved || ++listed > carved) return;
    free_blocks.add(i);
  }

  // OS pages whose every block is free.
  std::uint32_t returned = 0;
  for (unsigned k = 0; k < kOsPagesPerSmallPage; ++k) {
    if ((page->purged_os_pages >> k) & 1) continue;
    std::uint32_t first = static_cast<std::uint32_t>(k * kOsPageBytes / size);
    std::uint32_t last = static_cast<std::uint32_t>(((k + 1) * kOsPageBytes - 1) / size);
    if (last >= carved) last = carved - 1;  // past it: the page's unused tail
    bool all_free = true;
    for (std::uint32_t i = first; i <= last && all_free; ++i) all_free = free_blocks.has(i);
    if (all_free) returned |= 1u << k;
  }
  if (returned == 0) return;

  for (unsigned k = 0; k < kOsPagesPerSmallPage;) {
    if (((returned >> k) & 1) == 0) {
      ++k;
      continue;
    }
    unsigned run = k;
    while (run < kOsPagesPerSmallPage && ((returned >> run) & 1)) ++run;
    batch.add(start + k * kOsPageBytes, (run - k) * kOsPageBytes);
    k = run;
  }
  page->purged_os_pages = static_cast<std::uint16_t>(page->purged_os_pages | returned);

  // The free list again, without the blocks of returned OS pages, in address
  // order (threaded from the end).
  Block* head = nullptr;
  for (std::uint32_t i = carved; i-- > 0;) {
    if (!free_blocks.has(i) || (os_pages_of_block(i, size) & page->purged_os_pages) != 0) continue;
    Block* b = block_at(start, i, size);
    block_set_next(b, head);
    head = b;
  }
  page->free = head;
}

}  // namespace

void heap_purge_sparse(Heap* heap, std::size_t budget) noexcept {
  if constexpr (kChecked) return;  // checked builds verify free blocks' contents: pages stay whole
  PurgeBatch batch;
  unsigned cls = heap->sparse_class;
  if (cls < kFirstSparseClass || cls > kLastSparseClass) cls = kFirstSparseClass;
  // The page the last call stopped at, if it is still in that class's queue
  // (every page in use, not full, of a class is); else the queue's start.
  Page* page = heap->sparse_page;
  if (page == nullptr || !page->in_use || page->size_class != cls || page->is_full())
    page = heap->classes[cls].first;
  for (unsigned classes_moved = 0; budget > 0 && classes_moved <= kSparseClasses;) {
    if (page == nullptr) {  // the class's queue ends: the next class
      cls = cls == kLastSparseClass ? kFirstSparseClass : cls + 1;
      page = heap->classes[cls].first;
      ++classes_moved;
      continue;
    }
    // Sparse, and carved whole: a page still growing (blocks are carved
    // 4 KiB at a time, as the class needs them) would only be refilled.  An
    // empty one is its class's only page, kept on purpose (heap_trim
    // releases it whole).
    if (page->used <= page->sparse_mark && page->reserved == page->capacity && page->used != 0) {
      purge_sparse_page(page, batch);
      // Again only once half of the blocks still in use are gone too: a
      // page is looked at O(log capacity) times as it empties.
      page->sparse_mark = static_cast<std::uint16_t>(page->used / 2);
    }
    page = page->next;
    --budget;
  }
  heap->sparse_class = static_cast<std::uint8_t>(cls);
  heap->sparse_page = page;
  batch.flush();
}

bool page_unpurge(Page* page) noexcept {
  std::uint32_t mask = page->purged_os_pages;
  if (mask == 0) return false;
  Segment* seg = segment_of_page(page);
  char* start = seg->page_start(page);
  std::size_t size = page->block_size;
  Block* head = page->free;
  // Every block overlapping a returned OS page, from the last, once each.
  for (std::uint32_t i = page->reserved; i-- > 0;) {
    if ((os_pages_of_block(i, size) & mask) == 0) continue;
    Block* b = block_at(start, i, size);
    // A block whose first words lie in a returned OS page reads as zero
    // there: it is on no list, so nothing may have written it since.  A
    // write means a use after free, or a double free (the free found no
    // freed key to stop it, and put the block on the list).  The check
    // maps the zero page before the link's write faults the page in: one
    // cheap fault more per OS page, and only here.
    std::size_t word_page = i * size / kOsPageBytes;  // blocks are 16-aligned: both words
    if (((mask >> word_page) & 1) && (b->link != 0 || *freed_key_slot(b) != 0))
      fatal(
          "write after free or double free (a free block whose memory went back to the OS was "
          "written)",
          b);
    mark_freed(b);  // free blocks carry the key (page_pop then zeroes it for calloc)
    block_set_next(b, head);
    head = b;
  }
  page->purged_os_pages = 0;
  page->free = head;
  page->sparse_mark = static_cast<std::uint16_t>(page->used / 2);
  return head != nullptr;
}

}  // namespace bop::core
