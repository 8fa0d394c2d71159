// bop_soak: a long mixed workload that must hold steady.
//
//   bop_soak [--seconds S] [--threads T] [--print-every S] [--plateau F]
//
// T threads (default 8) allocate and free blocks of 8 B .. 1 MiB (most of them
// small, as in real programs) with three lifetimes: short (a FIFO of 16),
// medium (a table of 1024 replaced at random) and long (64 slots replaced
// rarely), resize some with realloc, and hand a quarter of their frees to
// another thread.  Every block is filled with a pattern seeded by its id and
// address and checked when it is freed or resized; a mismatch aborts.
// The main thread samples the resident set every second.  At the end the
// program fails (exit 1) if the RSS at the end exceeds F x (default 1.25) the
// RSS at the first third of the run: memory use must plateau.  Both are
// medians over a sixth of the run (the last sixth; the one before t = S/3),
// as single samples swing by +-15% with the 1 MiB blocks in flight.  --plateau 0
// turns that check off (ThreadSanitizer's shadow memory grows with every
// address the run touches, and its slowed-down run has no steady state).
//
// bop_soak calls malloc/free (run it under LD_PRELOAD=libbop.so, or any other
// allocator); bop_soak_direct is the same program on bop's direct API (for
// ThreadSanitizer builds, where LD_PRELOAD is not an option).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "fill_pattern.hpp"

#if SOAK_DIRECT
#include <bop/bop.h>
#define soak_malloc bop_alloc
#define soak_realloc bop_realloc
#define soak_free bop_dealloc
#else
#define soak_malloc std::malloc
#define soak_realloc std::realloc
#define soak_free std::free
#endif

namespace {

constexpr unsigned kShort = 16, kMedium = 1024, kLong = 64;
constexpr unsigned kBatch = 32;  // cross-thread frees handed over at once

struct Block {
  void* p = nullptr;
  std::size_t size = 0;
  std::uint64_t seed = 0;
};

[[noreturn]] void corrupt(const char* when, const Block& b, std::size_t at) {
  std::fprintf(stderr, "soak: block %p (%zu bytes) changed at byte %zu (%s)\n", b.p, b.size, at,
               when);
  std::abort();
}

void check(const Block& b, std::size_t bytes, const char* when) {
  std::size_t at = bop_test::pattern_mismatch(b.p, b.seed, bytes);
  if (at != bytes) corrupt(when, b, at);
}

// xorshift64*: cheap, and each thread's sequence is its own.
struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
  unsigned below(unsigned n) { return static_cast<unsigned>(next() % n); }
};

// 8 B .. 1 MiB, skewed small: 70% up to 128 B, 20% up to 4 KiB, 8% up to
// 64 KiB, 1.8% up to 512 KiB, 0.2% up to 1 MiB.
std::size_t pick_size(Rng& rng) {
  unsigned r = rng.below(1000);
  std::uint64_t x = rng.next() >> 8;
  if (r < 700) return 8 + x % 121;
  if (r < 900) return 129 + x % (4096 - 128);
  if (r < 980) return 4097 + x % (65536 - 4096);
  if (r < 998) return 65537 + x % (524288 - 65536);
  return 524289 + x % (1048576 - 524288);
}

// Blocks other threads freed into this one: checked and freed by it.
struct Inbox {
  std::mutex mu;
  std::vector<Block> blocks;
};

struct Shared {
  std::vector<Inbox> inboxes;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> ops{0}, cross{0};
  explicit Shared(unsigned threads) : inboxes(threads) {}
};

class Worker {
 public:
  Worker(Shared& shared, unsigned index, unsigned threads)
      : shared_(shared),
        index_(index),
        threads_(threads),
        rng_{0x9E3779B97F4A7C15ull * (index + 1)} {
    outbox_.resize(threads);
    for (auto& out : outbox_) out.reserve(kBatch);
  }

  void run() {
    std::vector<Block> drained;
    while (!shared_.stop.load(std::memory_order_relaxed)) {
      for (int i = 0; i < 256; ++i) step();
      drain(drained);
      shared_.ops.fetch_add(256, std::memory_order_relaxed);
    }
    for (Block& b : short_) release(b);
    for (Block& b : medium_) release(b);
    for (Block& b : long_) release(b);
    for (unsigned t = 0; t < threads_; ++t) flush(t);
  }

  // After every thread stopped: what is left in an inbox.
  static void drain_inbox(Inbox& in) {
    for (Block& b : in.blocks) {
      check(b, b.size, "cross-thread free");
      soak_free(b.p);
    }
    in.blocks.clear();
  }

 private:
  void step() {
    unsigned r = rng_.below(100);
    if (r < 55) {
      replace(short_[short_next_]);
      short_next_ = (short_next_ + 1) % kShort;
    } else if (r < 91) {
      replace(medium_[rng_.below(kMedium)]);
    } else if (r < 95) {
      resize(medium_[rng_.below(kMedium)]);
    } else if (rng_.below(64) == 0) {
      replace(long_[rng_.below(kLong)]);
    }
  }

  void replace(Block& b) {
    release(b);
    std::size_t size = pick_size(rng_);
    void* p = soak_malloc(size);
    if (p == nullptr) {
      std::fprintf(stderr, "soak: malloc(%zu) failed\n", size);
      std::abort();
    }
    b.p = p;
    b.size = size;
    b.seed = ++ids_ ^ reinterpret_cast<std::uintptr_t>(p) ^ (std::uint64_t{index_} << 56);
    bop_test::pattern_fill(p, b.seed, 0, size);
  }

  // realloc keeps the common prefix; the growth gets the rest of the pattern.
  void resize(Block& b) {
    if (b.p == nullptr) return replace(b);
    std::size_t size = pick_size(rng_);
    void* q = soak_realloc(b.p, size);
    if (q == nullptr) {
      std::fprintf(stderr, "soak: realloc(%zu) failed\n", size);
      std::abort();
    }
    std::size_t kept = size < b.size ? size : b.size;
    b.p = q;
    check(b, kept, "realloc");
    bop_test::pattern_fill(q, b.seed, kept, size);
    b.size = size;
  }

  // Frees here, or (one in four) hands the block to another thread.
  void release(Block& b) {
    if (b.p == nullptr) return;
    if (threads_ > 1 && rng_.below(4) == 0) {
      unsigned to = (index_ + 1 + rng_.below(threads_ - 1)) % threads_;
      outbox_[to].push_back(b);
      if (outbox_[to].size() >= kBatch) flush(to);
    } else {
      check(b, b.size, "free");
      soak_free(b.p);
    }
    b = Block{};
  }

  void flush(unsigned to) {
    if (outbox_[to].empty()) return;
    Inbox& in = shared_.inboxes[to];
    std::lock_guard<std::mutex> lock(in.mu);
    in.blocks.insert(in.blocks.end(), outbox_[to].begin(), outbox_[to].end());
    shared_.cross.fetch_add(outbox_[to].size(), std::memory_order_relaxed);
    outbox_[to].clear();
  }

  void drain(std::vector<Block>& scratch) {
    Inbox& in = shared_.inboxes[index_];
    {
      std::lock_guard<std::mutex> lock(in.mu);
      scratch.swap(in.blocks);
    }
    for (Block& b : scratch) {
      check(b, b.size, "cross-thread free");
      soak_free(b.p);
    }
    scratch.clear();
  }

  Shared& shared_;
  unsigned index_, threads_;
  Rng rng_;
  std::uint64_t ids_ = 0;
  Block short_[kShort], medium_[kMedium], long_[kLong];
  unsigned short_next_ = 0;
  std::vector<std::vector<Block>> outbox_;
};

double rss_mib() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 20);
}

// Median of samples[first..last].
double median(const std::vector<double>& samples, unsigned long first, unsigned long last) {
  std::vector<double> window(samples.begin() + static_cast<long>(first),
                             samples.begin() + static_cast<long>(last) + 1);
  std::sort(window.begin(), window.end());
  return window[window.size() / 2];
}

unsigned long arg(int argc, char** argv, const char* name, unsigned long fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::strtoul(argv[i + 1], nullptr, 10);
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  unsigned long seconds = arg(argc, argv, "--seconds", 20);
  unsigned threads = static_cast<unsigned>(arg(argc, argv, "--threads", 8));
  unsigned long print_every = arg(argc, argv, "--print-every", seconds <= 60 ? 1 : 10);
  double plateau = 1.25;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--plateau") == 0) plateau = std::strtod(argv[i + 1], nullptr);
  if (seconds < 3 || threads == 0 || print_every == 0) {
    std::fprintf(stderr, "usage: %s [--seconds S>=3] [--threads T>0] [--print-every S>0]\n",
                 argv[0]);
    return 2;
  }

  Shared shared(threads);
  std::vector<Worker*> workers;
  std::vector<std::thread> running;
  for (unsigned i = 0; i < threads; ++i) workers.push_back(new Worker(shared, i, threads));
  for (Worker* w : workers) running.emplace_back([w] { w->run(); });

  // rss[t] is the resident set t seconds in.
  std::vector<double> rss(seconds + 1, 0.0);
  rss[0] = rss_mib();
  auto start = std::chrono::steady_clock::now();
  for (unsigned long t = 1; t <= seconds; ++t) {
    std::this_thread::sleep_until(start + std::chrono::seconds(t));
    rss[t] = rss_mib();
    if (t % print_every == 0 || t == 60 || t == 300 || t == 600 || t == seconds)
      std::printf("t=%lus rss=%.1f MiB ops=%llu cross_thread_frees=%llu\n", t, rss[t],
                  static_cast<unsigned long long>(shared.ops.load()),
                  static_cast<unsigned long long>(shared.cross.load()));
    std::fflush(stdout);
  }
  shared.stop.store(true);
  for (std::thread& t : running) t.join();
  for (Inbox& in : shared.inboxes) Worker::drain_inbox(in);
  for (Worker* w : workers) delete w;

  unsigned long sixth = seconds / 6 > 0 ? seconds / 6 : 1;
  double third = median(rss, seconds / 3 - sixth + 1, seconds / 3);
  double end = median(rss, seconds - sixth + 1, seconds), peak = 0;
  for (double r : rss) peak = r > peak ? r : peak;
  std::printf("soak: %u threads, %lu s, %llu ops, %llu cross-thread frees, every block checked\n",
              threads, seconds, static_cast<unsigned long long>(shared.ops.load()),
              static_cast<unsigned long long>(shared.cross.load()));
  std::printf(
      "soak: median rss t=%lu..%lus %.1f MiB, t=%lu..%lus %.1f MiB (%.2fx), peak %.1f MiB\n",
      seconds / 3 - sixth + 1, seconds / 3, third, seconds - sixth + 1, seconds, end, end / third,
      peak);
  if (plateau > 0 && end > plateau * third) {
    std::printf("soak: FAIL: RSS did not plateau (end > %.2fx the first third)\n", plateau);
    return 1;
  }
  std::printf("soak: PASS\n");
  return 0;
}
