// Profiling a program's memory with BopStatsAllocator: the C++ counterpart of
//
//   #[global_allocator]
//   static GLOBAL: BopStatsAllocator = BopStatsAllocator::new();
//
// Every operator new/delete below is counted; the program checks its own
// numbers as it goes and prints a final report.
#include <bop/global.hpp>
#include <bop/stats.hpp>

#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

static bop::BopStatsAllocator GLOBAL;
BOP_GLOBAL_ALLOCATOR(GLOBAL);

namespace {

constexpr std::uint64_t kMB = 1024 * 1024;
std::uint64_t* volatile g_leaked = nullptr;

// Holds a vector of `mb` megabytes until it goes out of scope.
std::uint64_t peak_with_vector_of(std::uint64_t mb) {
  std::vector<char> block(mb * kMB, 'x');
  return GLOBAL.stats().current_memory;
}

}  // namespace

int main() {
  int failures = 0;
  auto expect = [&](bool ok, const char* what) {
    std::cout << "  [" << (ok ? "ok" : "FAILED") << "] " << what << "\n";
    if (!ok) ++failures;
  };

  std::cout << "1. Basic allocations with a leak check\n";
  GLOBAL.reset_stats();
  {
    auto number = std::make_unique<std::uint64_t>(7);
    std::string text(100, 'a');  // beyond the small-string buffer: heap allocated
    bop::AllocationStats live = GLOBAL.stats();
    std::cout << "  while alive: " << live << "\n";
    expect(live.outstanding_allocations() == 2, "two blocks outstanding while alive");
  }
  bop::AllocationStats after = GLOBAL.stats();
  expect(!after.has_leaks(), "no leaks once both are gone");

  std::cout << "2. Vector growth\n";
  GLOBAL.reset_stats();
  {
    std::vector<int> numbers;
    for (int i = 0; i < 1000; ++i) numbers.push_back(i);
    bop::AllocationStats s = GLOBAL.stats();
    std::cout << "  after 1000 push_backs: " << s.allocations << " allocations, " << s.deallocations
              << " deallocations, " << s.current_memory << " bytes live\n";
    expect(s.allocations > 1 && s.outstanding_allocations() == 1,
           "growth reallocated, one buffer live");
    expect(s.current_memory == numbers.capacity() * sizeof(int),
           "live bytes are the buffer's capacity");
  }

  std::cout << "3. Ten boxes leaked on purpose\n";
  GLOBAL.reset_stats();
  for (int i = 0; i < 10; ++i) {
    g_leaked = new std::uint64_t(i);  // never deleted (the volatile store keeps the compiler
  }                                   // from eliding the allocation)
  bop::AllocationStats leaks = GLOBAL.stats();
  if (leaks.has_leaks()) {
    std::cout << "  Memory leaks detected: " << leaks.outstanding_allocations() << " allocations ("
              << leaks.outstanding_memory() << " bytes)\n";
  }
  expect(leaks.outstanding_allocations() == 10 &&
             leaks.outstanding_memory() == 10 * sizeof(std::uint64_t),
         "exactly 10 allocations of 8 bytes outstanding");

  std::cout << "4. Peak tracking with 1, 5, 10, 3 and 7 MB vectors\n";
  GLOBAL.reset_stats();
  std::uint64_t base = GLOBAL.stats().current_memory;
  for (std::uint64_t mb : {1, 5, 10, 3, 7}) {
    std::uint64_t during = peak_with_vector_of(mb);
    std::cout << "  " << mb << " MB vector: current " << during << " bytes, peak so far "
              << GLOBAL.stats().peak_memory << " bytes\n";
  }
  bop::AllocationStats peak = GLOBAL.stats();
  expect(peak.peak_memory == base + 10 * kMB, "peak is the 10 MB vector, exactly");
  expect(peak.current_memory == base, "all vectors freed again");

  std::cout << "Final report\n";
  bop::AllocationStats stats = GLOBAL.stats();
  std::cout << "  Memory usage: " << stats << "\n";
  std::cout << "  Peak memory: " << stats.peak_memory << " bytes\n";
  if (stats.has_leaks())
    std::cout << "  Memory leaks detected: " << stats.outstanding_allocations() << " allocations\n";
  std::cout << (failures == 0 ? "All checks passed.\n" : "Some checks FAILED.\n");
  return failures == 0 ? 0 : 1;
}
