// Sparse pages give their free OS pages back (src/core/sparse_purge.hpp):
// after most blocks of a size are freed at random, bop_collect() returns the
// 4 KiB pages that hold free blocks only, although every 64 KiB page still
// has live blocks.  What a user can see of it: the RSS drops, live blocks
// keep their content, the freed blocks come back as distinct, zeroed (for
// zalloc) blocks, and misuse of a block whose memory went back is still
// caught: a double free or a write after free aborts when the page reuses
// its blocks, malloc_usable_size of such a block aborts at once.
// Default builds only: BOP_CHECKED builds keep their pages whole.
#include <bop/bop.h>
#include <sys/mman.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace bop_test;

constexpr std::size_t kBlock = 2000;  // class 2048: two blocks per OS page
constexpr std::size_t kCount = 4096;  // 8 MiB: 128 pages of 64 KiB

bool AllZero(const void* p, std::size_t n) {
  const auto* c = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i)
    if (c[i] != 0) return false;
  return true;
}

bool Resident(const void* p) {
  unsigned char v = 0;
  auto page = reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{4095};
  return mincore(reinterpret_cast<void*>(page), 4096, &v) == 0 && (v & 1) != 0;
}

// kCount blocks with a pattern each; thin() frees nine in ten of them in a
// scrambled order, then calls bop_collect().
struct SparseHeap {
  std::vector<void*> all, kept, freed;
  explicit SparseHeap(bool thinned = true) {
    all.resize(kCount);
    for (std::size_t i = 0; i < kCount; ++i) {
      all[i] = bop_alloc(kBlock);
      FillPattern(all[i], kBlock, i);
    }
    if (thinned) thin();
  }
  void thin() {
    for (std::size_t i = 0; i < kCount; ++i) {
      std::size_t j = (i * 2654435761u) % kCount;  // a fixed scramble of the order
      if (j % 10 == 0)
        kept.push_back(all[j]);
      else
        freed.push_back(all[j]);
    }
    for (void* p : freed) bop_dealloc(p);
    bop_collect();
  }
  // A freed block whose first OS page went back to the OS.
  void* purged_block() const {
    for (void* p : freed)
      if (!Resident(p)) return p;
    return nullptr;
  }
  bool kept_intact() const {
    for (void* p : kept) {
      std::size_t i = 0;
      while (i < kCount && !HasPattern(p, kBlock, i)) ++i;  // seeds are the original indices
      if (i == kCount) return false;
    }
    return true;
  }
};

#ifdef BOP_CHECKED
#define SKIP_IF_CHECKED() GTEST_SKIP() << "BOP_CHECKED builds keep their pages whole"
#else
#define SKIP_IF_CHECKED() (void)0
#endif

TEST(SparsePurge, FreeOsPagesOfSparsePagesGoBack) {
  SKIP_IF_CHECKED();
  SparseHeap heap(/*thinned=*/false);
  std::size_t before = RssBytes();
  heap.thin();
  std::size_t after = RssBytes();
  std::size_t freed_bytes = heap.freed.size() * 2048;
  // Two blocks per OS page, 90% free: about 80% of the OS pages hold free
  // blocks only.  Without the purge every 64 KiB page stays resident (each
  // keeps about three live blocks).
  EXPECT_GT(before, after);
  EXPECT_GT(before - std::min(before, after), freed_bytes / 2)
      << "RSS before " << before << ", after " << after;
  EXPECT_NE(heap.purged_block(), nullptr);
  EXPECT_TRUE(heap.kept_intact());
  for (void* p : heap.kept) EXPECT_GE(bop_malloc_usable_size(p), kBlock);
  for (void* p : heap.kept) bop_dealloc(p);
}

TEST(SparsePurge, ReusedBlocksAreDistinctZeroedAndKeepContent) {
  SKIP_IF_CHECKED();
  SparseHeap heap;
  ASSERT_NE(heap.purged_block(), nullptr);
  // Twice as many as were freed: the purged blocks come back, then new ones.
  std::vector<void*> fresh;
  for (std::size_t i = 0; i < 2 * heap.freed.size(); ++i) {
    void* p = bop_zalloc(kBlock);
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(AllZero(p, kBlock)) << "block " << i;
    FillPattern(p, kBlock, kCount + i);
    fresh.push_back(p);
  }
  // No block handed out twice, none overlapping a live one.
  std::vector<std::uintptr_t> starts;
  for (void* p : heap.kept) starts.push_back(reinterpret_cast<std::uintptr_t>(p));
  for (void* p : fresh) starts.push_back(reinterpret_cast<std::uintptr_t>(p));
  std::sort(starts.begin(), starts.end());
  for (std::size_t i = 1; i < starts.size(); ++i) ASSERT_GE(starts[i] - starts[i - 1], kBlock);
  for (std::size_t i = 0; i < fresh.size(); ++i)
    ASSERT_TRUE(HasPattern(fresh[i], kBlock, kCount + i)) << "block " << i;
  EXPECT_TRUE(heap.kept_intact());
  // A live block of a purged page still grows with its content.
  void* grown = bop_realloc(heap.kept[0], 3 * kBlock);
  ASSERT_NE(grown, nullptr);
  heap.kept[0] = grown;
  EXPECT_TRUE(heap.kept_intact());
  for (void* p : fresh) bop_dealloc(p);
  for (void* p : heap.kept) bop_dealloc(p);
}

// Allocates (and writes) blocks of the class until the purged ones are
// handed out again.
void ReuseEverything(const SparseHeap& heap) {
  for (std::size_t i = 0; i < 2 * heap.freed.size(); ++i) std::memset(bop_alloc(kBlock), 1, kBlock);
}

// A freed block of a thinned heap whose memory went back (death tests: a
// heap without one aborts, which fails the test's message match).
void* PurgedBlockOrAbort(const SparseHeap& heap) {
  void* p = heap.purged_block();
  if (p == nullptr) std::abort();
  return p;
}

TEST(SparsePurgeDeathTest, DoubleFreeOfPurgedBlockAbortsAtReuse) {
  SKIP_IF_CHECKED();
  EXPECT_DEATH(
      {
        SparseHeap heap;
        bop_dealloc(
            PurgedBlockOrAbort(heap));  // its freed key went with its memory: the free goes through
        ReuseEverything(heap);
      },
      "bop: write after free or double free");
}

TEST(SparsePurgeDeathTest, WriteAfterFreeIntoPurgedBlockAbortsAtReuse) {
  SKIP_IF_CHECKED();
  EXPECT_DEATH(
      {
        SparseHeap heap;
        static_cast<unsigned char*>(PurgedBlockOrAbort(heap))[3] = 0x5a;
        ReuseEverything(heap);
      },
      "bop: write after free or double free");
}

TEST(SparsePurgeDeathTest, UsableSizeOfPurgedBlockAborts) {
  SKIP_IF_CHECKED();
  EXPECT_DEATH(
      {
        SparseHeap heap;
        std::printf("%zu\n", bop_malloc_usable_size(PurgedBlockOrAbort(heap)));
      },
      "bop: malloc_usable_size of a freed block");
}

}  // namespace
