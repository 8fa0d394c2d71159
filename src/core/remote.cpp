#include "core/remote.hpp"

#include <atomic>

#include "core/alloc.hpp"
#include "core/heap.hpp"

namespace bop::core {
namespace {

// Takes every block other threads handed to this heap: one atomic exchange.
// seq_cst: pairs with heap_take_remote's clear of `poked` (see there).
void drain_remote(Heap* heap) noexcept {
  Block* b = heap->remote_in.exchange(nullptr, std::memory_order_seq_cst);
  while (b != nullptr) {
    Block* next = block_next(b);
    // The freeing thread validated b; free_to_page's freed-key test catches
    // a block handed over twice.
    free_to_page(heap, segment_of(b), b);
    b = next;
  }
}

void remote_flush(RemoteBatch& batch) noexcept {
  if (batch.count == 0) return;
  Heap* owner = batch.heap;
  Block* old = owner->remote_in.load(std::memory_order_relaxed);
  do {
    block_set_next(batch.tail, old);
  } while (!owner->remote_in.compare_exchange_weak(old, batch.head, std::memory_order_seq_cst,
                                                   std::memory_order_relaxed));
  batch.head = batch.tail = nullptr;
  batch.count = 0;
  // A batch was still waiting: the owner has not looked for a while (it
  // may be churning hot blocks without ever reaching its slow path).
  if (old != nullptr) heap_poke(owner, /*force=*/false);
}

// Adds b to the batch, handing the batch over once it is full.  Reads the
// batch before writing b's link: a Block* store the compiler must assume
// may alias the batch's fields.
inline void batch_push(RemoteBatch& batch, Block* b) noexcept {
  Block* head = batch.head;
  std::uint32_t count = batch.count + 1;
  if (head == nullptr) batch.tail = b;
  batch.head = b;
  batch.count = count;
  block_set_next(b, head);
  if (BOP_UNLIKELY(count >= kRemoteBatch)) remote_flush(batch);
}

// The batch's slot holds another owner's blocks: hand those over first.
[[gnu::noinline]] void batch_push_new_owner(RemoteBatch& batch, Heap* owner, Block* b) noexcept {
  remote_flush(batch);
  batch.heap = owner;
  batch_push(batch, b);
}

}  // namespace

void heap_take_remote(Heap* heap) noexcept {
  if (BOP_UNLIKELY(heap->poked.load(std::memory_order_relaxed))) {
    // Restore first, then clear, then drain: a sender that pokes after the
    // clear rewrites the slots after our restore (costing one more slow
    // call), and one whose poke found the flag still set had pushed its
    // batch before the clear, so the exchange below takes it (seq_cst on
    // the flag and on remote_in orders the two).  Any poke that slips
    // through anyway only costs slow calls: alloc_slow repairs the slots of
    // the class it serves.
    heap_restore_direct(heap);
    heap->poked.store(false, std::memory_order_seq_cst);
    drain_remote(heap);
  } else if (heap->remote_in.load(std::memory_order_relaxed) != nullptr) {
    drain_remote(heap);
  }
}

void remote_flush_all(Heap* heap) noexcept {
  for (auto& batch : heap->remote_out) remote_flush(batch);
}

// Frees owned by another heap are batched per owner; a batch is handed over
// with one CAS when full, on housekeeping, and at thread exit.  Fast case:
// the slot already batches for this owner and is not full yet; the rare
// cases are tail calls, so it saves no registers.
void free_remote(Heap* heap, Segment* seg, Block* b) noexcept {
  Heap* owner = seg->owner;
  unsigned slot =
      static_cast<unsigned>((reinterpret_cast<std::uintptr_t>(owner) >> 6) % kRemoteSlots);
  RemoteBatch& batch = heap->remote_out[slot];
  if (BOP_UNLIKELY(batch.heap != owner)) return batch_push_new_owner(batch, owner, b);
  batch_push(batch, b);
}

}  // namespace bop::core
