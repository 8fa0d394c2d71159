/* scale_heap: a live heap of small objects of a given total size, for the
 * RSS-overhead curve of bench/scale.
 *
 *   scale_heap LIVE_MIB
 *
 * Fills the heap with small objects (16 - 512 bytes, log-uniform, every byte
 * written) until LIVE_MIB MiB are live, then churns it: half as many times
 * as there are objects, a random object is freed and replaced by one of a new
 * random size, so size classes mix the way a long-running program's do. It
 * reads its RSS (/proc/self/smaps_rollup) at the start, after the fill and after the
 * churn, and prints them with the live bytes. The pointer table is mapped
 * directly (mmap), not taken from the allocator, and its size is printed so
 * the harness can leave it out:
 *
 *   overhead = (rss - rss_start - table) / live
 *
 * i.e. resident bytes the allocator added per byte the program holds (1.0 is
 * perfect; rss_start holds the program, the C library and whatever the
 * allocator set up before main).
 */
#define _GNU_SOURCE 1
#include <sys/mman.h>

#include "workloads/common.h"

/* RSS in KiB from /proc/self/smaps_rollup, which sums the page tables: exact,
 * where statm's counters are per-CPU approximations (off by up to a few
 * hundred KiB, which matters at the 1 MiB end). statm if it is missing. */
static long rss_exact_kb(void) {
  FILE* f = fopen("/proc/self/smaps_rollup", "r");
  if (!f) return bench_rss_kb();
  char line[256];
  long kb = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "Rss: %ld kB", &kb) == 1) break;
  fclose(f);
  return kb >= 0 ? kb : bench_rss_kb();
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s LIVE_MIB\n", argv[0]);
    return 2;
  }
  double live_mib = strtod(argv[1], NULL);
  if (!(live_mib > 0)) {
    fprintf(stderr, "scale_heap: LIVE_MIB must be positive\n");
    return 2;
  }
  size_t target = (size_t)(live_mib * 1024 * 1024);
  long rss_start = rss_exact_kb();

  /* the mean object is ~150 bytes; size the table for the smallest mean */
  size_t cap = target / 64 + 1024;
  size_t table_bytes = cap * sizeof(unsigned char*);
  unsigned char** obj = (unsigned char**)mmap(NULL, table_bytes, PROT_READ | PROT_WRITE,
                                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (obj == MAP_FAILED) {
    perror("scale_heap: mmap");
    return 1;
  }
  bench_rng r = bench_rng_make(77);
  size_t n = 0, live = 0;
  uint64_t checksum = 0;

  double t0 = bench_now();
  while (live < target && n < cap) {
    size_t sz = bench_rng_logsize(&r, 16, 512);
    unsigned char* p = (unsigned char*)bench_check(malloc(sz), sz);
    memset(p, (int)(n & 0xff), sz);
    *(uint32_t*)p = (uint32_t)sz; /* the size, so a free knows what leaves */
    obj[n++] = p;
    live += sz;
  }
  double t1 = bench_now();
  long rss_fill = rss_exact_kb();
  size_t live_fill = live;

  for (size_t k = 0; k < n / 2; ++k) {
    size_t i = bench_rng_below(&r, n);
    uint32_t old = *(uint32_t*)obj[i];
    checksum += old + obj[i][old - 1];
    live -= old;
    free(obj[i]);
    size_t sz = bench_rng_logsize(&r, 16, 512);
    unsigned char* p = (unsigned char*)bench_check(malloc(sz), sz);
    memset(p, (int)(k & 0xff), sz);
    *(uint32_t*)p = (uint32_t)sz;
    obj[i] = p;
    live += sz;
  }
  double t2 = bench_now();
  long rss_churn = rss_exact_kb();
  /* the table's resident part: every entry up to n was written */
  size_t table_kb = (n * sizeof(unsigned char*) + 4095) / 4096 * 4;

  printf(
      "workload=scale_heap threads=1 time_s=%.4f checksum=%016llx objects=%zu live_fill_kb=%zu "
      "live_churn_kb=%zu rss_start_kb=%ld rss_fill_kb=%ld rss_churn_kb=%ld table_kb=%zu "
      "fill_s=%.4f "
      "churn_s=%.4f\n",
      t2 - t0, (unsigned long long)checksum, n, live_fill / 1024, live / 1024, rss_start, rss_fill,
      rss_churn, table_kb, t1 - t0, t2 - t1);
  fflush(stdout);
  /* no frees at exit: at 8 GiB they would take longer than the measurement */
  return 0;
}
