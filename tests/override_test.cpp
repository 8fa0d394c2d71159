// override_test: an executable linked with bop::override.  Proves that the
// whole malloc family and every operator new/delete form are bop's, and that
// they keep the C/POSIX/C++ contracts.
#include <bop/bop.h>

#include <gtest/gtest.h>

#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <set>
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace bop_test;

// C23 functions glibc 2.36 lacks; the override provides them.  Weak, so
// that a missing one is a test failure rather than a link error.
extern "C" {
void free_sized(void* p, std::size_t size) __attribute__((weak));
void free_aligned_sized(void* p, std::size_t alignment, std::size_t size) __attribute__((weak));
}

namespace {

constexpr std::size_t kSizeMax = static_cast<std::size_t>(-1);

// The object file (executable or shared library) that contains `addr`.
const void* ObjectBase(const void* addr) {
  Dl_info info{};
  if (dladdr(addr, &info) == 0) return nullptr;
  return info.dli_fbase;
}

// A pointer is a live bop block of at least `size` bytes, and malloc's view
// agrees with bop's.
void ExpectBopBlock(const void* p, std::size_t size) {
  ASSERT_NE(p, nullptr);
  EXPECT_GE(bop_malloc_usable_size(p), size);
  EXPECT_EQ(malloc_usable_size(const_cast<void*>(p)), bop_malloc_usable_size(p));
}

}  // namespace

// The dynamic linker resolves every replaced symbol to the object holding
// bop (this executable), not to libc or libstdc++: also libc's and
// libstdc++'s own calls go to bop.  (free_sized / free_aligned_sized are not
// in glibc 2.36, so nothing exports them dynamically; see FreeSized.)
TEST(Override, SymbolsResolveToBop) {
  const void* bop_object = ObjectBase(reinterpret_cast<const void*>(&bop_alloc));
  ASSERT_NE(bop_object, nullptr);
  const char* names[] = {"malloc",
                         "free",
                         "calloc",
                         "realloc",
                         "reallocarray",
                         "posix_memalign",
                         "aligned_alloc",
                         "memalign",
                         "valloc",
                         "pvalloc",
                         "malloc_usable_size",
                         "_Znwm",                                 // new(size_t)
                         "_Znam",                                 // new[](size_t)
                         "_ZnwmRKSt9nothrow_t",                   // new nothrow
                         "_ZnamRKSt9nothrow_t",                   // new[] nothrow
                         "_ZnwmSt11align_val_t",                  // new aligned
                         "_ZnamSt11align_val_t",                  // new[] aligned
                         "_ZnwmSt11align_val_tRKSt9nothrow_t",    // new aligned nothrow
                         "_ZnamSt11align_val_tRKSt9nothrow_t",    // new[] aligned nothrow
                         "_ZdlPv",                                // delete
                         "_ZdaPv",                                // delete[]
                         "_ZdlPvm",                               // sized delete
                         "_ZdaPvm",                               // sized delete[]
                         "_ZdlPvSt11align_val_t",                 // aligned delete
                         "_ZdaPvSt11align_val_t",                 // aligned delete[]
                         "_ZdlPvmSt11align_val_t",                // sized aligned delete
                         "_ZdaPvmSt11align_val_t",                // sized aligned delete[]
                         "_ZdlPvRKSt9nothrow_t",                  // nothrow delete
                         "_ZdaPvRKSt9nothrow_t",                  // nothrow delete[]
                         "_ZdlPvSt11align_val_tRKSt9nothrow_t",   // aligned nothrow delete
                         "_ZdaPvSt11align_val_tRKSt9nothrow_t"};  // aligned nothrow delete[]
  for (const char* name : names) {
    void* sym = dlsym(RTLD_DEFAULT, name);
    ASSERT_NE(sym, nullptr) << name << " is not visible to the dynamic linker";
    EXPECT_EQ(ObjectBase(sym), bop_object) << name << " resolves outside bop";
  }
}

// glibc's own heap stays untouched: its statistics do not see our requests.
TEST(Override, GlibcHeapUnused) {
  struct mallinfo2 before = mallinfo2();
  std::vector<void*> blocks;
  for (int i = 0; i < 1000; ++i) blocks.push_back(std::malloc(1000));
  void* big = std::malloc(10 * MiB);
  struct mallinfo2 during = mallinfo2();
  EXPECT_EQ(during.uordblks, before.uordblks) << "glibc's arena served small mallocs";
  EXPECT_EQ(during.hblkhd, before.hblkhd) << "glibc mmapped a big malloc";
  for (void* p : blocks) std::free(p);
  std::free(big);
}

// malloc/free/calloc/realloc are bop's: bop accepts their blocks (and the
// other way round) and sizes agree.
TEST(Override, MallocFamilyIsBop) {
  for (std::size_t s : {1, 7, 8, 24, 100, 1000, 5000, 70000, 600000, 3 << 20}) {
    void* p = std::malloc(s);
    ASSERT_NO_FATAL_FAILURE(ExpectBopBlock(p, s));
    FillPattern(p, s, s);
    p = std::realloc(p, s * 2 + 1);
    ASSERT_NO_FATAL_FAILURE(ExpectBopBlock(p, s * 2 + 1));
    EXPECT_TRUE(HasPattern(p, s, s));
    bop_dealloc(p);  // malloc'd block freed by bop

    void* q = bop_alloc(s);
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(malloc_usable_size(q), bop_malloc_usable_size(q));
    std::free(q);  // bop block freed by free

    void* c = std::calloc(s, 3);
    ASSERT_NO_FATAL_FAILURE(ExpectBopBlock(c, 3 * s));
    EXPECT_EQ(FirstNonZero(c, 3 * s), 3 * s);
    std::free(c);
  }
  EXPECT_EQ(malloc_usable_size(nullptr), 0u);
  std::free(nullptr);
}

// malloc, calloc and operator new return 16-byte aligned blocks for every
// size (glibc's guarantee, and bop.h's: the smallest class is 16 bytes).
TEST(Override, SmallBlocksAre16Aligned) {
  std::vector<void*> blocks;
  int misaligned = 0;
  std::size_t first_bad = 0;
  for (std::size_t s = 1; s <= 512; ++s) {
    constexpr std::size_t want = 16;
    for (int i = 0; i < 4; ++i) {
      void* m = std::malloc(s);
      void* c = std::calloc(1, s);
      void* n = ::operator new(s);
      for (void* p : {m, c, n}) {
        ASSERT_NE(p, nullptr);
        if (!IsAligned(p, want) && misaligned++ == 0) first_bad = s;
      }
      blocks.push_back(m);
      blocks.push_back(c);
      ::operator delete(n);
    }
  }
  EXPECT_EQ(misaligned, 0) << "misaligned small blocks, first at size " << first_bad;
  for (void* p : blocks) std::free(p);
}

// malloc(0) is unique and freeable; realloc(NULL) allocates; realloc(p, 0)
// returns NULL or a freeable block.
TEST(Override, ZeroSizes) {
  std::set<void*> seen;
  std::vector<void*> ptrs;
  for (int i = 0; i < 100; ++i) {
    void* p = std::malloc(Opaque<std::size_t>(0));
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(seen.insert(p).second);
    ptrs.push_back(p);
  }
  for (void* p : ptrs) std::free(p);
  void* r = std::realloc(nullptr, 50);
  ASSERT_NO_FATAL_FAILURE(ExpectBopBlock(r, 50));
  void* z = std::realloc(r, Opaque<std::size_t>(0));
  std::free(z);
  void* c = std::calloc(0, 0);
  ASSERT_NE(c, nullptr);
  std::free(c);
}

// calloc and reallocarray detect overflow: NULL + ENOMEM.
TEST(Override, OverflowDetected) {
  errno = 0;
  EXPECT_EQ(std::calloc(Opaque(std::size_t{1} << 32), std::size_t{1} << 32), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(std::calloc(Opaque(kSizeMax), 2), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  void* p = std::malloc(64);
  ASSERT_NE(p, nullptr);
  std::memset(p, 0x77, 64);
  errno = 0;
  EXPECT_EQ(reallocarray(p, Opaque(std::size_t{1} << 32), std::size_t{1} << 32), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(reallocarray(p, Opaque(kSizeMax / 2), 3), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(static_cast<unsigned char*>(p)[63], 0x77);  // untouched
  void* q = reallocarray(p, 100, 8);
  ASSERT_NO_FATAL_FAILURE(ExpectBopBlock(q, 800));
  EXPECT_EQ(static_cast<unsigned char*>(q)[63], 0x77);
  void* n = reallocarray(nullptr, 10, 10);
  ASSERT_NO_FATAL_FAILURE(ExpectBopBlock(n, 100));
  std::free(n);
  std::free(q);
}

// posix_memalign / aligned_alloc / memalign / valloc / pvalloc: aligned bop
// blocks; bad alignments are rejected.
TEST(Override, AlignedFunctions) {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  for (std::size_t a = sizeof(void*); a <= 4 * MiB; a *= 2) {
    for (std::size_t s : {std::size_t{0}, std::size_t{1}, a, 3 * a}) {
      void* p = reinterpret_cast<void*>(1);
      ASSERT_EQ(posix_memalign(&p, a, s), 0) << a << " " << s;
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(IsAligned(p, a)) << "posix_memalign " << a;
      EXPECT_GE(bop_malloc_usable_size(p), s);
      std::free(p);

      void* m = memalign(a, s);
      ASSERT_NE(m, nullptr);
      EXPECT_TRUE(IsAligned(m, a)) << "memalign " << a;
      EXPECT_GE(bop_malloc_usable_size(m), s);
      bop_dealloc(m);

      void* aa = aligned_alloc(a, s);
      ASSERT_NE(aa, nullptr);
      EXPECT_TRUE(IsAligned(aa, a)) << "aligned_alloc " << a;
      EXPECT_GE(bop_malloc_usable_size(aa), s);
      if (free_aligned_sized) {
        free_aligned_sized(aa, a, s);
      } else {
        std::free(aa);
      }
    }
  }
  // posix_memalign: not a power of two, or not a multiple of sizeof(void*).
  for (std::size_t bad : {0, 1, 2, 4, 3, 12, 24, 48, 1000}) {
    void* p = reinterpret_cast<void*>(1);
    EXPECT_EQ(posix_memalign(&p, Opaque(bad), 64), EINVAL) << "alignment " << bad;
    EXPECT_EQ(p, reinterpret_cast<void*>(1)) << "posix_memalign changed *p on failure";
  }
  for (std::size_t bad : {0, 3, 24, 48, 1000}) {
    errno = 0;
    void* p = aligned_alloc(Opaque(bad), 96);
    EXPECT_EQ(p, nullptr) << "aligned_alloc alignment " << bad;
    EXPECT_EQ(errno, EINVAL) << "aligned_alloc alignment " << bad;
    if (p) std::free(p);
  }
  for (std::size_t s : {std::size_t{1}, page - 1, page + 1, 10 * page}) {
    void* v = valloc(s);
    ASSERT_NE(v, nullptr);
    EXPECT_TRUE(IsAligned(v, page));
    EXPECT_GE(bop_malloc_usable_size(v), s);
    std::free(v);
    void* pv = pvalloc(s);
    ASSERT_NE(pv, nullptr);
    EXPECT_TRUE(IsAligned(pv, page));
    // pvalloc rounds the size up to whole pages.
    EXPECT_GE(bop_malloc_usable_size(pv), (s + page - 1) / page * page);
    std::memset(pv, 1, (s + page - 1) / page * page);
    std::free(pv);
  }
}

// free_sized / free_aligned_sized (C23) are provided and accept bop blocks.
TEST(Override, FreeSized) {
  ASSERT_NE(free_sized, nullptr) << "free_sized not provided";
  ASSERT_NE(free_aligned_sized, nullptr) << "free_aligned_sized not provided";
  for (std::size_t s : {1, 16, 100, 4000, 100000, 2 << 20}) {
    void* p = std::malloc(s);
    ASSERT_NE(p, nullptr);
    free_sized(p, s);
    void* a = aligned_alloc(256, s);
    ASSERT_NE(a, nullptr);
    free_aligned_sized(a, 256, s);
  }
  free_sized(nullptr, 0);
  free_aligned_sized(nullptr, 64, 0);
}

// libc's internal allocations (strdup, asprintf, getline, open_memstream)
// come from bop too.
TEST(Override, LibcInternalAllocationsAreBop) {
  char* s = strdup("hello, bop");
  ASSERT_NO_FATAL_FAILURE(ExpectBopBlock(s, 11));
  bop_dealloc(s);
  char* a = nullptr;
  ASSERT_GT(asprintf(&a, "%0500d", 7), 0);
  ASSERT_NO_FATAL_FAILURE(ExpectBopBlock(a, 501));
  std::free(a);
  char* buf = nullptr;
  std::size_t len = 0;
  FILE* ms = open_memstream(&buf, &len);
  ASSERT_NE(ms, nullptr);
  for (int i = 0; i < 1000; ++i) std::fprintf(ms, "line %d\n", i);
  std::fclose(ms);
  ASSERT_NO_FATAL_FAILURE(ExpectBopBlock(buf, len + 1));
  std::free(buf);
}

namespace {
struct alignas(256) Aligned256 {
  unsigned char bytes[300];
};
struct alignas(8192) Aligned8K {
  int x;
};
}  // namespace

// Every operator new/delete form returns bop blocks; aligned types are aligned.
TEST(Override, OperatorNewDeleteForms) {
  int* i = Keep(new int(5));
  ASSERT_NO_FATAL_FAILURE(ExpectBopBlock(i, sizeof(int)));
  delete i;
  int* arr = Keep(new int[1000]);
  ASSERT_NO_FATAL_FAILURE(ExpectBopBlock(arr, 1000 * sizeof(int)));
  delete[] arr;
  int* nt = Keep(new (std::nothrow) int[10]);
  ASSERT_NO_FATAL_FAILURE(ExpectBopBlock(nt, 40));
  delete[] nt;

  auto* a = Keep(new Aligned256);
  EXPECT_TRUE(IsAligned(a, 256));
  ASSERT_NO_FATAL_FAILURE(ExpectBopBlock(a, sizeof(Aligned256)));
  delete a;
  auto* aa = Keep(new Aligned256[7]);
  EXPECT_TRUE(IsAligned(aa, 256));
  ASSERT_NO_FATAL_FAILURE(ExpectBopBlock(aa, 7 * sizeof(Aligned256)));
  delete[] aa;
  auto* an = Keep(new (std::nothrow) Aligned256);
  ASSERT_NE(an, nullptr);
  EXPECT_TRUE(IsAligned(an, 256));
  delete an;
  auto* big = Keep(new Aligned8K[3]);
  EXPECT_TRUE(IsAligned(big, 8192));
  delete[] big;

  // The operator functions called directly, with every delete form.
  void* p = ::operator new(100);
  ASSERT_NO_FATAL_FAILURE(ExpectBopBlock(p, 100));
  ::operator delete(p, 100);
  p = ::operator new[](100);
  ::operator delete[](p, 100);
  p = ::operator new(100, std::nothrow);
  ::operator delete(p, std::nothrow);
  p = ::operator new[](100, std::nothrow);
  ::operator delete[](p, std::nothrow);
  p = ::operator new(100);
  ::operator delete(p);
  p = ::operator new[](100);
  ::operator delete[](p);
  for (std::size_t al : {std::size_t{32}, std::size_t{4096}, std::size_t{1} << 20}) {
    std::align_val_t av{al};
    p = ::operator new(al + 1, av);
    EXPECT_TRUE(IsAligned(p, al));
    ASSERT_NO_FATAL_FAILURE(ExpectBopBlock(p, al + 1));
    ::operator delete(p, al + 1, av);
    p = ::operator new[](al, av);
    EXPECT_TRUE(IsAligned(p, al));
    ::operator delete[](p, al, av);
    p = ::operator new(10, av, std::nothrow);
    EXPECT_TRUE(IsAligned(p, al));
    ::operator delete(p, av, std::nothrow);
    p = ::operator new[](10, av, std::nothrow);
    EXPECT_TRUE(IsAligned(p, al));
    ::operator delete[](p, av, std::nothrow);
    p = ::operator new(10, av);
    ::operator delete(p, av);
    p = ::operator new[](10, av);
    ::operator delete[](p, av);
  }
  // Zero-size new is unique and non-null.
  void* z1 = ::operator new(0);
  void* z2 = ::operator new(0);
  EXPECT_NE(z1, nullptr);
  EXPECT_NE(z1, z2);
  ::operator delete(z1);
  ::operator delete (z2, std::size_t{0});
}

// Memory crosses between the C and C++ interfaces (same allocator).
TEST(Override, StandardLibraryContainers) {
  std::vector<std::string> v;
  for (int i = 0; i < 10000; ++i) v.push_back(std::string(static_cast<std::size_t>(i % 300), 'k'));
  ASSERT_NO_FATAL_FAILURE(ExpectBopBlock(v.data(), v.capacity() * sizeof(std::string)));
  ASSERT_NO_FATAL_FAILURE(ExpectBopBlock(v[299].data(), 299));
  auto sp = std::make_shared<std::vector<int>>(1000, 3);
  EXPECT_EQ((*sp)[999], 3);
  ASSERT_NO_FATAL_FAILURE(ExpectBopBlock(sp->data(), 4000));
}
