/* w12_aligned: over-aligned allocations mixed with ordinary ones.
 *
 * Models: numeric and media code that wants SIMD- or cache-line-aligned
 * buffers (Eigen, image filters, audio DSP with AVX), lock-free structures
 * padded to a cache line, and I/O code using page-aligned buffers for
 * O_DIRECT -- through posix_memalign, aligned_alloc and memalign, next to
 * plain malloc. Each thread keeps a ring of live buffers and replaces one per
 * step, checking every alignment. Misaligned blocks are counted, not
 * fatal: misaligned=N for explicit alignment requests not honoured,
 * misaligned_malloc16=N for plain malloc(n >= 16) not 16-byte aligned (C
 * requires it, since a 16-byte long double fits; some allocators knowingly
 * return 8-aligned blocks for sizes like 24). Threads: one per CPU.
 */
#include <malloc.h>
#include <pthread.h>

#include "common.h"

enum { RING = 512 };

static long steps_per_thread;
static _Atomic long misaligned_total, misaligned_plain_total;

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg;
  bench_rng r = bench_rng_make(12000 + (uint64_t)id);
  void *ring[RING] = {0};
  uint64_t sum = 0;
  long misaligned = 0, misaligned_plain = 0;
  for (long s = 0; s < steps_per_thread; ++s) {
    size_t k = bench_rng_below(&r, RING);
    if (ring[k]) {
      sum += *(unsigned char *)ring[k];
      free(ring[k]);
    }
    uint64_t kind = bench_rng_below(&r, 16);
    size_t align, size;
    void *p = NULL;
    if (kind < 6) { /* plain malloc: 16-byte aligned from 16 bytes up */
      size = bench_rng_logsize(&r, 8, 4096);
      align = size < 16 ? 8 : 16;
      p = malloc(size);
    } else if (kind < 11) { /* SIMD: 32/64 */
      align = kind < 8 ? 32 : 64;
      size = bench_rng_logsize(&r, 16, 16384);
      if (posix_memalign(&p, align, size) != 0) p = NULL;
    } else if (kind < 14) { /* cache-line padded structs, larger alignments */
      align = (size_t)128 << bench_rng_below(&r, 3); /* 128, 256, 512 */
      size = align * (1 + bench_rng_below(&r, 4));
      p = aligned_alloc(align, size);
    } else { /* page-aligned I/O buffers */
      align = 4096;
      size = 4096 * (1 + bench_rng_below(&r, 16));
      p = memalign(align, size);
    }
    bench_check(p, size);
    if ((uintptr_t)p % align != 0) {
      /* plain malloc(n >= 16) must be 16-aligned (a long double fits in it);
       * explicit alignment requests must be honoured exactly */
      long *count = kind < 6 ? &misaligned_plain : &misaligned;
      if ((*count)++ == 0)
        fprintf(stderr, "misaligned: %s(size %zu) = %p, wanted alignment %zu\n",
                kind < 6 ? "malloc" : kind < 11 ? "posix_memalign" : kind < 14 ? "aligned_alloc" : "memalign", size,
                p, align);
    }
    memset(p, (int)(s & 0xff), size < 256 ? size : 256);
    ((unsigned char *)p)[size - 1] = 1;
    ring[k] = p;
  }
  for (int k = 0; k < RING; ++k) free(ring[k]);
  misaligned_total += misaligned;
  misaligned_plain_total += misaligned_plain;
  return (void *)(uintptr_t)sum;
}

int main(int argc, char **argv) {
  double scale = bench_scale(argc, argv);
  int nt = bench_threads(1, 1);
  steps_per_thread = bench_scaled(8000000, scale, 100) / nt;

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

  /* a misaligned block is an allocator bug: counted and reported, not fatal */
  char extra[96];
  snprintf(extra, sizeof extra, " misaligned=%ld misaligned_malloc16=%ld", (long)misaligned_total,
           (long)misaligned_plain_total);
  bench_report("aligned", nt, t1 - t0, checksum, extra);
  free(th);
  return 0;
}
