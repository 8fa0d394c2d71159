// Reuse of freed huge blocks (src/core/huge.cpp): cached mappings are split,
// carved and grown by moving their pages (no copy), so a block may be built
// from pages that belonged to other blocks.  These tests check what a user
// can see of that: blocks never overlap, content written to a block stays,
// zeroed allocations read zero whatever the pages held before, and realloc
// of a block built from moved pages still keeps its content.
#include <bop/bop.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <thread>

#include "test_util.hpp"

namespace {

using namespace bop_test;

bool AllZero(const void* p, std::size_t n) {
  const auto* c = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i)
    if (c[i] != 0) return false;
  return true;
}

// Dirty every page of a fresh huge block, then free it: its pages go to the
// cache still holding the pattern.
void FreeDirty(std::size_t size, std::uint64_t seed) {
  void* p = bop_alloc(size);
  ASSERT_NE(p, nullptr);
  FillPattern(p, size, seed);
  bop_dealloc(p);
}

// A small request served from a large cached mapping: the request is carved
// off its end and the rest stays cached.  Both halves are then live at once,
// must not overlap, and zeroed requests read zero.
TEST(HugeReuse, SplitHalvesAreDisjointAndZeroed) {
  FreeDirty(3 * MiB, 1);
  void* a = bop_zalloc(1 * MiB + 4096);  // carved off the 3 MiB mapping; 2 MiB stay cached
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(AllZero(a, 1 * MiB + 4096));
  void* b = bop_zalloc(1 * MiB + 512 * KiB);  // likely what stayed cached
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(AllZero(b, 1 * MiB + 512 * KiB));
  FillPattern(a, 1 * MiB + 4096, 2);
  FillPattern(b, 1 * MiB + 512 * KiB, 3);
  EXPECT_TRUE(HasPattern(a, 1 * MiB + 4096, 2));
  EXPECT_TRUE(HasPattern(b, 1 * MiB + 512 * KiB, 3));
  bop_dealloc(a);
  bop_dealloc(b);
}

TEST(HugeReuse, CarvedBlockIsZeroedAndKeepsContent) {
  FreeDirty(4 * MiB, 4);
  void* a = bop_calloc(1, 700 * KiB);  // far smaller: carved off the cached mapping's end
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(AllZero(a, 700 * KiB));
  void* b = bop_calloc(3, MiB);  // what is left of it
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(AllZero(b, 3 * MiB));
  FillPattern(a, 700 * KiB, 5);
  FillPattern(b, 3 * MiB, 6);
  EXPECT_TRUE(HasPattern(a, 700 * KiB, 5));
  EXPECT_TRUE(HasPattern(b, 3 * MiB, 6));
  bop_dealloc(b);
  bop_dealloc(a);
}

// A request larger than every cached mapping: the largest grows and the
// others' pages are moved into it.  It must read zero, and it must still
// grow by realloc with its content (its kernel mappings are several).
TEST(HugeReuse, GatheredBlockIsZeroedAndReallocKeepsContent) {
  void* keep[3];
  const std::size_t sizes[3] = {600 * KiB, 900 * KiB, 1200 * KiB};
  for (int i = 0; i < 3; ++i) {
    keep[i] = bop_alloc(sizes[i]);
    ASSERT_NE(keep[i], nullptr);
    FillPattern(keep[i], sizes[i], 10 + i);
  }
  for (void* p : keep) bop_dealloc(p);
  const std::size_t n = 2 * MiB + 600 * KiB;
  void* g = bop_zalloc(n);
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(AllZero(g, n));
  FillPattern(g, n, 20);
  void* fence = bop_alloc(5 * MiB);  // makes growing in place less likely
  ASSERT_NE(fence, nullptr);
  void* h = bop_realloc(g, 9 * MiB);
  ASSERT_NE(h, nullptr);
  EXPECT_TRUE(HasPattern(h, n, 20));
  static_cast<unsigned char*>(h)[9 * MiB - 1] = 1;
  void* s = bop_realloc(h, 1 * MiB);  // and down again
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(HasPattern(s, 1 * MiB, 20));
  bop_dealloc(s);
  bop_dealloc(fence);
}

// Random churn of huge blocks on two threads: every live block carries its
// own pattern on its first, middle and last pages, checked before it is
// freed; any overlap between blocks built from moved pages breaks one.
TEST(HugeReuse, ThreadedChurnKeepsBlocksApart) {
  auto churn = [](std::uint64_t seed, bool* ok) {
    constexpr int kLive = 24;
    unsigned char* live[kLive] = {};
    std::size_t len[kLive] = {};
    std::uint64_t tag[kLive] = {};
    std::uint64_t x = seed;
    auto next = [&x] {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      return x;
    };
    auto mark = [](unsigned char* p, std::size_t n, std::uint64_t t) {
      std::memcpy(p, &t, sizeof t);
      std::memcpy(p + n / 2, &t, sizeof t);
      std::memcpy(p + n - sizeof t, &t, sizeof t);
    };
    auto marked = [](const unsigned char* p, std::size_t n, std::uint64_t t) {
      return std::memcmp(p, &t, sizeof t) == 0 && std::memcmp(p + n / 2, &t, sizeof t) == 0 &&
             std::memcmp(p + n - sizeof t, &t, sizeof t) == 0;
    };
    for (int step = 0; step < 3000; ++step) {
      int i = static_cast<int>(next() % kLive);
      if (live[i] != nullptr) {
        if (!marked(live[i], len[i], tag[i])) *ok = false;
        bop_dealloc(live[i]);
      }
      len[i] = 520 * KiB + next() % (5 * MiB);
      bool zeroed = next() % 4 == 0;
      live[i] = static_cast<unsigned char*>(zeroed ? bop_zalloc(len[i]) : bop_alloc(len[i]));
      if (live[i] == nullptr) {
        *ok = false;
        return;
      }
      if (zeroed && !(AllZero(live[i], 4096) && AllZero(live[i] + len[i] - 4096, 4096)))
        *ok = false;
      tag[i] = next();
      mark(live[i], len[i], tag[i]);
    }
    for (int i = 0; i < kLive; ++i) {
      if (live[i] != nullptr && !marked(live[i], len[i], tag[i])) *ok = false;
      bop_dealloc(live[i]);
    }
  };
  bool ok1 = true, ok2 = true;
  std::thread t1(churn, 0x1234567u, &ok1);
  std::thread t2(churn, 0x89abcdefu, &ok2);
  t1.join();
  t2.join();
  EXPECT_TRUE(ok1);
  EXPECT_TRUE(ok2);
}

}  // namespace
