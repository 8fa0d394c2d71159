// BopStatsAllocator on one thread: every counter is exact after each step.
// Each test uses its own allocator instance, so nothing else is counted.
#include <bop/stats.hpp>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

using bop::AllocationStats;
using bop::BopStatsAllocator;
using bop::Layout;

constexpr std::uint64_t KiB = 1024;
constexpr std::uint64_t MiB = 1024 * KiB;

bool IsAligned(const void* p, std::size_t align) {
  return reinterpret_cast<std::uintptr_t>(p) % align == 0;
}

// Byte i of a block filled by Fill(p, n, seed).
unsigned char PatternByte(std::size_t i, unsigned seed) {
  return static_cast<unsigned char>((i * 131 + seed * 7 + (i >> 8)) & 0xff);
}
void Fill(void* p, std::size_t n, unsigned seed) {
  auto* bytes = static_cast<unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) bytes[i] = PatternByte(i, seed);
}
// Index of the first byte that differs from the pattern, or n.
std::size_t FirstMismatch(const void* p, std::size_t n, unsigned seed) {
  const auto* bytes = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i)
    if (bytes[i] != PatternByte(i, seed)) return i;
  return n;
}

// The six counters, spelled out so a failure prints every field.
AllocationStats Stats(std::uint64_t allocations, std::uint64_t deallocations,
                      std::uint64_t bytes_allocated, std::uint64_t bytes_deallocated,
                      std::uint64_t peak, std::uint64_t current) {
  AllocationStats s;
  s.allocations = allocations;
  s.deallocations = deallocations;
  s.bytes_allocated = bytes_allocated;
  s.bytes_deallocated = bytes_deallocated;
  s.peak_memory = peak;
  s.current_memory = current;
  return s;
}

// A new allocator reads all zero and reports no leaks.
TEST(StatsCounts, FreshAllocatorIsZero) {
  BopStatsAllocator a;
  EXPECT_EQ(a.stats(), AllocationStats{});
  EXPECT_FALSE(a.stats().has_leaks());
}

// Allocations and frees of small, medium and huge layouts count the requested
// sizes exactly, and the outstanding_* helpers follow.
TEST(StatsCounts, AllocDeallocExact) {
  BopStatsAllocator a;
  const Layout layouts[] = {Layout(100), Layout(1), Layout(5000), Layout(MiB)};
  const std::uint64_t total = 100 + 1 + 5000 + MiB;
  void* p[4];
  for (int i = 0; i < 4; ++i) ASSERT_NE(p[i] = a.alloc(layouts[i]), nullptr);

  AllocationStats s = a.stats();
  EXPECT_EQ(s, Stats(4, 0, total, 0, total, total));
  EXPECT_EQ(s.outstanding_allocations(), 4u);
  EXPECT_EQ(s.outstanding_memory(), total);
  EXPECT_TRUE(s.has_leaks());

  a.dealloc(p[3], layouts[3]);
  a.dealloc(p[0], layouts[0]);
  s = a.stats();
  EXPECT_EQ(s, Stats(4, 2, total, 100 + MiB, total, 5001));
  EXPECT_EQ(s.outstanding_allocations(), 2u);
  EXPECT_EQ(s.outstanding_memory(), 5001u);
  EXPECT_TRUE(s.has_leaks());

  a.dealloc(p[1], layouts[1]);
  a.dealloc(p[2], layouts[2]);
  a.dealloc(nullptr, Layout(8));  // not an event
  s = a.stats();
  EXPECT_EQ(s, Stats(4, 4, total, total, total, 0));
  EXPECT_EQ(s.outstanding_allocations(), 0u);
  EXPECT_EQ(s.outstanding_memory(), 0u);
  EXPECT_FALSE(s.has_leaks());
}

// Zero-size layouts are allocations of 0 bytes: distinct, aligned, counted.
TEST(StatsCounts, ZeroSizeLayouts) {
  BopStatsAllocator a;
  void* p = a.alloc(Layout(0));
  void* q = a.alloc(Layout(0, 1));
  void* r = a.alloc(Layout(0, 256));
  ASSERT_TRUE(p && q && r);
  EXPECT_TRUE(p != q && q != r && p != r);
  EXPECT_TRUE(IsAligned(p, 16));
  EXPECT_TRUE(IsAligned(r, 256));
  EXPECT_EQ(a.stats(), Stats(3, 0, 0, 0, 0, 0));
  EXPECT_TRUE(a.stats().has_leaks());  // three blocks, even with no bytes

  a.dealloc(p, Layout(0));
  a.dealloc_unsized(q);
  a.dealloc(r, Layout(0, 256));
  EXPECT_EQ(a.stats(), Stats(3, 3, 0, 0, 0, 0));
  EXPECT_FALSE(a.stats().has_leaks());
}

// Every power-of-two alignment from 1 to 4096 (and a few huge ones) is
// honoured for sizes from 0 to beyond a page; usable_size covers the request;
// the blocks do not overlap; the counts are the requested sizes.
TEST(StatsCounts, AlignedLayouts) {
  BopStatsAllocator a;
  const std::size_t sizes[] = {0, 1, 7, 100, 4097, 100000};
  struct Block {
    void* p;
    Layout layout;
    std::size_t usable;
  };
  std::vector<Block> blocks;
  std::uint64_t bytes = 0;
  for (std::size_t align = 1; align <= 4 * MiB; align *= 2) {
    if (align > 4096 && align != 64 * KiB && align != 4 * MiB) continue;
    for (std::size_t size : sizes) {
      Layout layout(size, align);
      void* p = a.alloc(layout);
      ASSERT_NE(p, nullptr) << "size " << size << " align " << align;
      EXPECT_TRUE(IsAligned(p, align)) << p << " size " << size << " align " << align;
      std::size_t usable = a.usable_size(p);
      EXPECT_GE(usable, size) << "size " << size << " align " << align;
      blocks.push_back({p, layout, usable});
      bytes += size;
    }
  }
  // Fill every usable byte, then check none was overwritten by another block
  // (or by a header).
  for (std::size_t i = 0; i < blocks.size(); ++i)
    Fill(blocks[i].p, blocks[i].usable, static_cast<unsigned>(i));
  for (std::size_t i = 0; i < blocks.size(); ++i)
    EXPECT_EQ(FirstMismatch(blocks[i].p, blocks[i].usable, static_cast<unsigned>(i)),
              blocks[i].usable)
        << "block " << i << " size " << blocks[i].layout.size << " align "
        << blocks[i].layout.align;

  const std::uint64_t n = blocks.size();
  EXPECT_EQ(a.stats(), Stats(n, 0, bytes, 0, bytes, bytes));
  for (const Block& b : blocks) a.dealloc(b.p, b.layout);
  EXPECT_EQ(a.stats(), Stats(n, n, bytes, bytes, bytes, 0));
}

// alloc_zeroed returns zero bytes even where dirty blocks were just freed,
// and counts like alloc.
TEST(StatsCounts, AllocZeroedIsZero) {
  BopStatsAllocator a;
  const Layout layouts[] = {Layout(24),         Layout(100),         Layout(1000, 64),
                            Layout(5000),       Layout(40000, 4096), Layout(700 * KiB),
                            Layout(3 * MiB, 32)};
  for (int round = 0; round < 3; ++round) {
    std::vector<void*> dirty;
    for (const Layout& l : layouts) {
      void* p = a.alloc(l);
      ASSERT_NE(p, nullptr);
      std::memset(p, 0xA5, l.size);
      dirty.push_back(p);
    }
    for (std::size_t i = 0; i < dirty.size(); ++i) a.dealloc(dirty[i], layouts[i]);

    for (const Layout& l : layouts) {
      auto* p = static_cast<unsigned char*>(a.alloc_zeroed(l));
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(IsAligned(p, l.align));
      std::size_t nonzero = 0;
      for (std::size_t i = 0; i < l.size; ++i) nonzero += p[i] != 0;
      EXPECT_EQ(nonzero, 0u) << "size " << l.size << " round " << round;
      a.dealloc(p, l);
    }
  }
  std::uint64_t bytes = 0;
  for (const Layout& l : layouts) bytes += l.size;
  const std::uint64_t n = 3 * 2 * std::size(layouts);
  EXPECT_EQ(a.stats(), Stats(n, n, 3 * 2 * bytes, 3 * 2 * bytes, bytes, 0));
}

// dealloc_unsized (and dealloc, whatever Layout it is given in a release
// build) gives back exactly the size that was requested.
TEST(StatsCounts, DeallocUnsizedCountsRequestedSize) {
  BopStatsAllocator a;
  void* p = a.alloc(Layout(123));
  void* q = a.alloc(Layout(1000, 64));
  void* r = a.alloc(Layout(0));
  void* h = a.alloc(Layout(2 * MiB + 3, 8192));
  ASSERT_TRUE(p && q && r && h);
  a.dealloc_unsized(q);
  EXPECT_EQ(a.stats(), Stats(4, 1, 2 * MiB + 1126, 1000, 2 * MiB + 1126, 2 * MiB + 126));
  a.dealloc_unsized(p);
  a.dealloc_unsized(r);
  a.dealloc_unsized(h);
  a.dealloc_unsized(nullptr);  // not an event
  EXPECT_EQ(a.stats(), Stats(4, 4, 2 * MiB + 1126, 2 * MiB + 1126, 2 * MiB + 1126, 0));
}

// realloc is not an allocation event: growth adds to bytes_allocated,
// shrinking to bytes_deallocated.  Content and alignment survive every step,
// from a small block to a huge one (mremap) and back.
TEST(StatsCounts, ReallocCountsBytesOnly) {
  for (std::size_t align : {std::size_t{8}, std::size_t{16}, std::size_t{64}, std::size_t{4096},
                            std::size_t{16384}, std::size_t{128 * KiB}}) {
    SCOPED_TRACE("align " + std::to_string(align));
    BopStatsAllocator a;
    const Layout layout(100, align);
    void* p = a.alloc(layout);
    ASSERT_NE(p, nullptr);
    Fill(p, 100, 1);

    // size sequence, with the running totals a correct allocator reports
    const std::size_t steps[] = {10000, 50, 2 * MiB, 6 * MiB, 6 * MiB, 700 * KiB, 100};
    std::uint64_t size = 100, grown = 100, shrunk = 0, peak = 100;
    for (std::size_t next : steps) {
      SCOPED_TRACE("realloc " + std::to_string(size) + " -> " + std::to_string(next));
      void* q = a.realloc(p, layout, next);
      ASSERT_NE(q, nullptr);
      EXPECT_TRUE(IsAligned(q, align)) << q;
      std::size_t kept = size < next ? size : next;
      ASSERT_EQ(FirstMismatch(q, kept, 1), kept);
      EXPECT_GE(a.usable_size(q), next);
      Fill(q, next, 1);  // the whole new size is ours to write
      if (next > size)
        grown += next - size;
      else
        shrunk += size - next;
      size = next;
      if (size > peak) peak = size;
      EXPECT_EQ(a.stats(), Stats(1, 0, grown, shrunk, peak, size));
      p = q;
    }
    a.dealloc(p, Layout(size, align));
    EXPECT_EQ(a.stats(), Stats(1, 1, grown, grown, peak, 0));
  }
}

// realloc of nullptr is an allocation.
TEST(StatsCounts, ReallocOfNullAllocates) {
  BopStatsAllocator a;
  void* p = a.realloc(nullptr, Layout(0, 64), 300);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(IsAligned(p, 64));
  EXPECT_EQ(a.stats(), Stats(1, 0, 300, 0, 300, 300));
  a.dealloc_unsized(p);
  EXPECT_EQ(a.stats(), Stats(1, 1, 300, 300, 300, 0));
}

// Requests that fail (bad alignment, sizes no machine has) return nullptr
// with errno set and count nothing; a failed realloc leaves the block and
// the counters as they were.
TEST(StatsCounts, FailedRequestsAreNotCounted) {
  BopStatsAllocator a;
  void* p = a.alloc(Layout(64));
  ASSERT_NE(p, nullptr);
  std::memset(p, 7, 64);
  const AllocationStats before = a.stats();
  const std::size_t huge = std::size_t{1} << 62;
  for (Layout bad :
       {Layout(10, 0), Layout(10, 48), Layout(SIZE_MAX - 4), Layout(huge), Layout(huge, 4096)}) {
    errno = 0;
    EXPECT_EQ(a.alloc(bad), nullptr) << bad.size << " " << bad.align;
    EXPECT_EQ(errno, bad.is_valid() ? ENOMEM : EINVAL);
    EXPECT_EQ(a.alloc_zeroed(bad), nullptr);
  }
  for (std::size_t size : {SIZE_MAX - 4, huge}) {
    errno = 0;
    EXPECT_EQ(a.realloc(p, Layout(64), size), nullptr);
    EXPECT_EQ(errno, ENOMEM);
  }
  EXPECT_EQ(a.stats(), before);
  EXPECT_EQ(std::memcmp(p, std::string(64, '\7').data(), 64), 0);  // untouched
  a.dealloc(p, Layout(64));
  EXPECT_EQ(a.stats(), Stats(1, 1, 64, 64, 64, 0));
}

// Peak of 1, 5, 10, 3, 7 MB blocks each freed before the next is exactly
// 10 MB above what stays live throughout.
TEST(StatsPeak, SequentialMegabyteBlocks) {
  BopStatsAllocator a;
  void* keep1 = a.alloc(Layout(100));
  void* keep2 = a.alloc(Layout(333 * KiB));
  const std::uint64_t live = 100 + 333 * KiB;
  for (std::uint64_t mb : {1, 5, 10, 3, 7}) {
    void* p = a.alloc(Layout(mb * MiB));
    ASSERT_NE(p, nullptr);
    std::memset(p, 1, mb * MiB);
    EXPECT_EQ(a.stats().current_memory, live + mb * MiB);
    a.dealloc(p, Layout(mb * MiB));
  }
  AllocationStats s = a.stats();
  EXPECT_EQ(s.peak_memory, live + 10 * MiB);
  EXPECT_EQ(s.current_memory, live);
  a.dealloc_unsized(keep1);
  a.dealloc_unsized(keep2);
  EXPECT_EQ(a.stats(), Stats(7, 7, live + 26 * MiB, live + 26 * MiB, live + 10 * MiB, 0));
}

// Many small blocks live at once (less than the 256 KiB fold step in total,
// and far more than it) give an exact peak.
TEST(StatsPeak, ManySmallBlocks) {
  for (std::size_t count : {1000, 10000}) {
    BopStatsAllocator a;
    std::vector<void*> blocks;
    for (std::size_t i = 0; i < count; ++i) blocks.push_back(a.alloc(Layout(100)));
    EXPECT_EQ(a.stats().peak_memory, count * 100);
    for (void* p : blocks) a.dealloc(p, Layout(100));
    blocks.clear();
    // A smaller second wave does not move the peak.
    for (std::size_t i = 0; i < count / 2; ++i) blocks.push_back(a.alloc(Layout(100)));
    for (void* p : blocks) a.dealloc(p, Layout(100));
    const std::uint64_t n = count + count / 2;
    EXPECT_EQ(a.stats(), Stats(n, n, n * 100, n * 100, count * 100, 0));
  }
}

// A random single-threaded sequence of alloc, free and realloc (sizes up to
// 600 KiB, so the fold step is crossed often in both directions) matches a
// simple model after every operation, peak included.
TEST(StatsPeak, RandomSequenceMatchesModel) {
  BopStatsAllocator a;
  std::mt19937_64 rng(12345);
  struct Live {
    void* p;
    std::size_t size;
  };
  std::vector<Live> live;
  AllocationStats model;
  for (int op = 0; op < 4000; ++op) {
    std::size_t size = rng() % 4 == 0 ? rng() % (600 * KiB) : rng() % 2000;
    int kind = static_cast<int>(rng() % 10);
    if (live.empty() || kind < 5) {
      void* p = a.alloc(Layout(size));
      ASSERT_NE(p, nullptr);
      live.push_back({p, size});
      model.allocations++;
      model.bytes_allocated += size;
      model.current_memory += size;
    } else if (kind < 8) {
      std::size_t i = rng() % live.size();
      a.dealloc(live[i].p, Layout(live[i].size));
      model.deallocations++;
      model.bytes_deallocated += live[i].size;
      model.current_memory -= live[i].size;
      live[i] = live.back();
      live.pop_back();
    } else {
      Live& b = live[rng() % live.size()];
      void* q = a.realloc(b.p, Layout(b.size), size);
      ASSERT_NE(q, nullptr);
      if (size > b.size)
        model.bytes_allocated += size - b.size;
      else
        model.bytes_deallocated += b.size - size;
      model.current_memory = model.current_memory + size - b.size;
      b = {q, size};
    }
    if (model.current_memory > model.peak_memory) model.peak_memory = model.current_memory;
    ASSERT_EQ(a.stats(), model) << "after operation " << op;
  }
  for (const Live& b : live) a.dealloc(b.p, Layout(b.size));
}

// Every counter but the peak (checked on its own in StatsReset.Peak*).
AllocationStats NoPeak(AllocationStats s) {
  s.peak_memory = 0;
  return s;
}

// reset_stats with live blocks: history is forgotten, live blocks stay
// counted, and freeing them later never wraps a counter.
TEST(StatsReset, LiveBlocksDoNotWrap) {
  BopStatsAllocator a;
  std::vector<std::pair<void*, std::size_t>> blocks;
  std::uint64_t live = 0;
  for (std::size_t size : {10, 200, 3000, 40000, 500000, 2000000, 7, 0, 64, 999}) {
    blocks.push_back({a.alloc(Layout(size)), size});
    live += size;
  }
  for (int i = 0; i < 3; ++i) {  // free 10, 200 and 3000 before the reset
    a.dealloc(blocks.front().first, Layout(blocks.front().second));
    live -= blocks.front().second;
    blocks.erase(blocks.begin());
  }
  a.reset_stats();
  AllocationStats s = a.stats();
  EXPECT_EQ(NoPeak(s), Stats(7, 0, live, 0, 0, live));
  EXPECT_EQ(s.outstanding_allocations(), 7u);
  EXPECT_EQ(s.outstanding_memory(), live);
  EXPECT_TRUE(s.has_leaks());

  // Shrink a pre-reset block, then free them all one at a time.
  ASSERT_EQ(blocks[2].second, 2000000u);
  void* q = a.realloc(blocks[2].first, Layout(2000000), 1000);
  ASSERT_NE(q, nullptr);
  blocks[2] = {q, 1000};
  EXPECT_EQ(NoPeak(a.stats()), Stats(7, 0, live, 1999000, 0, live - 1999000));
  std::uint64_t freed = 1999000, n = 0;
  for (auto [p, size] : blocks) {
    a.dealloc(p, Layout(size));
    freed += size;
    ++n;
    s = a.stats();
    EXPECT_EQ(NoPeak(s), Stats(7, n, live, freed, 0, live - freed)) << "after " << n << " frees";
  }
  EXPECT_FALSE(a.stats().has_leaks());
}

// Right after reset_stats the peak equals what is live, whatever happened
// before: here the thread's last frees were small ones, not yet folded into
// the shared total.
TEST(StatsReset, PeakEqualsCurrentAfterReset) {
  BopStatsAllocator a;
  void* small = a.alloc(Layout(1000));
  void* big = a.alloc(Layout(300 * KiB));  // crosses the 256 KiB fold step
  a.dealloc(small, Layout(1000));
  a.reset_stats();
  EXPECT_EQ(a.stats(), Stats(1, 0, 300 * KiB, 0, 300 * KiB, 300 * KiB));
  a.dealloc(big, Layout(300 * KiB));
  a.reset_stats();
  EXPECT_EQ(a.stats(), AllocationStats{});
}

// After a reset the peak is what is live, then follows new allocations
// exactly; the old, higher peak does not come back.
TEST(StatsReset, PeakRestartsFromLiveMemory) {
  BopStatsAllocator a;
  void* big = a.alloc(Layout(10 * MiB));
  void* small = a.alloc(Layout(200 * KiB));  // below the fold step
  void* kept = a.alloc(Layout(2 * MiB));
  a.dealloc(big, Layout(10 * MiB));
  a.dealloc(small, Layout(200 * KiB));
  EXPECT_EQ(a.stats().peak_memory, 12 * MiB + 200 * KiB);

  a.reset_stats();
  EXPECT_EQ(a.stats(), Stats(1, 0, 2 * MiB, 0, 2 * MiB, 2 * MiB));
  void* p = a.alloc(Layout(100 * KiB));
  a.dealloc(p, Layout(100 * KiB));
  EXPECT_EQ(a.stats(), Stats(2, 1, 2 * MiB + 100 * KiB, 100 * KiB, 2 * MiB + 100 * KiB, 2 * MiB));
  p = a.alloc(Layout(1 * MiB));
  a.dealloc(p, Layout(1 * MiB));
  EXPECT_EQ(a.stats().peak_memory, 3 * MiB);
  a.dealloc(kept, Layout(2 * MiB));
  EXPECT_EQ(a.stats(), Stats(3, 3, 3 * MiB + 100 * KiB, 3 * MiB + 100 * KiB, 3 * MiB, 0));
}

// True if `text` has "name: value" with name and value not part of a longer
// word or number (so "allocations: 1" does not match inside
// "deallocations: 12").
bool HasField(const std::string& text, const std::string& name, std::uint64_t value) {
  std::regex field("(^|[^a-z_])" + name + ": " + std::to_string(value) + "([^0-9]|$)");
  return std::regex_search(text, field);
}

// operator<< and to_string print every field with its value, plus the
// outstanding count; both give the same text.
TEST(StatsPrint, EveryFieldAndValue) {
  AllocationStats s = Stats(11, 4, 12345, 678, 99999, 11667);
  std::string text = s.to_string();
  SCOPED_TRACE(text);
  EXPECT_TRUE(HasField(text, "allocations", 11));
  EXPECT_TRUE(HasField(text, "deallocations", 4));
  EXPECT_TRUE(HasField(text, "bytes_allocated", 12345));
  EXPECT_TRUE(HasField(text, "bytes_deallocated", 678));
  EXPECT_TRUE(HasField(text, "peak_memory", 99999));
  EXPECT_TRUE(HasField(text, "current_memory", 11667));
  EXPECT_TRUE(HasField(text, "outstanding_allocations", 7));
  std::ostringstream out;
  out << s;
  EXPECT_EQ(out.str(), text);
}

// The printed form of a live snapshot carries its real numbers.
TEST(StatsPrint, LiveSnapshot) {
  BopStatsAllocator a;
  void* p = a.alloc(Layout(777));
  void* q = a.alloc(Layout(1));
  a.dealloc(q, Layout(1));
  std::string text = a.stats().to_string();
  SCOPED_TRACE(text);
  EXPECT_TRUE(HasField(text, "allocations", 2));
  EXPECT_TRUE(HasField(text, "deallocations", 1));
  EXPECT_TRUE(HasField(text, "bytes_allocated", 778));
  EXPECT_TRUE(HasField(text, "bytes_deallocated", 1));
  EXPECT_TRUE(HasField(text, "peak_memory", 778));
  EXPECT_TRUE(HasField(text, "current_memory", 777));
  EXPECT_TRUE(HasField(text, "outstanding_allocations", 1));
  a.dealloc(p, Layout(777));
}

}  // namespace
