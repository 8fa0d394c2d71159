// Installs a bop allocator object as the program's global allocator, for the
// C++ workloads' BopAllocator / BopStatsAllocator variants
// (bin/global/<workload>_{bop,stats}): BENCH_STATS_ALLOCATOR=1 picks
// BopStatsAllocator.  malloc stays the C library's; every new/delete goes here.
#include <bop/global.hpp>
#include <bop/stats.hpp>

namespace {
#if BENCH_STATS_ALLOCATOR
constinit bop::BopStatsAllocator g_allocator;
#else
constinit bop::BopAllocator g_allocator;
#endif
}  // namespace

BOP_GLOBAL_ALLOCATOR(g_allocator);
