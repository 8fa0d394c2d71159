#include "stats/process_stats.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "core/alloc.hpp"
#include "core/process.hpp"
#include "platform/os.hpp"
#include "platform/text_writer.hpp"
#include "stats/leak_sampler.hpp"
#include "stats/thread_shard.hpp"

namespace bop::stats {
namespace {

using core::kClassCount;
using core::kClassSize;
using detail::kStatsShards;

constinit detail::StatsRecorder g_recorder;

// Allocations per size class, per thread shard (the last bucket: huge blocks).
struct alignas(64) ClassHistogram {
  std::atomic<std::uint64_t> count[kClassCount + 1];
};
constinit ClassHistogram g_histogram[kStatsShards + 1];

std::uint64_t g_start_ms = 0;

bool enabled_now() {
  return core::g_options.stats_mode != core::StatsMode::kOff;
}

// One look at the block: its size class (kClassCount: huge) and usable size.
struct BlockInfo {
  unsigned cls;
  std::size_t usable;
};
BlockInfo block_info(const void* p) {
  core::Segment* seg = core::segment_of(p);
  // Checked builds keep a canary past the usable size: count what
  // malloc_usable_size reports there too.
  bool huge = seg->kind == core::SegmentKind::kHuge;
  unsigned cls = huge ? kClassCount : seg->page_of(p)->size_class;
  if constexpr (core::kChecked) return {cls, core::usable_size(p)};
  return {cls, huge ? seg->block_size : seg->page_of(p)->block_size};
}

void count_class(unsigned shard, unsigned cls) {
  std::atomic<std::uint64_t>& c = g_histogram[shard].count[cls];
  if (shard < kStatsShards) {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);  // one writer
  } else {
    c.fetch_add(1, std::memory_order_relaxed);  // the shared shard
  }
}

std::uint64_t class_total(unsigned cls) {
  std::uint64_t total = 0;
  for (const ClassHistogram& h : g_histogram) total += h.count[cls].load(std::memory_order_relaxed);
  return total;
}

void at_exit_report() {
  write_report(STDERR_FILENO, core::g_options.stats_mode == core::StatsMode::kJson);
}

// Runs with the library's constructors; allocations before it are already
// counted (the mode is read on the first allocation).
__attribute__((constructor)) void start_process_stats() {
  core::process_init();
  g_start_ms = os::now_ms();
  if (core::g_options.stats_mode != core::StatsMode::kOff) std::atexit(at_exit_report);
}

void text_row(TextWriter& w, const char* label, std::uint64_t value, const char* unit = "") {
  w.put("  ").put(label);
  w.put_u64(value, 16).put(unit).put_char('\n');
}

}  // namespace

namespace {

void record_alloc(const void* p) noexcept {
  unsigned shard = detail::stats_thread_shard();
  BlockInfo block = block_info(p);
  g_recorder.on_alloc(block.usable, shard);
  count_class(shard, block.cls);
  leak_sampler_on_alloc(p, block.usable);
}

}  // namespace

void* counted_alloc(std::size_t size, std::size_t alignment, bool zero) noexcept {
  if (core::g_options.stats_mode == core::StatsMode::kUnknown) core::process_init();
  void* p;
  if (alignment == 0)
    p = zero ? core::alloc<true>(size) : core::alloc<false>(size);
  else
    p = zero ? core::alloc_aligned<true>(alignment, size)
             : core::alloc_aligned<false>(alignment, size);
  if (p != nullptr && enabled_now()) record_alloc(p);
  return p;
}

void counted_free(void* p) noexcept {
  if (p == nullptr) return;
  if (enabled_now()) {
    leak_sampler_on_free(p);
    g_recorder.on_dealloc(block_info(p).usable, detail::stats_thread_shard());
  }
  core::dealloc(p);
}

void* counted_resize(void* p, std::size_t size, std::size_t alignment) noexcept {
  if (p == nullptr) return counted_alloc(size, alignment, false);
  if (!enabled_now()) return core::reallocate(p, size, alignment);
  std::size_t old_usable = core::usable_size(p);
  void* q = core::reallocate(p, size, alignment);
  if (q != nullptr) {
    g_recorder.on_resize(old_usable, core::usable_size(q));
    if (q != p) leak_sampler_on_move(p, q);
  }
  return q;
}

void write_report(int fd, bool json) noexcept {
  AllocationStats s = g_recorder.snapshot();
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
      std::uint64_t n = class_total(c);
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
    w.put("}}\n");
    return;
  }
  w.put("bop: memory report (sizes are block sizes, as malloc_usable_size reports)\n");
  text_row(w, "allocations        ", s.allocations);
  text_row(w, "deallocations      ", s.deallocations);
  text_row(w, "outstanding        ", s.outstanding_allocations(), " blocks");
  text_row(w, "bytes allocated    ", s.bytes_allocated, " B");
  text_row(w, "bytes deallocated  ", s.bytes_deallocated, " B");
  text_row(w, "current memory     ", s.current_memory, " B");
  text_row(w, "peak memory        ", s.peak_memory, " B");
  text_row(w, "average size       ", average, " B");
  text_row(w, "allocations/second ", per_second);
  text_row(w, "mapped by bop      ", mapped, " B");
  text_row(w, "process resident   ", resident, " B");
  w.put("  allocations by size class:\n");
  std::uint64_t most = 1;
  for (unsigned c = 0; c <= kClassCount; ++c)
    if (class_total(c) > most) most = class_total(c);
  for (unsigned c = 0; c <= kClassCount; ++c) {
    std::uint64_t n = class_total(c);
    if (n == 0) continue;
    w.put("    ");
    if (c == kClassCount)
      w.put("    huge");
    else
      w.put_u64(kClassSize[c], 8);
    w.put(" B ").put_u64(n, 12).put_char(' ');
    for (std::uint64_t bar = n * 40 / most; bar > 0; --bar) w.put_char('#');
    w.put_char('\n');
  }
  write_leaks(w, false);
}

detail::StatsRecorder& process_recorder() noexcept {
  return g_recorder;
}

}  // namespace bop::stats
