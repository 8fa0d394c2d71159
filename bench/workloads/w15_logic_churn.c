/* w15_logic_churn: single-thread small-object churn of a logic minimiser
 * (espresso-like).
 *
 * Models: two-level logic minimisation over covers of cubes. A cube is a bit
 * vector of 2 bits per input variable (01 = 0, 10 = 1, 11 = don't care), so
 * its size follows the problem's variable count (16 - 40 bytes here); a cover
 * is a growable array of cube pointers (realloc by doubling, 64 B - a few
 * KiB). Each problem builds a random cover, then repeats passes of
 *   - recursive Shannon cofactoring (split on a variable, copy the matching
 *     cubes into two sub-covers, recurse, free the sub-covers on return): a
 *     storm of short-lived cubes and cover arrays of mixed sizes;
 *   - expansion: merge cube pairs at distance 1 into a new cover that
 *     replaces the old one (the survivors live one pass);
 * and keeps the last few results (cover plus a label string) alive across
 * problems. What it stresses: the single-thread small-object fast path with
 * mixed size classes, realloc of small arrays, and the footprint of a heap
 * whose live set is small but turns over all the time. Threads: 1.
 */
#include "common.h"

typedef struct {
  int n, cap;
  uint64_t** c;
} cover;

static int g_words; /* words per cube of the current problem */
static int g_vars;

static uint64_t* cube_new(void) {
  size_t n = (size_t)g_words * sizeof(uint64_t);
  return (uint64_t*)bench_check(malloc(n), n);
}

static uint64_t* cube_copy(const uint64_t* c) {
  uint64_t* d = cube_new();
  memcpy(d, c, (size_t)g_words * sizeof(uint64_t));
  return d;
}

static cover* cover_new(int cap) {
  cover* f = (cover*)bench_check(malloc(sizeof(cover)), sizeof(cover));
  f->n = 0;
  f->cap = cap;
  f->c = (uint64_t**)bench_check(malloc((size_t)cap * sizeof(uint64_t*)),
                                 (size_t)cap * sizeof(uint64_t*));
  return f;
}

static void cover_add(cover* f, uint64_t* c) {
  if (f->n == f->cap) {
    f->cap *= 2;
    f->c = (uint64_t**)bench_check(realloc(f->c, (size_t)f->cap * sizeof(uint64_t*)),
                                   (size_t)f->cap * sizeof(uint64_t*));
  }
  f->c[f->n++] = c;
}

static void cover_free(cover* f) {
  for (int i = 0; i < f->n; ++i) free(f->c[i]);
  free(f->c);
  free(f);
}

static unsigned lit(const uint64_t* c, int v) {
  return (unsigned)(c[v / 32] >> (2 * (v % 32))) & 3u;
}

static void set_lit(uint64_t* c, int v, unsigned b) {
  int s = 2 * (v % 32);
  c[v / 32] = (c[v / 32] & ~(3ull << s)) | ((uint64_t)b << s);
}

static uint64_t* random_cube(bench_rng* r) {
  uint64_t* c = cube_new();
  for (int v = 0; v < g_words * 32; ++v) {
    unsigned b = 3;
    if (v < g_vars) {
      uint64_t x = bench_rng_below(r, 8);
      b = x < 2 ? 1 : x < 4 ? 2 : 3; /* a quarter each 0 / 1, half don't care */
    }
    set_lit(c, v, b);
  }
  return c;
}

/* Cubes of f that agree with variable v = val, with v made don't care. */
static cover* cofactor(const cover* f, int v, unsigned val) {
  cover* g = cover_new(4);
  for (int i = 0; i < f->n; ++i) {
    if (!(lit(f->c[i], v) & val)) continue;
    uint64_t* c = cube_copy(f->c[i]);
    set_lit(c, v, 3);
    cover_add(g, c);
  }
  return g;
}

/* Recursive split; returns a digest of the leaves (the "answer"). */
static uint64_t split(const cover* f, int depth, bench_rng* r) {
  if (f->n <= 3 || depth == 7) {
    uint64_t h = (uint64_t)f->n;
    for (int i = 0; i < f->n; ++i) h = h * 0x9E3779B97F4A7C15ull + f->c[i][0];
    return h;
  }
  int v = (int)bench_rng_below(r, (uint64_t)g_vars);
  cover *lo = cofactor(f, v, 1), *hi = cofactor(f, v, 2);
  uint64_t h = split(lo, depth + 1, r) ^ (split(hi, depth + 1, r) << 1);
  cover_free(lo);
  cover_free(hi);
  return h;
}

/* Number of variables where a and b conflict (one 0, the other 1). */
static int distance(const uint64_t* a, const uint64_t* b) {
  int d = 0;
  for (int w = 0; w < g_words; ++w) {
    uint64_t x = a[w] & b[w];
    /* a variable conflicts when its two bits are 00 after the AND */
    uint64_t empty = ~(x | (x >> 1)) & 0x5555555555555555ull;
    d += __builtin_popcountll(empty);
  }
  return d;
}

/* One expansion pass: f's cubes merged pairwise where possible. */
static cover* expand(cover* f, bench_rng* r) {
  cover* g = cover_new(16);
  for (int i = 0; i < f->n; ++i) {
    const uint64_t* a = f->c[i];
    const uint64_t* b = f->c[bench_rng_below(r, (uint64_t)f->n)];
    uint64_t* t = cube_new(); /* a temporary: the consensus candidate */
    for (int w = 0; w < g_words; ++w) t[w] = a[w] | b[w];
    if (distance(a, b) == 1 || bench_rng_below(r, 4) != 0) {
      cover_add(g, t); /* kept for the next pass */
    } else {
      free(t);
      cover_add(g, cube_copy(a));
    }
  }
  /* drop a few cubes as redundant, add a few fresh ones (irredundant/reduce) */
  int drop = g->n / 8;
  for (int k = 0; k < drop && g->n > 1; ++k) {
    int i = (int)bench_rng_below(r, (uint64_t)g->n);
    free(g->c[i]);
    g->c[i] = g->c[--g->n];
  }
  for (int k = 0; k < drop; ++k) cover_add(g, random_cube(r));
  cover_free(f);
  return g;
}

enum { KEEP = 8 };

int main(int argc, char** argv) {
  double scale = bench_scale(argc, argv);
  long problems = bench_scaled(400, scale, 4);
  bench_rng r = bench_rng_make(15);
  cover* kept[KEEP] = {0};
  char* label[KEEP] = {0};
  uint64_t checksum = 0;

  double t0 = bench_now();
  for (long p = 0; p < problems; ++p) {
    g_vars = 16 + (int)bench_rng_below(&r, 145); /* 16 - 160 variables: 1 - 5 words */
    g_words = (g_vars + 31) / 32;
    int m = 150 + (int)bench_rng_below(&r, 400);
    cover* f = cover_new(8);
    for (int i = 0; i < m; ++i) cover_add(f, random_cube(&r));
    for (int pass = 0; pass < 6; ++pass) {
      checksum += split(f, 0, &r);
      f = expand(f, &r);
    }
    /* keep the result alive for a while, with a name */
    int k = (int)(p % KEEP);
    if (kept[k]) {
      /* the stored cover's cubes have that problem's size; sizes do not matter to free */
      cover_free(kept[k]);
      free(label[k]);
    }
    kept[k] = f;
    size_t ln = 8 + bench_rng_below(&r, 56);
    label[k] = (char*)bench_check(malloc(ln), ln);
    snprintf(label[k], ln, "p%ld.v%d.m%d", p, g_vars, f->n);
    checksum += (uint64_t)f->n + (uint64_t)label[k][1];
  }
  for (int k = 0; k < KEEP; ++k)
    if (kept[k]) {
      cover_free(kept[k]);
      free(label[k]);
    }
  double t1 = bench_now();

  char extra[64];
  snprintf(extra, sizeof extra, " problems=%ld", problems);
  bench_report("logic_churn", 1, t1 - t0, checksum, extra);
  return 0;
}
