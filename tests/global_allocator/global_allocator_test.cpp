// global_allocator_test: BOP_GLOBAL_ALLOCATOR routes every operator new /
// delete of the program (from every translation unit and thread, including
// the standard library's) to a user-written allocator object.  Linked with
// bop::bop only: malloc stays glibc's, so a bop block can only come from the
// installed allocator.
#include <bop/bop.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "../test_util.hpp"
#include "counting_allocator.hpp"

using namespace bop_test;

namespace {

struct Counts {
  long allocs, deallocs, failures, over_aligned;
};
Counts Now() {
  CountingAllocator& c = Counting();
  return {c.allocs.load(), c.deallocs(), c.failures.load(), c.over_aligned.load()};
}

struct alignas(256) Aligned256 {
  char c[256];
};
struct alignas(64) Aligned64 {
  int x;
};

constexpr std::size_t kImpossible = static_cast<std::size_t>(1) << 62;

}  // namespace

// A static constructor (in the defining TU) already went through GLOBAL.
TEST(GlobalAllocator, UsedBeforeMain) {
  EXPECT_GE(AllocsSeenByStaticInit(), 1);
}

// new / delete of a single object.
TEST(GlobalAllocator, Object) {
  Counts before = Now();
  auto* p = Keep(new long(42));
  Counts mid = Now();
  EXPECT_EQ(mid.allocs, before.allocs + 1);
  EXPECT_GE(bop_malloc_usable_size(p), sizeof(long));  // a bop block
  delete p;
  EXPECT_EQ(Now().deallocs, mid.deallocs + 1);
}

// new[] / delete[] of arrays, including of non-trivial types.
TEST(GlobalAllocator, Arrays) {
  Counts before = Now();
  auto* a = Keep(new int[1000]);
  auto* s = Keep(new std::string[3]);
  Counts mid = Now();
  EXPECT_EQ(mid.allocs, before.allocs + 2);
  EXPECT_GE(bop_malloc_usable_size(a), 1000 * sizeof(int));
  delete[] a;
  delete[] s;
  EXPECT_EQ(Now().deallocs, mid.deallocs + 2);
}

// Over-aligned types use the aligned forms and get their alignment.
TEST(GlobalAllocator, AlignedTypes) {
  Counts before = Now();
  auto* one = Keep(new Aligned256);
  auto* many = Keep(new Aligned64[9]);
  auto* nt = Keep(new (std::nothrow) Aligned256[2]);
  Counts mid = Now();
  EXPECT_EQ(mid.allocs, before.allocs + 3);
  EXPECT_EQ(mid.over_aligned, before.over_aligned + 3);
  EXPECT_GE(Counting().max_align.load(), 256u);
  EXPECT_TRUE(IsAligned(one, 256));
  EXPECT_TRUE(IsAligned(many, 64));
  ASSERT_NE(nt, nullptr);
  EXPECT_TRUE(IsAligned(nt, 256));
  EXPECT_GE(bop_malloc_usable_size(one), sizeof(Aligned256));
  delete one;
  delete[] many;
  delete[] nt;
  EXPECT_EQ(Now().deallocs, mid.deallocs + 3);
}

// Standard containers and strings allocate through GLOBAL.
TEST(GlobalAllocator, StandardLibrary) {
  Counts before = Now();
  {
    std::vector<int> v;
    for (int i = 0; i < 10000; ++i) v.push_back(i);
    EXPECT_GE(bop_malloc_usable_size(v.data()), v.capacity() * sizeof(int));
    std::string s(1000, 'x');
    s += std::to_string(12345);
    EXPECT_GE(bop_malloc_usable_size(s.data()), s.size() + 1);
    std::map<int, std::string> m;
    for (int i = 0; i < 100; ++i) m[i] = std::string(64, 'm');
    auto sp = std::make_shared<std::vector<double>>(100);
    Escape(sp.get());
  }
  Counts after = Now();
  // vector growth (~15) + string + 100 map nodes + 100 strings + shared + vector.
  EXPECT_GE(after.allocs - before.allocs, 200);
  EXPECT_EQ(after.allocs - before.allocs, after.deallocs - before.deallocs)
      << "every allocation made in the scope was released through GLOBAL";
}

// Allocations on other threads go through GLOBAL as well.
TEST(GlobalAllocator, OtherThreads) {
  Counts before = Now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < 1000; ++i) {
        auto* p = Keep(new std::uint64_t[static_cast<std::size_t>(i % 50 + 1)]);
        delete[] p;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GE(Now().allocs - before.allocs, 4000);
}

// Impossible sizes: operator new throws std::bad_alloc after asking GLOBAL,
// and the nothrow forms return nullptr.
TEST(GlobalAllocator, FailureThrowsBadAlloc) {
  std::size_t n = Opaque(kImpossible);
  Counts before = Now();
  EXPECT_THROW(Escape(::operator new(n)), std::bad_alloc);
  EXPECT_THROW(Escape(::operator new[](n)), std::bad_alloc);
  EXPECT_THROW(Escape(::operator new (n, std::align_val_t{128})), std::bad_alloc);
  EXPECT_EQ(::operator new(n, std::nothrow), nullptr);
  EXPECT_EQ(::operator new[](n, std::nothrow), nullptr);
  EXPECT_EQ(::operator new (n, std::align_val_t{128}, std::nothrow), nullptr);
  EXPECT_EQ(Now().failures, before.failures + 6) << "the failures did not go through GLOBAL";
  // A new-expression of a huge runtime count fails the same way.
  std::size_t count = Opaque(kImpossible / sizeof(int));
  EXPECT_THROW(Escape(new int[count]), std::bad_alloc);
  EXPECT_EQ(Keep(new (std::nothrow) int[count]), nullptr);
}

namespace {
int g_handler_calls = 0;
void CountingHandler() {
  ++g_handler_calls;
  if (g_handler_calls == 3) std::set_new_handler(nullptr);  // then give up
}
}  // namespace

// operator new calls the new_handler and retries until it is removed.
TEST(GlobalAllocator, NewHandlerRetries) {
  g_handler_calls = 0;
  Counts before = Now();
  std::new_handler old = std::set_new_handler(CountingHandler);
  EXPECT_THROW(Escape(::operator new(Opaque(kImpossible))), std::bad_alloc);
  std::set_new_handler(old);
  EXPECT_EQ(g_handler_calls, 3);
  EXPECT_EQ(Now().failures, before.failures + 4);  // first try + 3 retries
}

// Zero-size new returns distinct, freeable blocks.
TEST(GlobalAllocator, ZeroSize) {
  void* a = ::operator new(0);
  void* b = ::operator new(0);
  EXPECT_NE(a, nullptr);
  EXPECT_NE(a, b);
  ::operator delete(a);
  ::operator delete(b);
}
