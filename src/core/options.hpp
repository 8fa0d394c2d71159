// Run-time options, read once from the environment at process start-up.
//
// | variable            | values            | default |
// | BOP_PURGE_DELAY_MS  | milliseconds      | 250     |
// | BOP_STATS           | 0, 1 (text), json | 0       |
// | BOP_SAMPLE_BYTES    | bytes             | 524288  |
// | BOP_PURGE_THREAD    | 0 or 1            | 1       |
// | BOP_STATS_FILE      | path (%p: pid)    | stderr  |
// | BOP_PROFILE         | path (%p: pid)    | none    |
// | BOP_PROFILE_ALL     | 0 or 1            | 0       |
// | BOP_STATS_INTERVAL_MS | milliseconds    | 0 (off) |
#pragma once

#include <cstddef>
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
  // Stats reports: where they go (empty: the report to stderr, no profile),
  // copied from the environment at start-up; "%p" expands when written.
  char stats_file[256] = {};
  char profile_file[256] = {};
  bool profile_all = false;             // the profile counts every sample, freed ones too
  std::uint32_t stats_interval_ms = 0;  // timeline period (0: no timeline)
};

// Hidden on the declaration too: the library is built -fvisibility=hidden,
// but that applies to definitions only, so without it every use went through
// the GOT (a load, then the test); now the stats test on the malloc/free fast
// paths is one rip-relative compare (callgrind: 2 instructions per pair).
[[gnu::visibility("hidden")]] extern Options g_options;

// Requests below this size go from the entry points (api/entry.hpp) straight
// to the direct table, before the stats test: kDirectMax + 1 once the
// environment is read and statistics are off, 0 before that and while they
// count every call.  One compare then both picks the small-size path and
// rules out stats, so small requests pay nothing for the stats test.  Written
// once, in process_init next to g_options.stats_mode (and read like it).
[[gnu::visibility("hidden")]] extern std::size_t g_direct_limit;

}  // namespace bop::core
