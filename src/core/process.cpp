#include "core/process.hpp"

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <iterator>

#include "core/hardening.hpp"
#include "core/heap.hpp"
#include "core/huge.hpp"
#include "core/options.hpp"
#include "core/purger.hpp"
#include "core/segment.hpp"
#include "platform/fatal.hpp"
#include "platform/os.hpp"

namespace bop::core {

#if BOP_CHECKED
std::uintptr_t g_link_key = 0;
#endif
Options g_options;
std::size_t g_direct_limit = 0;

namespace {

enum : int { kUninitialized, kInitializing, kReady };
std::atomic<int> g_state{kUninitialized};
thread_local bool tl_initializing __attribute__((tls_model("initial-exec"))) = false;

void (*g_fork_hook)(ForkPhase) noexcept = nullptr;

// Locks are taken in one order (the layer above's, purger round, heap pool
// and every heap's page lock, segment cache, huge cache, the checked build's
// leaves) so the child of fork() finds none of them held mid-update: each
// layer's fork part in that order, prepare walking it forwards, parent and
// child backwards.  (The checked leaves exist, unused, in default builds.)
void hook_fork_part(ForkPhase phase) noexcept {
  if (g_fork_hook != nullptr) g_fork_hook(phase);
}
constexpr void (*kForkParts[])(ForkPhase) noexcept = {hook_fork_part, purger_fork, heap_fork,
                                                      segment_fork,   huge_fork,   checked_fork};

void fork_prepare() {
  for (auto part : kForkParts) part(ForkPhase::kPrepare);
}
void fork_parent() {
  for (std::size_t i = std::size(kForkParts); i-- > 0;) kForkParts[i](ForkPhase::kParent);
}
void fork_child() {
  for (std::size_t i = std::size(kForkParts); i-- > 0;) kForkParts[i](ForkPhase::kChild);
}

// Parses a decimal environment variable; getenv does not allocate.
bool env_number(const char* name, std::uint64_t& out) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return false;
  std::uint64_t value = 0;
  for (; *text != '\0'; ++text) {
    if (*text < '0' || *text > '9') return false;
    value = value * 10 + static_cast<std::uint64_t>(*text - '0');
  }
  out = value;
  return true;
}

// Copies an environment variable into `out` (left empty if unset or too long).
template <std::size_t N>
void env_path(const char* name, char (&out)[N]) {
  const char* text = std::getenv(name);
  std::size_t n = 0;
  if (text == nullptr) return;
  while (n < N && text[n] != '\0') ++n;
  if (n == N) return;
  for (std::size_t i = 0; i <= n; ++i) out[i] = text[i];
}

void read_options() {
  std::uint64_t value;
  if (env_number("BOP_PURGE_DELAY_MS", value)) {
    g_purge_delay_ms = static_cast<std::uint32_t>(value > 3600000 ? 3600000 : value);
  }
  if (env_number("BOP_SAMPLE_BYTES", value) && value > 0) g_options.sample_bytes = value;
  if (env_number("BOP_PURGE_THREAD", value)) g_purge_thread_enabled = value != 0;
  if (env_number("BOP_STATS_INTERVAL_MS", value))
    g_options.stats_interval_ms = static_cast<std::uint32_t>(value > 3600000 ? 3600000 : value);
  if (env_number("BOP_PROFILE_ALL", value)) g_options.profile_all = value != 0;
  env_path("BOP_STATS_FILE", g_options.stats_file);
  env_path("BOP_PROFILE", g_options.profile_file);
  g_options.stats_mode = StatsMode::kOff;
  if (const char* stats = std::getenv("BOP_STATS")) {
    if (stats[0] == 'j' || stats[0] == 'J')
      g_options.stats_mode = StatsMode::kJson;
    else if (stats[0] != '\0' && stats[0] != '0')
      g_options.stats_mode = StatsMode::kText;
  }
}

}  // namespace

void process_set_fork_hook(void (*hook)(ForkPhase) noexcept) noexcept {
  g_fork_hook = hook;
}

void process_init() noexcept {
  if (g_state.load(std::memory_order_acquire) == kReady || tl_initializing) return;
  int expected = kUninitialized;
  if (!g_state.compare_exchange_strong(expected, kInitializing, std::memory_order_acq_rel)) {
    while (g_state.load(std::memory_order_acquire) != kReady) sched_yield();
    return;
  }
  tl_initializing = true;
  if (os::os_page_size() != os::kPageSize) fatal("unsupported OS page size (bop needs 4 KiB)");
#if BOP_CHECKED
  g_link_key = os::random_u64();
#endif
  read_options();
  if (g_options.stats_mode == StatsMode::kOff) g_direct_limit = kDirectMax + 1;
  process_init_thread_exit_key();
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  tl_initializing = false;
  g_state.store(kReady, std::memory_order_release);
}

}  // namespace bop::core
