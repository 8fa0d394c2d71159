/* w08_large: large blocks (64 KiB - 64 MiB) allocated and freed in bursts.
 *
 * Models: image and video processing, compression tools, database sort and
 * hash-join buffers, ML inference scratch tensors: each step allocates a set
 * of big buffers, writes every page of them, and frees them all. Whether
 * freed large blocks are kept for reuse or handed back to the OS (and faulted
 * in again on the next step) decides the result. Threads: one per CPU.
 */
#include <pthread.h>

#include "common.h"

enum { MAX_BLOCKS = 64 };

static long bursts_per_thread;
static size_t burst_budget = (size_t)48 << 20; /* bytes per burst per thread */

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg;
  bench_rng r = bench_rng_make(8000 + (uint64_t)id);
  unsigned char *blk[MAX_BLOCKS];
  size_t len[MAX_BLOCKS];
  uint64_t sum = 0;
  for (long b = 0; b < bursts_per_thread; ++b) {
    int n = 0;
    size_t total = 0;
    while (n < MAX_BLOCKS && total < burst_budget) {
      size_t sz = bench_rng_logsize(&r, 64 << 10, 64 << 20);
      blk[n] = (unsigned char *)bench_check(malloc(sz), sz);
      len[n] = sz;
      bench_touch(blk[n], sz, (unsigned char)(b + n));
      total += sz;
      ++n;
    }
    for (int i = 0; i < n; ++i) sum += bench_sum(blk[i], len[i]);
    /* free in a shuffled order */
    for (int i = n - 1; i > 0; --i) {
      int j = (int)bench_rng_below(&r, (uint64_t)i + 1);
      unsigned char *t = blk[i];
      blk[i] = blk[j];
      blk[j] = t;
    }
    for (int i = 0; i < n; ++i) free(blk[i]);
  }
  return (void *)(uintptr_t)sum;
}

int main(int argc, char **argv) {
  double scale = bench_scale(argc, argv);
  int nt = bench_threads(1, 1);
  bursts_per_thread = bench_scaled(28, scale, 2) / nt;
  if (bursts_per_thread < 1) bursts_per_thread = 1;

  double t0 = bench_now();
  pthread_t *th = (pthread_t *)malloc(sizeof(pthread_t) * (size_t)nt);
  for (int i = 0; i < nt; ++i) pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
  uint64_t checksum = 0;
  for (int i = 0; i < nt; ++i) {
    void *ret;
    pthread_join(th[i], &ret);
    checksum += (uint64_t)(uintptr_t)ret;
  }
  double t1 = bench_now();

  char extra[64];
  snprintf(extra, sizeof extra, " bursts=%ld", bursts_per_thread * nt);
  bench_report("large", nt, t1 - t0, checksum, extra);
  free(th);
  return 0;
}
