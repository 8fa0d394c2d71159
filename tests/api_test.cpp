// api_test: the C API (bop.h) and the C++ API (allocator.hpp, stl.hpp) on
// their own, with malloc left alone (links bop::bop).
#include <bop/bop.h>
#include <bop/stats_allocator.h>
#include <bop/allocator.hpp>
#include <bop/stl.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <map>
#include <memory_resource>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

using namespace bop_test;

namespace {

constexpr std::size_t kSizeMax = static_cast<std::size_t>(-1);

// bop_alloc guarantees 16-byte alignment for every size (bop.h).
std::size_t MinAlign(std::size_t) {
  return 16;
}

// Sizes 1..70000: every size up to 1024, then 64 steps per doubling.
std::vector<std::size_t> SweepSizes() {
  std::vector<std::size_t> sizes;
  for (std::size_t s = 1; s <= 1024; ++s) sizes.push_back(s);
  for (std::size_t s = 1024; s <= 70000;) {
    std::size_t step = std::max<std::size_t>(s / 64, 1);
    // Hit both sides of every step boundary (where class edges live).
    sizes.push_back(s + 1);
    s += step;
    sizes.push_back(s - 1);
    sizes.push_back(s);
  }
  sizes.push_back(70000);
  return sizes;
}

struct Block {
  unsigned char* p;
  std::size_t size;
  std::size_t usable;
};

// Live blocks must not overlap: sort by address, each must end before the next starts.
void ExpectNoOverlap(std::vector<Block> blocks) {
  std::sort(blocks.begin(), blocks.end(), [](const Block& a, const Block& b) { return a.p < b.p; });
  for (std::size_t i = 1; i < blocks.size(); ++i) {
    const Block& a = blocks[i - 1];
    const Block& b = blocks[i];
    std::size_t a_len = std::max<std::size_t>(a.usable, 1);
    EXPECT_LE(reinterpret_cast<std::uintptr_t>(a.p) + a_len, reinterpret_cast<std::uintptr_t>(b.p))
        << "block of size " << a.size << " (usable " << a.usable << ") at "
        << static_cast<void*>(a.p) << " overlaps block of size " << b.size << " at "
        << static_cast<void*>(b.p);
  }
}

// Checks one fresh block: non-null, usable >= size, a sane usable size,
// aligned, and writable over its whole usable size.
void CheckFreshBlock(void* p, std::size_t size, std::size_t align, std::uint64_t seed) {
  ASSERT_NE(p, nullptr) << "size " << size << " align " << align;
  std::size_t usable = bop_malloc_usable_size(p);
  EXPECT_GE(usable, size) << "size " << size;
  // A usable size far above the request would be a wrong size class.
  EXPECT_LE(usable, std::max(2 * size, align) + 4096) << "size " << size << " align " << align;
  EXPECT_TRUE(IsAligned(p, align)) << p << " size " << size << " align " << align;
  FillPattern(p, usable, seed);
}

}  // namespace

// ---------------------------------------------------------------------------
// Sizes
// ---------------------------------------------------------------------------

// Size 0 gives a non-null, unique, freeable pointer every time.
TEST(Sizes, ZeroIsUniqueAndFreeable) {
  std::set<void*> seen;
  std::vector<void*> ptrs;
  for (int i = 0; i < 256; ++i) {
    void* p = bop_alloc(0);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(seen.insert(p).second) << "bop_alloc(0) returned " << p << " twice";
    EXPECT_TRUE(IsAligned(p, 8));
    ptrs.push_back(p);
  }
  for (std::size_t i = 0; i < ptrs.size(); ++i) {
    if (i % 2) {
      bop_dealloc(ptrs[i]);
    } else {
      bop_dealloc_sized(ptrs[i], 0);
    }
  }
  void* z = bop_zalloc(0);
  ASSERT_NE(z, nullptr);
  bop_dealloc(z);
  void* c = bop_calloc(0, 16);
  ASSERT_NE(c, nullptr);
  void* c2 = bop_calloc(16, 0);
  ASSERT_NE(c2, nullptr);
  EXPECT_NE(c, c2);
  bop_dealloc(c);
  bop_dealloc(c2);
}

// Size 1 is a real, writable block.
TEST(Sizes, One) {
  auto* p = static_cast<unsigned char*>(bop_alloc(1));
  ASSERT_NE(p, nullptr);
  EXPECT_GE(bop_malloc_usable_size(p), 1u);
  EXPECT_TRUE(IsAligned(p, 8));
  p[0] = 0xAB;
  Escape(p);
  EXPECT_EQ(p[0], 0xAB);
  bop_dealloc_sized(p, 1);
}

// Every size 1..70000 (all class boundaries): usable >= requested, aligned,
// writable over the whole usable size, and live blocks never overlap.
TEST(Sizes, SweepTo70000) {
  std::vector<Block> blocks;
  std::vector<std::size_t> sizes = SweepSizes();
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    std::size_t s = sizes[i];
    void* p = bop_alloc(s);
    ASSERT_NO_FATAL_FAILURE(CheckFreshBlock(p, s, MinAlign(s), i));
    blocks.push_back({static_cast<unsigned char*>(p), s, bop_malloc_usable_size(p)});
  }
  ExpectNoOverlap(blocks);
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    EXPECT_TRUE(HasPattern(blocks[i].p, blocks[i].usable, i))
        << "block of size " << blocks[i].size << " was overwritten";
  }
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    if (i % 2) {
      bop_dealloc(blocks[i].p);
    } else {
      bop_dealloc_sized(blocks[i].p, blocks[i].size);
    }
  }
}

// Every power of two +-1 up to 64 MiB, the same checks.
TEST(Sizes, PowersOfTwoTo64MiB) {
  for (unsigned k = 0; k <= 26; ++k) {
    std::size_t pow = std::size_t{1} << k;
    std::vector<Block> blocks;
    for (std::size_t s : {pow - 1, pow, pow + 1}) {
      void* p = bop_alloc(s);
      ASSERT_NO_FATAL_FAILURE(CheckFreshBlock(p, s, MinAlign(s), s));
      blocks.push_back({static_cast<unsigned char*>(p), s, bop_malloc_usable_size(p)});
    }
    ExpectNoOverlap(blocks);
    for (const Block& b : blocks) {
      EXPECT_TRUE(HasPattern(b.p, b.usable, b.size)) << "size " << b.size;
      bop_dealloc_sized(b.p, b.size);
    }
  }
}

// Many small blocks of one size at once: distinct, non-overlapping, intact.
TEST(Sizes, ManySmallBlocksDoNotOverlap) {
  for (std::size_t s : {8, 16, 24, 48, 64, 80, 128, 1000, 8192}) {
    std::vector<Block> blocks;
    for (int i = 0; i < 2000; ++i) {
      void* p = bop_alloc(s);
      ASSERT_NE(p, nullptr);
      std::size_t u = bop_malloc_usable_size(p);
      FillPattern(p, u, s * 10000 + i);
      blocks.push_back({static_cast<unsigned char*>(p), s, u});
    }
    ExpectNoOverlap(blocks);
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      EXPECT_TRUE(HasPattern(blocks[i].p, blocks[i].usable, s * 10000 + i)) << "size " << s;
      bop_dealloc(blocks[i].p);
    }
  }
}

// A freed block is reused: freeing and reallocating the same size many times
// does not keep handing out new memory.
TEST(Sizes, FreedMemoryIsReused) {
  std::set<void*> seen;
  for (int i = 0; i < 10000; ++i) {
    void* p = bop_alloc(48);
    ASSERT_NE(p, nullptr);
    seen.insert(p);
    bop_dealloc(p);
  }
  EXPECT_LT(seen.size(), 100u);
}

// Requests that cannot be satisfied return NULL with ENOMEM, also where a
// naive size + header or round-up computation would wrap around.
TEST(Sizes, NearSizeMaxFailsWithEnomem) {
  const std::size_t huge[] = {kSizeMax,
                              kSizeMax - 1,
                              kSizeMax - 15,
                              kSizeMax - 16,
                              kSizeMax - 4095,
                              kSizeMax - 4096,
                              kSizeMax - (std::size_t{1} << 21),
                              kSizeMax - (std::size_t{1} << 22) + 1,
                              kSizeMax / 2 + 1,
                              static_cast<std::size_t>(PTRDIFF_MAX),
                              std::size_t{1} << 62,
                              std::size_t{1} << 48};
  void* keep = bop_alloc(100);
  ASSERT_NE(keep, nullptr);
  FillPattern(keep, 100, 7);
  auto expect_enomem = [](void* p, const char* what, std::size_t size) {
    int e = errno;
    EXPECT_EQ(p, nullptr) << what << "(" << size << ")";
    EXPECT_EQ(e, ENOMEM) << what << "(" << size << ")";
    if (p) bop_dealloc(p);
  };
  for (std::size_t s : huge) {
    s = Opaque(s);
    errno = 0;
    expect_enomem(bop_alloc(s), "bop_alloc", s);
    errno = 0;
    expect_enomem(bop_zalloc(s), "bop_zalloc", s);
    errno = 0;
    expect_enomem(bop_calloc(1, s), "bop_calloc(1, n)", s);
    errno = 0;
    expect_enomem(bop_calloc(s, 1), "bop_calloc(n, 1)", s);
    for (std::size_t a :
         {std::size_t{64}, std::size_t{4096}, std::size_t{1} << 20, std::size_t{1} << 23}) {
      errno = 0;
      expect_enomem(bop_alloc_aligned(a, s), "bop_alloc_aligned", s);
      errno = 0;
      expect_enomem(bop_zalloc_aligned(a, s), "bop_zalloc_aligned", s);
      errno = 0;
      expect_enomem(bop_realloc_aligned(nullptr, a, s), "bop_realloc_aligned(NULL)", s);
    }
    errno = 0;
    expect_enomem(bop_realloc(nullptr, s), "bop_realloc(NULL)", s);
    // A failed realloc leaves the block untouched.
    errno = 0;
    void* r = bop_realloc(keep, s);
    expect_enomem(r, "bop_realloc(p)", s);
    errno = 0;
    r = bop_realloc_aligned(keep, 64, s);
    expect_enomem(r, "bop_realloc_aligned(p)", s);
    EXPECT_TRUE(HasPattern(keep, 100, 7));
  }
  bop_dealloc(keep);
}

// Alignments that are powers of two but cannot be served: NULL + ENOMEM.
TEST(Sizes, ImpossibleAlignmentFailsWithEnomem) {
  for (std::size_t a : {std::size_t{1} << 63, std::size_t{1} << 62, std::size_t{1} << 50}) {
    a = Opaque(a);
    errno = 0;
    void* p = bop_alloc_aligned(a, 1);
    EXPECT_EQ(p, nullptr) << "alignment " << a;
    EXPECT_EQ(errno, ENOMEM) << "alignment " << a;
    if (p) bop_dealloc(p);
  }
}

// ---------------------------------------------------------------------------
// calloc / zeroed memory
// ---------------------------------------------------------------------------

// count * size overflow is detected (including products that wrap to a small
// or zero size).
TEST(Zero, CallocOverflow) {
  const std::pair<std::size_t, std::size_t> cases[] = {
      {kSizeMax, 2},
      {2, kSizeMax},
      {kSizeMax / 2 + 1, 2},
      {std::size_t{1} << 32, std::size_t{1} << 32},              // wraps to 0
      {std::size_t{1} << 33, (std::size_t{1} << 31) + 1},        // wraps to 8 GiB
      {(std::size_t{1} << 32) + 1, (std::size_t{1} << 32) - 1},  // 2^64 - 1, just fits
      {kSizeMax, kSizeMax},
      {std::size_t{65537}, (kSizeMax / 65537) + 1},
  };
  for (auto [n, s] : cases) {
    errno = 0;
    void* p = bop_calloc(Opaque(n), Opaque(s));
    int e = errno;
    EXPECT_EQ(p, nullptr) << "bop_calloc(" << n << ", " << s << ")";
    EXPECT_EQ(e, ENOMEM) << "bop_calloc(" << n << ", " << s << ")";
    if (p) bop_dealloc(p);
  }
}

// calloc/zalloc memory is zero, also when the blocks reuse memory that was
// just filled with 0xFF and freed, and after bop_collect purged it.
TEST(Zero, ZeroedMemoryIsZeroWhenReused) {
  const std::size_t sizes[] = {1,    8,     16,    24,    48,     100,     256,        1000,
                               4096, 10000, 65536, 70000, 300000, 1 * MiB, 8 * MiB + 1};
  for (std::size_t s : sizes) {
    // Keep each size's work near 16 MiB of writes per round.
    std::size_t count = std::clamp<std::size_t>(4 * MiB / s, 2, 64);
    int rounds = s >= MiB ? 4 : 20;
    std::vector<void*> ptrs(count);
    for (int round = 0; round < rounds; ++round) {
      for (auto& p : ptrs) {
        p = bop_alloc(s);
        ASSERT_NE(p, nullptr);
        std::memset(p, 0xFF, bop_malloc_usable_size(p));
      }
      for (void* p : ptrs) bop_dealloc(p);
      if (round == rounds - 1) bop_collect();
      for (std::size_t i = 0; i < count; ++i) {
        switch ((round + i) % 4) {
          case 0:
            ptrs[i] = bop_zalloc(s);
            break;
          case 1:
            ptrs[i] = bop_calloc(1, s);
            break;
          case 2:
            ptrs[i] = bop_zalloc_aligned(64, s);
            break;
          default:
            ptrs[i] = bop::BopAllocator().alloc_zeroed(bop::Layout(s, 32));
            break;
        }
        ASSERT_NE(ptrs[i], nullptr);
        ASSERT_EQ(FirstNonZero(ptrs[i], s), s)
            << "zeroed block of size " << s << " round " << round << " variant " << (round + i) % 4
            << " holds old bytes";
      }
      for (void* p : ptrs) bop_dealloc(p);
    }
  }
}

// A page's free list is one LIFO list: a freed (dirty) block lies on top of
// the never-used, fresh ones, which zalloc hands out without clearing.  On a
// fresh thread (fresh pages), zalloc after a free, after a remote free, and
// between fresh blocks must all return zero memory.
TEST(Zero, ZallocOfFreedBlocksOnFreshPagesIsZero) {
  const std::size_t sizes[] = {16, 48, 128, 512, 1024, 3000, 20000};
  std::thread([&] {
    for (std::size_t s : sizes) {
      auto dirty = [s] {
        void* p = bop_alloc(s);
        std::memset(p, 0xFF, s);
        return p;
      };
      void* fresh = bop_zalloc(s);
      EXPECT_EQ(FirstNonZero(fresh, s), s) << "fresh zalloc of " << s;
      bop_dealloc(dirty());  // the next block on the list is this freed one
      void* reused = bop_zalloc(s);
      EXPECT_EQ(FirstNonZero(reused, s), s) << "zalloc of " << s << " after a local free";
      // Freed by another thread, then collected into this thread's pages.
      std::vector<void*> sent;
      for (int i = 0; i < 8; ++i) sent.push_back(dirty());
      std::thread([&] {
        for (void* p : sent) bop_dealloc(p);
      }).join();
      std::vector<void*> got;
      for (int i = 0; i < 32; ++i) {
        got.push_back(bop_zalloc(s));
        EXPECT_EQ(FirstNonZero(got.back(), s), s)
            << "zalloc " << i << " of " << s << " after remote frees";
      }
      for (void* p : got) bop_dealloc(p);
      bop_dealloc(reused);
      bop_dealloc(fresh);
    }
  }).join();
}

// calloc with count > 1 zeroes the whole product.
TEST(Zero, CallocCountTimesSize) {
  for (int round = 0; round < 10; ++round) {
    void* dirty = bop_alloc(24 * 1000);
    ASSERT_NE(dirty, nullptr);
    std::memset(dirty, 0xFF, 24 * 1000);
    bop_dealloc(dirty);
    void* p = bop_calloc(1000, 24);
    ASSERT_NE(p, nullptr);
    EXPECT_GE(bop_malloc_usable_size(p), 24000u);
    EXPECT_EQ(FirstNonZero(p, 24000), 24000u);
    bop_dealloc(p);
  }
}

// bop.h: memory fresh from the OS is not cleared a second time, so a big
// zalloc does not fault in its pages (runs in a child to start from a clean
// RSS reading).
TEST(Zero, FreshZallocDoesNotTouchPages) {
  ChildResult r = RunInChild([] {
    const std::size_t size = 96 * MiB + 12345;
    std::size_t before = RssBytes();
    void* p = bop_zalloc(size);
    CHILD_CHECK(p != nullptr);
    std::size_t after = RssBytes();
    if (after > before + 16 * MiB) {
      std::fprintf(stderr, "bop_zalloc(%zu) grew RSS by %zu MiB: fresh memory was cleared\n", size,
                   (after - before) / MiB);
      return 1;
    }
    void* q = bop_calloc(size / 16, 16);
    CHILD_CHECK(q != nullptr);
    std::size_t after2 = RssBytes();
    if (after2 > after + 16 * MiB) {
      std::fprintf(stderr, "bop_calloc grew RSS by %zu MiB: fresh memory was cleared\n",
                   (after2 - after) / MiB);
      return 1;
    }
    // Spot-check that it is zero anyway.
    CHILD_CHECK(static_cast<unsigned char*>(p)[size - 1] == 0);
    CHILD_CHECK(static_cast<unsigned char*>(q)[size / 2] == 0);
    bop_dealloc(p);
    bop_dealloc(q);
    return 0;
  });
  EXPECT_TRUE(r.ok()) << r.describe();
}

// ---------------------------------------------------------------------------
// Alignment
// ---------------------------------------------------------------------------

// Every power-of-two alignment 1..1 MiB with sizes 0, 1, a, a+1, 3a, through
// bop_alloc_aligned, bop_zalloc_aligned and bop_realloc_aligned (from NULL
// and from an existing block): aligned, usable >= size, writable, zeroed
// where promised, and no overlap.
TEST(Alignment, EveryPowerOfTwoTo1MiB) {
  std::uint64_t seed = 1;
  for (std::size_t a = 1; a <= MiB; a *= 2) {
    std::vector<Block> blocks;
    for (std::size_t s : {std::size_t{0}, std::size_t{1}, a, a + 1, 3 * a}) {
      for (int variant = 0; variant < 4; ++variant) {
        void* p = nullptr;
        switch (variant) {
          case 0:
            p = bop_alloc_aligned(a, s);
            break;
          case 1:
            p = bop_zalloc_aligned(a, s);
            if (p) {
              EXPECT_EQ(FirstNonZero(p, s), s) << "zalloc_aligned(" << a << ", " << s << ")";
            }
            break;
          case 2:
            p = bop_realloc_aligned(nullptr, a, s);
            break;
          default: {
            // Grow an ordinary block into an aligned one; content moves along.
            void* q = bop_alloc(5);
            if (!q) break;
            std::memcpy(q, "abcde", 5);
            p = bop_realloc_aligned(q, a, std::max<std::size_t>(s, 5));
            if (p) {
              EXPECT_EQ(std::memcmp(p, "abcde", 5), 0) << "realloc_aligned(" << a << ")";
            }
            s = std::max<std::size_t>(s, 5);
            break;
          }
        }
        ASSERT_NO_FATAL_FAILURE(CheckFreshBlock(p, s, a, seed))
            << "variant " << variant << " alignment " << a;
        blocks.push_back({static_cast<unsigned char*>(p), s, bop_malloc_usable_size(p)});
        ++seed;
      }
    }
    ExpectNoOverlap(blocks);
    std::uint64_t first_seed = seed - blocks.size();
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      EXPECT_TRUE(HasPattern(blocks[i].p, blocks[i].usable, first_seed + i))
          << "alignment " << a << " size " << blocks[i].size;
      if (i % 2) {
        bop_dealloc(blocks[i].p);
      } else {
        bop_dealloc_sized(blocks[i].p, blocks[i].size);
      }
    }
  }
}

// Alignments 2 MiB..64 MiB for a few sizes.
// README: a plain power-of-two request up to 64 KiB is naturally aligned (in
// checked builds too, whose canary and stored size push it past its class).
// Many blocks of each size, so blocks deep into a page are seen too.
TEST(Alignment, PowerOfTwoRequestsAreNaturallyAligned) {
  for (std::size_t size = 16; size <= 64 * KiB; size *= 2) {
    std::vector<void*> blocks;
    for (int i = 0; i < 40; ++i) {
      void* p = i % 2 ? bop_alloc(size) : bop_zalloc(size);
      ASSERT_NE(p, nullptr);
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % size, 0u) << size << " bytes, block " << i;
      blocks.push_back(p);
    }
    for (void* p : blocks) bop_dealloc_sized(p, size);
  }
}

TEST(Alignment, HugeAlignmentsTo64MiB) {
  for (std::size_t a = 2 * MiB; a <= 64 * MiB; a *= 2) {
    for (std::size_t s : {std::size_t{1}, std::size_t{4096}, a}) {
      void* p = bop_alloc_aligned(a, s);
      ASSERT_NO_FATAL_FAILURE(CheckFreshBlock(p, s, a, s + a));
      void* z = bop_zalloc_aligned(a, s);
      ASSERT_NE(z, nullptr);
      EXPECT_TRUE(IsAligned(z, a));
      EXPECT_EQ(FirstNonZero(z, s), s);
      EXPECT_TRUE(HasPattern(p, s, s + a));
      bop_dealloc(z);
      // Grow with the same alignment: stays aligned, keeps content.
      void* q = bop_realloc_aligned(p, a, s + a);
      ASSERT_NE(q, nullptr);
      EXPECT_TRUE(IsAligned(q, a));
      EXPECT_TRUE(HasPattern(q, s, s + a));
      bop_dealloc_sized(q, s + a);
    }
  }
}

// Zero-size requests honour the alignment too.
TEST(Alignment, ZeroSizeIsAligned) {
  for (std::size_t a = 1; a <= 4 * MiB; a *= 2) {
    void* p = bop_alloc_aligned(a, 0);
    ASSERT_NE(p, nullptr) << a;
    EXPECT_TRUE(IsAligned(p, a)) << a;
    void* z = bop_zalloc_aligned(a, 0);
    ASSERT_NE(z, nullptr) << a;
    EXPECT_TRUE(IsAligned(z, a)) << a;
    EXPECT_NE(p, z);
    bop_dealloc(p);
    bop_dealloc_sized(z, 0);
  }
}

// realloc_aligned up and down keeps both alignment and content.
TEST(Alignment, ReallocAlignedKeepsAlignmentAndContent) {
  for (std::size_t a : {std::size_t{16}, std::size_t{64}, std::size_t{256}, std::size_t{4096},
                        std::size_t{65536}, std::size_t{1} << 20, std::size_t{8} << 20}) {
    std::size_t size = 1;
    void* p = bop_alloc_aligned(a, size);
    ASSERT_NE(p, nullptr);
    FillPattern(p, size, a);
    for (std::size_t next : {a + 1, 3 * a, a / 2 + 1, std::size_t{5}, 5 * a + 17, std::size_t{0}}) {
      void* q = bop_realloc_aligned(p, a, next);
      ASSERT_NE(q, nullptr) << "alignment " << a << " -> " << next;
      EXPECT_TRUE(IsAligned(q, a)) << "alignment " << a << " -> " << next;
      EXPECT_GE(bop_malloc_usable_size(q), next);
      std::size_t kept = std::min(size, next);
      EXPECT_EQ(PatternMismatch(q, kept, a), kept)
          << "alignment " << a << " " << size << " -> " << next;
      FillPattern(q, next, a);
      p = q;
      size = next;
    }
    bop_dealloc(p);
  }
}

// Alignments that are not powers of two: NULL + EINVAL, block untouched.
TEST(Alignment, InvalidAlignmentIsEinval) {
  const std::size_t bad[] = {0,
                             3,
                             5,
                             6,
                             7,
                             12,
                             24,
                             48,
                             100,
                             1000,
                             4097,
                             (1 << 20) + 1,
                             3 << 20,
                             kSizeMax,
                             kSizeMax / 2,
                             (std::size_t{1} << 63) + 1};
  void* keep = bop_alloc(200);
  ASSERT_NE(keep, nullptr);
  FillPattern(keep, 200, 99);
  for (std::size_t a : bad) {
    a = Opaque(a);
    for (std::size_t s : {std::size_t{0}, std::size_t{1}, std::size_t{100}}) {
      errno = 0;
      void* p = bop_alloc_aligned(a, s);
      EXPECT_EQ(p, nullptr) << "bop_alloc_aligned(" << a << ", " << s << ")";
      EXPECT_EQ(errno, EINVAL) << "bop_alloc_aligned(" << a << ", " << s << ")";
      if (p) bop_dealloc(p);
      errno = 0;
      p = bop_zalloc_aligned(a, s);
      EXPECT_EQ(p, nullptr) << "bop_zalloc_aligned(" << a << ", " << s << ")";
      EXPECT_EQ(errno, EINVAL) << "bop_zalloc_aligned(" << a << ", " << s << ")";
      if (p) bop_dealloc(p);
      errno = 0;
      p = bop_realloc_aligned(nullptr, a, s);
      EXPECT_EQ(p, nullptr) << "bop_realloc_aligned(NULL, " << a << ", " << s << ")";
      EXPECT_EQ(errno, EINVAL) << "bop_realloc_aligned(NULL, " << a << ", " << s << ")";
      if (p) bop_dealloc(p);
    }
    errno = 0;
    void* r = bop_realloc_aligned(keep, a, 300);
    EXPECT_EQ(r, nullptr) << "bop_realloc_aligned(p, " << a << ")";
    EXPECT_EQ(errno, EINVAL) << "bop_realloc_aligned(p, " << a << ")";
    if (r) keep = r;  // (a bug: keep the test going)
    EXPECT_TRUE(HasPattern(keep, 200, 99));
    // The C++ API reports the same.
    bop::Layout layout(64, a);
    EXPECT_FALSE(layout.is_valid());
    errno = 0;
    void* c = bop::BopAllocator().alloc(layout);
    EXPECT_EQ(c, nullptr);
    EXPECT_EQ(errno, EINVAL);
    errno = 0;
    void* cz = bop::BopAllocator().alloc_zeroed(layout);
    EXPECT_EQ(cz, nullptr);
    EXPECT_EQ(errno, EINVAL);
    errno = 0;
    void* u = bop::utils::alloc_aligned(a, 64);
    EXPECT_EQ(u, nullptr);
    EXPECT_EQ(errno, EINVAL);
  }
  bop_dealloc(keep);
}

// ---------------------------------------------------------------------------
// realloc
// ---------------------------------------------------------------------------

// Up and down across size classes (small, medium, large, huge), content kept.
TEST(Realloc, AcrossSizeClassesKeepsContent) {
  const std::size_t steps[] = {
      1,     8,    9,    16,   17,    63,    64,     65,     100,         1000, 1024,    1025,
      4096,  5000, 8192, 8193, 65536, 65537, 70000,  524288, 524289,      MiB,  3 * MiB, 5 * MiB,
      70000, 8193, 1000, 64,   17,    1,     300000, 12,     4 * MiB + 1, 24};
  std::size_t size = 0;
  void* p = bop_realloc(nullptr, 0);  // realloc(NULL) acts as alloc
  ASSERT_NE(p, nullptr);
  std::uint64_t seed = 1000;
  for (std::size_t next : steps) {
    void* q = bop_realloc(p, next);
    ASSERT_NE(q, nullptr) << size << " -> " << next;
    EXPECT_GE(bop_malloc_usable_size(q), next);
    EXPECT_TRUE(IsAligned(q, MinAlign(next)));
    std::size_t kept = std::min(size, next);
    EXPECT_EQ(PatternMismatch(q, kept, seed), kept) << size << " -> " << next;
    ++seed;
    FillPattern(q, next, seed);
    p = q;
    size = next;
  }
  bop_dealloc(p);
}

// Growing within the usable size keeps the block in place (bop.h).
TEST(Realloc, FitsInPlace) {
  for (std::size_t s : {1, 20, 100, 1000, 5000, 50000, 200000, 2000000}) {
    void* p = bop_alloc(s);
    ASSERT_NE(p, nullptr);
    std::size_t u = bop_malloc_usable_size(p);
    FillPattern(p, s, s);
    EXPECT_EQ(bop_realloc(p, u), p) << "size " << s << " usable " << u;
    EXPECT_TRUE(HasPattern(p, s, s));
    bop_dealloc(p);
  }
}

// realloc(NULL, n) allocates; realloc(p, 0) returns a pointer that can be freed.
TEST(Realloc, NullAndZero) {
  void* p = bop_realloc(nullptr, 100);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(bop_malloc_usable_size(p), 100u);
  FillPattern(p, 100, 1);
  void* z = bop_realloc(p, 0);
  ASSERT_NE(z, nullptr);  // bop.h: a fresh minimal block, never NULL on success
  bop_dealloc(z);
  void* a = bop_realloc_aligned(nullptr, 4096, 100);
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(IsAligned(a, 4096));
  void* az = bop_realloc_aligned(a, 4096, 0);
  ASSERT_NE(az, nullptr);
  EXPECT_TRUE(IsAligned(az, 4096));
  bop_dealloc(az);
}

// Huge blocks: 1 MiB -> 200 MiB -> 4 KiB keeps content.
TEST(Realloc, HugeBlocksKeepContent) {
  void* p = bop_alloc(MiB);
  ASSERT_NE(p, nullptr);
  FillPattern(p, MiB, 42);
  void* q = bop_realloc(p, 200 * MiB);
  ASSERT_NE(q, nullptr);
  EXPECT_GE(bop_malloc_usable_size(q), 200 * MiB);
  EXPECT_TRUE(HasPattern(q, MiB, 42));
  // Write the new tail (sparsely: one word per page plus the last byte).
  auto* b = static_cast<unsigned char*>(q);
  for (std::size_t off = MiB; off < 200 * MiB; off += 4096)
    b[off] = static_cast<unsigned char>(off >> 12);
  b[200 * MiB - 1] = 0x5A;
  void* r = bop_realloc(q, 4 * KiB);
  ASSERT_NE(r, nullptr);
  EXPECT_GE(bop_malloc_usable_size(r), 4 * KiB);
  EXPECT_TRUE(HasPattern(r, 4 * KiB, 42));
  // And up again from a small block to a huge one.
  void* s = bop_realloc(r, 150 * MiB + 3);
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(HasPattern(s, 4 * KiB, 42));
  static_cast<unsigned char*>(s)[150 * MiB + 2] = 1;
  bop_dealloc(s);
}

// bop.h: big blocks move with mremap, never by copying.  Growing a 64 MiB
// block whose pages are all resident must not fault in another 64 MiB (a
// copy would).  Peak RSS is read from VmHWM after resetting it.
TEST(Realloc, HugeGrowDoesNotCopy) {
  ChildResult r = RunInChild([] {
    void* p = bop_alloc(64 * MiB);
    CHILD_CHECK(p != nullptr);
    FillPattern(p, 64 * MiB, 3);
    // Something right after it, so growing in place is not trivially possible.
    void* fence = bop_alloc(64 * MiB);
    CHILD_CHECK(fence != nullptr);
    static_cast<char*>(fence)[0] = 1;
    int fd = ::open("/proc/self/clear_refs", O_WRONLY);
    if (fd < 0) return 0;  // cannot measure here; not a failure of bop
    bool reset = ::write(fd, "5", 1) == 1;
    ::close(fd);
    if (!reset) return 0;
    std::size_t rss = RssBytes();
    void* q = bop_realloc(p, 128 * MiB);
    CHILD_CHECK(q != nullptr);
    FILE* f = std::fopen("/proc/self/status", "r");
    CHILD_CHECK(f != nullptr);
    char line[256];
    std::size_t hwm_kib = 0;
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "VmHWM: %zu kB", &hwm_kib) == 1) break;
    std::fclose(f);
    CHILD_CHECK(hwm_kib != 0);
    if (hwm_kib * KiB > rss + 32 * MiB) {
      std::fprintf(stderr, "realloc 64 -> 128 MiB raised peak RSS by %zu MiB: it copied\n",
                   (hwm_kib * KiB - rss) / MiB);
      return 1;
    }
    CHILD_CHECK(HasPattern(q, 64 * MiB, 3));
    bop_dealloc(q);
    bop_dealloc(fence);
    return 0;
  });
  EXPECT_TRUE(r.ok()) << r.describe();
}

// ---------------------------------------------------------------------------
// dealloc, usable size, collect
// ---------------------------------------------------------------------------

// Sized dealloc accepts the requested size and any size up to the usable size.
TEST(Dealloc, SizedWithRequestedOrUsableSize) {
  for (int round = 0; round < 3; ++round) {
    for (std::size_t s = 0; s < 300000; s = s * 5 / 4 + 1) {
      void* p = bop_alloc(s);
      ASSERT_NE(p, nullptr);
      std::size_t u = bop_malloc_usable_size(p);
      FillPattern(p, u, s);
      switch (round) {
        case 0:
          bop_dealloc_sized(p, s);
          break;
        case 1:
          bop_dealloc_sized(p, u);
          break;
        default:
          bop_dealloc_sized(p, s + (u - s) / 2);
          break;
      }
    }
  }
  // Aligned blocks with their requested size.
  for (std::size_t a = 8; a <= MiB; a *= 4) {
    void* p = bop_alloc_aligned(a, 3 * a);
    ASSERT_NE(p, nullptr);
    bop_dealloc_sized(p, 3 * a);
  }
  bop_dealloc_sized(nullptr, 0);
  bop_dealloc_sized(nullptr, 100);
  bop_dealloc(nullptr);
}

TEST(Dealloc, UsableSizeOfNullIsZero) {
  EXPECT_EQ(bop_malloc_usable_size(nullptr), 0u);
  EXPECT_EQ(bop::utils::malloc_usable_size(nullptr), 0u);
  EXPECT_EQ(bop::BopAllocator().usable_size(nullptr), 0u);
}

// The usable size of a block does not change while it lives.
TEST(Dealloc, UsableSizeIsStable) {
  std::vector<std::pair<void*, std::size_t>> blocks;
  for (std::size_t s = 1; s < 2 * MiB; s = s * 3 / 2 + 1) {
    void* p = bop_alloc(s);
    ASSERT_NE(p, nullptr);
    blocks.push_back({p, bop_malloc_usable_size(p)});
  }
  for (int i = 0; i < 1000; ++i) bop_dealloc(bop_alloc(i));
  for (auto [p, u] : blocks) {
    EXPECT_EQ(bop_malloc_usable_size(p), u);
    bop_dealloc(p);
  }
}

// bop_collect returns free memory but keeps live blocks and the allocator working.
TEST(Dealloc, CollectKeepsLiveBlocks) {
  std::vector<void*> live, dead;
  for (int i = 0; i < 500; ++i) {
    std::size_t s = static_cast<std::size_t>(i) * 997 % 200000 + 1;
    void* p = bop_alloc(s);
    ASSERT_NE(p, nullptr);
    FillPattern(p, s, i);
    (i % 3 ? dead : live).push_back(p);
  }
  for (void* p : dead) bop_dealloc(p);
  bop_collect();
  bop_collect();
  for (std::size_t k = 0; k < live.size(); ++k) {
    int i = static_cast<int>(k * 3);  // live blocks were the i % 3 == 0 ones
    std::size_t s = static_cast<std::size_t>(i) * 997 % 200000 + 1;
    EXPECT_TRUE(HasPattern(live[k], s, i)) << "live block " << i << " changed by bop_collect";
    bop_dealloc(live[k]);
  }
  void* p = bop_alloc(1000);
  ASSERT_NE(p, nullptr);
  std::memset(p, 1, 1000);
  bop_dealloc(p);
}

// ---------------------------------------------------------------------------
// C++ API
// ---------------------------------------------------------------------------

// Layout: constructors, of<T>, array<T>, validity, equality (also at compile time).
TEST(Cxx, Layout) {
  struct alignas(64) Wide {
    char c[100];
  };
  static_assert(bop::Layout::of<Wide>() == bop::Layout(128, 64));
  constexpr bop::Layout d;
  EXPECT_EQ(d.size, 0u);
  EXPECT_EQ(d.align, alignof(std::max_align_t));
  bop::Layout l(Opaque<std::size_t>(10));
  EXPECT_EQ(l.size, 10u);
  EXPECT_EQ(l.align, alignof(std::max_align_t));
  EXPECT_EQ(bop::Layout::of<double>(), bop::Layout(sizeof(double), alignof(double)));
  EXPECT_EQ(bop::Layout::array<Wide>(Opaque<std::size_t>(3)), bop::Layout(3 * sizeof(Wide), 64));
  EXPECT_TRUE(bop::Layout(0, 1).is_valid());
  EXPECT_TRUE(bop::Layout(0, 4096).is_valid());
  EXPECT_FALSE(bop::Layout(8, 0).is_valid());
  EXPECT_FALSE(bop::Layout(8, 24).is_valid());
  EXPECT_FALSE(bop::Layout(8, Opaque<std::size_t>(6)).is_valid());
  EXPECT_NE(bop::Layout(8, 8), bop::Layout(8, 16));
}

// BopAllocator: alloc / alloc_zeroed / realloc / dealloc for many Layouts,
// including zero-size Layouts, which are still aligned to the Layout.
TEST(Cxx, BopAllocator) {
  constexpr bop::BopAllocator alloc;  // constexpr-constructible
  std::vector<Block> blocks;
  std::uint64_t seed = 0;
  for (std::size_t a = 1; a <= 2 * MiB; a *= 2) {
    for (std::size_t s : {std::size_t{0}, std::size_t{1}, a / 2, a, 2 * a + 3}) {
      bop::Layout layout(s, a);
      void* p = alloc.alloc(layout);
      ASSERT_NO_FATAL_FAILURE(CheckFreshBlock(p, s, a, ++seed));
      EXPECT_EQ(alloc.usable_size(p), bop_malloc_usable_size(p));
      // Resize keeping the alignment; content kept up to the smaller size.
      std::size_t grown = 3 * s + 100;
      void* q = alloc.realloc(p, layout, grown);
      ASSERT_NE(q, nullptr);
      EXPECT_TRUE(IsAligned(q, a));
      EXPECT_TRUE(HasPattern(q, s, seed)) << "Layout(" << s << ", " << a << ") realloc";
      FillPattern(q, grown, seed);
      blocks.push_back({static_cast<unsigned char*>(q), grown, alloc.usable_size(q)});

      void* z = alloc.alloc_zeroed(layout);
      ASSERT_NE(z, nullptr);
      EXPECT_TRUE(IsAligned(z, a));
      EXPECT_EQ(FirstNonZero(z, s), s);
      alloc.dealloc(z, layout);
    }
    ExpectNoOverlap(blocks);
    for (const Block& b : blocks) alloc.dealloc(b.p, bop::Layout(b.size, a));
    blocks.clear();
  }
  void* u = alloc.alloc(bop::Layout::of<long double>());
  ASSERT_NE(u, nullptr);
  alloc.dealloc_unsized(u);
}

// The bop::utils free functions, including the (alignment, size) argument order.
TEST(Cxx, Utils) {
  void* p = bop::utils::alloc(100);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(bop::utils::malloc_usable_size(p), 100u);
  FillPattern(p, 100, 5);
  p = bop::utils::realloc(p, 10000);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(HasPattern(p, 100, 5));
  bop::utils::dealloc(p);

  // alignment 64, size 3 -- swapped arguments would be alignment 3 (EINVAL).
  void* a = bop::utils::alloc_aligned(64, 3);
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(IsAligned(a, 64));
  EXPECT_GE(bop::utils::malloc_usable_size(a), 3u);
  bop::utils::dealloc_sized(a, 3);

  void* big = bop::utils::alloc_aligned(8192, 100);
  ASSERT_NE(big, nullptr);
  EXPECT_TRUE(IsAligned(big, 8192));
  bop::utils::dealloc(big);

  for (int i = 0; i < 20; ++i) {
    void* d = bop::utils::alloc(5000);
    ASSERT_NE(d, nullptr);
    std::memset(d, 0xEE, 5000);
    bop::utils::dealloc(d);
    void* z = bop::utils::zalloc(5000);
    ASSERT_NE(z, nullptr);
    EXPECT_EQ(FirstNonZero(z, 5000), 5000u);
    bop::utils::dealloc(z);
    void* za = bop::utils::zalloc_aligned(4096, 5000);
    ASSERT_NE(za, nullptr);
    EXPECT_TRUE(IsAligned(za, 4096));
    EXPECT_EQ(FirstNonZero(za, 5000), 5000u);
    bop::utils::dealloc_sized(za, 5000);
  }
}

// The documented direct-API sequence, word for word (the Rust crate's
// bop_rs::allocator::utils has the same calls): in a BOP_CHECKED build a
// dealloc_sized with a size larger than the block aborts, so this also proves
// the sizes written there are the blocks' sizes.
TEST(Cxx, UtilsDocumentedSequence) {
  void* ptr = bop::utils::alloc(1024);
  void* aligned_ptr = bop::utils::alloc_aligned(64, 512);  // 64-byte aligned
  void* zeroed_ptr = bop::utils::zalloc(256);
  ASSERT_NE(ptr, nullptr);
  ASSERT_NE(aligned_ptr, nullptr);
  ASSERT_NE(zeroed_ptr, nullptr);
  EXPECT_GE(bop::utils::malloc_usable_size(ptr), 1024u);
  EXPECT_TRUE(IsAligned(aligned_ptr, 64));
  EXPECT_GE(bop::utils::malloc_usable_size(aligned_ptr), 512u);
  EXPECT_GE(bop::utils::malloc_usable_size(zeroed_ptr), 256u);
  EXPECT_EQ(FirstNonZero(zeroed_ptr, 256), 256u);
  FillPattern(ptr, 1024, 1);
  FillPattern(aligned_ptr, 512, 2);
  EXPECT_TRUE(HasPattern(ptr, 1024, 1));
  bop::utils::dealloc_sized(ptr, 1024);
  bop::utils::dealloc_sized(aligned_ptr, 512);
  bop::utils::dealloc_sized(zeroed_ptr, 256);

  // The example the issue found returning NULL with the old (size, alignment) order.
  void* page = bop::utils::zalloc_aligned(4096, 100);
  ASSERT_NE(page, nullptr);
  EXPECT_TRUE(IsAligned(page, 4096));
  EXPECT_EQ(FirstNonZero(page, 100), 100u);
  bop::utils::dealloc_sized(page, 100);
}

// The C face of BopStatsAllocator (bop/stats_allocator.h, what the Rust crate
// calls) counts exactly like the C++ class: a known sequence, then a reset
// with live blocks.
TEST(C, StatsAllocatorInstance) {
  bop_stats_allocator* a = bop_stats_allocator_create();
  ASSERT_NE(a, nullptr);
  bop_allocation_stats s{};
  bop_stats_allocator_get(a, &s);
  EXPECT_EQ(s.allocations + s.bytes_allocated + s.peak_memory, 0u);
  void* p = bop_stats_allocator_alloc(a, 8, 100);
  void* q = bop_stats_allocator_alloc(a, 4096, 1000);
  auto* z = static_cast<unsigned char*>(bop_stats_allocator_zalloc(a, 64, 50));
  ASSERT_TRUE(p && q && z);
  EXPECT_TRUE(IsAligned(q, 4096));
  EXPECT_TRUE(IsAligned(z, 64));
  EXPECT_EQ(FirstNonZero(z, 50), 50u);
  EXPECT_GE(bop_stats_allocator_usable_size(a, q), 1000u);
  bop_stats_allocator_dealloc(a, p, 8, 100);
  q = bop_stats_allocator_realloc(a, q, 4096, 1000, 3000);
  ASSERT_NE(q, nullptr);
  EXPECT_TRUE(IsAligned(q, 4096));
  bop_stats_allocator_get(a, &s);
  EXPECT_EQ(s.allocations, 3u);
  EXPECT_EQ(s.deallocations, 1u);
  EXPECT_EQ(s.bytes_allocated, 100u + 1000 + 50 + 2000);
  EXPECT_EQ(s.bytes_deallocated, 100u);
  EXPECT_EQ(s.peak_memory, 3050u);
  EXPECT_EQ(s.current_memory, 3050u);
  bop_stats_allocator_reset(a);
  bop_stats_allocator_get(a, &s);
  EXPECT_EQ(s.allocations, 2u);
  EXPECT_EQ(s.deallocations, 0u);
  EXPECT_EQ(s.bytes_allocated, 3050u);
  EXPECT_EQ(s.peak_memory, 3050u);
  bop_stats_allocator_dealloc(a, q, 4096, 3000);
  bop_stats_allocator_dealloc(a, z, 64, 50);
  bop_stats_allocator_get(a, &s);
  EXPECT_EQ(s.deallocations, 2u);
  EXPECT_EQ(s.current_memory, 0u);
  bop_stats_allocator_destroy(a);
  bop_stats_allocator_destroy(nullptr);
}

// stl_allocator with std::vector, std::map and std::basic_string; the
// memory is bop's (bop_malloc_usable_size knows the blocks).
TEST(Cxx, StlAllocator) {
  std::vector<int, bop::stl_allocator<int>> v;
  for (int i = 0; i < 100000; ++i) v.push_back(i);
  ASSERT_EQ(v.size(), 100000u);
  EXPECT_GE(bop_malloc_usable_size(v.data()), v.capacity() * sizeof(int));
  for (int i = 0; i < 100000; ++i) ASSERT_EQ(v[i], i);
  v.shrink_to_fit();
  EXPECT_GE(bop_malloc_usable_size(v.data()), v.size() * sizeof(int));

  using Alloc = bop::stl_allocator<std::pair<const int, std::string>>;
  std::map<int, std::string, std::less<int>, Alloc> m;
  for (int i = 0; i < 20000; ++i) m.emplace(i, std::string(static_cast<std::size_t>(i % 50), 'x'));
  for (int i = 0; i < 20000; i += 2) m.erase(i);
  ASSERT_EQ(m.size(), 10000u);
  for (auto& [k, s] : m) ASSERT_EQ(s.size(), static_cast<std::size_t>(k % 50));

  using BopString = std::basic_string<char, std::char_traits<char>, bop::stl_allocator<char>>;
  BopString s(1000, 'q');
  EXPECT_GE(bop_malloc_usable_size(s.data()), 1001u);

  struct alignas(128) Aligned {
    char c[128];
  };
  std::vector<Aligned, bop::stl_allocator<Aligned>> av(10);
  EXPECT_TRUE(IsAligned(av.data(), 128));

  // Allocator requirements: equality, rebinding, failure reporting.
  EXPECT_TRUE(bop::stl_allocator<int>() == bop::stl_allocator<double>());
  bop::stl_allocator<char> rebound{bop::stl_allocator<int>()};
  char* c = rebound.allocate(10);
  ASSERT_NE(c, nullptr);
  rebound.deallocate(c, 10);
  bop::stl_allocator<std::uint64_t> a64;
  EXPECT_THROW(a64.allocate(Opaque(kSizeMax / 4)), std::bad_array_new_length);
  EXPECT_THROW(a64.allocate(Opaque(kSizeMax / 16)), std::bad_alloc);
}

// bop::memory_resource with std::pmr containers.
TEST(Cxx, MemoryResource) {
  bop::memory_resource* r = bop::get_memory_resource();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r, bop::get_memory_resource());
  bop::memory_resource other;
  EXPECT_TRUE(r->is_equal(other));
  EXPECT_TRUE(other.is_equal(*r));
  EXPECT_FALSE(r->is_equal(*std::pmr::new_delete_resource()));

  std::pmr::vector<std::pmr::string> v(r);
  for (int i = 0; i < 10000; ++i)
    v.emplace_back(std::string(static_cast<std::size_t>(i % 100), 'a' + i % 26));
  for (int i = 0; i < 10000; ++i) ASSERT_EQ(v[i].size(), static_cast<std::size_t>(i % 100));
  EXPECT_GE(bop_malloc_usable_size(v.data()), v.capacity() * sizeof(std::pmr::string));

  std::pmr::map<int, std::pmr::string> m(r);
  for (int i = 0; i < 5000; ++i) m[i] = std::pmr::string(64, 'z');
  ASSERT_EQ(m.size(), 5000u);

  // Memory from one instance may be released through another.
  void* p = r->allocate(1000, 256);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(IsAligned(p, 256));
  std::memset(p, 1, 1000);
  other.deallocate(p, 1000, 256);

  EXPECT_THROW(Escape(r->allocate(Opaque(kSizeMax / 2), 16)), std::bad_alloc);

  // As an upstream of a pool and as the default resource.
  std::pmr::unsynchronized_pool_resource pool(r);
  std::pmr::vector<int> pv(&pool);
  for (int i = 0; i < 50000; ++i) pv.push_back(i);
  EXPECT_EQ(pv[49999], 49999);
  std::pmr::memory_resource* old = std::pmr::set_default_resource(r);
  {
    std::pmr::vector<long> dv(1000, 7L);
    EXPECT_GE(bop_malloc_usable_size(dv.data()), 1000 * sizeof(long));
  }
  std::pmr::set_default_resource(old);
}
