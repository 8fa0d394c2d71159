/* w09_false_share: small objects written hard by threads other than their
 * allocator (allocator-induced false sharing).
 *
 * Models: a dispatcher that allocates small per-task state (counters, request
 * contexts) and hands each to a worker thread that updates it in a hot loop;
 * workers then recycle that state and allocate their own. If the allocator
 * places objects used by different threads in one cache line -- packing the
 * dispatcher's objects together, or handing a freed block of another thread's
 * page to the thread that freed it -- every write bounces the line between
 * cores. Two phases (after Hoard's cache-thrash and cache-scratch tests):
 *   thrash:  each worker allocates, writes and frees its own small objects;
 *   scratch: the main thread allocates one object per worker back to back;
 *            each worker writes the one it got, frees it, then allocates,
 *            writes and frees objects of that size in a loop.
 * Threads: one per CPU, at least 2.
 */
#include <pthread.h>

#include "common.h"

static long rounds;
static const int WRITES = 2000;
static const size_t sizes[] = {8, 16, 24, 32, 48, 64};

typedef struct {
  int id;
  unsigned char *given; /* scratch phase: allocated by the main thread */
  uint64_t checksum;
} task;

static uint64_t hammer(unsigned char *p, size_t n) {
  volatile unsigned char *v = p;
  for (int j = 0; j < WRITES; ++j) v[(size_t)j % n]++;
  return v[0];
}

static void *thrash(void *arg) {
  task *t = (task *)arg;
  uint64_t sum = 0;
  for (long i = 0; i < rounds; ++i) {
    size_t n = sizes[(size_t)(i + t->id) % 6];
    unsigned char *p = (unsigned char *)bench_check(malloc(n), n);
    memset(p, 0, n);
    sum += hammer(p, n);
    free(p);
  }
  t->checksum = sum;
  return NULL;
}

static void *scratch(void *arg) {
  task *t = (task *)arg;
  size_t n = sizes[t->id % 6];
  uint64_t sum = hammer(t->given, n);
  free(t->given);
  for (long i = 0; i < rounds; ++i) {
    unsigned char *p = (unsigned char *)bench_check(malloc(n), n);
    memset(p, 0, n);
    sum += hammer(p, n);
    free(p);
  }
  t->checksum = sum;
  return NULL;
}

static uint64_t run_phase(void *(*fn)(void *), int nt, int give) {
  pthread_t *th = (pthread_t *)malloc(sizeof(pthread_t) * (size_t)nt);
  task *ts = (task *)calloc((size_t)nt, sizeof(task));
  for (int i = 0; i < nt; ++i) {
    ts[i].id = i;
    if (give) {
      size_t n = sizes[i % 6];
      ts[i].given = (unsigned char *)bench_check(malloc(n), n);
      memset(ts[i].given, 0, n);
    }
  }
  for (int i = 0; i < nt; ++i) pthread_create(&th[i], NULL, fn, &ts[i]);
  uint64_t sum = 0;
  for (int i = 0; i < nt; ++i) {
    pthread_join(th[i], NULL);
    sum += ts[i].checksum;
  }
  free(th);
  free(ts);
  return sum;
}

int main(int argc, char **argv) {
  double scale = bench_scale(argc, argv);
  int nt = bench_threads(1, 2);
  rounds = bench_scaled(40000, scale, 10);
  long reps = 4;

  double t0 = bench_now();
  uint64_t checksum = 0;
  double t_thrash = 0, t_scratch = 0;
  for (long k = 0; k < reps; ++k) {
    double a = bench_now();
    checksum += run_phase(thrash, nt, 0);
    double b = bench_now();
    checksum += run_phase(scratch, nt, 1);
    t_thrash += b - a;
    t_scratch += bench_now() - b;
  }
  double t1 = bench_now();

  char extra[96];
  snprintf(extra, sizeof extra, " thrash_s=%.3f scratch_s=%.3f", t_thrash, t_scratch);
  bench_report("false_share", nt, t1 - t0, checksum, extra);
  return 0;
}
