#include "stats/process_stats.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "core/process.hpp"
#include "platform/os.hpp"
#include "platform/text_writer.hpp"
#include "stats/leak_sampler.hpp"
#include "stats/process_counters.hpp"
#include "stats/timeline.hpp"

namespace bop::stats {
namespace {

using core::kClassCount;
using core::kClassSize;
using detail::kStatsShards;

std::uint64_t g_start_ms = 0;

// Opens `pattern` for writing, "%p" replaced by the process id; -1 on failure.
int open_report_file(const char* pattern) {
  char path[sizeof core::g_options.stats_file + 32];
  std::size_t n = 0;
  for (const char* c = pattern; *c != '\0' && n + 24 < sizeof path; ++c) {
    if (c[0] == '%' && c[1] == 'p') {
      char digits[24];
      unsigned d = 0;
      for (auto pid = static_cast<std::uint64_t>(getpid()); d == 0 || pid != 0; pid /= 10)
        digits[d++] = static_cast<char>('0' + pid % 10);
      while (d > 0) path[n++] = digits[--d];
      ++c;
    } else {
      path[n++] = *c;
    }
  }
  path[n] = '\0';
  return ::open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

// At exit: the report to BOP_STATS_FILE (else stderr) and the profile to
// BOP_PROFILE.  Runs in each process, so "%p" gives a fork or an exec'd
// child (which reads the environment again) a file of its own.
void at_exit_report() {
  bool json = core::g_options.stats_mode == core::StatsMode::kJson;
  int fd = STDERR_FILENO;
  if (core::g_options.stats_file[0] != '\0') {
    fd = open_report_file(core::g_options.stats_file);
    if (fd < 0) {
      TextWriter(STDERR_FILENO).put("bop: cannot open BOP_STATS_FILE, report on stderr\n");
      fd = STDERR_FILENO;
    }
  }
  write_report(fd, json);
  if (fd != STDERR_FILENO) ::close(fd);
  if (core::g_options.profile_file[0] != '\0') {
    int profile = open_report_file(core::g_options.profile_file);
    if (profile < 0) {
      TextWriter(STDERR_FILENO).put("bop: cannot open BOP_PROFILE\n");
      return;
    }
    {
      TextWriter w(profile);
      write_profile(w);
    }
    ::close(profile);
  }
}

// The stats layer's fork handler (core::process_set_fork_hook).  Without it
// a thread holding the sample table's lock at fork time left the child hung
// at its next sample.  One lock order, the order code nests them in: a
// snapshot reads the shared shard; sampling happens under the shared
// shard's lock (threads without a heap) and never the other way round; the
// timeline takes a snapshot before its own lock.
void stats_fork(ForkPhase phase) noexcept {
  if (phase == ForkPhase::kPrepare) {
    counters_fork(phase);
    timeline_fork(phase);
    leak_sampler_fork(phase);
  } else {
    leak_sampler_fork(phase);
    timeline_fork(phase);
    counters_fork(phase);
  }
}

// Runs with the library's constructors; allocations before it are already
// counted (the mode is read on the first allocation).
__attribute__((constructor)) void start_process_stats() {
  core::process_init();
  g_start_ms = os::now_ms();
  if (core::g_options.stats_mode == core::StatsMode::kOff) return;
  core::process_set_fork_hook(stats_fork);
  std::atexit(at_exit_report);
  timeline_start();
}

void text_row(TextWriter& w, const char* label, std::uint64_t value, const char* unit = "") {
  w.put("  ").put(label);
  w.put_u64(value, 16).put(unit).put_char('\n');
}
// Bytes in human units (the JSON report has them exact).
void bytes_row(TextWriter& w, const char* label, std::uint64_t bytes) {
  w.put("  ").put(label).put_bytes(bytes, 16).put_char('\n');
}

}  // namespace

// The counted entry points: the core's inline fast path, then the inline
// counting path of process_counters.hpp (a histogram `add` and a countdown
// in the thread's shard), in one function body.  No "stats on?"
// test of their own: the fast case implies a real heap, hence the
// environment read (process_counters.hpp).
template <bool kZero>
void* counted_alloc(std::size_t size) noexcept {
  return counted_alloc_block<kZero>(size);
}
template void* counted_alloc<false>(std::size_t) noexcept;
template void* counted_alloc<true>(std::size_t) noexcept;

template <bool kZero>
void* counted_alloc_aligned(std::size_t alignment, std::size_t size) noexcept {
  if (core::g_options.stats_mode == core::StatsMode::kUnknown) core::process_init();
  void* p = core::alloc_aligned<kZero>(alignment, size);
  return p != nullptr && counting() ? record_alloc(p) : p;
}
template void* counted_alloc_aligned<false>(std::size_t, std::size_t) noexcept;
template void* counted_alloc_aligned<true>(std::size_t, std::size_t) noexcept;

void counted_free(void* p) noexcept {
  if (p == nullptr) return;
  return counted_free_block(p);
}

namespace {

// Does block p's page (or huge mapping) hold any leak sample?  One load:
// most reallocs need no more of the sampler.
bool page_holds_samples(const void* p) {
  core::Segment* seg = core::segment_of(p);
  const std::atomic<std::uint32_t>& word =
      seg->kind == core::SegmentKind::kHuge ? seg->huge_sampled : seg->page_of(p)->sampled;
  return word.load(std::memory_order_relaxed) != 0;
}

}  // namespace

void* counted_resize(void* p, std::size_t size, std::size_t alignment) noexcept {
  if (p == nullptr)
    return alignment == 0 ? counted_alloc<false>(size)
                          : counted_alloc_aligned<false>(alignment, size);
  if (!counting()) return core::reallocate(p, size, alignment);
  std::size_t old_usable = core::usable_size(p);
  LeakSample sample;
  bool sampled = page_holds_samples(p) && leak_sampler_take(p, sample);
  void* q = core::reallocate(p, size, alignment);
  if (q != nullptr) record_resize(old_usable, q);
  if (sampled) leak_sampler_put_back(sample, q != nullptr ? q : p);
  return q;
}

void write_report(int fd, bool json) noexcept {
  AllocationStats s = process_snapshot();
  std::uint64_t elapsed_ms = os::now_ms() - g_start_ms;
  std::uint64_t per_second = elapsed_ms == 0 ? s.allocations : s.allocations * 1000 / elapsed_ms;
  std::uint64_t average = s.allocations == 0 ? 0 : s.bytes_allocated / s.allocations;
  std::size_t mapped = os::mapped_bytes(), resident = os::resident_bytes();
  TextWriter w(fd);
  if (json) {
    w.put("{\"bop_stats\":{\"allocations\":").put_u64(s.allocations);
    w.put(",\"deallocations\":").put_u64(s.deallocations);
    w.put(",\"bytes_allocated\":").put_u64(s.bytes_allocated);
    w.put(",\"bytes_deallocated\":").put_u64(s.bytes_deallocated);
    w.put(",\"peak_memory\":").put_u64(s.peak_memory);
    w.put(",\"current_memory\":").put_u64(s.current_memory);
    w.put(",\"outstanding_allocations\":").put_u64(s.outstanding_allocations());
    w.put(",\"average_allocation_size\":").put_u64(average);
    w.put(",\"allocations_per_second\":").put_u64(per_second);
    w.put(",\"elapsed_ms\":").put_u64(elapsed_ms);
    w.put(",\"mapped_bytes\":").put_u64(mapped);
    w.put(",\"resident_bytes\":").put_u64(resident);
    w.put(",\"size_classes\":[");
    bool first = true;
    for (unsigned c = 0; c <= kClassCount; ++c) {
      std::uint64_t n = bucket_total(c);
      if (n == 0) continue;
      w.put(first ? "" : ",").put("{\"size\":");
      if (c == kClassCount)
        w.put("\"huge\"");
      else
        w.put_u64(kClassSize[c]);
      w.put(",\"allocations\":").put_u64(n).put("}");
      first = false;
    }
    w.put("],\"leaks\":");
    write_leaks(w, true);
    write_timeline(w);
    w.put("}}\n");
    return;
  }
  w.put("bop: memory report (sizes are block sizes, as malloc_usable_size reports)\n");
  text_row(w, "allocations        ", s.allocations);
  text_row(w, "deallocations      ", s.deallocations);
  text_row(w, "outstanding        ", s.outstanding_allocations(), " blocks");
  bytes_row(w, "bytes allocated    ", s.bytes_allocated);
  bytes_row(w, "bytes deallocated  ", s.bytes_deallocated);
  bytes_row(w, "current memory     ", s.current_memory);
  bytes_row(w, "peak memory        ", s.peak_memory);
  bytes_row(w, "average size       ", average);
  text_row(w, "allocations/second ", per_second);
  bytes_row(w, "mapped by bop      ", mapped);
  bytes_row(w, "process resident   ", resident);
  w.put("  allocations by size class:\n");
  std::uint64_t most = 1;
  for (unsigned c = 0; c <= kClassCount; ++c)
    if (bucket_total(c) > most) most = bucket_total(c);
  for (unsigned c = 0; c <= kClassCount; ++c) {
    std::uint64_t n = bucket_total(c);
    if (n == 0) continue;
    w.put("    ");
    if (c == kClassCount)
      w.put("      huge");
    else
      w.put_bytes(kClassSize[c], 10);
    w.put_u64(n, 12).put_char(' ');
    for (std::uint64_t bar = n * 40 / most; bar > 0; --bar) w.put_char('#');
    w.put_char('\n');
  }
  write_leaks(w, false);
}

}  // namespace bop::stats
