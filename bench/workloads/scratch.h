/* The passive false sharing shape shared by w16_scratch1 and w17_scratch2
 * (after Hoard's cache-scratch test).
 *
 * Models: a dispatcher that allocates small per-task state for its workers
 * back to back (so the objects share cache lines), hands each worker one;
 * the worker uses it, frees it and from then on allocates, writes hard and
 * frees its own small objects of the same size. An allocator that gives the
 * freed block -- or its neighbours in the dispatcher's page -- back to the
 * worker that freed it makes workers on different cores write into one
 * cache line ("passive" false sharing: the allocator causes it only after a
 * free by a thread other than the block's allocator). With one worker there
 * is no sharing; then the shape measures the remote free of the handed block
 * and a worker's small-object fast path between long runs of writes.
 *
 * SCRATCH_THREADS is the number of workers (fixed, not scaled with CPUs:
 * 1 and 2 are the two variants the suite runs; BENCH_THREADS overrides).
 */
#ifndef BOP_BENCH_SCRATCH_H
#define BOP_BENCH_SCRATCH_H

#include <pthread.h>

#include "common.h"

enum { SCRATCH_OBJ = 8, SCRATCH_WRITES = 2000 };

typedef struct {
  unsigned char* given; /* allocated by the main thread */
  long iterations;
  uint64_t checksum;
} scratch_task;

static uint64_t scratch_write(unsigned char* p) {
  volatile unsigned char* v = p;
  for (int j = 0; j < SCRATCH_WRITES; ++j) {
    for (int k = 0; k < SCRATCH_OBJ; ++k) v[k]++;
  }
  return v[0];
}

static void* scratch_worker(void* arg) {
  scratch_task* t = (scratch_task*)arg;
  uint64_t sum = scratch_write(t->given);
  free(t->given);
  for (long i = 0; i < t->iterations; ++i) {
    unsigned char* p = (unsigned char*)bench_check(malloc(SCRATCH_OBJ), SCRATCH_OBJ);
    memset(p, 0, SCRATCH_OBJ);
    sum += scratch_write(p);
    free(p);
  }
  t->checksum = sum;
  return NULL;
}

static int scratch_main(int argc, char** argv, const char* name) {
  double scale = bench_scale(argc, argv);
  const char* e = getenv("BENCH_THREADS");
  int nt = e && atoi(e) > 0 ? atoi(e) : SCRATCH_THREADS;
  long iterations = bench_scaled(200000, scale, 10);

  pthread_t* th = (pthread_t*)bench_check(malloc(sizeof(pthread_t) * (size_t)nt), 1);
  scratch_task* ts = (scratch_task*)bench_check(calloc((size_t)nt, sizeof(scratch_task)), 1);
  double t0 = bench_now();
  /* back to back, as the dispatcher allocates them */
  for (int i = 0; i < nt; ++i) {
    ts[i].given = (unsigned char*)bench_check(malloc(SCRATCH_OBJ), SCRATCH_OBJ);
    memset(ts[i].given, 0, SCRATCH_OBJ);
    ts[i].iterations = iterations;
  }
  for (int i = 0; i < nt; ++i) pthread_create(&th[i], NULL, scratch_worker, &ts[i]);
  uint64_t checksum = 0;
  for (int i = 0; i < nt; ++i) {
    pthread_join(th[i], NULL);
    checksum += ts[i].checksum;
  }
  double t1 = bench_now();

  char extra[64];
  snprintf(extra, sizeof extra, " iterations=%ld", iterations);
  bench_report(name, nt, t1 - t0, checksum, extra);
  free(th);
  free(ts);
  return 0;
}

#endif
