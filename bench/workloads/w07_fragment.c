/* w07_fragment: build a large mixed heap, free a random 90%, allocate again.
 *
 * Models: long-running programs whose working set changes shape over time --
 * a database or cache after an eviction storm, a browser tab after a page
 * change, a language runtime after a phase of its program. The survivors pin
 * pages everywhere; the next phase asks for different sizes. Peak RSS shows
 * how well the allocator reuses scattered free memory across size classes
 * instead of asking the OS for more. Single-threaded.
 */
#include "common.h"

typedef struct {
  size_t lo, hi;
} dist;

static uint64_t checksum;

static void *make(bench_rng *r, dist d) {
  size_t n = bench_rng_logsize(r, d.lo, d.hi);
  unsigned char *p = (unsigned char *)bench_check(malloc(n), n);
  memset(p, (int)(n & 0xff), n < 32 ? n : 32);
  p[n - 1] = 0x5a;
  return p;
}

/* Fisher-Yates shuffle of a pointer array */
static void shuffle(bench_rng *r, void **a, size_t n) {
  for (size_t i = n - 1; i > 0; --i) {
    size_t j = bench_rng_below(r, i + 1);
    void *t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

/* free a random 90% of a[0..n), compacting the survivors to the front */
static size_t free_90(bench_rng *r, void **a, size_t n) {
  shuffle(r, a, n);
  size_t keep = n / 10;
  for (size_t i = keep; i < n; ++i) {
    checksum += *(unsigned char *)a[i];
    free(a[i]);
  }
  return keep;
}

int main(int argc, char **argv) {
  double scale = bench_scale(argc, argv);
  bench_rng r = bench_rng_make(7);
  size_t n = (size_t)bench_scaled(600000, scale, 1000);
  /* room for survivors plus one new phase */
  void **a = (void **)bench_check(malloc(sizeof(void *) * n * 2), n * 2);
  const dist phase[3] = {{16, 1024}, {24, 3000}, {200, 12000}};
  const size_t count[3] = {n, n, n / 4};
  long rss_mid[3];

  double t0 = bench_now();
  size_t live = 0;
  for (int ph = 0; ph < 3; ++ph) {
    if (live) live = free_90(&r, a, live);
    for (size_t i = 0; i < count[ph]; ++i) a[live++] = make(&r, phase[ph]);
    rss_mid[ph] = bench_rss_kb();
  }
  for (size_t i = 0; i < live; ++i) {
    checksum += ((unsigned char *)a[i])[0];
    free(a[i]);
  }
  double t1 = bench_now();

  char extra[128];
  snprintf(extra, sizeof extra, " rss_phase1_kb=%ld rss_phase2_kb=%ld rss_phase3_kb=%ld", rss_mid[0], rss_mid[1],
           rss_mid[2]);
  bench_report("fragment", 1, t1 - t0, checksum, extra);
  free(a);
  return 0;
}
