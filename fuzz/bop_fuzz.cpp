// libFuzzer harness: every input is a program of bop API calls on a small
// table of live blocks, run on the fuzzing thread plus a worker thread that
// frees (and allocates) blocks handed across.  A shadow record per block says
// what the block must hold, so the harness checks, after every call:
//   - alignment (16 for 9+ bytes, 8 below, the requested alignment, and the
//     natural alignment of power-of-two requests up to 64 KiB);
//   - bop_malloc_usable_size >= the size asked for;
//   - zalloc / calloc / zalloc_aligned memory reads as zero;
//   - every block keeps its fill pattern until freed, and realloc keeps the
//     common prefix (growth is not zeroed, so only the kept part is checked);
//   - errors: NULL + EINVAL for bad alignments, NULL + ENOMEM for sizes that
//     cannot be served, with the old block of a failed realloc untouched.
// A failed check prints one line and aborts, which libFuzzer records as a
// crash with the input that caused it.
#include <bop/bop.h>

#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "fill_pattern.hpp"

namespace {

[[noreturn]] void fail(const char* what, const void* p, std::size_t a, std::size_t b) {
  std::fprintf(stderr, "bop_fuzz: %s (p=%p, %zu, %zu)\n", what, p, a, b);
  std::abort();
}

// The byte loops below are the harness's own bookkeeping: kept out of the
// coverage instrumentation, which would otherwise trace every byte compared
// (most of the run time) and steer the fuzzer by the sizes of blocks.
#define BOP_FUZZ_UNTRACED __attribute__((noinline, no_sanitize("coverage")))

BOP_FUZZ_UNTRACED void check_pattern(const void* p, std::uint64_t seed, std::size_t size,
                                     const char* what) {
  std::size_t bad = bop_test::pattern_mismatch(p, seed, size);
  if (bad != size) fail(what, p, bad, size);
}

BOP_FUZZ_UNTRACED void fill(void* p, std::uint64_t seed, std::size_t from, std::size_t to) {
  bop_test::pattern_fill(p, seed, from, to);
}

BOP_FUZZ_UNTRACED void check_zero(const void* p, std::size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < size; ++i)
    if (bytes[i] != 0) fail("zeroed allocation is not zero", p, i, size);
}

// The alignment every block of `size` bytes has, asked for or not.
void check_alignment(const void* p, std::size_t size, std::size_t align, bool fresh) {
  auto addr = reinterpret_cast<std::uintptr_t>(p);
  std::size_t base = size >= 9 ? 16 : 8;
  if (addr % base != 0) fail("block misaligned for its size", p, size, base);
  if (align != 0 && addr % align != 0) fail("block misses the requested alignment", p, size, align);
  // README: a power-of-two request up to 64 KiB is naturally aligned.
  if (fresh && align == 0 && size >= 8 && size <= 65536 && (size & (size - 1)) == 0 &&
      addr % size != 0)
    fail("power-of-two block not naturally aligned", p, size, addr % size);
}

void check_block(const void* p, std::size_t size, std::size_t align, bool fresh) {
  if (p == nullptr) fail("allocation failed", p, size, align);
  check_alignment(p, size, align, fresh);
  std::size_t usable = bop_malloc_usable_size(p);
  if (usable < size) fail("usable size below the requested size", p, usable, size);
}

// ---------------------------------------------------------------------------
// The worker thread: checks and frees the blocks handed to it, and allocates
// blocks the fuzzing thread then owns (so frees cross threads both ways).
// ---------------------------------------------------------------------------
struct Job {
  enum Kind { kFree, kFreeSized, kAlloc, kQuit } kind;
  void* p;
  std::size_t size;
  std::uint64_t seed;
  void** out;  // kAlloc: where the new block goes
};

class Worker {
 public:
  void start() {
    thread_ = std::thread([this] { run(); });
  }
  void stop() {
    post({Job::kQuit, nullptr, 0, 0, nullptr});
    thread_.join();
  }
  void post(Job job) {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(job);
    ++pending_;
    cv_.notify_all();
  }
  // Returns when every job posted so far is done.
  void wait_idle() {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [this] { return pending_ == 0; });
  }

 private:
  void run() {
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return !jobs_.empty(); });
        job = jobs_.front();
        jobs_.pop_front();
      }
      bool quit = job.kind == Job::kQuit;
      execute(job);
      std::lock_guard<std::mutex> lock(mu_);
      --pending_;
      done_cv_.notify_all();
      if (quit) return;
    }
  }
  static void execute(const Job& job) {
    switch (job.kind) {
      case Job::kFree:
      case Job::kFreeSized:
        check_pattern(job.p, job.seed, job.size, "block changed before its cross-thread free");
        if (job.kind == Job::kFree)
          bop_dealloc(job.p);
        else
          bop_dealloc_sized(job.p, job.size);
        break;
      case Job::kAlloc: {
        void* p = bop_alloc(job.size);
        check_block(p, job.size, 0, true);
        fill(p, job.seed, 0, job.size);
        *job.out = p;
        break;
      }
      case Job::kQuit:
        break;
    }
  }

  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::deque<Job> jobs_;
  unsigned pending_ = 0;
};

// ---------------------------------------------------------------------------
// The input as a stream of small numbers (zeros once it runs out).
// ---------------------------------------------------------------------------
class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  std::uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }

  // Sizes skewed to small (as in real programs), with class edges, zero and
  // now and then a large or huge block (they cost page faults per call).
  std::size_t size() {
    std::uint8_t kind = u8();
    if (kind < 150) return u8();
    if (kind < 190) return u16() % 4097;
    if (kind < 215) return u16();  // up to 64 KiB
    if (kind < 235) {              // a power of two, or one byte either side (class edges)
      std::uint8_t b = u8();
      std::size_t p = std::size_t{1} << (b % 22);
      return p + (b / 22) % 3 - 1;
    }
    if (kind < 245) return std::size_t{u16()} << 3;  // up to 512 KiB, the largest page class
    if (kind < 250) return (512 << 10) + std::size_t{u16()} * 32;  // huge: 512 KiB .. 2.5 MiB
    return 0;
  }
  // Powers of two, mostly small.
  std::size_t alignment() {
    std::uint8_t b = u8();
    unsigned shift = (b & 0x80) ? b % 21 : b % 8;  // up to 1 MiB, usually <= 128
    return std::size_t{1} << shift;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

// ---------------------------------------------------------------------------
// The shadow model: what each slot's block must hold.
// ---------------------------------------------------------------------------
struct Slot {
  void* p = nullptr;
  std::size_t size = 0;   // bytes asked for (all of them hold the pattern)
  std::size_t align = 0;  // alignment asked for, 0 = default
  std::uint64_t seed = 0;
};

constexpr unsigned kSlots = 32;
constexpr std::size_t kLiveBytesMax = 48u << 20;  // keeps every input's footprint small

class Session {
 public:
  explicit Session(Worker& worker) : worker_(worker) {}
  ~Session() {
    worker_.wait_idle();
    for (Slot& s : slots_) release(s, false);
  }

  void step(Reader& in) {
    std::uint8_t op = in.u8();
    Slot& s = slots_[in.u8() % kSlots];
    switch (op % 16) {
      case 0:
      case 1:
        allocate(s, in.size(), 0, kPlain);
        break;
      case 2:
        allocate(s, in.size(), 0, kZeroed);
        break;
      case 3: {  // calloc: count * size, either maybe zero
        std::size_t count = in.u8() % 33, each = in.size() / 8;
        allocate(s, count * each, 0, kCalloc, count);
        break;
      }
      case 4: {
        std::size_t align = in.alignment();
        allocate(s, in.size(), align, kAligned);
        break;
      }
      case 5: {
        std::size_t align = in.alignment();
        allocate(s, in.size(), align, kZeroedAligned);
        break;
      }
      case 6:
        resize(s, in.size(), 0);
        break;
      case 7: {
        std::size_t align = in.alignment();
        resize(s, in.size(), align);
        break;
      }
      case 8:
      case 9:
        release(s, op & 0x10);
        break;
      case 10:
        if (s.p != nullptr) {
          check_block(s.p, s.size, s.align, false);
          check_pattern(s.p, s.seed, s.size, "block changed while live");
        }
        break;
      case 11:
        hand_over(s, op & 0x10);
        break;
      case 12:
        adopt(s, in.size());
        break;
      case 13:
        bad_requests(s, in.u8());
        break;
      case 14:
        if ((op & 0xF0) == 0xF0)
          bop_collect();  // rare: returns every free page
        else
          thin(in);
        break;
      case 15:
        if ((op & 0xF0) == 0xF0) {  // rare: the worker exits, its heap is pooled
          worker_.stop();
          worker_.start();
        }
        break;
    }
  }

 private:
  enum Kind { kPlain, kZeroed, kCalloc, kAligned, kZeroedAligned };

  bool fits(std::size_t size) const { return size <= kLiveBytesMax - live_bytes_; }

  void allocate(Slot& s, std::size_t size, std::size_t align, Kind kind, std::size_t count = 0) {
    release(s, false);
    if (!fits(size)) return;
    void* p = nullptr;
    switch (kind) {
      case kPlain:
        p = bop_alloc(size);
        break;
      case kZeroed:
        p = bop_zalloc(size);
        break;
      case kCalloc:
        p = bop_calloc(count, count == 0 ? size : size / count);
        break;
      case kAligned:
        p = bop_alloc_aligned(align, size);
        break;
      case kZeroedAligned:
        p = bop_zalloc_aligned(align, size);
        break;
    }
    check_block(p, size, align, true);
    if (kind == kZeroed || kind == kCalloc || kind == kZeroedAligned) check_zero(p, size);
    adopt_block(s, p, size, align);
  }

  void adopt_block(Slot& s, void* p, std::size_t size, std::size_t align) {
    s.p = p;
    s.size = size;
    s.align = align;
    s.seed = ++seeds_;
    live_bytes_ += size;
    fill(p, s.seed, 0, size);
  }

  void resize(Slot& s, std::size_t size, std::size_t align) {
    if (!fits(size)) return;
    void* q = align == 0 ? bop_realloc(s.p, size) : bop_realloc_aligned(s.p, align, size);
    if (s.p == nullptr) {  // realloc(NULL, n) allocates
      check_block(q, size, align, false);
      adopt_block(s, q, size, align);
      return;
    }
    check_block(q, size, align, false);
    std::size_t kept = size < s.size ? size : s.size;
    check_pattern(q, s.seed, kept, "realloc lost the block's content");
    fill(q, s.seed, kept,
         size);  // growth is not zeroed: write the rest of the pattern
    live_bytes_ += size;
    live_bytes_ -= s.size;
    s.p = q;
    s.size = size;
    s.align = align;
  }

  void release(Slot& s, bool sized) {
    if (s.p == nullptr) return;
    check_pattern(s.p, s.seed, s.size, "block changed before its free");
    if (sized) {
      // Any size from the one asked for up to the usable size is valid.
      std::size_t usable = bop_malloc_usable_size(s.p);
      bop_dealloc_sized(s.p, s.size + (s.seed % (usable - s.size + 1)));
    } else {
      bop_dealloc(s.p);
    }
    live_bytes_ -= s.size;
    s = Slot{};
  }

  // The worker checks and frees the block while this thread goes on.
  void hand_over(Slot& s, bool sized) {
    if (s.p == nullptr) return;
    worker_.post({sized ? Job::kFreeSized : Job::kFree, s.p, s.size, s.seed, nullptr});
    live_bytes_ -= s.size;
    s = Slot{};
  }

  // A block the worker allocated: this thread frees it later (a remote free).
  void adopt(Slot& s, std::size_t size) {
    release(s, false);
    if (!fits(size)) return;
    void* p = nullptr;
    std::uint64_t seed = ++seeds_;
    worker_.post({Job::kAlloc, nullptr, size, seed, &p});
    worker_.wait_idle();
    s.p = p;
    s.size = size;
    s.align = 0;
    s.seed = seed;
    live_bytes_ += size;
  }

  // A burst of blocks of one size, of the classes whose pages give their
  // free OS pages back when sparse (src/core/sparse_purge.hpp), freed again
  // in an order the input picks but for a few survivors, which go to slots
  // (the model checks them from then on); then maybe bop_collect, which
  // returns the free OS pages of every sparse page.
  void thin(Reader& in) {
    constexpr unsigned kMaxBurst = 32 + 255;
    std::size_t size = 512 + in.u16() % (8192 - 512 + 1);
    unsigned count = 32 + in.u8();
    if (!fits(size * count)) return;
    void* burst[kMaxBurst];
    for (unsigned i = 0; i < count; ++i) {
      burst[i] = bop_alloc(size);
      check_block(burst[i], size, 0, true);
    }
    for (unsigned keep = in.u8() % 5; keep > 0; --keep) {
      unsigned i = in.u8() % count;
      if (burst[i] == nullptr) continue;
      Slot& s = slots_[in.u8() % kSlots];
      release(s, false);
      if (!fits(size)) break;
      adopt_block(s, burst[i], size, 0);
      burst[i] = nullptr;
    }
    // Every block once: a start and an odd stride (count may be even) walk
    // all indices when the stride is coprime to count; others are swept after.
    unsigned start = in.u8() % count, stride = 1 + 2 * (in.u8() % 16);
    for (unsigned n = 0, i = start; n < count; ++n, i = (i + stride) % count) {
      if (burst[i] != nullptr) bop_dealloc(burst[i]);
      burst[i] = nullptr;
    }
    for (unsigned i = 0; i < count; ++i)
      if (burst[i] != nullptr) bop_dealloc(burst[i]);
    if (in.u8() & 1) bop_collect();
  }

  // Requests that must fail cleanly, leaving the slot's block as it was.
  void bad_requests(Slot& s, std::uint8_t which) {
    constexpr std::size_t kTooBig = SIZE_MAX - 4096;
    errno = 0;
    void* p = nullptr;
    int want = ENOMEM;
    std::size_t bad_align = which % 2 ? 0 : 8u * (3 + which % 4 * 2);  // 0, 24, 40, 56, 72
    switch (which % 7) {
      case 0:
        p = bop_alloc(kTooBig);
        break;
      case 1:
        p = bop_zalloc(std::size_t{1} << 62);
        break;
      case 2:
        p = bop_calloc(SIZE_MAX / 2, 3);  // the product overflows
        break;
      case 3:
        p = bop_alloc_aligned(bad_align, 64);
        want = EINVAL;
        break;
      case 4:
        p = bop_zalloc_aligned(bad_align == 0 ? 24 : bad_align, 64);
        want = EINVAL;
        break;
      case 5:
        if (s.p == nullptr) return;
        p = bop_realloc(s.p, kTooBig);
        break;
      case 6:
        if (s.p == nullptr) return;
        p = bop_realloc_aligned(s.p, bad_align, 64);
        want = EINVAL;
        break;
    }
    if (p != nullptr) fail("an impossible request succeeded", p, which % 7, 0);
    if (errno != want) fail("wrong errno for a failed request", p, which % 7, errno);
    if (s.p != nullptr) check_pattern(s.p, s.seed, s.size, "failed request changed the block");
  }

  Worker& worker_;
  Slot slots_[kSlots];
  std::size_t live_bytes_ = 0;
  std::uint64_t seeds_ = 0;
};

Worker& worker() {
  static Worker* w = [] {
    auto* fresh = new Worker;
    fresh->start();
    return fresh;
  }();
  return *w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Reader in(data, size);
  Session session(worker());
  while (!in.empty()) session.step(in);
  return 0;
}
