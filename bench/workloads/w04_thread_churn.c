/* w04_thread_churn: short-lived threads that allocate, hand blocks on, exit.
 *
 * Models: programs that start a thread per task or per connection instead of
 * using a pool (older servers, build tools, test runners, std::async-style
 * code). Each thread frees what a thread of the previous wave -- already
 * exited -- handed to it, does some scratch work, and leaves a quarter of its
 * blocks for a thread of the next wave. The allocator must set up and tear
 * down per-thread state cheaply and deal with blocks whose owner is gone.
 * Threads: waves of 2 per CPU, thousands in all.
 */
#include <pthread.h>

#include "common.h"

enum { PER_THREAD = 1200, HANDOFF = PER_THREAD / 4 };

typedef struct {
  int wave, idx;
  void **inbox;  /* blocks from the previous wave (owner exited) */
  void **outbox; /* blocks for the next wave */
  uint64_t checksum;
} task;

static void *run(void *arg) {
  task *t = (task *)arg;
  bench_rng r = bench_rng_make(((uint64_t)t->wave << 16) + (uint64_t)t->idx);
  uint64_t sum = 0;
  if (t->inbox) {
    for (int i = 0; i < HANDOFF; ++i) {
      sum += *(unsigned char *)t->inbox[i];
      free(t->inbox[i]);
    }
    free(t->inbox);
  }
  void **mine = (void **)bench_check(malloc(sizeof(void *) * PER_THREAD), PER_THREAD);
  for (int i = 0; i < PER_THREAD; ++i) {
    size_t n = bench_rng_logsize(&r, 16, 2048);
    unsigned char *p = (unsigned char *)bench_check(malloc(n), n);
    p[0] = (unsigned char)i;
    p[n - 1] = (unsigned char)n;
    mine[i] = p;
  }
  /* scratch work: replace random blocks a few times */
  for (int i = 0; i < PER_THREAD; ++i) {
    size_t k = bench_rng_below(&r, PER_THREAD);
    sum += *(unsigned char *)mine[k];
    free(mine[k]);
    size_t n = bench_rng_logsize(&r, 16, 2048);
    unsigned char *p = (unsigned char *)bench_check(malloc(n), n);
    p[0] = (unsigned char)k;
    mine[k] = p;
  }
  void **out = (void **)bench_check(malloc(sizeof(void *) * HANDOFF), HANDOFF);
  for (int i = 0; i < HANDOFF; ++i) out[i] = mine[i];
  for (int i = HANDOFF; i < PER_THREAD; ++i) free(mine[i]);
  free(mine);
  t->outbox = out;
  t->checksum = sum;
  return NULL;
}

int main(int argc, char **argv) {
  double scale = bench_scale(argc, argv);
  int nt = bench_threads(2, 2);
  long waves = bench_scaled(6000, scale, 2) / nt;
  task *prev = (task *)calloc((size_t)nt, sizeof(task));
  task *cur = (task *)calloc((size_t)nt, sizeof(task));
  pthread_t *th = (pthread_t *)malloc(sizeof(pthread_t) * (size_t)nt);
  uint64_t checksum = 0;

  double t0 = bench_now();
  for (long w = 0; w < waves; ++w) {
    for (int i = 0; i < nt; ++i) {
      cur[i].wave = (int)w;
      cur[i].idx = i;
      cur[i].inbox = w ? prev[(i + 1) % nt].outbox : NULL;
      cur[i].outbox = NULL;
      pthread_create(&th[i], NULL, run, &cur[i]);
    }
    for (int i = 0; i < nt; ++i) {
      pthread_join(th[i], NULL);
      checksum += cur[i].checksum;
    }
    task *tmp = prev;
    prev = cur;
    cur = tmp;
  }
  for (int i = 0; i < nt; ++i) {
    for (int k = 0; k < HANDOFF; ++k) free(prev[i].outbox[k]);
    free(prev[i].outbox);
  }
  double t1 = bench_now();

  char extra[64];
  snprintf(extra, sizeof extra, " threads_started=%ld", waves * nt);
  bench_report("thread_churn", nt, t1 - t0, checksum, extra);
  free(prev);
  free(cur);
  free(th);
  return 0;
}
