// The writer side of the statistics' sequence locks, shared by the
// process-wide counters (process_counters) and BopStatsAllocator's recorder.
//
// Each shard has one writer (its thread, or whoever holds the shared shard's
// lock).  The writer makes the sequence number odd, updates its counters and
// makes it even again; a reader retries while the number is odd or changed.
// The ordering is written on the variables themselves (release stores here,
// acquire loads in the readers) instead of standalone fences, which
// ThreadSanitizer cannot model.  On x86-64 all of it is plain movs.
#pragma once

#include <atomic>
#include <cstdint>

#include "stats/owner_words.hpp"

namespace bop::stats {

// Single-writer increment as a release store (one `add` to memory:
// owner_words.hpp): a reader whose acquire load sees this value also sees
// the odd sequence number stored before it (and a free counted on another
// thread after it), so it retries.
[[gnu::always_inline]] inline void bump(std::atomic<std::uint64_t>& counter,
                                        std::uint64_t by = 1) {
  owner_add(counter, by);
}

// One multi-word update of a shard: odd sequence number for its lifetime.
// No fence after the odd store: the counters' release stores (bump) keep it
// ahead of them.
class SeqWrite {
 public:
  explicit SeqWrite(std::atomic<std::uint64_t>& seq)
      : seq_(seq), start_(seq.load(std::memory_order_relaxed)) {
    seq_.store(start_ + 1, std::memory_order_relaxed);
  }
  ~SeqWrite() { seq_.store(start_ + 2, std::memory_order_release); }
  SeqWrite(const SeqWrite&) = delete;
  SeqWrite& operator=(const SeqWrite&) = delete;

 private:
  std::atomic<std::uint64_t>& seq_;
  std::uint64_t start_;
};

}  // namespace bop::stats
