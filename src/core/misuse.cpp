#include "core/misuse.hpp"

#include <atomic>
#include <cstdint>

#include "core/alloc.hpp"
#include "core/block_index.hpp"
#include "core/segment.hpp"
#include "core/sparse_purge.hpp"
#include "platform/fatal.hpp"

namespace bop::core {
namespace {

// "bop: <what> of <kind> (pointer 0x...)", then abort.
[[noreturn]] void misuse(const char* what, const char* kind, const void* p) noexcept {
  char line[160];
  std::size_t n = 0;
  for (const char* s : {what, " of ", kind})
    for (; *s != '\0' && n + 1 < sizeof line; ++s) line[n++] = *s;
  line[n] = '\0';
  fatal(line, p);
}

// Is b free: on the page's free list, or in an OS page the page returned
// while sparse (sparse_purge.hpp)?  A link leaving the page means the list
// itself was overwritten (a write after free).
bool on_free_list(Page* page, const Block* b) noexcept {
  if (block_is_purged(page, b)) return true;
  Segment* seg = segment_of_page(page);
  for (const Block* f = page->free; f != nullptr;) {
    if (f == b) return true;
    const Block* next = block_next(f);
    if (next != nullptr && (segment_of(next) != seg || seg->page_of(next) != page))
      fatal("corrupted free list (write after free or buffer overflow?)", f);
    f = next;
  }
  return false;
}

// The freed key, confirmed on the owner's lists (only the owner may walk
// them).  A block of a returned OS page reads as zero: no key, so that test
// comes first.  Out of line: other threads' frees (the common caller) skip it.
[[gnu::noinline]] void validate_not_free(Page* page, const void* p, const char* what) noexcept {
  if (block_is_purged(page, p) || (*freed_key_slot(const_cast<void*>(p)) == kFreedKey &&
                                   on_free_list(page, static_cast<const Block*>(p))))
    misuse(what, "a freed block (double free or use after free)", p);
}

void validate_page_block(Heap* heap, Segment* seg, const void* p, const char* what) noexcept {
  Page* page = seg->page_of(p);
  if (!page->in_use) misuse(what, "a block whose page is free (double free?)", p);
  std::size_t offset =
      static_cast<std::size_t>(static_cast<const char*>(p) - seg->page_start(page));
  // The owner may be extending the page meanwhile (page_extend stores
  // `reserved` atomically): a relaxed atomic load, a plain mov on x86-64.
  std::uint32_t reserved =
      std::atomic_ref<std::uint32_t>(page->reserved).load(std::memory_order_relaxed);
  if (block_index(page, offset) >= reserved)  // also when offset is not a multiple
    misuse(what, "a pointer into the middle of a block (interior or unaligned)", p);
  if (seg->owner == heap) validate_not_free(page, p, what);
}

}  // namespace

void free_suspect(Heap* heap, Segment* seg, Block* b) noexcept {
  Page* page = seg->page_of(b);
  if (!page->in_use) fatal("double free (the block's page is already free)", b);
  if ((reinterpret_cast<std::uintptr_t>(b) & page->align_mask) != 0)
    fatal("free of a pointer into the middle of a block (interior or unaligned)", b);
  if (on_free_list(page, b)) fatal("double free", b);
  free_to_page</*kCheck=*/false>(heap, seg, b);  // the key was the program's own data
}

void validate_block(Heap* heap, Segment* seg, const void* p, const char* what) noexcept {
  // segment_of maps p - 1: a pointer at a segment's very start belongs to
  // the segment before it, which is what the registry is asked about.
  if (!segment_is_registered_inline(static_cast<const char*>(p) - 1))
    misuse(what, "a pointer bop did not allocate", p);
  if (seg->kind == SegmentKind::kHuge) {
    if (seg->owner != nullptr || reinterpret_cast<const char*>(seg) + seg->block_offset != p)
      misuse(what, "a pointer into the middle of a huge block", p);
    if (seg->huge_freed) misuse(what, "a freed huge block (double free?)", p);
    return;
  }
  validate_page_block(heap, seg, p, what);
}

}  // namespace bop::core
