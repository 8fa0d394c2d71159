// remote_reuse_test: blocks another thread frees come back to their owner
// even while the owner churns in cache-hot blocks and never runs a page dry
// (pages keep one LIFO free list, so a churning owner may never reach the
// slow path that used to collect remote frees; see src/core/remote.hpp).
#include <bop/bop.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <unordered_set>
#include <vector>

#include "test_util.hpp"

using namespace bop_test;

namespace {

using Clock = std::chrono::steady_clock;

// Single-producer single-consumer ring of block pointers (its own storage,
// no allocation).
class Ring {
 public:
  bool TryPush(void* p) {
    std::size_t t = tail_.load(std::memory_order_relaxed);
    if (t - head_.load(std::memory_order_acquire) == kSize) return false;
    slots_[t % kSize] = p;
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }
  bool TryPop(void*& p) {
    std::size_t h = head_.load(std::memory_order_relaxed);
    if (h == tail_.load(std::memory_order_acquire)) return false;
    p = slots_[h % kSize];
    head_.store(h + 1, std::memory_order_release);
    return true;
  }

 private:
  static constexpr std::size_t kSize = 1024;
  std::array<void*, kSize> slots_{};
  std::atomic<std::size_t> head_{0}, tail_{0};
};

// The purger (which pokes heaps whose remote frees wait) starts on a heap's
// 64th slow call: 16 KiB blocks take one each (a 4 KiB extend run holds one).
void StartPurger() {
  std::vector<void*> blocks;
  for (int i = 0; i < 256; ++i) blocks.push_back(bop_alloc(16 * KiB));
  for (void* p : blocks) bop_dealloc(p);
}

// Allocates `count` blocks on the calling thread, frees them on a thread
// of their own that then exits: its exit hands them to us as one batch.
std::vector<void*> SendLoneBatch(int count, std::size_t size, std::size_t alignment) {
  std::vector<void*> batch;
  for (int i = 0; i < count; ++i) {
    void* p = alignment == 0 ? bop_alloc(size) : bop_alloc_aligned(alignment, size);
    std::memset(p, 0xA5, size);
    batch.push_back(p);
  }
  std::thread([&] {
    for (void* p : batch) bop_dealloc(p);
  }).join();
  return batch;
}

bool Contains(const std::vector<void*>& blocks, const void* p) {
  return std::find(blocks.begin(), blocks.end(), p) != blocks.end();
}

}  // namespace

// The owner churns alloc/free of 48, 128 and 3000 bytes in a 64-block ring
// (hot blocks), and hands one block in four to a thread that frees it.  The
// address space its blocks ever occupied must stay bounded: without reuse of
// the remote frees, 150,000 handed-off blocks (~160 MB) spread over
// thousands of 64 KiB pages.
TEST(Threads, ChurningOwnerTakesBackRemoteFrees) {
  constexpr std::size_t kSizes[] = {48, 128, 3000};
  constexpr int kSteps = 600000;
  constexpr std::size_t kRegionShift = 16;  // 64 KiB: the small page size
  // In flight at once: at most the ring (1024) and the freeing thread's and
  // the owner's pending batches; 1024 blocks of 3000 B fill ~50 pages (20 regions were seen in
  // all).
  constexpr std::size_t kMaxRegions = 128;
  Ring ring;
  std::atomic<bool> done{false};
  std::atomic<long> remote_frees{0};
  std::size_t regions_seen = 0;
  int steps_done = 0;

  std::thread freer([&] {
    for (;;) {
      void* p;
      if (ring.TryPop(p)) {
        bop_dealloc(p);
        remote_frees.fetch_add(1, std::memory_order_relaxed);
      } else if (done.load(std::memory_order_acquire)) {
        if (!ring.TryPop(p)) return;
        bop_dealloc(p);
      } else {
        std::this_thread::yield();
      }
    }
  });
  std::thread owner([&] {
    std::unordered_set<std::uintptr_t> regions;  // glibc's memory: bop::bop leaves malloc alone
    std::array<void*, 64> hot{};
    int step = 0;
    for (; step < kSteps; ++step) {
      std::size_t size = kSizes[step % 3];
      auto* p = static_cast<unsigned char*>(bop_alloc(size));
      if (p == nullptr) break;
      p[0] = 1;
      p[size - 1] = 2;
      regions.insert(reinterpret_cast<std::uintptr_t>(p) >> kRegionShift);
      if (regions.size() > kMaxRegions) break;  // failing: no need to go on
      if (step % 4 == 0) {
        while (!ring.TryPush(p)) std::this_thread::yield();
      } else {
        void*& slot = hot[static_cast<std::size_t>(step) % hot.size()];
        bop_dealloc(slot);
        slot = p;
      }
    }
    for (void* p : hot) bop_dealloc(p);
    regions_seen = regions.size();
    steps_done = step;
  });
  owner.join();
  done.store(true, std::memory_order_release);
  freer.join();
  EXPECT_EQ(steps_done, kSteps) << "stopped early: allocation failed or memory kept growing";
  EXPECT_LE(regions_seen, kMaxRegions)
      << "the owner's blocks spread over " << regions_seen << " 64 KiB regions after " << steps_done
      << " steps (" << remote_frees.load() << " remote frees)";
  RecordProperty("regions", static_cast<int>(regions_seen));
}

// One batch of remote frees, which finds no other batch waiting (so its
// sender pokes nobody), while the owner churns a hot block each of 48 and
// 128 bytes (direct-table sizes: their fast path never tests remote_in).
// The purger's poke must send the owner to collect it, within a few purge
// periods.  Collected blocks lie under the hot block on the LIFO list, so
// the test probes: the next kBatch + 1 blocks of 48 B (no more than the
// fresh blocks the page holds, so the probe itself never reaches the slow
// path) include one of the batch once it is back.
TEST(Threads, ChurningOwnerTakesBackALoneRemoteBatch) {
  constexpr int kBatch = 16;  // < kRemoteBatch (64): one hand-over, at the sender's exit
  bool reused = false;
  double seconds = 0;
  long steps = 0;
  std::thread owner([&] {
    StartPurger();
    // Each churn size has its page before the batch arrives (a first
    // allocation of a class takes the slow path, which would collect the
    // batch), and keeps one block live so the churn never empties its page
    // (an emptied page may be trimmed: another slow call).
    void* keep128 = bop_alloc(128);
    std::vector<void*> batch = SendLoneBatch(kBatch, 48, 0);
    void* keep48 = bop_alloc(48);
    auto start = Clock::now();
    auto deadline = start + std::chrono::seconds(10);
    while (!reused && Clock::now() < deadline) {
      for (int k = 0; k < 1000; ++k, ++steps) {
        void* a = bop_alloc(48);
        void* b = bop_alloc(128);
        bop_dealloc(b);
        bop_dealloc(a);
      }
      std::array<void*, kBatch + 1> probe{};
      for (void*& p : probe) {
        p = bop_alloc(48);
        reused |= Contains(batch, p);
      }
      // In reverse: the free list is as it was before the probe.
      for (auto p = probe.rbegin(); p != probe.rend(); ++p) bop_dealloc(*p);
    }
    seconds = std::chrono::duration<double>(Clock::now() - start).count();
    bop_dealloc(keep48);
    bop_dealloc(keep128);
  });
  owner.join();
  EXPECT_TRUE(reused) << "no block of the remote batch came back in " << seconds << " s (" << steps
                      << " churn steps)";
}

// The same for sizes above the direct table (3000 B) and for aligned
// requests: their pages come from the class queues, whose fast path tests
// remote_in itself, so the batch comes back at once, not a purge period later.
TEST(Threads, QueuePathsTakeBackALoneRemoteBatchAtOnce) {
  struct Case {
    std::size_t size, alignment;
  };
  for (Case c : {Case{3000, 0}, Case{200, 256}}) {
    long steps = 0;
    bool reused = false;
    auto alloc = [&] {
      return c.alignment == 0 ? bop_alloc(c.size) : bop_alloc_aligned(c.alignment, c.size);
    };
    std::thread owner([&] {
      // A block freed after the batch went out tops its page's free list, so
      // the churn has a block at hand (no slow call that collects anyway).
      void* hot = alloc();
      std::vector<void*> batch = SendLoneBatch(16, c.size, c.alignment);
      bop_dealloc(hot);
      for (; steps < 100 && !reused; ++steps) {
        void* p = alloc();
        reused = Contains(batch, p);
        bop_dealloc(p);
      }
    });
    owner.join();
    EXPECT_TRUE(reused) << "size " << c.size << ", alignment " << c.alignment
                        << ": no block of the remote batch back after " << steps << " steps";
  }
}

// Blocks other threads freed are reused before the owner carves fresh ones:
// carving a page's never-used blocks while other pages hold free blocks
// grows the RSS past the live peak (w02_server: 31 -> 25.5 MiB).  The owner
// fills two pages and starts a third; another thread frees every third
// block of the first two; the owner's next allocations must come mostly
// from those freed blocks, not from the third page's uncarved rest.
TEST(Threads, RemoteFreedBlocksAreReusedBeforeCarving) {
  constexpr std::size_t kSize = 720;     // class 768: 85 blocks per 64 KiB page
  constexpr std::size_t kCapacity = 85;  // per page
  std::vector<void*> blocks(2 * kCapacity + 10), freed, again;
  std::thread owner([&] {
    for (void*& p : blocks) {
      p = bop_alloc(kSize);
      std::memset(p, 1, kSize);
    }
    for (std::size_t i = 0; i < 2 * kCapacity; i += 3) freed.push_back(blocks[i]);
    std::thread other([&] {
      for (void* p : freed) bop_dealloc(p);
    });  // its exit hands the last batch over
    other.join();
    for (std::size_t i = 0; i < freed.size(); ++i) again.push_back(bop_alloc(kSize));
  });
  owner.join();
  std::unordered_set<void*> was_freed(freed.begin(), freed.end());
  std::size_t reused = 0;
  for (void* p : again) reused += was_freed.count(p);
  // The third page's current run of carved blocks (4 KiB: 5 blocks) may
  // come first; everything after it must be a reused block.
  EXPECT_GE(reused + 8, again.size()) << reused << " of " << again.size() << " reused";
  for (void* p : again) bop_dealloc(p);
  for (std::size_t i = 0; i < blocks.size(); ++i)
    if (i >= 2 * kCapacity || i % 3 != 0) bop_dealloc(blocks[i]);
}
