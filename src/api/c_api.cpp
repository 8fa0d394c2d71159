// The C API: thin wrappers over api/entry.hpp.
#include <bop/bop.h>

#include <unistd.h>

#include "api/entry.hpp"
#include "core/process.hpp"
#include "platform/fatal.hpp"
#include "platform/os.hpp"

using namespace bop;

extern "C" {

void* bop_alloc(size_t size) noexcept {
  return api::allocate<false>(size);
}
void* bop_zalloc(size_t size) noexcept {
  return api::allocate<true>(size);
}
void* bop_calloc(size_t count, size_t size) noexcept {
  return api::allocate_array(count, size);
}
void* bop_alloc_aligned(size_t alignment, size_t size) noexcept {
  return api::allocate_aligned<false>(alignment, size);
}
void* bop_zalloc_aligned(size_t alignment, size_t size) noexcept {
  return api::allocate_aligned<true>(alignment, size);
}
void* bop_realloc(void* p, size_t size) noexcept {
  return api::resize(p, size, 0);
}
void* bop_realloc_aligned(void* p, size_t alignment, size_t size) noexcept {
  if (alignment == 0) {  // resize reads 0 as "default alignment"
    errno = EINVAL;
    return nullptr;
  }
  return api::resize(p, size, alignment);
}
void bop_dealloc(void* p) noexcept {
  api::release(p);
}

void bop_dealloc_sized(void* p, size_t size) noexcept {
  api::release_sized(p, size, 0);
}

size_t bop_malloc_usable_size(const void* p) noexcept {
  return core::usable_size(p);
}

void bop_collect(void) noexcept {
  core::heap_collect_all();
}

int bop_version(void) noexcept {
  return BOP_VERSION;
}

int bop_stats_enabled(void) noexcept {
  core::process_init();
  return core::g_options.stats_mode != core::StatsMode::kOff;
}

void bop_stats_get(bop_stats* out) noexcept {
  if (out == nullptr) return;
  AllocationStats s = stats::process_recorder().snapshot();
  out->allocations = s.allocations;
  out->deallocations = s.deallocations;
  out->bytes_allocated = s.bytes_allocated;
  out->bytes_deallocated = s.bytes_deallocated;
  out->peak_memory = s.peak_memory;
  out->current_memory = s.current_memory;
  out->mapped_bytes = os::mapped_bytes();
  out->resident_bytes = os::resident_bytes();
}

void bop_stats_reset(void) noexcept {
  stats::process_recorder().reset();
}

void bop_stats_print(int fd, int json) noexcept {
  stats::write_report(fd < 0 ? STDERR_FILENO : fd, json != 0);
}

}  // extern "C"
