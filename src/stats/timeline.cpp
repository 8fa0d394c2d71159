#include "stats/timeline.hpp"

#include <cstdint>

#include "core/options.hpp"
#include "core/purger.hpp"
#include "platform/os.hpp"
#include "platform/spin_lock.hpp"
#include "stats/process_counters.hpp"

namespace bop::stats {
namespace {

struct Point {
  std::uint64_t t_ms;  // since the timeline started
  std::uint64_t current, peak, resident, allocations;
};

// When the table fills up, every other point is dropped and the period
// doubles, so a long run keeps its whole history at a coarser grain.
constexpr std::size_t kMaxPoints = 4096;
Point* g_points = nullptr;
std::size_t g_count = 0;
std::uint32_t g_keep_every = 1;  // record one tick in this many
std::uint32_t g_skipped = 0;
std::uint64_t g_start_ms = 0;
SpinLock g_lock;  // the purger appends, the report reads

void add_point() noexcept {
  AllocationStats s = process_snapshot();
  Point p = {os::now_ms() - g_start_ms, s.current_memory, s.peak_memory, os::resident_bytes(),
             s.allocations};
  LockGuard guard(g_lock);
  if (g_count == kMaxPoints) {
    for (std::size_t i = 0; i < kMaxPoints / 2; ++i) g_points[i] = g_points[2 * i];
    g_count = kMaxPoints / 2;
    g_keep_every *= 2;
  }
  if (g_count != 0 && g_points[g_count - 1].t_ms == p.t_ms) --g_count;  // one point per ms
  g_points[g_count++] = p;
}

void tick() noexcept {
  if (++g_skipped < g_keep_every) return;
  g_skipped = 0;
  add_point();
}

}  // namespace

void timeline_start() noexcept {
  std::uint32_t interval = core::g_options.stats_interval_ms;
  if (interval == 0 || g_points != nullptr) return;
  g_points = static_cast<Point*>(os::map_aligned(kMaxPoints * sizeof(Point), os::kPageSize));
  if (g_points == nullptr) return;
  g_start_ms = os::now_ms();
  core::g_purger_tick_ms = interval;
  core::g_purger_tick = tick;
  core::purger_maybe_start();
}

void timeline_fork(ForkPhase phase) noexcept {
  g_lock.on_fork(phase);
}

void write_timeline(TextWriter& w) noexcept {
  if (g_points == nullptr) return;
  add_point();  // the timeline ends with the report
  LockGuard guard(g_lock);
  w.put(",\"timeline\":{\"interval_ms\":")
      .put_u64(core::g_options.stats_interval_ms * g_keep_every);
  w.put(",\"points\":[");
  for (std::size_t i = 0; i < g_count; ++i) {
    const Point& p = g_points[i];
    // Allocation rate over the step that ends at this point.
    std::uint64_t dt = i == 0 ? p.t_ms : p.t_ms - g_points[i - 1].t_ms;
    std::uint64_t before = i == 0 ? 0 : g_points[i - 1].allocations;
    std::uint64_t da = p.allocations > before ? p.allocations - before : 0;  // 0 across a reset
    w.put(i == 0 ? "{" : ",{").put("\"t_ms\":").put_u64(p.t_ms);
    w.put(",\"current_memory\":").put_u64(p.current);
    w.put(",\"peak_memory\":").put_u64(p.peak);
    w.put(",\"resident_bytes\":").put_u64(p.resident);
    w.put(",\"allocations\":").put_u64(p.allocations);
    w.put(",\"allocations_per_second\":").put_u64(dt == 0 ? 0 : da * 1000 / dt).put("}");
  }
  w.put("]}");
}

}  // namespace bop::stats
