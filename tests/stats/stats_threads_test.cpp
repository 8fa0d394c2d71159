// BopStatsAllocator with many threads: totals are exact once the threads
// have joined (also with more threads than the 64 counter shards), the peak
// stays within its documented bounds, and every snapshot taken while threads
// allocate, free and hand blocks to each other is consistent.
#include <bop/stats.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using bop::AllocationStats;
using bop::BopStatsAllocator;
using bop::Layout;

constexpr std::uint64_t KiB = 1024;
constexpr std::uint64_t MiB = 1024 * KiB;

// Gives the main thread its bop heap (and so its counter shard) before any
// test thread exists: it is then one of the first 64 and never shares the
// overflow shard with a test thread.
const bool kMainThreadHasHeap = [] {
  BopStatsAllocator a;
  a.dealloc_unsized(a.alloc(Layout(1)));
  return true;
}();

// What one thread did, added up by the test to get the exact expected totals.
struct Tally {
  std::uint64_t allocations = 0, deallocations = 0, bytes_allocated = 0, bytes_deallocated = 0;
  Tally& operator+=(const Tally& o) {
    allocations += o.allocations;
    deallocations += o.deallocations;
    bytes_allocated += o.bytes_allocated;
    bytes_deallocated += o.bytes_deallocated;
    return *this;
  }
};

struct Block {
  void* p;
  std::size_t size;
};

// A locked box of blocks that one thread drops in and another takes out.
class Mailbox {
 public:
  void Put(Block b) {
    std::lock_guard<std::mutex> lock(mu_);
    blocks_.push_back(b);
  }
  std::vector<Block> TakeAll() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::move(blocks_);
  }

 private:
  std::mutex mu_;
  std::vector<Block> blocks_;
};

// Counting wrappers: do the operation and note it in the thread's tally.
void* Alloc(BopStatsAllocator& a, Tally& t, std::size_t size) {
  void* p = a.alloc(Layout(size));
  if (p != nullptr) {
    t.allocations++;
    t.bytes_allocated += size;
    if (size > 0) static_cast<char*>(p)[size - 1] = 1;  // touch it
  }
  return p;
}
void Free(BopStatsAllocator& a, Tally& t, Block b) {
  a.dealloc(b.p, Layout(b.size));
  t.deallocations++;
  t.bytes_deallocated += b.size;
}
void* Resize(BopStatsAllocator& a, Tally& t, Block b, std::size_t size) {
  void* q = a.realloc(b.p, Layout(b.size), size);
  if (q != nullptr) {
    if (size > b.size)
      t.bytes_allocated += size - b.size;
    else
      t.bytes_deallocated += b.size - size;
  }
  return q;
}

// Checks the snapshot against the summed tallies, field by field.
void ExpectTotals(const AllocationStats& s, const Tally& t) {
  EXPECT_EQ(s.allocations, t.allocations);
  EXPECT_EQ(s.deallocations, t.deallocations);
  EXPECT_EQ(s.bytes_allocated, t.bytes_allocated);
  EXPECT_EQ(s.bytes_deallocated, t.bytes_deallocated);
  EXPECT_EQ(s.current_memory, t.bytes_allocated - t.bytes_deallocated);
}

// Runs `threads` workers.  Each allocates `rounds` x `per_round` blocks,
// frees half itself, resizes some and mails the rest to the next thread,
// which frees them.  `sync` makes all threads alive at once (so each needs
// its own shard).  Returns the summed tallies; everything is freed.
Tally RunWorkers(BopStatsAllocator& a, int threads, int rounds, int per_round, bool sync) {
  std::vector<Mailbox> boxes(threads);
  std::vector<Tally> tallies(threads);
  std::barrier all_alive(threads);
  std::vector<std::thread> pool;
  for (int id = 0; id < threads; ++id) {
    pool.emplace_back([&, id] {
      Tally& t = tallies[id];
      std::mt19937 rng(id);
      if (sync) all_alive.arrive_and_wait();
      for (int r = 0; r < rounds; ++r) {
        std::vector<Block> mine;
        for (int i = 0; i < per_round; ++i) {
          std::size_t size = rng() % 8 == 0 ? rng() % (300 * KiB) : rng() % 3000;
          if (void* p = Alloc(a, t, size)) mine.push_back({p, size});
        }
        for (std::size_t i = 0; i < mine.size(); ++i) {
          if (i % 2 == 0) {
            Free(a, t, mine[i]);
          } else if (i % 3 == 0) {
            std::size_t size = rng() % 5000;
            if (void* q = Resize(a, t, mine[i], size))
              boxes[(id + 1) % threads].Put({q, size});
            else
              boxes[(id + 1) % threads].Put(mine[i]);
          } else {
            boxes[(id + 1) % threads].Put(mine[i]);
          }
        }
        for (Block b : boxes[id].TakeAll()) Free(a, t, b);  // blocks of another thread
      }
      if (sync) all_alive.arrive_and_wait();  // everyone has mailed its last blocks
      for (Block b : boxes[id].TakeAll()) Free(a, t, b);
    });
  }
  for (std::thread& th : pool) th.join();
  Tally total;
  for (const Tally& t : tallies) total += t;
  for (Mailbox& box : boxes)  // only without sync can a block be left over
    for (Block b : box.TakeAll()) Free(a, total, b);
  return total;
}

// 8 threads allocating, freeing and freeing each other's blocks: the totals
// after join are exactly what they did.
TEST(StatsThreads, EightThreadsExactTotals) {
  BopStatsAllocator a;
  Tally t = RunWorkers(a, 8, 40, 100, /*sync=*/true);
  AllocationStats s = a.stats();
  ExpectTotals(s, t);
  EXPECT_EQ(s.allocations, s.deallocations);
  EXPECT_EQ(s.current_memory, 0u);
  EXPECT_FALSE(s.has_leaks());
}

// 100 threads alive at once: more than the 64 per-thread shards, so the
// locked shared shard is used by several threads at the same time.
TEST(StatsThreads, MoreThreadsThanShardsExactTotals) {
  BopStatsAllocator a;
  Tally t = RunWorkers(a, 100, 20, 100, /*sync=*/true);
  ExpectTotals(a.stats(), t);
  EXPECT_FALSE(a.stats().has_leaks());
}

// 150 threads alive at once, each holding 20 blocks while the main thread
// looks: the live snapshot is exact, then the frees are too.
TEST(StatsThreads, MoreThreadsThanShardsLiveSnapshot) {
  constexpr int kThreads = 150, kBlocks = 20;
  BopStatsAllocator a;
  std::barrier sync(kThreads + 1);
  std::vector<Tally> tallies(kThreads);
  std::vector<std::thread> pool;
  for (int id = 0; id < kThreads; ++id) {
    pool.emplace_back([&, id] {
      std::vector<Block> mine;
      for (int i = 0; i < kBlocks; ++i) {
        std::size_t size = 16 + 8 * static_cast<std::size_t>(id) + static_cast<std::size_t>(i);
        mine.push_back({Alloc(a, tallies[id], size), size});
      }
      sync.arrive_and_wait();  // all allocated
      sync.arrive_and_wait();  // main has looked
      for (Block b : mine) Free(a, tallies[id], b);
    });
  }
  sync.arrive_and_wait();
  Tally live;
  for (const Tally& t : tallies) live += t;
  AllocationStats s = a.stats();
  ExpectTotals(s, live);
  EXPECT_EQ(s.allocations, std::uint64_t{kThreads} * kBlocks);
  EXPECT_EQ(s.outstanding_allocations(), std::uint64_t{kThreads} * kBlocks);
  EXPECT_GE(s.peak_memory, s.current_memory);
  sync.arrive_and_wait();
  for (std::thread& th : pool) th.join();
  Tally total;
  for (const Tally& t : tallies) total += t;
  ExpectTotals(a.stats(), total);
  EXPECT_FALSE(a.stats().has_leaks());
}

// Short-lived threads one after another reuse heaps, and with them shards:
// nothing is lost or counted twice.
TEST(StatsThreads, ThreadChurnExactTotals) {
  BopStatsAllocator a;
  Tally total;
  for (int wave = 0; wave < 20; ++wave) total += RunWorkers(a, 3, 2, 30, /*sync=*/false);
  ExpectTotals(a.stats(), total);
  EXPECT_FALSE(a.stats().has_leaks());
}

// Blocks freed while a thread exits (by a thread_local destructor, after the
// thread's own code is done) are counted like any other free.
struct FreeAtThreadExit {
  BopStatsAllocator* a = nullptr;
  std::vector<Block> blocks;
  ~FreeAtThreadExit() {
    for (Block b : blocks) a->dealloc(b.p, Layout(b.size));
  }
};
TEST(StatsThreads, FreesDuringThreadExitAreCounted) {
  BopStatsAllocator a;
  constexpr int kThreads = 16, kBlocks = 100;
  std::vector<std::thread> pool;
  for (int id = 0; id < kThreads; ++id) {
    pool.emplace_back([&a] {
      thread_local FreeAtThreadExit at_exit;
      at_exit.a = &a;
      for (int i = 0; i < kBlocks; ++i) at_exit.blocks.push_back({a.alloc(Layout(1000)), 1000});
    });
  }
  for (std::thread& th : pool) th.join();
  AllocationStats s = a.stats();
  EXPECT_EQ(s.allocations, std::uint64_t{kThreads} * kBlocks);
  EXPECT_EQ(s.deallocations, std::uint64_t{kThreads} * kBlocks);
  EXPECT_EQ(s.bytes_deallocated, std::uint64_t{kThreads} * kBlocks * 1000);
  EXPECT_EQ(s.current_memory, 0u);
}

// The documented bound: with N threads allocating at once the peak may be
// off by less than (N - 1) x 256 KiB.  Here 8 threads each hold 10 blocks of
// 100 KiB at the same moment, then free them at once.
TEST(StatsThreads, PeakWithinDocumentedBound) {
  constexpr int kThreads = 8, kBlocks = 10;
  constexpr std::uint64_t kSize = 100 * KiB;
  constexpr std::uint64_t kTruePeak = kThreads * kBlocks * kSize;
  constexpr std::uint64_t kSlack = (kThreads - 1) * 256 * KiB;
  BopStatsAllocator a;
  std::barrier sync(kThreads + 1);
  std::vector<std::thread> pool;
  for (int id = 0; id < kThreads; ++id) {
    pool.emplace_back([&] {
      std::vector<void*> mine;
      sync.arrive_and_wait();
      for (int i = 0; i < kBlocks; ++i) mine.push_back(a.alloc(Layout(kSize)));
      sync.arrive_and_wait();  // all hold their blocks
      sync.arrive_and_wait();  // main has looked
      for (void* p : mine) a.dealloc(p, Layout(kSize));
    });
  }
  sync.arrive_and_wait();
  sync.arrive_and_wait();
  AllocationStats holding = a.stats();
  EXPECT_EQ(holding.current_memory, kTruePeak);
  EXPECT_LT(holding.peak_memory, kTruePeak + kSlack);
  sync.arrive_and_wait();
  for (std::thread& th : pool) th.join();
  AllocationStats after = a.stats();
  EXPECT_EQ(after.current_memory, 0u);
  EXPECT_LT(after.peak_memory, kTruePeak + kSlack);
  EXPECT_GT(after.peak_memory + kSlack, kTruePeak);
}

// A simple hand-over gets an exact peak.  Main allocates and frees
// 200 KiB (below the 256 KiB fold step), then another thread allocates and
// keeps 1 MiB: current_memory was never above 1 MiB.  (The two threads must
// write different counter shards, which kMainThreadHasHeap makes sure of.)
TEST(StatsThreads, PeakNotAboveTrueMaximumAcrossThreads) {
  BopStatsAllocator a;
  void* p = a.alloc(Layout(200 * KiB));
  a.dealloc(p, Layout(200 * KiB));
  void* kept = nullptr;
  std::thread([&] { kept = a.alloc(Layout(MiB)); }).join();
  AllocationStats s = a.stats();
  EXPECT_EQ(s.current_memory, MiB);
  EXPECT_EQ(s.peak_memory, MiB);
  a.dealloc(kept, Layout(MiB));
}

// Same with blocks freed by another thread (producer/consumer): main
// allocates 200 x 1 KiB, a second thread frees them all, then main allocates
// 300 KiB.  current_memory was never above 300 KiB.
TEST(StatsThreads, PeakNotAboveTrueMaximumWithCrossThreadFrees) {
  BopStatsAllocator a;
  std::vector<void*> blocks;
  for (int i = 0; i < 200; ++i) blocks.push_back(a.alloc(Layout(KiB)));
  std::thread([&] {
    for (void* p : blocks) a.dealloc(p, Layout(KiB));
  }).join();
  void* kept = a.alloc(Layout(300 * KiB));
  AllocationStats s = a.stats();
  EXPECT_EQ(s.current_memory, 300 * KiB);
  EXPECT_EQ(s.peak_memory, 300 * KiB);
  a.dealloc(kept, Layout(300 * KiB));
}

// And not below it either: main holds 200 KiB (not folded yet) while
// another thread allocates and frees 1 MiB, so current_memory was
// 1 MiB + 200 KiB for a while.
TEST(StatsThreads, PeakNotBelowTrueMaximumAcrossThreads) {
  BopStatsAllocator a;
  void* held = a.alloc(Layout(200 * KiB));
  std::thread([&] { a.dealloc(a.alloc(Layout(MiB)), Layout(MiB)); }).join();
  AllocationStats s = a.stats();
  EXPECT_EQ(s.current_memory, 200 * KiB);
  EXPECT_EQ(s.peak_memory, MiB + 200 * KiB);
  a.dealloc(held, Layout(200 * KiB));
}

// Four threads take strict turns (a token passed round-robin), each doing a
// few random allocs, frees (of any thread's blocks) and reallocs per turn:
// after every operation the five counters match a model exactly and the
// peak lies within the documented (N - 1) x 256 KiB of the model's.
TEST(StatsThreads, TurnTakingMatchesModel) {
  constexpr int kThreads = 4, kTurns = 400, kOpsPerTurn = 5;
  BopStatsAllocator a;
  std::mutex mu;
  std::condition_variable cv;
  int turn = 0;
  std::vector<Block> live;  // every thread's blocks; used only by the turn holder
  AllocationStats model;
  bool diverged = false;
  std::vector<std::thread> pool;
  for (int id = 0; id < kThreads; ++id) {
    pool.emplace_back([&, id] {
      std::mt19937_64 rng(7 + id);
      for (int t = id; t < kTurns; t += kThreads) {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return turn == t; });
        for (int op = 0; op < kOpsPerTurn && !diverged; ++op) {
          std::size_t size = rng() % 5 == 0 ? rng() % (400 * KiB) : rng() % 3000;
          unsigned kind = static_cast<unsigned>(rng() % 10);
          if (live.empty() || kind < 5) {
            live.push_back({a.alloc(Layout(size)), size});
            model.allocations++;
            model.bytes_allocated += size;
            model.current_memory += size;
          } else if (kind < 8) {
            std::size_t i = rng() % live.size();
            a.dealloc(live[i].p, Layout(live[i].size));
            model.deallocations++;
            model.bytes_deallocated += live[i].size;
            model.current_memory -= live[i].size;
            live[i] = live.back();
            live.pop_back();
          } else {
            Block& b = live[rng() % live.size()];
            b.p = a.realloc(b.p, Layout(b.size), size);
            if (size > b.size)
              model.bytes_allocated += size - b.size;
            else
              model.bytes_deallocated += b.size - size;
            model.current_memory = model.current_memory + size - b.size;
            b.size = size;
          }
          if (model.current_memory > model.peak_memory) model.peak_memory = model.current_memory;
          AllocationStats s = a.stats();
          AllocationStats s_no_peak = s, model_no_peak = model;
          s_no_peak.peak_memory = model_no_peak.peak_memory = 0;
          constexpr std::uint64_t kBound = (kThreads - 1) * 256 * KiB;
          std::uint64_t gap = s.peak_memory > model.peak_memory ? s.peak_memory - model.peak_memory
                                                                : model.peak_memory - s.peak_memory;
          EXPECT_EQ(s_no_peak, model_no_peak) << "thread " << id << ", turn " << t << ", operation " << op;
          EXPECT_LT(gap, kBound) << s << " vs model peak " << model.peak_memory;
          EXPECT_GE(s.peak_memory, s.current_memory);
          diverged = !(s_no_peak == model_no_peak) || gap >= kBound;
        }
        ++turn;
        cv.notify_all();
      }
    });
  }
  for (std::thread& th : pool) th.join();
  for (Block b : live) a.dealloc(b.p, Layout(b.size));
}

// Checks the invariants every snapshot must satisfy; returns false (after
// recording a failure) on the first violation.
bool SnapshotIsConsistent(const AllocationStats& s) {
  bool ok = s.deallocations <= s.allocations && s.bytes_deallocated <= s.bytes_allocated &&
            s.current_memory == s.bytes_allocated - s.bytes_deallocated &&
            s.peak_memory >= s.current_memory;
  EXPECT_TRUE(ok) << s;
  return ok;
}

// Writers allocate, resize, free and hand blocks to each other while a
// reader takes snapshots in a loop (and, if `resets`, another thread resets
// the counters): no snapshot is ever inconsistent, counters never go back
// between resets, and what is left at the end is exact.
void SnapshotsUnderLoad(bool resets) {
  constexpr int kWriters = 3;
  BopStatsAllocator a;
  std::atomic<int> writers_left{kWriters};
  std::atomic<bool> reader_started{false};
  std::atomic<std::uint64_t> snapshots{0};

  std::thread reader([&] {
    AllocationStats last;
    bool first = true;
    while (writers_left.load() > 0) {
      AllocationStats s = a.stats();
      reader_started.store(true);
      snapshots.fetch_add(1);
      if (!SnapshotIsConsistent(s)) return;
      // Counters only grow between resets.  (The peak may not: with several
      // threads it is allowed to lag behind by up to (N - 1) x 256 KiB.)
      if (!resets && !first) {
        EXPECT_GE(s.allocations, last.allocations);
        EXPECT_GE(s.deallocations, last.deallocations);
        EXPECT_GE(s.bytes_allocated, last.bytes_allocated);
        EXPECT_GE(s.bytes_deallocated, last.bytes_deallocated);
        if (s.allocations < last.allocations || s.bytes_allocated < last.bytes_allocated) return;
      }
      last = s;
      first = false;
    }
  });
  std::thread resetter;
  if (resets) {
    resetter = std::thread([&] {
      while (writers_left.load() > 0) {
        a.reset_stats();
        std::this_thread::yield();
      }
    });
  }
  while (!reader_started.load()) std::this_thread::yield();

  Mailbox boxes[kWriters];
  std::vector<Tally> tallies(kWriters);
  std::vector<std::thread> writers;
  for (int id = 0; id < kWriters; ++id) {
    writers.emplace_back([&, id] {
      std::mt19937 rng(100 + id);
      std::vector<Block> mine;
      Tally& t = tallies[id];
      for (int op = 0; op < 60000; ++op) {
        unsigned kind = rng() % 8;
        if (mine.empty() || kind < 3) {
          std::size_t size = rng() % 16 == 0 ? rng() % (400 * KiB) : rng() % 512;
          if (void* p = Alloc(a, t, size)) mine.push_back({p, size});
        } else if (kind < 5) {
          Free(a, t, mine.back());
          mine.pop_back();
        } else if (kind < 6) {
          Block& b = mine[rng() % mine.size()];
          std::size_t size = rng() % 2000;
          if (void* q = Resize(a, t, b, size)) b = {q, size};
        } else if (kind < 7) {
          boxes[(id + 1) % kWriters].Put(mine.back());
          mine.pop_back();
        } else {
          for (Block b : boxes[id].TakeAll()) Free(a, t, b);
        }
      }
      for (Block b : mine) Free(a, t, b);
      writers_left.fetch_sub(1);
    });
  }
  for (std::thread& w : writers) w.join();
  reader.join();
  if (resetter.joinable()) resetter.join();
  Tally total;
  for (const Tally& t : tallies) total += t;
  for (Mailbox& box : boxes)
    for (Block b : box.TakeAll()) Free(a, total, b);

  EXPECT_GT(snapshots.load(), 0u);
  AllocationStats s = a.stats();
  SnapshotIsConsistent(s);
  EXPECT_EQ(s.current_memory, 0u);
  EXPECT_EQ(s.outstanding_allocations(), 0u);
  EXPECT_EQ(s.outstanding_memory(), 0u);
  if (!resets) ExpectTotals(s, total);
}

TEST(StatsThreads, SnapshotsConsistentUnderLoad) {
  SnapshotsUnderLoad(/*resets=*/false);
}
TEST(StatsThreads, SnapshotsConsistentUnderLoadWithResets) {
  SnapshotsUnderLoad(/*resets=*/true);
}

}  // namespace
