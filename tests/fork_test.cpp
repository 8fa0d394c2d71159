// fork_test: fork() while other threads are busy allocating and freeing; the
// child must be able to allocate, free, realloc, start threads and fork again.
// A lock held by a busy thread at fork time would hang the child: each child
// gets a timeout, after which the test fails.
//
// Built twice: fork_test uses the bop_* API (malloc is glibc's);
// fork_override_test links bop::override, so malloc and operator new are bop's
// in parent and child, and the same code runs through them.
#include <bop/bop.h>

#include <gtest/gtest.h>

#include <pthread.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

#ifdef BOP_FORK_TEST_OVERRIDE
#include <malloc.h>
#endif

using namespace bop_test;

namespace {

// The allocation functions under test.
#ifdef BOP_FORK_TEST_OVERRIDE
void* Alloc(std::size_t n) {
  return std::malloc(n);
}
void* Realloc(void* p, std::size_t n) {
  return std::realloc(p, n);
}
void Free(void* p) {
  std::free(p);
}
#else
void* Alloc(std::size_t n) {
  return bop_alloc(n);
}
void* Realloc(void* p, std::size_t n) {
  return bop_realloc(p, n);
}
void Free(void* p) {
  bop_dealloc(p);
}
#endif

// Threads that allocate and free continuously (also freeing each other's
// blocks) until stopped, so that fork() lands in the middle of allocator work.
class Churn {
 public:
  explicit Churn(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this, i] { Run(i); });
  }
  ~Churn() {
    stop_ = true;
    for (auto& t : threads_) t.join();
    for (void* p : exchange_) Free(p);
  }
  long ops() const { return ops_.load(); }

 private:
  void Run(int id) {
    std::uint64_t x = static_cast<std::uint64_t>(id) * 2654435761u + 1;
    std::vector<void*> mine(256, nullptr);
    while (!stop_) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      std::size_t slot = (x >> 33) % mine.size();
      if (mine[slot]) {
        if ((x >> 20) % 4 == 0) {
          std::lock_guard<std::mutex> lock(mu_);
          exchange_.push_back(mine[slot]);
        } else {
          Free(mine[slot]);
        }
        mine[slot] = nullptr;
      } else {
        std::size_t size =
            (x >> 40) % 100 == 0 ? 256 * KiB + (x >> 10) % MiB : (x >> 45) % 2048 + 1;
        mine[slot] = Alloc(size);
        if (mine[slot]) static_cast<char*>(mine[slot])[0] = 1;
      }
      if ((x >> 12) % 32 == 0) {
        std::lock_guard<std::mutex> lock(mu_);
        while (!exchange_.empty()) {
          Free(exchange_.back());
          exchange_.pop_back();
        }
      }
      ops_++;
    }
    for (void* p : mine) Free(p);
  }

  std::atomic<bool> stop_{false};
  std::atomic<long> ops_{0};
  std::mutex mu_;
  std::vector<void*> exchange_;
  std::vector<std::thread> threads_;
};

// What a child does: allocate, verify, realloc, free, in this thread and in
// new threads; optionally fork a grandchild that does the same.  Returns an
// exit code (0 = all good).
int ChildWork(int depth) {
  std::vector<void*> blocks;
  for (std::size_t s = 1; s < 4 * MiB; s = s * 3 / 2 + 1) {
    void* p = Alloc(s);
    CHILD_CHECK(p != nullptr);
    FillPattern(p, s, s);
    blocks.push_back(p);
  }
  std::size_t s = 1;
  for (void* p : blocks) {
    CHILD_CHECK(HasPattern(p, s, s));
    s = s * 3 / 2 + 1;
  }
  // realloc up and down keeps content.
  void* r = Alloc(10);
  CHILD_CHECK(r != nullptr);
  FillPattern(r, 10, 1);
  std::size_t r_size = 10;
  for (std::size_t next : {100, 5000, 70000, 2 << 20, 300, 7}) {
    void* q = Realloc(r, next);
    CHILD_CHECK(q != nullptr);
    CHILD_CHECK(HasPattern(q, std::min(r_size, next), 1));
    FillPattern(q, next, 1);
    r = q;
    r_size = next;
  }
  Free(r);
  void* z = bop_zalloc(100000);
  CHILD_CHECK(z != nullptr);
  CHILD_CHECK(FirstNonZero(z, 100000) == 100000);
  bop_dealloc(z);
  // Blocks inherited from before fork are ours to free; also free half from
  // new threads.
  std::atomic<int> thread_errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) {
        void* p = Alloc(static_cast<std::size_t>((i * 131 + t) % 3000 + 1));
        if (!p) {
          thread_errors++;
          continue;
        }
        static_cast<char*>(p)[0] = 1;
        Free(p);
      }
    });
  }
  for (std::size_t i = 0; i < blocks.size(); i += 2) Free(blocks[i]);
  for (auto& t : threads) t.join();
  CHILD_CHECK(thread_errors.load() == 0);
  std::thread freer([&] {
    for (std::size_t i = 1; i < blocks.size(); i += 2) Free(blocks[i]);
  });
  freer.join();
#ifdef BOP_FORK_TEST_OVERRIDE
  // The libc and libstdc++ paths that allocate work too.
  std::string str(5000, 'x');
  str += std::to_string(depth);
  char* dup = strdup(str.c_str());
  CHILD_CHECK(dup != nullptr && bop_malloc_usable_size(dup) >= str.size() + 1);
  CHILD_CHECK(malloc_usable_size(dup) == bop_malloc_usable_size(dup));
  free(dup);
  auto* arr = Keep(new std::string[100]);
  for (int i = 0; i < 100; ++i) arr[i] = std::string(static_cast<std::size_t>(i) * 10, 'y');
  delete[] arr;
#endif
  if (depth > 0) {
    ChildResult gc = RunInChild([depth] { return ChildWork(depth - 1); }, 30);
    if (!gc.ok()) {
      std::fprintf(stderr, "grandchild: %s\n", gc.describe().c_str());
      return 2;
    }
  }
  return 0;
}

}  // namespace

// Fork 20 times while 3 threads churn; each child works and exits 0.
TEST(Fork, ChildOfBusyParentCanAllocate) {
  Churn churn(3);
  while (churn.ops() < 10000) std::this_thread::yield();
  for (int i = 0; i < 20; ++i) {
    ChildResult r = RunInChild([i] { return ChildWork(i % 4 == 0 ? 1 : 0); }, 30);
    ASSERT_TRUE(r.ok()) << "fork #" << i << ": " << r.describe();
    // Let the churn threads get back into the allocator between forks.
    long before = churn.ops();
    while (churn.ops() < before + 1000) std::this_thread::yield();
  }
}

// fork() from a thread other than main (the forking thread owns a heap with
// blocks other threads will free).
TEST(Fork, ForkFromWorkerThread) {
  Churn churn(2);
  for (int i = 0; i < 5; ++i) {
    ChildResult r;
    std::thread t([&] {
      std::vector<void*> held;
      for (int k = 0; k < 1000; ++k) held.push_back(Alloc(static_cast<std::size_t>(k + 1)));
      r = RunInChild([] { return ChildWork(0); }, 30);
      for (void* p : held) Free(p);
    });
    t.join();
    ASSERT_TRUE(r.ok()) << "fork #" << i << ": " << r.describe();
  }
}

// The parent itself keeps working after its children: blocks allocated
// before the forks are intact and can be freed.
TEST(Fork, ParentIntactAfterForks) {
  std::vector<void*> blocks;
  for (std::size_t s = 1; s < MiB; s = s * 2 + 3) {
    void* p = Alloc(s);
    ASSERT_NE(p, nullptr);
    FillPattern(p, s, s);
    blocks.push_back(p);
  }
  {
    Churn churn(2);
    for (int i = 0; i < 5; ++i) {
      ChildResult r = RunInChild(
          [&] {
            // The child frees the inherited blocks (its own copies).
            for (void* p : blocks) Free(p);
            return ChildWork(0);
          },
          30);
      ASSERT_TRUE(r.ok()) << r.describe();
    }
  }
  std::size_t s = 1;
  for (void* p : blocks) {
    EXPECT_TRUE(HasPattern(p, s, s)) << "size " << s;
    Free(p);
    s = s * 2 + 3;
  }
}
