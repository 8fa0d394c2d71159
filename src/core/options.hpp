// Run-time options, read once from the environment at process start-up.
//
// | variable            | values            | default |
// | BOP_PURGE_DELAY_MS  | milliseconds      | 250     |
// | BOP_STATS           | 0, 1 (text), json | 0       |
// | BOP_SAMPLE_BYTES    | bytes             | 524288  |
#pragma once

#include <cstdint>

namespace bop::core {

enum class StatsMode : std::uint8_t { kOff = 0, kText = 1, kJson = 2 };

struct Options {
  StatsMode stats_mode = StatsMode::kOff;
  // Leak sampling: one allocation is sampled per this many bytes allocated.
  std::uint64_t sample_bytes = 512 * 1024;
};

extern Options g_options;

}  // namespace bop::core
