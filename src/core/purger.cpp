#include "core/purger.hpp"

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <atomic>

#include "core/heap.hpp"
#include "core/huge.hpp"
#include "core/segment.hpp"
#include "platform/os.hpp"
#include "platform/spin_lock.hpp"

namespace bop::core {

bool g_purge_thread_enabled = true;
constinit thread_local bool tl_starting_purger __attribute__((tls_model("initial-exec"))) = false;
void (*g_purger_tick)() noexcept = nullptr;
std::uint32_t g_purger_tick_ms = 0;

namespace {

std::atomic<bool> g_started{false};
// Held while the purger works, so fork() never copies a heap's page lock
// taken by it.
SpinLock g_round_lock;

void purge_round() {
  LockGuard guard(g_round_lock);
  std::uint32_t now = clock_ms32(os::now_ms());
  for_each_heap<std::uint32_t>(
      [](Heap* heap, std::uint32_t when) {
        heap_purge(heap, when, false);
        heap->trim_request.store(true, std::memory_order_relaxed);
        // Frees from other threads waiting (perhaps one lone batch, which
        // pokes nobody): send the owner to collect them (remote.hpp).
        if (heap->remote_in.load(std::memory_order_relaxed) != nullptr)
          heap_poke(heap, /*force=*/true);
      },
      now);
  segment_cache_trim(false);
  huge_cache_trim(false);
}

void* purger_main(void*) {
  // Signals are for the program's own threads.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  bool purging = g_purge_thread_enabled && g_purge_delay_ms != 0;
  std::uint32_t delay = g_purge_delay_ms < 10 ? 10 : g_purge_delay_ms;
  // Stats timeline: wake at the shorter of the two periods; purge on every
  // `per_purge`-th wake-up, tick on each wake-up that ends a tick period.
  std::uint32_t tick = g_purger_tick != nullptr ? g_purger_tick_ms : 0;
  std::uint32_t step = tick != 0 && (tick < delay || !purging) ? tick : delay;
  std::uint32_t per_purge = delay / step, wakeups = 0;
  std::uint64_t last_tick = os::now_ms();
  for (;;) {
    struct timespec pause = {static_cast<time_t>(step / 1000),
                             static_cast<long>(step % 1000) * 1000000L};
    nanosleep(&pause, nullptr);
    if (tick != 0) {
      std::uint64_t now = os::now_ms();
      if (now - last_tick + step / 2 >= tick) {  // the half step absorbs clock rounding
        last_tick = now;
        g_purger_tick();
      }
    }
    if (purging && ++wakeups >= per_purge) {
      wakeups = 0;
      purge_round();
    }
  }
  return nullptr;
}

}  // namespace

void purger_maybe_start() noexcept {
  bool wanted = (g_purge_thread_enabled && g_purge_delay_ms != 0) || g_purger_tick != nullptr;
  if (!wanted || g_started.load(std::memory_order_relaxed)) return;
  if (g_started.exchange(true, std::memory_order_acq_rel)) return;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  pthread_t thread;
  tl_starting_purger = true;
  if (pthread_create(&thread, &attr, purger_main, nullptr) == 0)
    pthread_setname_np(thread, "bop-purge");
  tl_starting_purger = false;
  pthread_attr_destroy(&attr);
}

void purger_fork(ForkPhase phase) noexcept {
  g_round_lock.on_fork(phase);
  if (phase == ForkPhase::kChild)
    g_started.store(false, std::memory_order_relaxed);  // the thread did not come along
}

}  // namespace bop::core
