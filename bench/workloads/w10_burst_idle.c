/* w10_burst_idle: a big allocation burst, freed, then the process idles.
 *
 * Models: a service that handles a rare heavy request (a report, a bulk
 * import, a compaction) and then sits mostly idle for a long time; desktop
 * programs after closing a large document. About 500 MiB of mixed small and
 * medium objects is allocated, touched and freed; then the process idles for
 * BENCH_IDLE_MS (default 1500) milliseconds, waking every 100 ms for a tiny
 * malloc/free like an idle server's housekeeping timer. Memory that is not
 * given back to the OS by then stays charged to the process.
 *
 * Prints RSS before the burst, at its peak, right after the frees and after
 * the idle period. time_s covers the burst (allocate, touch, free) only.
 * Single-threaded.
 */
#include "common.h"

int main(int argc, char **argv) {
  double scale = bench_scale(argc, argv);
  const char *idle_env = getenv("BENCH_IDLE_MS");
  long idle_ms = idle_env && atol(idle_env) >= 0 ? atol(idle_env) : 1500;
  size_t budget = (size_t)bench_scaled(500L << 20, scale, 1L << 20);
  bench_rng r = bench_rng_make(10);

  /* the pointer array (the mean object is about 3.6 KiB) is allocated and
   * touched before the first reading, so it counts the same everywhere */
  size_t cap = budget / 2048 + 4096;
  void **a = (void **)bench_check(malloc(cap * sizeof(void *)), cap);
  memset(a, 0, cap * sizeof(void *));
  long rss_before = bench_rss_kb();

  double t0 = bench_now();
  size_t n = 0, bytes = 0;
  uint64_t checksum = 0;
  while (bytes < budget && n < cap) {
    /* 7 in 8 small (16 B - 1 KiB), 1 in 8 medium (1 KiB - 128 KiB) */
    size_t sz = bench_rng_below(&r, 8) ? bench_rng_logsize(&r, 16, 1024) : bench_rng_logsize(&r, 1024, 128 << 10);
    unsigned char *p = (unsigned char *)bench_check(malloc(sz), sz);
    memset(p, (int)(sz & 0xff), sz);
    a[n++] = p;
    bytes += sz;
  }
  long rss_peak = bench_rss_kb();
  for (size_t i = 0; i < n; ++i) {
    checksum += *(unsigned char *)a[i];
    free(a[i]);
  }
  double t1 = bench_now();
  long rss_freed = bench_rss_kb();

  for (long t = 0; t < idle_ms; t += 100) {
    bench_sleep_ms(idle_ms - t < 100 ? idle_ms - t : 100);
    void *p = bench_check(malloc(64), 64);
    bench_escape(p);
    free(p);
  }
  long rss_after = bench_rss_kb();

  char extra[192];
  snprintf(extra, sizeof extra,
           " objects=%zu burst_mib=%zu idle_ms=%ld rss_before_kb=%ld rss_peak_kb=%ld rss_freed_kb=%ld "
           "rss_after_kb=%ld",
           n, bytes >> 20, idle_ms, rss_before, rss_peak, rss_freed, rss_after);
  bench_report("burst_idle", 1, t1 - t0, checksum, extra);
  free(a);
  return 0;
}
