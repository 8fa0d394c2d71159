// micro_bench: the allocator's fast paths in isolation (Google Benchmark).
//
// Calls plain malloc/free only, so the one binary measures any allocator via
// LD_PRELOAD (bench/micro does that for each). Every benchmark sets the
// counter blocks_per_iter; time per block = real_time / blocks_per_iter.
//
//   BM_Pair/N        malloc(N) then free, one pair per iteration
//   BM_PairLive/N    the same with 64 blocks of N bytes kept live meanwhile
//   BM_Batch/N       1000 x malloc(N), then the 1000 frees in allocation order
//   BM_BatchMixed    the same with 1000 sizes from 16 B to 1 KiB
//   BM_CrossThread/N a producer (the timed thread) allocates batches of 256
//                    blocks and hands them through a lock-free ring to a
//                    consumer thread that frees them: the remote-free path
#include <benchmark/benchmark.h>
#include <sched.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <thread>

namespace {

void cpu_relax() { __builtin_ia32_pause(); }

void BM_Pair(benchmark::State &state) {
  const size_t n = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    void *p = malloc(n);
    benchmark::DoNotOptimize(p);
    free(p);
  }
  state.counters["blocks_per_iter"] = 1;
}
BENCHMARK(BM_Pair)->Arg(16)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096);

// The same with 64 live blocks of that size around, so the free does not
// empty the page each time (as in real programs; see pair_callgrind.c).
void BM_PairLive(benchmark::State &state) {
  const size_t n = static_cast<size_t>(state.range(0));
  void *live[64];
  for (void *&p : live) {
    p = malloc(n);
    benchmark::DoNotOptimize(p);
  }
  for (auto _ : state) {
    void *p = malloc(n);
    benchmark::DoNotOptimize(p);
    free(p);
  }
  for (void *p : live) free(p);
  state.counters["blocks_per_iter"] = 1;
}
BENCHMARK(BM_PairLive)->Arg(16)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096);

constexpr int kBatch = 1000;

void BM_Batch(benchmark::State &state) {
  const size_t n = static_cast<size_t>(state.range(0));
  void *ptrs[kBatch];
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) {
      ptrs[i] = malloc(n);
      benchmark::DoNotOptimize(ptrs[i]);
    }
    for (int i = 0; i < kBatch; ++i) free(ptrs[i]);
    benchmark::ClobberMemory();
  }
  state.counters["blocks_per_iter"] = kBatch;
}
BENCHMARK(BM_Batch)->Arg(16)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096);

void BM_BatchMixed(benchmark::State &state) {
  size_t sizes[kBatch];
  uint64_t x = 88172645463325252ULL;
  for (int i = 0; i < kBatch; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    int bits = 4 + static_cast<int>(x % 7);  // 16 B .. 1 KiB, log-uniform
    sizes[i] = (size_t{1} << bits) + (x >> 32) % (size_t{1} << bits);
  }
  void *ptrs[kBatch];
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) {
      ptrs[i] = malloc(sizes[i]);
      benchmark::DoNotOptimize(ptrs[i]);
    }
    for (int i = 0; i < kBatch; ++i) free(ptrs[i]);
    benchmark::ClobberMemory();
  }
  state.counters["blocks_per_iter"] = kBatch;
}
BENCHMARK(BM_BatchMixed);

// Single-producer single-consumer ring of batches; lives in static storage so
// the harness itself allocates nothing while measuring.
constexpr int kXBatch = 256;
constexpr uint64_t kSlots = 64;
struct Ring {
  alignas(64) std::atomic<uint64_t> head{0};  // next batch the consumer takes
  alignas(64) std::atomic<uint64_t> tail{0};  // next batch the producer fills
  alignas(64) std::atomic<bool> stop{false};
  alignas(64) void *slots[kSlots][kXBatch];
};
Ring ring;

void consume() {
  unsigned spins = 0;
  for (;;) {
    uint64_t h = ring.head.load(std::memory_order_relaxed);
    if (ring.tail.load(std::memory_order_acquire) == h) {
      if (ring.stop.load(std::memory_order_acquire) && ring.tail.load(std::memory_order_acquire) == h) return;
      if (++spins % 1024 == 0) sched_yield();
      cpu_relax();
      continue;
    }
    void **s = ring.slots[h % kSlots];
    for (int k = 0; k < kXBatch; ++k) free(s[k]);
    ring.head.store(h + 1, std::memory_order_release);
  }
}

void BM_CrossThread(benchmark::State &state) {
  const size_t n = static_cast<size_t>(state.range(0));
  ring.head.store(0);
  ring.tail.store(0);
  ring.stop.store(false);
  std::thread consumer(consume);
  unsigned spins = 0;
  for (auto _ : state) {
    uint64_t t = ring.tail.load(std::memory_order_relaxed);
    while (t - ring.head.load(std::memory_order_acquire) == kSlots) {
      if (++spins % 1024 == 0) sched_yield();
      cpu_relax();
    }
    void **s = ring.slots[t % kSlots];
    for (int k = 0; k < kXBatch; ++k) {
      char *p = static_cast<char *>(malloc(n));
      p[0] = static_cast<char>(k);  // a message is written before it is sent
      s[k] = p;
    }
    ring.tail.store(t + 1, std::memory_order_release);
  }
  ring.stop.store(true, std::memory_order_release);
  consumer.join();
  state.counters["blocks_per_iter"] = kXBatch;
}
BENCHMARK(BM_CrossThread)->Arg(16)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
