/* w02_server: a multi-threaded request server (larson style).
 *
 * Models: a web or RPC server with a pool of worker threads (nginx modules,
 * memcached, an application server). Each worker keeps long-lived per-
 * connection session objects that are replaced now and then, and for every
 * request allocates short-lived pieces (headers, a body, response chunks) that
 * die when the request ends. All workers share a cache whose entries live long
 * and are usually evicted -- freed -- by a different thread than the one that
 * inserted them. Threads: 2 per CPU.
 */
#include <pthread.h>

#include "common.h"

enum { SESSIONS = 1500, CACHE_SLOTS = 8192, CACHE_LOCKS = 64, MAX_PIECES = 48 };

typedef struct {
  size_t size;
  unsigned char data[];
} blob;

static blob *blob_new(bench_rng *r, size_t lo, size_t hi) {
  size_t n = bench_rng_logsize(r, lo, hi);
  blob *b = (blob *)bench_check(malloc(sizeof(blob) + n), sizeof(blob) + n);
  b->size = n;
  memset(b->data, (int)(n & 0xff), n < 64 ? n : 64);
  b->data[n - 1] = 1;
  return b;
}

static uint64_t blob_sum(const blob *b) { return b->size + b->data[0] + b->data[b->size - 1]; }

static blob *cache[CACHE_SLOTS];
static pthread_mutex_t cache_lock[CACHE_LOCKS];
static long requests_per_thread;

typedef struct {
  int id;
  uint64_t checksum;
} worker;

static void *serve(void *arg) {
  worker *w = (worker *)arg;
  bench_rng r = bench_rng_make(1000 + (uint64_t)w->id);
  blob **sessions = (blob **)bench_check(calloc(SESSIONS, sizeof(blob *)), SESSIONS);
  for (int i = 0; i < SESSIONS; ++i) sessions[i] = blob_new(&r, 64, 1024);
  uint64_t sum = 0;
  blob *pieces[MAX_PIECES];

  for (long q = 0; q < requests_per_thread; ++q) {
    /* the connection this request came on; sometimes it is new */
    size_t s = bench_rng_below(&r, SESSIONS);
    if (bench_rng_below(&r, 16) == 0) {
      free(sessions[s]);
      sessions[s] = blob_new(&r, 64, 1024);
    }
    sum += blob_sum(sessions[s]);

    /* parse: headers and a body */
    int np = 0;
    int headers = 4 + (int)bench_rng_below(&r, 17);
    for (int i = 0; i < headers; ++i) pieces[np++] = blob_new(&r, 16, 128);
    pieces[np++] = blob_new(&r, 256, 16384);

    /* consult the shared cache; one request in four refreshes an entry */
    size_t slot = bench_rng_below(&r, CACHE_SLOTS);
    pthread_mutex_t *lk = &cache_lock[slot % CACHE_LOCKS];
    if (bench_rng_below(&r, 4) == 0) {
      blob *fresh = blob_new(&r, 32, 4096);
      pthread_mutex_lock(lk);
      blob *old = cache[slot];
      cache[slot] = fresh;
      pthread_mutex_unlock(lk);
      free(old); /* usually allocated by another worker */
    } else {
      pthread_mutex_lock(lk);
      if (cache[slot]) sum += blob_sum(cache[slot]);
      pthread_mutex_unlock(lk);
    }

    /* respond: a few chunks, then the request's memory dies */
    int chunks = 1 + (int)bench_rng_below(&r, 8);
    for (int i = 0; i < chunks && np < MAX_PIECES; ++i) pieces[np++] = blob_new(&r, 64, 2048);
    for (int i = 0; i < np; ++i) {
      sum += blob_sum(pieces[i]);
      free(pieces[i]);
    }
  }
  for (int i = 0; i < SESSIONS; ++i) free(sessions[i]);
  free(sessions);
  w->checksum = sum;
  return NULL;
}

int main(int argc, char **argv) {
  double scale = bench_scale(argc, argv);
  int nt = bench_threads(2, 2);
  requests_per_thread = bench_scaled(2400000, scale, 100) / nt;
  for (int i = 0; i < CACHE_LOCKS; ++i) pthread_mutex_init(&cache_lock[i], NULL);

  double t0 = bench_now();
  pthread_t *th = (pthread_t *)malloc(sizeof(pthread_t) * (size_t)nt);
  worker *ws = (worker *)calloc((size_t)nt, sizeof(worker));
  for (int i = 0; i < nt; ++i) {
    ws[i].id = i;
    pthread_create(&th[i], NULL, serve, &ws[i]);
  }
  uint64_t checksum = 0;
  for (int i = 0; i < nt; ++i) {
    pthread_join(th[i], NULL);
    checksum += ws[i].checksum;
  }
  for (int i = 0; i < CACHE_SLOTS; ++i) free(cache[i]);
  double t1 = bench_now();

  char extra[64];
  snprintf(extra, sizeof extra, " requests=%ld", requests_per_thread * nt);
  bench_report("server", nt, t1 - t0, checksum, extra);
  free(th);
  free(ws);
  return 0;
}
