/* pair_callgrind: N malloc+free pairs of one size, for instruction counts.
 *
 *   valgrind --tool=callgrind [LD_PRELOAD=liballoc.so] pair_callgrind SIZE N [LIVE]
 *
 * Run it twice with different N; (Ir(N2) - Ir(N1)) / (N2 - N1) is the cost of
 * one pair with start-up and exit removed (bench/micro does this).
 * LIVE (default 0) blocks of the same size are allocated first and kept, so
 * the pair does not empty its page every time: with LIVE=0 some allocators
 * take a page-retire path on every free, which real programs rarely hit.
 * The pointer escapes into an empty asm statement so the compiler cannot drop
 * the pair, and nothing else happens in the loop.
 */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s SIZE N [LIVE]\n", argv[0]);
    return 2;
  }
  size_t size = strtoull(argv[1], NULL, 10);
  long n = strtol(argv[2], NULL, 10);
  long live = argc > 3 ? strtol(argv[3], NULL, 10) : 0;
  void **keep = live > 0 ? (void **)malloc(sizeof(void *) * (size_t)live) : NULL;
  for (long i = 0; i < live; ++i) {
    keep[i] = malloc(size);
    __asm__ volatile("" : : "r"(keep[i]) : "memory");
  }
  /* warm up: the first pairs set up thread and size-class state */
  for (int i = 0; i < 1000; ++i) {
    void *p = malloc(size);
    __asm__ volatile("" : : "r"(p) : "memory");
    free(p);
  }
  for (long i = 0; i < n; ++i) {
    void *p = malloc(size);
    __asm__ volatile("" : : "r"(p) : "memory");
    free(p);
  }
  for (long i = 0; i < live; ++i) free(keep[i]);
  free(keep);
  printf("size=%zu pairs=%ld live=%ld\n", size, n, live);
  return 0;
}
