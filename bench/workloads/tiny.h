/* The tiny-program shape shared by w19_tiny and w20_tiny_mt.
 *
 * Models: the many small programs a system runs all the time (command-line
 * tools, scripts' helpers, short-lived daemons' children): a few hundred
 * small allocations live at once (argument copies, a little table of
 * strings, a short list), redone over and over. The live heap stays under
 * 64 KiB, so the peak RSS is mostly the allocator's own fixed footprint:
 * metadata, per-thread caches, memory reserved and touched up front. The
 * work is repeated enough for time_s to be measurable, but RSS is the
 * figure this shape is about. TINY_THREADS threads do the work (fixed:
 * 1 and 4; BENCH_THREADS overrides).
 */
#ifndef BOP_BENCH_TINY_H
#define BOP_BENCH_TINY_H

#include <pthread.h>

#include "common.h"

enum { TINY_ITEMS = 300 };

typedef struct tiny_node {
  struct tiny_node* next;
  char* text;
} tiny_node;

typedef struct {
  int id;
  long rounds;
  uint64_t checksum;
} tiny_task;

static void* tiny_work(void* arg) {
  tiny_task* t = (tiny_task*)arg;
  bench_rng r = bench_rng_make(190 + (uint64_t)t->id);
  uint64_t sum = 0;
  for (long k = 0; k < t->rounds; ++k) {
    /* a list of short strings and a pointer table, then all freed */
    tiny_node* head = NULL;
    char** table = (char**)bench_check(malloc(TINY_ITEMS * sizeof(char*)), 1);
    for (int i = 0; i < TINY_ITEMS; ++i) {
      size_t n = bench_rng_logsize(&r, 8, 160);
      tiny_node* nd = (tiny_node*)bench_check(malloc(sizeof(tiny_node)), sizeof(tiny_node));
      nd->text = (char*)bench_check(malloc(n), n);
      memset(nd->text, 'a' + i % 26, n - 1);
      nd->text[n - 1] = 0;
      nd->next = head;
      head = nd;
      table[i] = nd->text;
    }
    sum += strlen(table[bench_rng_below(&r, TINY_ITEMS)]);
    free(table);
    while (head) {
      tiny_node* nx = head->next;
      free(head->text);
      free(head);
      head = nx;
    }
  }
  t->checksum = sum;
  return NULL;
}

static int tiny_main(int argc, char** argv, const char* name) {
  double scale = bench_scale(argc, argv);
  const char* e = getenv("BENCH_THREADS");
  int nt = e && atoi(e) > 0 ? atoi(e) : TINY_THREADS;
  long rounds = bench_scaled(20000, scale, 10) / nt;
  tiny_task ts[64];
  if (nt > 64) nt = 64;
  double t0 = bench_now();
  uint64_t checksum = 0;
  if (nt == 1) {
    ts[0].id = 0;
    ts[0].rounds = rounds;
    tiny_work(&ts[0]);
    checksum = ts[0].checksum;
  } else {
    pthread_t th[64];
    for (int i = 0; i < nt; ++i) {
      ts[i].id = i;
      ts[i].rounds = rounds;
      pthread_create(&th[i], NULL, tiny_work, &ts[i]);
    }
    for (int i = 0; i < nt; ++i) {
      pthread_join(th[i], NULL);
      checksum += ts[i].checksum;
    }
  }
  double t1 = bench_now();
  bench_report(name, nt, t1 - t0, checksum, NULL);
  return 0;
}

#endif
