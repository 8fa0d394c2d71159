// A small program for the process-wide statistics tests
// (stats_process_test.py).  Built twice: stats_probe is linked with
// bop::override, stats_plain_probe with nothing and run under
// LD_PRELOAD=libbop.so.  Both export their symbols (-rdynamic) so leak
// stacks can name leak_from_known_function.
//
//   probe churn          2000 x 1000-byte and 3 x 1 MiB mallocs, all freed
//   probe leak           leak_from_known_function() leaks 2000 x 1000 bytes
//   probe noleak         free_again_from_known_function() frees all it takes
//   probe capi OUT.json OUT.txt   checks bop_stats_* itself (stats_probe only)
//   probe off            prints bop_stats_enabled() and the counters
//   probe peak           checks peak_memory against its documented bound
//                        (one thread, then two; stats_probe only)
//   probe pages KEEP     with every block sampled: pages that hold many
//                        samples, freed down to KEEP live ones (see PageSamples)
//   probe grow           holds 20 x 100 KiB more every 10 ms (0.2 s), frees it
//                        all, then leaks as `leak` does (for the timeline and
//                        the HTML report)
//
// It prints "usable_1000=N usable_early=M" (malloc_usable_size of a
// 1000-byte block and of a block allocated before main) and, for each
// failed check, a line starting with "FAIL"; the exit code is the number of
// failed checks.
#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>

#if STATS_PROBE_LINKED
#include <bop/bop.h>
#endif

namespace {

constexpr int kBlocks = 2000;
constexpr std::size_t kSize = 1000;
void* volatile g_sink;  // stores here keep the compiler from dropping a malloc
int g_failures = 0;

void Churn() {
  static void* blocks[kBlocks];
  for (void*& p : blocks) g_sink = p = std::malloc(kSize);
  for (void* p : blocks) std::free(p);
  for (int i = 0; i < 3; ++i) {
    g_sink = std::malloc(1 << 20);
    std::free(g_sink);
  }
}

// Memory that rises in steps over about 0.2 s, then falls back.
void Grow(void (*leak)()) {
  static void* blocks[20][20];
  for (auto& step : blocks) {
    for (void*& p : step) {
      g_sink = p = std::malloc(100 * 1024);
      std::memset(p, 1, 100 * 1024);
    }
    usleep(10 * 1000);
  }
  for (auto& step : blocks)
    for (void* p : step) std::free(p);
  leak();
  usleep(30 * 1000);
}

}  // namespace

// The leak the report must name: its own frame is the first one shown.
extern "C" __attribute__((noinline)) void leak_from_known_function() {
  for (int i = 0; i < kBlocks; ++i) g_sink = std::malloc(kSize);
}

// Takes as much and gives it all back: it must not show up as a leak.
extern "C" __attribute__((noinline)) void free_again_from_known_function() {
  static void* blocks[kBlocks];
  for (void*& p : blocks) g_sink = p = std::malloc(kSize);
  for (void* p : blocks) std::free(p);
}

#if STATS_PROBE_LINKED
// C23 sized frees: exported by bop, not declared by older C libraries.
extern "C" void free_sized(void* p, std::size_t size) noexcept;
extern "C" void free_aligned_sized(void* p, std::size_t alignment, std::size_t size) noexcept;

namespace {

// Process counters count block sizes.  malloc_usable_size reports them in
// default builds; checked builds keep a canary past the usable size, so their
// block sizes (classes) are larger than what it reports.
bool BlockBytes(std::uint64_t counted, std::size_t usable) {
#if PROBE_CHECKED_BUILD
  return counted >= usable;
#else
  return counted == usable;
#endif
}

void Check(bool ok, const char* what) {
  if (!ok) {
    std::printf("FAIL: %s\n", what);
    ++g_failures;
  }
}

// Every allocation entry point is one counted allocation of its block size;
// every free function one counted free.
void CheckEntryPoints() {
  void* b[12];
  bop_stats s0, s1, s2;
  bop_stats_get(&s0);
  b[0] = std::malloc(10);
  b[1] = std::calloc(3, 100);
  b[2] = std::realloc(nullptr, 200);
  b[3] = reallocarray(nullptr, 4, 50);
  b[4] = aligned_alloc(64, 640);
  if (posix_memalign(&b[5], 128, 1000) != 0) b[5] = nullptr;
  b[6] = memalign(256, 100);
  b[7] = valloc(5000);
  b[8] = pvalloc(100);
  b[9] = ::operator new(300);
  b[10] = ::operator new[](400);
  b[11] = ::operator new(500, std::align_val_t(512));
  bop_stats_get(&s1);
  std::size_t usable = 0;
  for (void* p : b) usable += malloc_usable_size(p);
  free(b[0]);
  free_sized(b[1], 300);
  free(b[2]);
  free(b[3]);
  free_aligned_sized(b[4], 64, 640);
  free(b[5]);
  free(b[6]);
  free(b[7]);
  free(b[8]);
  ::operator delete(b[9], 300);
  ::operator delete[](b[10]);
  ::operator delete(b[11], std::align_val_t(512));
  bop_stats_get(&s2);
  Check(s1.allocations - s0.allocations == 12, "each allocation function counted once");
  Check(BlockBytes(s1.bytes_allocated - s0.bytes_allocated, usable),
        "allocation functions: block sizes");
  Check(s2.deallocations - s1.deallocations == 12, "each free function counted once");
  Check(BlockBytes(s2.bytes_deallocated - s1.bytes_deallocated, usable),
        "free functions: block sizes");
}

// Exact process-wide counts between two bop_stats_get calls (this program
// does nothing else meanwhile): process bytes are block sizes.
void CheckCApi(const char* json_path, const char* text_path) {
  Check(bop_stats_enabled() == 1, "bop_stats_enabled() == 1 with BOP_STATS set");
  CheckEntryPoints();

  static void* blocks[100];
  std::size_t usable = 0;
  bop_stats s0, s1, s2;
  bop_stats_get(&s0);
  for (void*& p : blocks) p = std::malloc(100);
  for (void* p : blocks) usable += malloc_usable_size(p);
  bop_stats_get(&s1);
  for (void* p : blocks) std::free(p);
  bop_stats_get(&s2);
  Check(s1.allocations - s0.allocations == 100, "100 mallocs counted");
  Check(BlockBytes(s1.bytes_allocated - s0.bytes_allocated, usable),
        "malloc bytes are block sizes");
  Check(BlockBytes(s1.current_memory - s0.current_memory, usable), "current grows by the blocks");
  Check(s1.deallocations == s0.deallocations, "no frees yet");
  Check(s2.deallocations - s1.deallocations == 100, "100 frees counted");
  Check(BlockBytes(s2.bytes_deallocated - s1.bytes_deallocated, usable),
        "free bytes are block sizes");
  Check(s2.current_memory == s0.current_memory, "current back where it was");
  Check(s1.peak_memory >= s1.current_memory, "peak >= current");
  Check(s1.mapped_bytes > 0 && s1.resident_bytes > 0, "mapped and resident bytes reported");

  // realloc is not an allocation: only bytes move, by block sizes.
  void* p = std::malloc(100);
  std::size_t before_usable = malloc_usable_size(p);
  bop_stats_get(&s0);
  p = std::realloc(p, 50000);
  std::size_t after_usable = malloc_usable_size(p);
  bop_stats_get(&s1);
  Check(s1.allocations == s0.allocations && s1.deallocations == s0.deallocations,
        "realloc is not an allocation event");
  Check(s1.bytes_allocated - s0.bytes_allocated == after_usable - before_usable,
        "realloc growth adds the block size difference");
  std::free(p);

  // bop_stats_reset with live blocks: no wrap, peak == current.
  for (void*& q : blocks) q = std::malloc(3000);
  bop_stats_get(&s0);
  bop_stats_reset();
  bop_stats_get(&s1);
  unsigned long long live = s0.allocations - s0.deallocations;
  Check(s1.deallocations == 0 && s1.bytes_deallocated == 0, "reset: nothing freed since");
  Check(s1.allocations == live, "reset: allocations == live blocks");
  Check(s1.bytes_allocated == s1.current_memory, "reset: bytes_allocated == current");
  Check(s1.current_memory == s0.current_memory, "reset keeps current");
  Check(s1.peak_memory == s1.current_memory, "reset: peak == current");
  for (void* q : blocks) std::free(q);
  bop_stats_get(&s2);
  Check(s2.deallocations == 100 && s2.allocations == live, "pre-reset blocks freed after reset");
  Check(s2.deallocations <= s2.allocations && s2.bytes_deallocated <= s2.bytes_allocated,
        "no wrap after freeing pre-reset blocks");

  // bop_stats_print to a file descriptor, JSON and text.
  int json = open(json_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int text = open(text_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  Check(json >= 0 && text >= 0, "output files open");
  bop_stats_print(json, 1);
  bop_stats_print(text, 0);
  close(json);
  close(text);
}

// peak_memory's bound (include/bop/stats.hpp): each thread publishes its
// live bytes at least every kPublish bytes it allocates or frees, so with
// one thread the peak is never above the true one and at most kPublish
// below; with two, at most kPublish above and 2 * kPublish below.
constexpr std::size_t kPublish = 256 * 1024;
constexpr int kPeakBlocks = 8192;  // x 1000 bytes: 8 MB, ~30 publications

// Holds kPeakBlocks blocks of kSize bytes.
void HoldBlocks(void** blocks) {
  for (int i = 0; i < kPeakBlocks; ++i) g_sink = blocks[i] = std::malloc(kSize);
}

// What one block counts for: its block size (checked builds count a larger
// class than malloc_usable_size says: the canary).
unsigned long long CountedBytes() {
  bop_stats s0, s1;
  bop_stats_get(&s0);
  void* p = std::malloc(kSize);
  bop_stats_get(&s1);
  std::free(p);
  return s1.current_memory - s0.current_memory;
}

// The true peak is the base plus the blocks held (nothing else allocates
// meanwhile).  No snapshot is taken at the peak: a snapshot raises the peak
// to the current figure, and the bound checked is what threads publish.
void CheckPeak() {
  static void* mine[kPeakBlocks];
  static void* theirs[kPeakBlocks];
  const unsigned long long block = CountedBytes();
  Check(block >= kSize, "a block counts for its size");
  bop_stats base, after;
  bop_stats_reset();
  bop_stats_get(&base);
  HoldBlocks(mine);
  for (void* p : mine) std::free(p);
  bop_stats_get(&after);
  unsigned long long truth = base.current_memory + kPeakBlocks * block;
  Check(after.peak_memory <= truth, "one thread: peak never above the true peak");
  Check(after.peak_memory + kPublish >= truth, "one thread: peak at most 256 KiB below");
  std::printf("one thread: true peak %llu, reported %llu\n", truth, after.peak_memory);

  // Two threads hold their blocks at the same time, then both free them.
  std::atomic<int> holding{0};
  std::atomic<bool> go{false}, release{false};
  std::thread other([&] {
    while (!go.load()) std::this_thread::yield();
    HoldBlocks(theirs);
    holding.store(1);
    while (!release.load()) std::this_thread::yield();
    for (void* p : theirs) std::free(p);
  });
  bop_stats_reset();  // with the thread started and waiting
  bop_stats_get(&base);
  go.store(true);
  HoldBlocks(mine);
  while (holding.load() == 0) std::this_thread::yield();
  release.store(true);
  for (void* p : mine) std::free(p);
  other.join();
  bop_stats_get(&after);
  truth = base.current_memory + 2 * kPeakBlocks * block;
  Check(after.peak_memory <= truth + kPublish, "two threads: peak at most 256 KiB above");
  Check(after.peak_memory + 2 * kPublish >= truth, "two threads: peak at most 512 KiB below");
  std::printf("two threads: true peak %llu, reported %llu\n", truth, after.peak_memory);
}

// With BOP_STATS unset (or 0) nothing is counted.
void CheckOff() {
  for (int i = 0; i < 10; ++i) {
    g_sink = std::malloc(100);
    std::free(g_sink);
  }
  bop_stats s;
  bop_stats_get(&s);
  std::printf("enabled=%d allocations=%llu deallocations=%llu bytes_allocated=%llu\n",
              bop_stats_enabled(), s.allocations, s.deallocations, s.bytes_allocated);
}

}  // namespace
#endif

// Allocated by a static constructor, before main: counted all the same (the
// size is used nowhere else, so its histogram row shows them).
constexpr std::size_t kEarlySize = 40000;
struct EarlyBlocks {
  void* blocks[5];
  EarlyBlocks() {
    for (void*& p : blocks) g_sink = p = std::malloc(kEarlySize);
  }
} g_early;

// The leak sampler keeps an exact count of each page's samples (and which
// block when there is one), and frees on a page without one skip its table.
// Run with BOP_SAMPLE_BYTES=16 (every allocation is sampled):
// keep_samples_on_pages fills 4 pages of 256-byte blocks, all but 16 of them
// (4 per page) are freed, one of those moves by realloc, the freed slots are
// refilled and freed again by refill_and_free_on_pages, then the kept blocks
// are freed down to `keep`.  The report must show exactly `keep` live
// samples from keep_samples_on_pages and none from refill_and_free_on_pages:
// a count that went wrong would skip the table for a sampled block's free.
constexpr int kPageBlocks = 1024;
constexpr std::size_t kPageBlockSize = 256;
void* g_page_blocks[kPageBlocks];

extern "C" __attribute__((noinline)) void keep_samples_on_pages() {
  for (void*& p : g_page_blocks) g_sink = p = std::malloc(kPageBlockSize);
}

extern "C" __attribute__((noinline)) void refill_and_free_on_pages() {
  static void* blocks[kPageBlocks];
  for (void*& p : blocks) g_sink = p = std::malloc(kPageBlockSize);
  for (void* p : blocks) std::free(p);
}

void PageSamples(int keep) {
  keep_samples_on_pages();
  void* kept[kPageBlocks / 64];  // 2 of every 128
  int n = 0;
  for (int i = 0; i < kPageBlocks; ++i) {
    if (i % 128 == 5 || i % 128 == 77)
      kept[n++] = g_page_blocks[i];
    else
      std::free(g_page_blocks[i]);
  }
  kept[0] = std::realloc(kept[0], 3000);  // its sample moves to another page
  refill_and_free_on_pages();
  for (int i = keep; i < n; ++i) std::free(kept[i]);
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  void* probe = std::malloc(kSize);
  std::printf("usable_1000=%zu usable_early=%zu\n", malloc_usable_size(probe),
              malloc_usable_size(g_early.blocks[0]));
  std::free(probe);
  for (void* p : g_early.blocks) std::free(p);
  if (std::strcmp(mode, "churn") == 0) {
    Churn();
  } else if (std::strcmp(mode, "leak") == 0) {
    leak_from_known_function();
  } else if (std::strcmp(mode, "noleak") == 0) {
    free_again_from_known_function();
  } else if (std::strcmp(mode, "pages") == 0 && argc == 3) {
    PageSamples(std::atoi(argv[2]));
  } else if (std::strcmp(mode, "grow") == 0) {
    Grow(leak_from_known_function);
#if STATS_PROBE_LINKED
  } else if (std::strcmp(mode, "capi") == 0 && argc == 4) {
    CheckCApi(argv[2], argv[3]);
  } else if (std::strcmp(mode, "off") == 0) {
    CheckOff();
  } else if (std::strcmp(mode, "peak") == 0) {
    CheckPeak();
#endif
  } else {
    std::printf("FAIL: unknown mode '%s'\n", mode);
    return 100;
  }
  std::fflush(stdout);
  return g_failures;
}
