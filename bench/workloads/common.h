/* Shared helpers for the workload programs (C and C++).
 *
 * Every workload uses only malloc/free (or new/delete), so one binary runs
 * under any allocator through LD_PRELOAD. These helpers never allocate on
 * their own hot paths.
 *
 * Conventions every workload follows:
 *   argv[1]            optional scale factor (default 1.0): the amount of work
 *   BENCH_THREADS=n    overrides the thread count (default: derived from the
 *                      number of CPUs this process may run on)
 *   output             one line of key=value pairs, always with time_s=
 */
#ifndef BOP_BENCH_COMMON_H
#define BOP_BENCH_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- time ---------------------------------------------------------------- */

static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void bench_sleep_ms(long ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* ---- command line and environment --------------------------------------- */

/* Scale factor from argv[1]; any value <= 0 or unparsable means 1.0. */
static inline double bench_scale(int argc, char **argv) {
  if (argc > 1) {
    double s = strtod(argv[1], NULL);
    if (s > 0.0) return s;
  }
  return 1.0;
}

/* max(lo, round(base * scale)) as a count. */
static inline long bench_scaled(long base, double scale, long lo) {
  long v = (long)((double)base * scale + 0.5);
  return v < lo ? lo : v;
}

/* CPUs this process may use (affinity mask), at least 1. */
static inline int bench_ncpus(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

/* Thread count: BENCH_THREADS if set, else per_cpu * ncpus (at least min). */
static inline int bench_threads(int per_cpu, int min) {
  const char *e = getenv("BENCH_THREADS");
  if (e && atoi(e) > 0) return atoi(e);
  int n = per_cpu * bench_ncpus();
  return n < min ? min : n;
}

/* ---- deterministic random numbers (splitmix64 seeding xorshift64*) -------- */

typedef struct {
  uint64_t s;
} bench_rng;

static inline bench_rng bench_rng_make(uint64_t seed) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  bench_rng r;
  r.s = z ? z : 0x2545F4914F6CDD1DULL;
  return r;
}

static inline uint64_t bench_rng_next(bench_rng *r) {
  uint64_t x = r->s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  r->s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [0, n). */
static inline uint64_t bench_rng_below(bench_rng *r, uint64_t n) {
  return (uint64_t)(((unsigned __int128)bench_rng_next(r) * n) >> 64);
}

/* Uniform in [lo, hi]. */
static inline uint64_t bench_rng_range(bench_rng *r, uint64_t lo, uint64_t hi) {
  return lo + bench_rng_below(r, hi - lo + 1);
}

/* Log-uniform in [lo, hi]: as many blocks per doubling, so small sizes
 * dominate by count and large sizes by bytes, like real heaps. */
static inline size_t bench_rng_logsize(bench_rng *r, size_t lo, size_t hi) {
  int lo_bits = 63 - __builtin_clzll((unsigned long long)lo);
  int hi_bits = 63 - __builtin_clzll((unsigned long long)hi);
  int b = lo_bits + (int)bench_rng_below(r, (uint64_t)(hi_bits - lo_bits + 1));
  size_t base = (size_t)1 << b;
  size_t s = base + (size_t)bench_rng_below(r, base);
  if (s < lo) s = lo;
  if (s > hi) s = hi;
  return s;
}

/* ---- touching memory ------------------------------------------------------ */

/* Write one byte per 4 KiB page plus the last byte: commits every page. */
static inline void bench_touch(void *p, size_t n, unsigned char v) {
  unsigned char *c = (unsigned char *)p;
  for (size_t i = 0; i < n; i += 4096) c[i] = v;
  if (n) c[n - 1] = v;
}

/* A cheap checksum over one byte per page plus the ends. */
static inline uint64_t bench_sum(const void *p, size_t n) {
  const unsigned char *c = (const unsigned char *)p;
  uint64_t s = 0;
  for (size_t i = 0; i < n; i += 4096) s = s * 31 + c[i];
  if (n) s = s * 31 + c[n - 1];
  return s;
}

/* Keep a value alive without the compiler seeing through it. */
static inline void bench_escape(const void *p) { __asm__ volatile("" : : "g"(p) : "memory"); }

/* ---- memory --------------------------------------------------------------- */

/* Resident set size in KiB, from /proc/self/statm (no allocation). */
static inline long bench_rss_kb(void) {
  char buf[128];
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return -1;
  long size = 0, res = 0;
  /* fopen itself allocates a FILE; that is the same for every allocator. */
  if (fgets(buf, sizeof buf, f) == NULL || sscanf(buf, "%ld %ld", &size, &res) != 2) res = -1;
  fclose(f);
  return res < 0 ? -1 : res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Abort with a message when an allocation fails: a benchmark never limps on. */
static inline void *bench_check(void *p, size_t n) {
  if (!p && n) {
    fprintf(stderr, "allocation of %zu bytes failed\n", n);
    abort();
  }
  return p;
}

/* The one result line. extra may be NULL or a string of " key=value" pairs. */
static inline void bench_report(const char *name, int threads, double time_s, uint64_t checksum,
                                const char *extra) {
  printf("workload=%s threads=%d time_s=%.4f checksum=%016llx%s\n", name, threads, time_s,
         (unsigned long long)checksum, extra ? extra : "");
  fflush(stdout);
}

#ifdef __cplusplus
}
#endif

#endif
