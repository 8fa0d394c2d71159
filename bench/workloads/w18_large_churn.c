/* w18_large_churn: many large blocks (64 KiB - 4 MiB) allocated and freed in
 * a loop (malloc-large-like), peak RSS tracked.
 *
 * Models: a program that keeps a rolling set of big buffers -- decoded images,
 * network or file read buffers, per-request scratch arenas -- replacing one
 * at random at every step. Sizes are log-uniform over 64 KiB - 4 MiB, 96
 * buffers live (about 90 MiB live, up to 384 MiB). As with real buffers, most
 * are only partly used: each block gets its first and last page written, one
 * in four is written whole (every page). What it stresses: reuse of freed
 * large blocks for other sizes (splitting/merging or caching mappings), how
 * much freed memory stays resident (peak RSS), and the cost of returning it
 * to the OS and faulting it in again. Threads: 1.
 *
 * Prints live_peak_kb (the most bytes the program itself held at once) next
 * to time_s; the harness takes the process's peak RSS.
 */
#include "common.h"

enum { LIVE = 96 };

int main(int argc, char** argv) {
  double scale = bench_scale(argc, argv);
  long steps = bench_scaled(40000, scale, 100);
  bench_rng r = bench_rng_make(18);
  unsigned char* buf[LIVE] = {0};
  size_t len[LIVE] = {0};
  size_t live = 0, live_peak = 0;
  uint64_t checksum = 0;

  double t0 = bench_now();
  for (long s = 0; s < steps; ++s) {
    int i = (int)bench_rng_below(&r, LIVE);
    if (buf[i]) {
      checksum += buf[i][0] + buf[i][len[i] - 1];
      free(buf[i]);
      live -= len[i];
    }
    size_t n = bench_rng_logsize(&r, 64 * 1024, 4 * 1024 * 1024);
    unsigned char* p = (unsigned char*)bench_check(malloc(n), n);
    if (bench_rng_below(&r, 4) == 0) {
      bench_touch(p, n, (unsigned char)s);
    } else {
      p[0] = (unsigned char)s;
      p[n / 2] = (unsigned char)s;
      p[n - 1] = (unsigned char)(s >> 8);
    }
    buf[i] = p;
    len[i] = n;
    live += n;
    if (live > live_peak) live_peak = live;
  }
  for (int i = 0; i < LIVE; ++i) free(buf[i]);
  double t1 = bench_now();

  char extra[96];
  snprintf(extra, sizeof extra, " steps=%ld live_peak_kb=%zu", steps, live_peak / 1024);
  bench_report("large_churn", 1, t1 - t0, checksum, extra);
  return 0;
}
