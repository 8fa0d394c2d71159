// thread_test: bop under concurrency -- many threads with random sizes and
// lifetimes, cross-thread frees (producer/consumer), thread churn without
// unbounded growth, and frees after the allocating thread is gone.
#include <bop/bop.h>

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "test_util.hpp"

using namespace bop_test;

namespace {

// A block with its size and pattern seed, so any thread can verify it.
struct Tagged {
  void* p = nullptr;
  std::size_t size = 0;
  std::uint64_t seed = 0;
};

// Blocks above this get their pattern only at both ends (keeps memory traffic small).
constexpr std::size_t kFullCheckMax = 16 * KiB;
constexpr std::size_t kEdge = 4 * KiB;

void Stamp(const Tagged& t) {
  if (t.size <= kFullCheckMax) {
    FillPattern(t.p, t.size, t.seed);
  } else {
    FillPattern(t.p, kEdge, t.seed);
    FillPattern(static_cast<char*>(t.p) + t.size - kEdge, kEdge, ~t.seed);
  }
}

bool Intact(const Tagged& t) {
  if (t.size <= kFullCheckMax) return HasPattern(t.p, t.size, t.seed);
  return HasPattern(t.p, kEdge, t.seed) &&
         HasPattern(static_cast<const char*>(t.p) + t.size - kEdge, kEdge, ~t.seed);
}

Tagged MakeBlock(std::size_t size, std::uint64_t seed) {
  Tagged t{bop_alloc(size), size, seed};
  if (t.p) Stamp(t);
  return t;
}

// Free plainly or with the size, alternating by seed.
void Release(const Tagged& t) {
  if (t.seed & 1) {
    bop_dealloc_sized(t.p, t.size);
  } else {
    bop_dealloc(t.p);
  }
}

// 90% up to 1 KiB, ~9% up to 100 KiB, ~1% 1..4 MiB.
std::size_t RandomSize(std::mt19937_64& rng) {
  unsigned r = static_cast<unsigned>(rng() % 1000);
  if (r < 900) return 1 + rng() % 1024;
  if (r < 990) return 1 + rng() % (100 * KiB);
  return MiB + rng() % (3 * MiB);
}

// A mutex-protected queue of batches (the queue's own memory is glibc's).
class BatchQueue {
 public:
  void Push(std::vector<Tagged> batch) {
    std::unique_lock<std::mutex> lock(mu_);
    not_full_.wait(lock, [&] { return q_.size() < 64; });
    q_.push_back(std::move(batch));
    not_empty_.notify_one();
  }
  // An empty batch means the producer is done.
  std::vector<Tagged> Pop() {
    std::unique_lock<std::mutex> lock(mu_);
    not_empty_.wait(lock, [&] { return !q_.empty(); });
    std::vector<Tagged> b = std::move(q_.front());
    q_.pop_front();
    not_full_.notify_one();
    return b;
  }

 private:
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<std::vector<Tagged>> q_;
};

}  // namespace

// 8 threads, random sizes and lifetimes: each keeps a table of live blocks,
// replaces random entries, and passes some blocks to a shared pool that other
// threads verify and free.  Every block's content is checked before its free.
TEST(Threads, RandomSizesAndLifetimes) {
  constexpr int kThreads = 8;
  constexpr int kOps = 40000;
  constexpr std::size_t kSlots = 512;
  std::mutex shared_mu;
  std::vector<Tagged> shared;
  std::atomic<long> failures{0}, corrupt{0}, ops_done{0};

  auto worker = [&](int id) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(id) * 7919 + 1);
    std::vector<Tagged> slots(kSlots);
    std::uint64_t seq = static_cast<std::uint64_t>(id) << 40;
    for (int op = 0; op < kOps; ++op) {
      Tagged& slot = slots[rng() % kSlots];
      if (slot.p) {
        if (!Intact(slot)) corrupt++;
        if (rng() % 8 == 0) {
          std::lock_guard<std::mutex> lock(shared_mu);
          shared.push_back(slot);  // another thread frees it
        } else {
          Release(slot);
        }
        slot = Tagged{};
      } else {
        slot = MakeBlock(RandomSize(rng), ++seq);
        if (!slot.p) failures++;
      }
      if (op % 64 == 0) {
        // Adopt a few blocks from others.
        std::vector<Tagged> adopted;
        {
          std::lock_guard<std::mutex> lock(shared_mu);
          for (int k = 0; k < 8 && !shared.empty(); ++k) {
            adopted.push_back(shared.back());
            shared.pop_back();
          }
        }
        for (const Tagged& t : adopted) {
          if (!Intact(t)) corrupt++;
          Release(t);
        }
      }
      ops_done++;
    }
    for (const Tagged& t : slots) {
      if (!t.p) continue;
      if (!Intact(t)) corrupt++;
      Release(t);
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) threads.emplace_back(worker, i);
  for (auto& t : threads) t.join();
  for (const Tagged& t : shared) {
    if (!Intact(t)) corrupt++;
    Release(t);
  }
  EXPECT_EQ(ops_done.load(), long{kThreads} * kOps);
  EXPECT_EQ(failures.load(), 0) << "allocations returned NULL";
  EXPECT_EQ(corrupt.load(), 0) << "blocks whose content changed while they were live";
}

// Producer/consumer pairs: every block is allocated by one thread and freed
// by another (4 pairs x 250,000 blocks = 1M cross-thread frees).
TEST(Threads, ProducerConsumer) {
  constexpr int kPairs = 4;
  constexpr int kBlocksPerPair = 250000;
  constexpr int kBatch = 256;
  std::atomic<long> produced{0}, consumed{0}, corrupt{0}, failures{0};
  std::vector<std::unique_ptr<BatchQueue>> queues;
  for (int i = 0; i < kPairs; ++i) queues.push_back(std::make_unique<BatchQueue>());

  auto producer = [&](int pair) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(pair) + 100);
    std::vector<Tagged> batch;
    batch.reserve(kBatch);
    for (int i = 0; i < kBlocksPerPair; ++i) {
      // Mostly small, some medium, rarely large.
      unsigned r = static_cast<unsigned>(rng() % 1000);
      std::size_t size = r < 950 ? 8 + rng() % 504 : (r < 998 ? 1 + rng() % (64 * KiB) : 600 * KiB);
      Tagged t =
          MakeBlock(size, (static_cast<std::uint64_t>(pair) << 32) | static_cast<std::uint64_t>(i));
      if (!t.p) {
        failures++;
        continue;
      }
      produced++;
      batch.push_back(t);
      if (batch.size() == kBatch) {
        queues[pair]->Push(std::move(batch));
        batch = {};
        batch.reserve(kBatch);
      }
    }
    if (!batch.empty()) queues[pair]->Push(std::move(batch));
    queues[pair]->Push({});
  };
  auto consumer = [&](int pair) {
    for (;;) {
      std::vector<Tagged> batch = queues[pair]->Pop();
      if (batch.empty()) return;
      for (const Tagged& t : batch) {
        if (!Intact(t)) corrupt++;
        Release(t);
        consumed++;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kPairs; ++i) {
    threads.emplace_back(producer, i);
    threads.emplace_back(consumer, i);
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(produced.load(), long{kPairs} * kBlocksPerPair);
  EXPECT_EQ(consumed.load(), produced.load());
  EXPECT_EQ(corrupt.load(), 0);
  // The producers' memory is reusable afterwards.
  std::vector<void*> again;
  for (int i = 0; i < 100000; ++i) {
    void* p = bop_alloc(64);
    ASSERT_NE(p, nullptr);
    again.push_back(p);
  }
  for (void* p : again) bop_dealloc(p);
}

// 1,000 short-lived threads one after another.  Each allocates ~0.5 MiB of
// mixed blocks, frees most itself, leaves some for the next thread to free
// after it has exited, and a few for main.  RSS must stay bounded: exited
// threads' memory has to be reused or returned.
TEST(Threads, ShortLivedThreadChurnDoesNotGrow) {
  constexpr int kThreads = 1000;
  constexpr int kWarmup = 50;
  std::vector<Tagged> handoff;   // from thread i to thread i + 1
  std::vector<Tagged> for_main;  // freed by main at the end
  std::atomic<long> corrupt{0}, failures{0};
  std::size_t rss_after_warmup = 0;

  for (int i = 0; i < kThreads; ++i) {
    std::thread t([&, i] {
      for (const Tagged& b : handoff) {
        if (!Intact(b)) corrupt++;
        Release(b);
      }
      handoff.clear();
      std::mt19937_64 rng(static_cast<std::uint64_t>(i));
      std::vector<Tagged> mine;
      for (int k = 0; k < 200; ++k) {
        std::size_t size = (k % 50 == 0) ? 64 * KiB + rng() % (64 * KiB) : 16 + rng() % 4096;
        Tagged b = MakeBlock(size, static_cast<std::uint64_t>(i) * 1000 + k);
        if (!b.p) {
          failures++;
          continue;
        }
        mine.push_back(b);
      }
      for (std::size_t k = 0; k < mine.size(); ++k) {
        if (k % 10 == 0) {
          handoff.push_back(mine[k]);
        } else if (k == 1) {
          for_main.push_back(mine[k]);
        } else {
          if (!Intact(mine[k])) corrupt++;
          Release(mine[k]);
        }
      }
    });
    t.join();
    if (i + 1 == kWarmup) rss_after_warmup = RssBytes();
  }
  for (const Tagged& b : handoff) {
    if (!Intact(b)) corrupt++;
    Release(b);
  }
  std::size_t rss_end = RssBytes();
  for (const Tagged& b : for_main) {
    if (!Intact(b)) corrupt++;
    Release(b);
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(corrupt.load(), 0);
  ASSERT_GT(rss_after_warmup, 0u);
  // 950 more threads each touched ~0.5 MiB: without reuse that is ~450 MiB.
  EXPECT_LT(rss_end, rss_after_warmup + 64 * MiB)
      << "RSS grew from " << rss_after_warmup / MiB << " MiB to " << rss_end / MiB
      << " MiB over 950 short-lived threads";
}

// Blocks handed out by a thread are freed by main after that thread exited
// (and were joined), for every kind of block.  Then main can still allocate.
TEST(Threads, FreeAfterAllocatingThreadExited) {
  std::vector<Tagged> blocks;
  for (int round = 0; round < 4; ++round) {
    std::thread t([&, round] {
      std::size_t k = 0;
      for (std::size_t size : {1, 8, 24, 100, 1000, 5000, 50000, 300000, 1 << 20, 5 << 20}) {
        for (int i = 0; i < 50; ++i) {
          Tagged b = MakeBlock(size, static_cast<std::uint64_t>(round) * 100000 + k++);
          if (b.p) blocks.push_back(b);
        }
      }
      void* a = bop_alloc_aligned(4096, 10000);
      if (a) {
        Tagged b{a, 10000, 777};
        Stamp(b);
        blocks.push_back(b);
      }
    });
    t.join();
  }
  ASSERT_EQ(blocks.size(), 4u * (10 * 50 + 1));
  for (const Tagged& b : blocks) {
    EXPECT_TRUE(Intact(b)) << "size " << b.size;
    EXPECT_GE(bop_malloc_usable_size(b.p), b.size);
    Release(b);
  }
  // The exited threads' memory serves new requests.
  for (int i = 0; i < 10000; ++i) {
    Tagged b = MakeBlock(static_cast<std::size_t>(i % 700 + 1), i);
    ASSERT_NE(b.p, nullptr);
    ASSERT_TRUE(Intact(b));
    Release(b);
  }
}

// Thread hand-off: a thread whose first call frees a block of an exited
// thread adopts that thread's heap, so the block is reused by the successor
// (it would otherwise travel back to a pooled heap nobody runs).  Another
// heap is pooled after the first one, so taking the pool's most recent heap
// would not find the block again.
TEST(Threads, SuccessorAdoptsHeapOfTheBlocksItFrees) {
  constexpr std::size_t kSize = 4096;
  // `other` holds a heap of its own while `owner` allocates and exits, and
  // exits after it: its heap is then the pool's most recent.
  std::mutex m;
  std::condition_variable cv;
  int stage = 0;
  auto wait_for = [&](int s) {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return stage >= s; });
  };
  auto advance = [&](int s) {
    std::lock_guard<std::mutex> lock(m);
    stage = s;
    cv.notify_all();
  };
  std::thread other([&] {
    bop_dealloc(bop_alloc(kSize));
    advance(1);
    wait_for(2);
  });
  wait_for(1);
  void* inherited = nullptr;
  std::thread([&] { inherited = bop_alloc(kSize); }).join();
  ASSERT_NE(inherited, nullptr);
  advance(2);
  other.join();
  bool reused = false;
  std::thread([&] {
    bop_dealloc(inherited);  // this thread's first call
    std::vector<void*> got;
    for (int i = 0; i < 4096 && !reused; ++i) {
      void* p = bop_alloc(kSize);
      ASSERT_NE(p, nullptr);
      reused = p == inherited;
      got.push_back(p);
    }
    for (void* p : got) bop_dealloc(p);
  }).join();
  EXPECT_TRUE(reused) << "the block freed by the successor never came back to it";
}

// The reverse: main allocates, a thread frees and exits, main continues.
TEST(Threads, FreeOnAnotherThreadThenItExits) {
  for (int round = 0; round < 20; ++round) {
    std::vector<Tagged> blocks;
    for (int i = 0; i < 2000; ++i)
      blocks.push_back(MakeBlock(static_cast<std::size_t>(i * 37 % 3000 + 1), i));
    std::atomic<long> corrupt{0};
    std::thread t([&] {
      for (const Tagged& b : blocks) {
        if (!b.p || !Intact(b)) corrupt++;
        if (b.p) Release(b);
      }
    });
    t.join();
    EXPECT_EQ(corrupt.load(), 0);
  }
  Tagged b = MakeBlock(100, 1);
  ASSERT_NE(b.p, nullptr);
  Release(b);
}

namespace {
std::atomic<long> g_tls_dtor_ok{0};
std::atomic<long> g_tls_dtor_bad{0};

// A thread_local whose destructor allocates and frees during thread exit.
struct ExitTimeUser {
  Tagged held{};
  ~ExitTimeUser() {
    bool ok = held.p != nullptr && Intact(held);
    if (held.p) Release(held);
    for (int i = 0; i < 100; ++i) {
      void* p = bop_alloc(static_cast<std::size_t>(i * 50 + 1));
      if (!p) ok = false;
      bop_dealloc(p);
    }
    void* big = bop_alloc(2 * MiB);
    if (!big) ok = false;
    bop_dealloc(big);
    (ok ? g_tls_dtor_ok : g_tls_dtor_bad)++;
  }
};
thread_local ExitTimeUser t_user;
}  // namespace

// bop works inside thread_local destructors, i.e. during thread teardown.
TEST(Threads, AllocationDuringThreadExit) {
  g_tls_dtor_ok = 0;
  g_tls_dtor_bad = 0;
  for (int i = 0; i < 100; ++i) {
    std::thread t([i] {
      t_user.held = MakeBlock(static_cast<std::size_t>(i * 100 + 1), i);
      for (int k = 0; k < 100; ++k) bop_dealloc(bop_alloc(static_cast<std::size_t>(k)));
    });
    t.join();
  }
  EXPECT_EQ(g_tls_dtor_ok.load(), 100);
  EXPECT_EQ(g_tls_dtor_bad.load(), 0);
}
