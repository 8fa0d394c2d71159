// Remote frees: blocks freed by a thread other than their heap's owner.
//
// The freeing thread never touches the block's page.  It batches blocks per
// owner (RemoteBatch) and hands a batch over with one CAS onto the owner's
// `remote_in` stack; the owner takes the whole stack with one exchange and
// pushes each block on its page's free list.
//
// When does the owner look?  Its small-allocation fast path does not test
// remote_in (pages' free lists are LIFO, so a churning owner may never run
// a page dry and never reach its slow path).  Instead, a sender whose batch
// lands on another batch still waiting "pokes" the owner: it points the
// owner's direct slots at the empty page, so the owner's next small
// allocation takes the slow path, which drains remote_in and restores the
// slots.  The purger pokes every heap with frees waiting, so a lone batch
// waits at most one purge period.  Allocations through class queues (above
// kDirectMax, strict alignments) test remote_in on their fast path instead.
#pragma once

#include "core/types.hpp"

namespace bop::core {

// Owner side: collects every waiting remote free, and undoes a poke.  Cheap
// when nothing waits (two relaxed loads).
void heap_take_remote(Heap* heap) noexcept;

// Sender side: batches block b (of another heap's segment `seg`).
void free_remote(Heap* heap, Segment* seg, Block* b) noexcept;

// Hands over every batch this heap holds (housekeeping, thread exit).
void remote_flush_all(Heap* heap) noexcept;

}  // namespace bop::core
