/* w03_prodcons: producer/consumer pipeline; every block is freed remotely.
 *
 * Models: a staged pipeline or message-passing program (a log shipper, a
 * network stack handing packets from the receive thread to workers, an actor
 * runtime). Producers allocate messages (16-512 bytes), fill them and send
 * them in batches through a bounded queue; consumers read and free them. So
 * every block is freed by a thread other than the one that allocated it, and
 * the allocator's remote-free path decides the result. Threads: one producer
 * and one consumer per CPU, each pair joined by its own queue.
 */
#include <pthread.h>

#include "common.h"

enum { BATCH = 64, QCAP = 128 };

typedef struct batch {
  int n;
  void *blocks[BATCH];
} batch;

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t not_empty, not_full;
  batch *ring[QCAP];
  unsigned head, tail; /* head: next to pop; tail: next to push */
  int id;
  long batches;
  uint64_t checksum;
} queue;

static void q_push(queue *q, batch *b) {
  pthread_mutex_lock(&q->mu);
  while (q->tail - q->head == QCAP) pthread_cond_wait(&q->not_full, &q->mu);
  q->ring[q->tail++ % QCAP] = b;
  pthread_cond_signal(&q->not_empty);
  pthread_mutex_unlock(&q->mu);
}

static batch *q_pop(queue *q) {
  pthread_mutex_lock(&q->mu);
  while (q->tail == q->head) pthread_cond_wait(&q->not_empty, &q->mu);
  batch *b = q->ring[q->head++ % QCAP];
  pthread_cond_signal(&q->not_full);
  pthread_mutex_unlock(&q->mu);
  return b;
}

static void *producer(void *arg) {
  queue *q = (queue *)arg;
  bench_rng r = bench_rng_make(3000 + (uint64_t)q->id);
  for (long i = 0; i < q->batches; ++i) {
    batch *b = (batch *)bench_check(malloc(sizeof(batch)), sizeof(batch));
    b->n = BATCH;
    for (int k = 0; k < BATCH; ++k) {
      size_t n = bench_rng_logsize(&r, 16, 512);
      uint64_t *m = (uint64_t *)bench_check(malloc(n), n);
      m[0] = n;
      m[1] = (uint64_t)i * BATCH + (uint64_t)k;
      b->blocks[k] = m;
    }
    q_push(q, b);
  }
  q_push(q, NULL);
  return NULL;
}

static void *consumer(void *arg) {
  queue *q = (queue *)arg;
  uint64_t sum = 0;
  for (;;) {
    batch *b = q_pop(q);
    if (!b) break;
    for (int k = 0; k < b->n; ++k) {
      uint64_t *m = (uint64_t *)b->blocks[k];
      sum += m[0] ^ m[1];
      free(m);
    }
    free(b);
  }
  q->checksum = sum;
  return NULL;
}

int main(int argc, char **argv) {
  double scale = bench_scale(argc, argv);
  int pairs = bench_threads(1, 1);
  long total_batches = bench_scaled(400000, scale, pairs);

  queue *qs = (queue *)calloc((size_t)pairs, sizeof(queue));
  pthread_t *th = (pthread_t *)malloc(sizeof(pthread_t) * 2 * (size_t)pairs);
  for (int i = 0; i < pairs; ++i) {
    pthread_mutex_init(&qs[i].mu, NULL);
    pthread_cond_init(&qs[i].not_empty, NULL);
    pthread_cond_init(&qs[i].not_full, NULL);
    qs[i].id = i;
    qs[i].batches = total_batches / pairs;
  }

  double t0 = bench_now();
  for (int i = 0; i < pairs; ++i) {
    pthread_create(&th[2 * i], NULL, consumer, &qs[i]);
    pthread_create(&th[2 * i + 1], NULL, producer, &qs[i]);
  }
  uint64_t checksum = 0;
  for (int i = 0; i < 2 * pairs; ++i) pthread_join(th[i], NULL);
  for (int i = 0; i < pairs; ++i) checksum += qs[i].checksum;
  double t1 = bench_now();

  long blocks = (total_batches / pairs) * pairs * BATCH;
  char extra[96];
  snprintf(extra, sizeof extra, " blocks=%ld ns_per_block=%.1f", blocks, (t1 - t0) * 1e9 / (double)blocks);
  bench_report("prodcons", 2 * pairs, t1 - t0, checksum, extra);
  free(qs);
  free(th);
  return 0;
}
