// bop against the system allocator (glibc malloc) on a short mixed workload.
// Both run in the same process, alternately, three times each; the median
// time of each is printed with the ratio.  Usage: bop_demo [scale]
#include <bop/bop.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

struct Allocator {
  const char* name;
  void* (*alloc)(std::size_t);
  void (*free)(void*);
};

void* system_alloc(std::size_t n) {
  return std::malloc(n);
}
void system_free(void* p) {
  std::free(p);
}

const Allocator kSystem{"glibc malloc", system_alloc, system_free};
const Allocator kBop{"bop", bop_alloc, bop_dealloc};

// Small-object churn: a window of live objects of mixed sizes, replaced at
// random, like an interpreter or a compiler's AST.
std::uint64_t churn(const Allocator& a, std::size_t operations, std::uint64_t seed) {
  constexpr std::size_t kWindow = 4096;
  void* live[kWindow] = {};
  std::uint64_t x = seed, checksum = 0;
  for (std::size_t i = 0; i < operations; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    std::size_t slot = x % kWindow;
    std::size_t size = (x >> 20) % 8 == 0 ? 256 + (x >> 32) % 4096 : 8 + (x >> 32) % 120;
    if (live[slot] != nullptr) {
      checksum += *static_cast<unsigned char*>(live[slot]);
      a.free(live[slot]);
    }
    live[slot] = a.alloc(size);
    std::memset(live[slot], static_cast<int>(i), size < 64 ? size : 64);
  }
  for (void* p : live) a.free(p);
  return checksum;
}

// Producer/consumer: every block is freed by another thread.
void handoff(const Allocator& a, std::size_t blocks) {
  constexpr std::size_t kRing = 1024;
  std::vector<std::atomic<void*>> ring(kRing);
  std::thread consumer([&] {
    for (std::size_t i = 0; i < blocks; ++i) {
      std::atomic<void*>& cell = ring[i % kRing];
      void* p;
      while ((p = cell.exchange(nullptr, std::memory_order_acquire)) == nullptr)
        std::this_thread::yield();
      a.free(p);
    }
  });
  for (std::size_t i = 0; i < blocks; ++i) {
    void* p = a.alloc(16 + i % 200);
    std::memset(p, 1, 16);
    std::atomic<void*>& cell = ring[i % kRing];
    while (cell.load(std::memory_order_relaxed) != nullptr) std::this_thread::yield();
    cell.store(p, std::memory_order_release);
  }
  consumer.join();
}

double run_once(const Allocator& a, std::size_t scale) {
  auto start = std::chrono::steady_clock::now();
  unsigned threads = std::max(2u, std::thread::hardware_concurrency());
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; ++t)
    workers.emplace_back([&, t] { churn(a, 1500000 * scale, 0x9E3779B97F4A7C15ull + t); });
  for (auto& w : workers) w.join();
  handoff(a, 400000 * scale);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t scale = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 4;
  if (scale == 0) scale = 1;
  std::vector<double> system_times, bop_times;
  for (int round = 0; round < 3; ++round) {
    system_times.push_back(run_once(kSystem, scale));
    bop_times.push_back(run_once(kBop, scale));
  }
  std::sort(system_times.begin(), system_times.end());
  std::sort(bop_times.begin(), bop_times.end());
  double system_median = system_times[1], bop_median = bop_times[1];
  std::printf("workload: mixed small-object churn on %u threads + cross-thread producer/consumer\n",
              std::max(2u, std::thread::hardware_concurrency()));
  std::printf("%-14s %8.3f s (median of 3)\n", kSystem.name, system_median);
  std::printf("%-14s %8.3f s (median of 3)\n", kBop.name, bop_median);
  std::printf("bop / glibc time ratio: %.2f (below 1 means bop is faster)\n",
              bop_median / system_median);
  return 0;
}
