/* w21_replace: random replacement in a 4096-slot working set (micro workload).
 *
 * Models: the steady state of any long-running program's small-object heap,
 * reduced to its core: 4096 live blocks of 8 - 512 bytes (uniform); at each
 * step a random slot is freed and refilled with a block of a new random
 * size, whose first byte is written. Nothing else happens, so time per step
 * is the allocator's malloc + free on a warm working set of ~1 MiB whose
 * size classes change at random: branch prediction and free-list locality
 * decide it more than instruction count. Prints ns_per_step. Threads: 1.
 */
#include "common.h"

enum { SLOTS = 4096 };

int main(int argc, char** argv) {
  double scale = bench_scale(argc, argv);
  long steps = bench_scaled(100000000, scale, 1000);
  bench_rng r = bench_rng_make(21);
  static unsigned char* slot[SLOTS];
  for (int i = 0; i < SLOTS; ++i) {
    size_t n = bench_rng_range(&r, 8, 512);
    slot[i] = (unsigned char*)bench_check(malloc(n), n);
    slot[i][0] = (unsigned char)n;
  }
  uint64_t checksum = 0;
  double t0 = bench_now();
  for (long s = 0; s < steps; ++s) {
    size_t i = bench_rng_below(&r, SLOTS);
    checksum += slot[i][0];
    free(slot[i]);
    size_t n = bench_rng_range(&r, 8, 512);
    slot[i] = (unsigned char*)malloc(n);
    slot[i][0] = (unsigned char)n;
  }
  double t1 = bench_now();
  for (int i = 0; i < SLOTS; ++i) free(slot[i]);

  char extra[64];
  snprintf(extra, sizeof extra, " steps=%ld ns_per_step=%.2f", steps,
           (t1 - t0) * 1e9 / (double)steps);
  bench_report("replace", 1, t1 - t0, checksum, extra);
  return 0;
}
