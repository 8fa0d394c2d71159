// Run-time options, read once from the environment at process start-up.
//
// | variable            | values            | default |
// | BOP_PURGE_DELAY_MS  | milliseconds      | 250     |
// | BOP_STATS           | 0, 1 (text), json | 0       |
// | BOP_SAMPLE_BYTES    | bytes             | 524288  |
// | BOP_PURGE_THREAD    | 0 or 1            | 1       |
#pragma once

#include <cstdint>

namespace bop::core {

// kUnknown until the environment is read: the API layer's single "stats
// off?" test then routes the very first allocation through the counting path,
// which reads the environment, so no allocation escapes the counters.
enum class StatsMode : std::uint8_t { kOff = 0, kText = 1, kJson = 2, kUnknown = 3 };

struct Options {
  StatsMode stats_mode = StatsMode::kUnknown;
  // Leak sampling: one allocation is sampled per this many bytes allocated.
  std::uint64_t sample_bytes = 512 * 1024;
};

extern Options g_options;

}  // namespace bop::core
