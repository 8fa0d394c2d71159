/* w11_bignum: arbitrary-precision arithmetic with a fresh block per result.
 *
 * Models: computer algebra and number theory programs, crypto and bignum
 * libraries in their naive form, and interpreters of languages with big
 * integers (Python ints, Ruby Bignum) -- like the classic cfrac factoring
 * benchmark: every add, multiply or reduction allocates its result sized
 * exactly to its limbs, trims it with realloc, and frees the temporaries.
 * Sizes from 8 bytes to a few hundred, lifetimes from one expression to a
 * few hundred steps. Single-threaded.
 */
#include "common.h"

typedef struct {
  uint32_t n; /* limbs in use, little-endian */
  uint32_t d[];
} big;

static big *big_new(uint32_t n) {
  size_t sz = sizeof(big) + (size_t)n * sizeof(uint32_t);
  big *b = (big *)bench_check(malloc(sz), sz);
  b->n = n;
  return b;
}

/* drop leading zero limbs; give the tail back with realloc */
static big *big_trim(big *b) {
  uint32_t n = b->n;
  while (n > 1 && b->d[n - 1] == 0) --n;
  if (n != b->n) {
    size_t sz = sizeof(big) + (size_t)n * sizeof(uint32_t);
    b = (big *)bench_check(realloc(b, sz), sz);
    b->n = n;
  }
  return b;
}

static big *big_random(bench_rng *r, uint32_t n) {
  big *b = big_new(n);
  for (uint32_t i = 0; i < n; ++i) b->d[i] = (uint32_t)bench_rng_next(r);
  return big_trim(b);
}

static big *big_add(const big *a, const big *b) {
  if (a->n < b->n) {
    const big *t = a;
    a = b;
    b = t;
  }
  big *c = big_new(a->n + 1);
  uint64_t carry = 0;
  for (uint32_t i = 0; i < a->n; ++i) {
    uint64_t s = (uint64_t)a->d[i] + (i < b->n ? b->d[i] : 0) + carry;
    c->d[i] = (uint32_t)s;
    carry = s >> 32;
  }
  c->d[a->n] = (uint32_t)carry;
  return big_trim(c);
}

static big *big_mul(const big *a, const big *b) {
  big *c = big_new(a->n + b->n);
  memset(c->d, 0, (size_t)c->n * sizeof(uint32_t));
  for (uint32_t i = 0; i < a->n; ++i) {
    uint64_t carry = 0;
    for (uint32_t j = 0; j < b->n; ++j) {
      uint64_t t = (uint64_t)a->d[i] * b->d[j] + c->d[i + j] + carry;
      c->d[i + j] = (uint32_t)t;
      carry = t >> 32;
    }
    c->d[i + b->n] = (uint32_t)carry;
  }
  return big_trim(c);
}

/* a mod 2^(32k): the low k limbs, as a new number */
static big *big_low(const big *a, uint32_t k) {
  uint32_t n = a->n < k ? a->n : k;
  big *c = big_new(n);
  memcpy(c->d, a->d, (size_t)n * sizeof(uint32_t));
  return big_trim(c);
}

int main(int argc, char **argv) {
  double scale = bench_scale(argc, argv);
  long steps = bench_scaled(8000000, scale, 100);
  enum { POOL = 256 };
  bench_rng r = bench_rng_make(11);
  big *pool[POOL];
  for (int i = 0; i < POOL; ++i) pool[i] = big_random(&r, 1 + (uint32_t)bench_rng_below(&r, 16));
  uint64_t checksum = 0;

  double t0 = bench_now();
  for (long s = 0; s < steps; ++s) {
    const big *x = pool[bench_rng_below(&r, POOL)];
    const big *y = pool[bench_rng_below(&r, POOL)];
    const big *z = pool[bench_rng_below(&r, POOL)];
    big *p = big_mul(x, y);
    big *q = big_add(p, z);
    free(p);
    /* keep numbers between 1 and 40 limbs, mostly small */
    uint32_t keep = 1 + (uint32_t)bench_rng_below(&r, 1 + bench_rng_below(&r, 40));
    big *v = big_low(q, keep);
    free(q);
    checksum = checksum * 31 + v->d[0] + v->n;
    size_t slot = bench_rng_below(&r, POOL);
    free(pool[slot]);
    pool[slot] = v;
  }
  double t1 = bench_now();

  for (int i = 0; i < POOL; ++i) free(pool[i]);
  bench_report("bignum", 1, t1 - t0, checksum, NULL);
  return 0;
}
