// Sampled leak reports: about one allocation per BOP_SAMPLE_BYTES bytes has
// its call stack recorded; at exit the samples still live are grouped by
// stack, so a report says where leaked memory was allocated at a cost low
// enough to leave on (a countdown per allocation, a stack walk per sample).
#pragma once

#include <cstddef>

#include "platform/text_writer.hpp"

namespace bop::stats {

void leak_sampler_on_alloc(const void* p, std::size_t size) noexcept;
void leak_sampler_on_free(const void* p) noexcept;
// realloc moved a block: its sample (if any) follows it.
void leak_sampler_on_move(const void* from, const void* to) noexcept;

// Live samples grouped by allocating stack, biggest first (text or a JSON array).
void write_leaks(TextWriter& w, bool json) noexcept;

}  // namespace bop::stats
