// Sampled leak reports: about one allocation per BOP_SAMPLE_BYTES bytes has
// its call stack recorded; at exit the samples still live are grouped by
// stack, so a report says where leaked memory was allocated at a cost low
// enough to leave on (a countdown per allocation, a stack walk per sample).
#pragma once

#include <cstddef>
#include <cstdint>

#include "platform/spin_lock.hpp"
#include "platform/text_writer.hpp"

namespace bop::stats {

// The gap in bytes to the next sample, from the caller's random state
// (0: not seeded yet; seeded here).
std::int64_t leak_next_gap(std::uint64_t& rng) noexcept;
// Records block p (usable size `size`) with its call stack; not while the
// calling thread is already walking its stack or starting the purger.
void leak_record(const void* p, std::size_t size) noexcept;
void leak_sampler_on_free(const void* p) noexcept;

// core::Page::sampled (and Segment::huge_sampled): how many of the page's
// blocks are in the sampler's table (low 16 bits; the table holds fewer) and
// the XOR of their tags (high 16 bits), so with one sample it names the
// block.  Written under the sampler's lock, read without it.
inline constexpr std::uint32_t kSampleCountMask = 0xFFFF;

// A block's tag: its offset in its page / 8 (16 bits cover a 512 KiB page,
// so two blocks of one page never share one).
inline std::uint32_t sample_tag(const void* p, unsigned page_shift) {
  std::uintptr_t offset =
      reinterpret_cast<std::uintptr_t>(p) & ((std::uintptr_t{1} << page_shift) - 1);
  return static_cast<std::uint32_t>(offset >> 3) << 16;
}

// Can block p (tag `tag`) be in the table, given its page's word?  No
// sample on the page, or one that is another block: no.  Two or more: the
// table says.
inline bool may_be_sampled(std::uint32_t word, std::uint32_t tag) {
  std::uint32_t count = word & kSampleCountMask;
  if (count == 1) return (word & ~kSampleCountMask) == tag;
  return count != 0;
}

inline constexpr int kLeakFrames = 24;
struct LeakSample {
  const void* block;
  std::size_t size;
  int depth;
  void* frames[kLeakFrames];
};
// realloc: the sample of block p (if any) leaves the table into `out`
// before realloc may free p (so p's page is still p's to unmark), then
// comes back for the block realloc returned (p if it failed or stayed).
bool leak_sampler_take(const void* p, LeakSample& out) noexcept;
void leak_sampler_put_back(LeakSample& sample, const void* block) noexcept;

// Live samples grouped by allocating stack, biggest first (text or a JSON array).
void write_leaks(TextWriter& w, bool json) noexcept;

// The heap profile in the collapsed-stack format flame-graph tools and
// speedscope read: one line per stack, outermost frame first, frames joined
// by ';', then a space and the estimated bytes.  Live samples, or with
// BOP_PROFILE_ALL=1 every sample taken.
void write_profile(TextWriter& w) noexcept;

// Fork: the sample table's lock (process_stats.cpp orders all).
void leak_sampler_fork(ForkPhase phase) noexcept;

}  // namespace bop::stats
