// checked_test: in a BOP_CHECKED build, misuse is caught with a one-line
// "bop: ..." message and abort, instead of silently corrupting the heap.
// Each misuse runs in a death test (a separate process).  Without
// BOP_CHECKED every test is skipped.
#include <bop/bop.h>
#include <bop/allocator.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "test_util.hpp"

using namespace bop_test;

namespace {

void SkipUnlessChecked() {
#ifndef BOP_CHECKED
  GTEST_SKIP() << "not a BOP_CHECKED build (configure with the `checked` preset)";
#endif
}

// Death-test bodies are functions so that the optimizer sees real calls.
__attribute__((noinline)) void DoubleFree(std::size_t size) {
  void* p = bop_alloc(size);
  Escape(p);
  bop_dealloc(p);
  bop_dealloc(p);
}

// Double free with other frees of the same size in between.
__attribute__((noinline)) void DoubleFreeLater() {
  void* p = bop_alloc(48);
  void* q = bop_alloc(48);
  void* r = bop_alloc(48);
  bop_dealloc(p);
  bop_dealloc(q);
  bop_dealloc(r);
  bop_dealloc(p);
}

__attribute__((noinline)) void DoubleFreeSized() {
  void* p = bop_alloc(200);
  bop_dealloc_sized(p, 200);
  bop_dealloc_sized(p, 200);
}

__attribute__((noinline)) void InteriorFree(std::size_t size, std::size_t offset) {
  auto* p = static_cast<char*>(bop_alloc(size));
  Escape(p);
  bop_dealloc(p + offset);
}

__attribute__((noinline)) void StackFree() {
  char buf[64] = {};
  Escape(buf);
  bop_dealloc(buf);
}

char g_static_buffer[4096];
__attribute__((noinline)) void StaticFree() {
  bop_dealloc(g_static_buffer + 64);
}

// A block from glibc's malloc (this test is linked with bop::bop only).
__attribute__((noinline)) void ForeignFree() {
  void* p = std::malloc(100);
  std::memset(p, 0, 100);
  Escape(p);
  bop_dealloc(p);
}

__attribute__((noinline)) void WrongSizeFree() {
  void* p = bop_alloc(16);
  bop_dealloc_sized(p, 4096);
}

// The documented utils sequence with the arguments of alloc_aligned mixed up
// the old way: alloc_aligned(512, 64) asks for 64 bytes, and freeing it with
// the 512 written in the documentation names the wrong size.  Checked builds
// keep each block's requested size beside its canary, so this aborts.
__attribute__((noinline)) void MixedUpSizedFree() {
  void* ptr = bop::utils::alloc(1024);
  void* aligned_ptr = bop::utils::alloc_aligned(512, 64);  // (alignment, size) mixed up
  Escape(ptr);
  Escape(aligned_ptr);
  bop::utils::dealloc_sized(ptr, 1024);
  bop::utils::dealloc_sized(aligned_ptr, 512);
}

// A write into a freed block (use after free) that corrupts its free-list
// link; allocating the size class again must notice.
__attribute__((noinline)) void CorruptFreeList() {
  std::vector<void*> keep;
  for (int i = 0; i < 64; ++i) keep.push_back(bop_alloc(64));
  void* victim = keep[10];
  for (void* p : keep) bop_dealloc(p);
  std::memset(victim, 0x41, 16);
  for (int i = 0; i < 100000; ++i) Escape(bop_alloc(64));
}

// A write into a huge block after its free, while its mapping waits in the
// huge cache (not unmapped): the block's first 64 KiB are inaccessible, so it
// faults.
__attribute__((noinline)) void WriteAfterFreeHuge() {
  auto* p = static_cast<char*>(bop_alloc(8 << 20));
  std::memset(p, 1, 8 << 20);
  bop_dealloc(p);
  Escape(p);
  p[40000] = 2;
}

__attribute__((noinline)) void ReadAfterFreeHuge() {
  auto* p = static_cast<char*>(bop_alloc(8 << 20));
  std::memset(p, 1, 8 << 20);
  bop_dealloc(p);
  Escape(p);
  std::printf("%d\n", static_cast<volatile char*>(p)[100]);
}

// Every byte of [p, p + size) is zero.
bool AllZero(const char* p, std::size_t size) {
  for (std::size_t i = 0; i < size; ++i)
    if (p[i] != 0) return false;
  return true;
}

}  // namespace

class Checked : public ::testing::Test {
 protected:
  void SetUp() override {
    // Re-run the binary for each death test: no state shared with the parent.
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    SkipUnlessChecked();
  }
};

TEST_F(Checked, DoubleFreeSmall) {
  EXPECT_DEATH(DoubleFree(32), "bop:");
}
TEST_F(Checked, DoubleFreeMedium) {
  EXPECT_DEATH(DoubleFree(20000), "bop:");
}
TEST_F(Checked, DoubleFreeLarge) {
  EXPECT_DEATH(DoubleFree(200000), "bop:");
}
TEST_F(Checked, DoubleFreeHuge) {
  EXPECT_DEATH(DoubleFree(8 << 20), "bop:");
}
TEST_F(Checked, DoubleFreeAfterOtherFrees) {
  EXPECT_DEATH(DoubleFreeLater(), "bop:");
}
TEST_F(Checked, DoubleFreeSized) {
  EXPECT_DEATH(DoubleFreeSized(), "bop:");
}

// A double free where the second free comes from another thread.  The
// owner may only see it when it takes the remote frees back, so it keeps
// allocating that size class afterwards.
__attribute__((noinline)) void DoubleFreeRemote() {
  void* p = bop_alloc(64);
  bop_dealloc(p);
  std::thread t([p] { bop_dealloc(p); });
  t.join();
  for (int i = 0; i < 100000; ++i) Escape(bop_alloc(64));
}
TEST_F(Checked, DoubleFreeFromOtherThread) {
  EXPECT_DEATH(DoubleFreeRemote(), "bop:");
}

TEST_F(Checked, FreeOfInteriorPointerSmall) {
  EXPECT_DEATH(InteriorFree(64, 16), "bop:");
}
TEST_F(Checked, FreeOfInteriorPointerMedium) {
  EXPECT_DEATH(InteriorFree(30000, 4096), "bop:");
}
TEST_F(Checked, FreeOfInteriorPointerHuge) {
  EXPECT_DEATH(InteriorFree(4 << 20, 8192), "bop:");
}
TEST_F(Checked, FreeOfStackAddress) {
  EXPECT_DEATH(StackFree(), "bop:");
}
TEST_F(Checked, FreeOfStaticAddress) {
  EXPECT_DEATH(StaticFree(), "bop:");
}
TEST_F(Checked, FreeOfForeignHeapPointer) {
  EXPECT_DEATH(ForeignFree(), "bop:");
}
TEST_F(Checked, SizedFreeWithWrongSize) {
  EXPECT_DEATH(WrongSizeFree(), "bop:");
}
TEST_F(Checked, SizedFreeOfAlignedBlockWithWrongSize) {
  EXPECT_DEATH(MixedUpSizedFree(), "bop: sized free with a size other than the block's");
}
TEST_F(Checked, CorruptedFreeList) {
  EXPECT_DEATH(CorruptFreeList(), "bop:");
}

// The checks do not fire on correct use (so the deaths above mean something).
TEST_F(Checked, CorrectUseDoesNotAbort) {
  std::vector<void*> ptrs;
  for (std::size_t s = 0; s < 10 << 20; s = s * 2 + 1) {
    ptrs.push_back(bop_alloc(s));
    ptrs.push_back(bop_alloc_aligned(4096, s));
  }
  for (std::size_t i = 0; i < ptrs.size(); ++i) {
    ASSERT_NE(ptrs[i], nullptr);
    if (i % 2) {
      bop_dealloc(ptrs[i]);
    } else {
      std::size_t s = 0;
      for (std::size_t k = 0; k < i / 2; ++k) s = s * 2 + 1;
      bop_dealloc_sized(ptrs[i], s);
    }
  }
  std::thread t([] {
    void* p = bop_alloc(64);
    std::thread([p] { bop_dealloc(p); }).join();
  });
  t.join();
}

TEST_F(Checked, WriteAfterFreeOfCachedHugeBlockFaults) {
  EXPECT_DEATH(WriteAfterFreeHuge(), "");
}
TEST_F(Checked, ReadAfterFreeOfCachedHugeBlockFaults) {
  EXPECT_DEATH(ReadAfterFreeHuge(), "");
}

// Huge mappings freed into the cache come back accessible, whole, split (a
// smaller request moved off a larger mapping's end) or gathered (a larger
// request grown from one mapping and filled with another's pages): their
// first KiB reads zero, as every checked block's does, and calloc's whole.
TEST_F(Checked, HugeBlocksFromTheCacheAreAccessibleAndZero) {
  constexpr std::size_t kMiB = 1 << 20;
  constexpr std::size_t kZeroPrefix = 1024;
  auto reuse = [](std::initializer_list<std::size_t> freed, std::size_t wanted, bool calloc) {
    std::vector<char*> blocks;
    for (std::size_t size : freed) {
      auto* p = static_cast<char*>(bop_alloc(size));
      ASSERT_NE(p, nullptr);
      std::memset(p, 0x5A, size);
      blocks.push_back(p);
    }
    for (char* p : blocks) bop_dealloc(p);
    auto* q = static_cast<char*>(calloc ? bop_calloc(1, wanted) : bop_alloc(wanted));
    ASSERT_NE(q, nullptr);
    EXPECT_TRUE(AllZero(q, calloc ? wanted : kZeroPrefix))
        << wanted << " bytes after freeing " << freed.size() << (calloc ? ", calloc" : "");
    std::memset(q, 0x33, wanted);  // writable throughout
    EXPECT_EQ(bop_malloc_usable_size(q), wanted);
    bop_dealloc(q);
  };
  for (bool calloc : {false, true}) {
    reuse({8 * kMiB}, 8 * kMiB, calloc);            // the same mapping, whole
    reuse({16 * kMiB}, 2 * kMiB, calloc);           // split off a larger one
    reuse({3 * kMiB, 3 * kMiB}, 5 * kMiB, calloc);  // grown and filled
    reuse({1 * kMiB}, 600 * 1024, calloc);          // a mapping up to twice the request, whole
  }
}
