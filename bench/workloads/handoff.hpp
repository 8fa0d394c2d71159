/* The server hand-off shape shared by w13_handoff and w14_handoff_sized.
 *
 * Models: a server whose worker threads come and go (a thread per connection
 * batch, a pool that retires and respawns workers) while the data they built
 * stays: each worker keeps a working set of small blocks (10 B - 1 KB,
 * uniform), replaces random ones at every step, now and then swaps a block
 * with a slot of a shared exchange (so it frees blocks another running thread
 * allocated), and at the end of its round starts a fresh thread, hands it the
 * whole working set and exits. The successor frees the blocks its
 * predecessor allocated: the live set outlives the thread that allocated it.
 * What it stresses: heaps of exited threads, frees of blocks whose owner no
 * longer runs, remote frees, thread creation and exit with a live heap.
 *
 * Threads: 2 lanes per CPU (BENCH_THREADS overrides); each lane is a chain of
 * short-lived threads, one running at a time, each doing up to 100k steps
 * on its lane's 5000 blocks. The total work is fixed
 * (steps = 30M x scale over all lanes), so time is comparable across thread
 * counts and `ops_per_s` is the throughput.
 *
 * `Ops` gives the allocation calls: plain malloc/free-like calls or C++
 * operator new with unsized or sized delete.
 */
#ifndef BOP_BENCH_HANDOFF_HPP
#define BOP_BENCH_HANDOFF_HPP

#include <pthread.h>

#include <atomic>

#include "common.h"

namespace handoff {

constexpr int kSlots = 5000;          // working set per lane
constexpr int kExchangeSlots = 4096;  // shared between all lanes
constexpr size_t kMinSize = 10, kMaxSize = 1000;

// Every block starts with its own size (the sized delete needs it back).
inline size_t block_size(const void* p) {
  return *static_cast<const size_t*>(p);
}

struct Lane {
  int id;
  long rounds_left;
  long steps_per_round;
  void* slots[kSlots];
  pthread_t prev;  // the thread that handed the lane over (joined by its successor)
  bool has_prev;
  uint64_t checksum;
  bench_rng rng;
  // the last thread of the lane reports here
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;
  pthread_t last;
};

inline std::atomic<void*>* exchange_slots() {
  static std::atomic<void*> slots[kExchangeSlots];
  return slots;
}

// A new block of n bytes, its size in its first word and its last byte set.
template <class Ops>
void* fresh(size_t n) {
  void* p = Ops::alloc(n);
  *static_cast<size_t*>(p) = n;
  static_cast<unsigned char*>(p)[n - 1] = static_cast<unsigned char>(n);
  return p;
}

// Reads the block's both ends (the program uses what it frees).
inline size_t block_check(const void* p) {
  size_t n = block_size(p);
  if (static_cast<const unsigned char*>(p)[n - 1] != static_cast<unsigned char>(n)) {
    fprintf(stderr, "handoff: block %p of %zu bytes was overwritten\n", p, n);
    abort();
  }
  return n;
}

template <class Ops>
void* run_round(void* arg) {
  Lane* lane = static_cast<Lane*>(arg);
  if (lane->has_prev) pthread_join(lane->prev, nullptr);
  bench_rng* r = &lane->rng;
  uint64_t sum = lane->checksum;
  std::atomic<void*>* ex = exchange_slots();
  for (long s = 0; s < lane->steps_per_round; ++s) {
    void*& b = lane->slots[bench_rng_below(r, kSlots)];
    Ops::release(b, block_check(b));  // allocated by a predecessor or another lane
    size_t n = bench_rng_range(r, kMinSize, kMaxSize);
    sum += n;  // the checksum only counts what this lane's own random stream decides
    b = fresh<Ops>(n);
    if ((s & 15) == 0) {
      // hand this block to whichever lane takes the slot next; keep the
      // block some other lane left there (the first takers find none)
      b = ex[bench_rng_below(r, kExchangeSlots)].exchange(b, std::memory_order_acq_rel);
      if (b == nullptr) b = fresh<Ops>(kMaxSize / 2);
    }
  }
  lane->checksum = sum;
  if (--lane->rounds_left > 0) {
    // the successor inherits the whole working set and frees it over time
    lane->prev = pthread_self();
    lane->has_prev = true;
    pthread_t next;
    if (pthread_create(&next, nullptr, run_round<Ops>, lane) != 0) {
      fprintf(stderr, "pthread_create failed\n");
      abort();
    }
    return nullptr;
  }
  pthread_mutex_lock(&lane->mu);
  lane->last = pthread_self();
  lane->done = true;
  pthread_cond_signal(&lane->cv);
  pthread_mutex_unlock(&lane->mu);
  return nullptr;
}

template <class Ops>
int main(int argc, char** argv, const char* name) {
  double scale = bench_scale(argc, argv);
  int nt = bench_threads(2, 1);
  long total_steps = bench_scaled(30000000, scale, 1000);
  // each slot replaced ~20 times per thread lifetime, but at least 8
  // hand-offs per lane when the work is small or the lanes many
  long steps_per_round = total_steps / nt / 8;
  if (steps_per_round > 100000) steps_per_round = 100000;
  if (steps_per_round < 1000) steps_per_round = 1000;
  long rounds = total_steps / steps_per_round / nt;
  if (rounds < 1) rounds = 1;

  Lane* lanes =
      static_cast<Lane*>(bench_check(calloc(static_cast<size_t>(nt), sizeof(Lane)), sizeof(Lane)));
  for (int i = 0; i < nt; ++i) {
    Lane& l = lanes[i];
    l.id = i;
    l.rounds_left = rounds;
    l.steps_per_round = steps_per_round;
    l.rng = bench_rng_make(9000 + static_cast<uint64_t>(i));
    pthread_mutex_init(&l.mu, nullptr);
    pthread_cond_init(&l.cv, nullptr);
  }

  double t0 = bench_now();
  // the main thread allocates the first working sets: even the first worker
  // frees blocks it did not allocate
  for (int i = 0; i < nt; ++i)
    for (void*& b : lanes[i].slots)
      b = fresh<Ops>(bench_rng_range(&lanes[i].rng, kMinSize, kMaxSize));
  for (int i = 0; i < nt; ++i) {
    pthread_t t;
    if (pthread_create(&t, nullptr, run_round<Ops>, &lanes[i]) != 0) return 1;
  }
  uint64_t checksum = 0;
  for (int i = 0; i < nt; ++i) {
    Lane& l = lanes[i];
    pthread_mutex_lock(&l.mu);
    while (!l.done) pthread_cond_wait(&l.cv, &l.mu);
    pthread_mutex_unlock(&l.mu);
    pthread_join(l.last, nullptr);
    for (void* b : l.slots) Ops::release(b, block_check(b));
    checksum += l.checksum;
  }
  std::atomic<void*>* ex = exchange_slots();
  for (int i = 0; i < kExchangeSlots; ++i)
    if (void* b = ex[i].load()) Ops::release(b, block_check(b));
  double t1 = bench_now();

  long ops = rounds * steps_per_round * nt;
  char extra[128];
  snprintf(extra, sizeof extra, " ops=%ld rounds=%ld ops_per_s=%.0f", ops, rounds,
           static_cast<double>(ops) / (t1 - t0));
  bench_report(name, nt, t1 - t0, checksum, extra);
  free(lanes);
  return 0;
}

}  // namespace handoff

#endif
