/* w06_realloc: buffers that grow by realloc, from bytes to hundreds of MiB.
 *
 * Models: C code that builds strings and arrays incrementally -- a JSON or
 * log writer calling realloc(p, len + n) on every append, dynamic arrays that
 * double, an HTTP client accumulating a download in fixed steps, and a tool
 * slurping a huge file into one buffer that grows by half each time (then
 * trimming it). Several buffers grow at once, so the allocator cannot always
 * extend in place. Single-threaded.
 */
#include "common.h"

static uint64_t checksum;

/* append n bytes of value v at offset len of a buffer grown to exactly fit */
static unsigned char *append_exact(unsigned char *p, size_t len, size_t n, unsigned char v) {
  p = (unsigned char *)bench_check(realloc(p, len + n + 1), len + n + 1);
  memset(p + len, v, n);
  p[len + n] = 0;
  return p;
}

/* A: string builders, realloc on every small append (many live at once) */
static void string_builders(bench_rng *r, size_t total_bytes) {
  enum { LIVE = 16 };
  unsigned char *buf[LIVE] = {0};
  size_t len[LIVE] = {0}, target[LIVE] = {0};
  size_t done = 0;
  while (done < total_bytes) {
    int k = (int)bench_rng_below(r, LIVE);
    if (!buf[k]) target[k] = bench_rng_logsize(r, 16, 256 << 10);
    size_t n = 1 + bench_rng_below(r, 64);
    buf[k] = append_exact(buf[k], len[k], n, (unsigned char)n);
    len[k] += n;
    done += n;
    if (len[k] >= target[k]) {
      checksum += bench_sum(buf[k], len[k]);
      free(buf[k]);
      buf[k] = NULL;
      len[k] = 0;
    }
  }
  for (int k = 0; k < LIVE; ++k) free(buf[k]);
}

/* B: dynamic arrays that double, up to 1-16 MiB */
static void doubling_arrays(bench_rng *r, long count) {
  for (long i = 0; i < count; ++i) {
    size_t limit = bench_rng_logsize(r, 1 << 20, 16 << 20);
    size_t cap = 8, len = 0;
    uint32_t *a = (uint32_t *)bench_check(malloc(cap), cap);
    while (cap < limit) {
      for (; (len + 1) * sizeof(uint32_t) <= cap; ++len) a[len] = (uint32_t)len;
      cap *= 2;
      a = (uint32_t *)bench_check(realloc(a, cap), cap);
    }
    checksum += a[len / 2] + a[len - 1];
    free(a);
  }
}

/* C: downloads accumulated in fixed 16 KiB steps, four at a time */
static void step_growth(bench_rng *r, long count) {
  enum { LIVE = 4, STEP = 16 << 10 };
  for (long i = 0; i < count; i += LIVE) {
    unsigned char *p[LIVE] = {0};
    size_t len[LIVE] = {0}, target[LIVE];
    for (int k = 0; k < LIVE; ++k) target[k] = bench_rng_range(r, 256 << 10, 2 << 20);
    int active = LIVE;
    while (active) {
      active = 0;
      for (int k = 0; k < LIVE; ++k) {
        if (len[k] >= target[k]) continue;
        ++active;
        p[k] = append_exact(p[k], len[k], STEP, (unsigned char)k);
        len[k] += STEP;
      }
    }
    for (int k = 0; k < LIVE; ++k) {
      checksum += bench_sum(p[k], len[k]);
      free(p[k]);
    }
  }
}

/* D: one buffer from 1 byte to `limit`, growing by half each time, then trimmed */
static void huge_growth(size_t limit) {
  size_t cap = 1, len = 0;
  unsigned char *p = (unsigned char *)bench_check(malloc(cap), cap);
  while (cap < limit) {
    size_t ncap = cap + cap / 2 + 1;
    p = (unsigned char *)bench_check(realloc(p, ncap), ncap);
    memset(p + len, (int)(ncap & 0x7f), ncap - len);
    len = cap = ncap;
  }
  checksum += bench_sum(p, len);
  p = (unsigned char *)bench_check(realloc(p, len / 3), len / 3); /* trim */
  checksum += bench_sum(p, len / 3);
  free(p);
}

int main(int argc, char **argv) {
  double scale = bench_scale(argc, argv);
  bench_rng r = bench_rng_make(6);

  double t[5];
  t[0] = bench_now();
  string_builders(&r, (size_t)bench_scaled(160 << 20, scale, 1 << 20));
  t[1] = bench_now();
  doubling_arrays(&r, bench_scaled(80, scale, 2));
  t[2] = bench_now();
  step_growth(&r, bench_scaled(160, scale, 4));
  t[3] = bench_now();
  huge_growth((size_t)bench_scaled(256L << 20, scale, 8L << 20));
  t[4] = bench_now();

  char extra[128];
  snprintf(extra, sizeof extra, " builders_s=%.3f doubling_s=%.3f steps_s=%.3f huge_s=%.3f", t[1] - t[0],
           t[2] - t[1], t[3] - t[2], t[4] - t[3]);
  bench_report("realloc", 1, t[4] - t[0], checksum, extra);
  return 0;
}
