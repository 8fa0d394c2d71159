// BopStatsAllocator against BopAllocator on a malloc+free pair.
//
//   stats_allocator_pair [SIZE [PAIRS [ROUNDS]]]
//       times ROUNDS alternating rounds of PAIRS pairs with each allocator
//       (thread CPU time, so other load on the machine disturbs it less) and
//       prints the median ns per pair of each and their ratio
//   stats_allocator_pair --only bop|stats SIZE PAIRS
//       just the pairs of one allocator, for callgrind: run it with two
//       PAIRS values, (Ir(N2) - Ir(N1)) / (N2 - N1) is the cost of one pair
//
// 64 blocks of the size stay live meanwhile, as in pair_callgrind (so a free
// does not empty its page every time).
#include <bop/allocator.hpp>
#include <bop/stats.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

namespace {

constinit bop::BopAllocator g_plain;
constinit bop::BopStatsAllocator g_stats;

template <class A>
void pairs(A& a, std::size_t size, long n) {
  bop::Layout layout(size, alignof(std::max_align_t));
  for (long i = 0; i < n; ++i) {
    void* p = a.alloc(layout);
    asm volatile("" : : "r"(p) : "memory");  // keeps the pair
    a.dealloc(p, layout);
  }
}

template <class A>
void* keep_live(A& a, std::size_t size, void** live, int n) {
  for (int i = 0; i < n; ++i) live[i] = a.alloc(bop::Layout(size, alignof(std::max_align_t)));
  return live[0];
}

double cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

template <class A>
double time_round(A& a, std::size_t size, long n) {
  double t0 = cpu_ns();
  pairs(a, size, n);
  return (cpu_ns() - t0) / n;
}

}  // namespace

int main(int argc, char** argv) {
  void* live_plain[64];
  void* live_stats[64];
  if (argc == 5 && std::strcmp(argv[1], "--only") == 0) {
    std::size_t size = std::strtoull(argv[3], nullptr, 10);
    long n = std::strtol(argv[4], nullptr, 10);
    if (std::strcmp(argv[2], "stats") == 0) {
      keep_live(g_stats, size, live_stats, 64);
      pairs(g_stats, size, 1000 + n);
    } else {
      keep_live(g_plain, size, live_plain, 64);
      pairs(g_plain, size, 1000 + n);
    }
    return 0;
  }
  std::size_t size = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 64;
  long n = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 2000000;
  int rounds = argc > 3 ? std::atoi(argv[3]) : 11;
  keep_live(g_plain, size, live_plain, 64);
  keep_live(g_stats, size, live_stats, 64);
  pairs(g_plain, size, n / 10);  // warm up both
  pairs(g_stats, size, n / 10);
  std::vector<double> plain, stats, ratio;
  for (int r = 0; r < rounds; ++r) {
    double a = time_round(g_plain, size, n), b = time_round(g_stats, size, n);
    plain.push_back(a), stats.push_back(b), ratio.push_back(b / a);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::printf("size=%zu bop_allocator_ns=%.2f stats_allocator_ns=%.2f ratio=%.3f\n", size,
              median(plain), median(stats), median(ratio));
  return 0;
}
