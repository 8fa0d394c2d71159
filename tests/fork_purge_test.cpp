// fork_purge_test: the child of a fork() taken while other threads acquire and
// release pages must keep a working purger.  Two threads churn medium blocks
// (their pages come and go under the heap's page lock); the main thread forks
// again and again.  Each child allocates enough to start its own purger, lets
// it run rounds (BOP_PURGE_DELAY_MS is short here), then forks a grandchild:
// fork's prepare handler needs the purger's round lock, so a purger stuck on a
// page lock inherited locked (held by a thread that does not exist in the
// child) hangs the child, and the parent reports it.  Exit status 0: no child
// hung.  Linked with bop::override, so malloc is bop's.
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

std::atomic<bool> g_stop{false};

void* churn(void* arg) {
  unsigned r = static_cast<unsigned>(reinterpret_cast<std::size_t>(arg));
  void* keep[8] = {};
  while (!g_stop.load(std::memory_order_relaxed)) {
    r = r * 1103515245u + 12345u;
    unsigned i = (r >> 16) % 8;
    std::free(keep[i]);
    keep[i] = std::malloc(9000 + (r >> 8) % 120000);  // medium blocks: pages come and go
    std::memset(keep[i], 1, 64);
  }
  for (void* p : keep) std::free(p);
  return nullptr;
}

[[noreturn]] void child_work() {
  // Enough slow-path calls of mixed sizes to start the child's purger.
  static void* blocks[4000];
  for (int j = 0; j < 4000; ++j) blocks[j] = std::malloc(16 + (j * 37) % 60000);
  for (void* p : blocks) std::free(p);
  // Let it run rounds over every heap, the orphaned ones included.
  for (int j = 0; j < 20; ++j) {
    void* p = std::malloc(100000);
    std::memset(p, 2, 100000);
    std::free(p);
    usleep(10000);
  }
  pid_t grandchild = fork();
  if (grandchild == 0) _exit(0);
  int status = 0;
  if (grandchild > 0) waitpid(grandchild, &status, 0);
  _exit(grandchild > 0 ? 0 : 2);
}

// Waits up to `ms` for pid; kills it if it has not exited.  True if it exited 0.
bool exited_in_time(pid_t pid, int ms) {
  int status = 0;
  for (int waited = 0; waited < ms; waited += 10) {
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    usleep(10000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return false;
}

}  // namespace

int main() {
  pthread_t threads[2];
  for (int i = 0; i < 2; ++i)
    pthread_create(&threads[i], nullptr, churn, reinterpret_cast<void*>(std::size_t(i) + 1));
  int failures = 0;
  for (int k = 0; k < 20 && failures == 0; ++k) {
    usleep(20000);
    pid_t child = fork();
    if (child == 0) child_work();
    if (child < 0 || !exited_in_time(child, 10000)) {
      std::fprintf(stderr, "fork_purge_test: child %d hung or failed (deadlock after fork?)\n", k);
      ++failures;
    }
  }
  g_stop.store(true);
  for (pthread_t t : threads) pthread_join(t, nullptr);
  std::printf("fork_purge_test: %s\n", failures == 0 ? "ok" : "FAILED");
  return failures == 0 ? 0 : 1;
}
