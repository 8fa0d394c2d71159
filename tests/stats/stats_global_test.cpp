// A BopStatsAllocator installed as the program's global allocator with
// BOP_GLOBAL_ALLOCATOR counts every new/delete exactly: single objects,
// arrays (sized and unsized delete[]), over-aligned types, nothrow new,
// std::vector growth, std::string, and new/delete on other threads.
//
// GoogleTest allocates too, so each test compares two snapshots taken around
// code that makes no GoogleTest call.
#include <bop/global.hpp>
#include <bop/stats.hpp>

#include <gtest/gtest.h>

#include <barrier>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

static bop::BopStatsAllocator GLOBAL;
BOP_GLOBAL_ALLOCATOR(GLOBAL);

namespace {

using bop::AllocationStats;

// Keeps the compiler from dropping an allocation whose result looks unused.
template <class T>
T* Keep(T* p) {
  asm volatile("" : : "g"(p) : "memory");
  return p;
}

bool IsAligned(const void* p, std::size_t align) {
  return reinterpret_cast<std::uintptr_t>(p) % align == 0;
}

// What happened between two snapshots (no reset in between).
struct Delta {
  std::uint64_t allocations, deallocations, bytes_allocated, bytes_deallocated;
  std::int64_t current;
  friend bool operator==(const Delta&, const Delta&) = default;
  friend std::ostream& operator<<(std::ostream& out, const Delta& d) {
    return out << "{allocations " << d.allocations << ", deallocations " << d.deallocations
               << ", bytes_allocated " << d.bytes_allocated << ", bytes_deallocated "
               << d.bytes_deallocated << ", current " << d.current << "}";
  }
};
Delta Diff(const AllocationStats& before, const AllocationStats& after) {
  return {after.allocations - before.allocations, after.deallocations - before.deallocations,
          after.bytes_allocated - before.bytes_allocated,
          after.bytes_deallocated - before.bytes_deallocated,
          static_cast<std::int64_t>(after.current_memory) -
              static_cast<std::int64_t>(before.current_memory)};
}
// n blocks of `bytes` in total allocated and `freed_n` blocks of `freed`
// bytes given back.
Delta Expect(std::uint64_t n, std::uint64_t bytes, std::uint64_t freed_n, std::uint64_t freed) {
  return {n, freed_n, bytes, freed,
          static_cast<std::int64_t>(bytes) - static_cast<std::int64_t>(freed)};
}

// Allocations made by static constructors before main are counted too.
struct AllocatesBeforeMain {
  std::string text;
  AllocationStats seen;
  AllocatesBeforeMain() : text(300, 's'), seen(GLOBAL.stats()) {}
};
AllocatesBeforeMain g_before_main;

TEST(StatsGlobal, StaticInitAllocationIsCounted) {
  EXPECT_GE(g_before_main.seen.allocations, 1u);
  EXPECT_GE(g_before_main.seen.bytes_allocated, 301u);
  EXPECT_GE(GLOBAL.stats().current_memory, 301u);  // the string is still alive
}

// new/delete of one object: sized delete, its exact size.
TEST(StatsGlobal, SingleObject) {
  AllocationStats s0 = GLOBAL.stats();
  auto* p = Keep(new std::uint64_t(7));
  AllocationStats s1 = GLOBAL.stats();
  delete p;
  AllocationStats s2 = GLOBAL.stats();
  EXPECT_EQ(Diff(s0, s1), Expect(1, 8, 0, 0));
  EXPECT_EQ(Diff(s1, s2), Expect(0, 0, 1, 8));
}

// Plain operator delete gets no size; the block header still knows it.
TEST(StatsGlobal, UnsizedOperatorDelete) {
  AllocationStats s0 = GLOBAL.stats();
  void* p = Keep(::operator new(24));
  void* q = Keep(::operator new(0));  // operator new(0) asks for 1 byte
  ::operator delete(p);
  ::operator delete(q);
  AllocationStats s1 = GLOBAL.stats();
  EXPECT_EQ(Diff(s0, s1), Expect(2, 25, 2, 25));
}

// delete[] of trivially destructible elements calls the unsized
// operator delete[] (no array cookie holds the count): still exact.
TEST(StatsGlobal, ArrayOfTrivialTypeUnsizedDelete) {
  AllocationStats s0 = GLOBAL.stats();
  char* chars = Keep(new char[100]);
  int* ints = Keep(new int[25]);
  AllocationStats s1 = GLOBAL.stats();
  delete[] chars;
  delete[] ints;
  AllocationStats s2 = GLOBAL.stats();
  EXPECT_EQ(Diff(s0, s1), Expect(2, 200, 0, 0));
  EXPECT_EQ(Diff(s1, s2), Expect(0, 0, 2, 200));
}

// Arrays of a type with a destructor carry a cookie (Itanium C++ ABI:
// max(sizeof(size_t), alignof(T)) bytes) and are freed with sized delete[].
struct WithDestructor {
  int value[3] = {1, 2, 3};
  ~WithDestructor() { Keep(this); }
};
TEST(StatsGlobal, ArrayOfNonTrivialType) {
  constexpr std::uint64_t kBytes = 4 * sizeof(WithDestructor) + sizeof(std::size_t);
  AllocationStats s0 = GLOBAL.stats();
  auto* p = Keep(new WithDestructor[4]);
  AllocationStats s1 = GLOBAL.stats();
  delete[] p;
  AllocationStats s2 = GLOBAL.stats();
  EXPECT_EQ(Diff(s0, s1), Expect(1, kBytes, 0, 0));
  EXPECT_EQ(Diff(s1, s2), Expect(0, 0, 1, kBytes));
}

// Over-aligned types go through the align_val_t forms: aligned and counted.
struct alignas(256) Aligned {
  char bytes[300];
};
TEST(StatsGlobal, OverAlignedNew) {
  static_assert(sizeof(Aligned) == 512);
  AllocationStats s0 = GLOBAL.stats();
  auto* one = Keep(new Aligned);
  auto* many = Keep(new Aligned[3]);  // trivially destructible: unsized aligned delete[]
  bool aligned = IsAligned(one, 256) && IsAligned(many, 256);
  AllocationStats s1 = GLOBAL.stats();
  delete one;
  delete[] many;
  AllocationStats s2 = GLOBAL.stats();
  EXPECT_TRUE(aligned);
  EXPECT_EQ(Diff(s0, s1), Expect(2, 4 * 512, 0, 0));
  EXPECT_EQ(Diff(s1, s2), Expect(0, 0, 2, 4 * 512));
}

// nothrow new is counted like new.
TEST(StatsGlobal, NothrowNew) {
  AllocationStats s0 = GLOBAL.stats();
  int* p = Keep(new (std::nothrow) int(5));
  double* q = Keep(new (std::nothrow) double[10]);
  delete p;
  delete[] q;
  AllocationStats s1 = GLOBAL.stats();
  EXPECT_EQ(Diff(s0, s1), Expect(2, 84, 2, 84));
}

// std::vector growth: one allocation per capacity change, of exactly the new
// capacity, and the old buffer freed each time; the live bytes are the
// capacity.  Whatever growth policy the library has.
TEST(StatsGlobal, VectorGrowth) {
  AllocationStats s0 = GLOBAL.stats();
  std::uint64_t buffers = 0, bytes = 0;
  std::uint64_t live_bytes = 0;
  AllocationStats s1;
  {
    std::vector<int> v;
    std::size_t capacity = v.capacity();
    for (int i = 0; i < 5000; ++i) {
      v.push_back(i);
      if (v.capacity() != capacity) {
        capacity = v.capacity();
        ++buffers;
        bytes += capacity * sizeof(int);
      }
    }
    Keep(v.data());
    live_bytes = capacity * sizeof(int);
    s1 = GLOBAL.stats();
  }
  AllocationStats s2 = GLOBAL.stats();
  EXPECT_GT(buffers, 5u);
  EXPECT_EQ(Diff(s0, s1), Expect(buffers, bytes, buffers - 1, bytes - live_bytes));
  EXPECT_EQ(Diff(s1, s2), Expect(0, 0, 1, live_bytes));
}

// std::string: short strings live inside the object, longer ones allocate
// capacity + 1 bytes.
TEST(StatsGlobal, StringAllocations) {
  AllocationStats s0 = GLOBAL.stats();
  std::uint64_t first_capacity = 0, second_capacity = 0;
  {
    std::string small("tiny");
    Keep(small.data());
    std::string text(100, 'a');
    first_capacity = text.capacity();
    text.append(200, 'b');  // grows: a new buffer, the old one freed
    second_capacity = text.capacity();
    Keep(text.data());
  }
  AllocationStats s1 = GLOBAL.stats();
  const std::uint64_t bytes = first_capacity + 1 + second_capacity + 1;
  EXPECT_GE(second_capacity, 300u);
  EXPECT_EQ(Diff(s0, s1), Expect(2, bytes, 2, bytes));
}

// unique_ptr and shared_ptr go through the same operators.
TEST(StatsGlobal, SmartPointers) {
  AllocationStats s0 = GLOBAL.stats();
  {
    auto numbers = std::make_unique<std::uint32_t[]>(10);  // unsized delete[]
    auto shared = std::make_shared<std::uint64_t>(1);      // one control block + value
    Keep(numbers.get());
    Keep(shared.get());
  }
  AllocationStats s1 = GLOBAL.stats();
  Delta d = Diff(s0, s1);
  EXPECT_EQ(d.allocations, 2u);
  EXPECT_EQ(d.deallocations, 2u);
  EXPECT_EQ(d.bytes_allocated, d.bytes_deallocated);
  EXPECT_GE(d.bytes_allocated, 40u + 8u);
}

// Threads doing new/delete, also deleting each other's objects: exact
// totals once they are done.  The thread objects' own allocations happen
// outside the two snapshots (barriers hold the threads until then).
TEST(StatsGlobal, NewDeleteOnThreads) {
  constexpr int kThreads = 4, kObjects = 1000;
  std::barrier sync(kThreads + 1);
  std::vector<std::vector<std::uint64_t*>> handed(kThreads);
  std::vector<std::thread> pool;
  for (int id = 0; id < kThreads; ++id) {
    handed[id].reserve(kObjects);
    pool.emplace_back([&, id] {
      sync.arrive_and_wait();  // start
      for (int i = 0; i < kObjects; ++i) {
        delete Keep(new std::uint64_t(i));
        handed[id].push_back(Keep(new std::uint64_t(i)));  // capacity reserved: no growth
      }
      sync.arrive_and_wait();  // everyone has handed its objects over
      for (std::uint64_t* p : handed[(id + 1) % kThreads]) delete p;
      sync.arrive_and_wait();  // done
      sync.arrive_and_wait();  // main has looked
    });
  }
  AllocationStats s0 = GLOBAL.stats();
  sync.arrive_and_wait();
  sync.arrive_and_wait();
  sync.arrive_and_wait();
  AllocationStats s1 = GLOBAL.stats();
  sync.arrive_and_wait();
  for (std::thread& t : pool) t.join();
  const std::uint64_t n = 2 * kThreads * kObjects;
  EXPECT_EQ(Diff(s0, s1), Expect(n, 8 * n, n, 8 * n));
}

// reset_stats with live new-ed objects keeps them counted, and a 10 MB
// new[] afterwards raises the peak by (at least) 10 MB.  (The exact peak
// after a reset is checked on a private allocator in stats_counts_test; here
// GoogleTest and the earlier tests' threads have used GLOBAL too.)
TEST(StatsGlobal, ResetThenPeak) {
  auto* live = Keep(new char[1000]);
  GLOBAL.reset_stats();
  AllocationStats s0 = GLOBAL.stats();
  delete[] Keep(new char[10 * 1024 * 1024]);
  delete[] live;
  AllocationStats s1 = GLOBAL.stats();
  EXPECT_EQ(s0.deallocations, 0u);
  EXPECT_EQ(s0.bytes_deallocated, 0u);
  EXPECT_EQ(s0.allocations, s0.outstanding_allocations());
  EXPECT_EQ(s0.bytes_allocated, s0.current_memory);
  EXPECT_GE(s0.current_memory, 1000u);
  EXPECT_EQ(Diff(s0, s1), Expect(1, 10 * 1024 * 1024, 2, 10 * 1024 * 1024 + 1000));
  EXPECT_GE(s1.peak_memory, s0.current_memory + 10 * 1024 * 1024);
}

}  // namespace
