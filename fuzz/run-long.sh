#!/usr/bin/env bash
# A long fuzzing run in one command: builds the fuzz preset, then fuzzes for
# MINUTES (default 30) at the lowest CPU priority, keeping what it learns in
# <build>/corpus-long and any crashing input in <build>/artifacts/.
#   fuzz/run-long.sh [--checked] [MINUTES] [extra libFuzzer flags...]
# --checked fuzzes a BOP_CHECKED build (build/fuzz-checked) instead of the
# default one (build/fuzz).  Prints total executions and executions per second
# at the end; exits non-zero if the fuzzer found a crash (the input's path is
# in the log).
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/fuzz preset=fuzz
if [ "${1:-}" = --checked ]; then
  out=build/fuzz-checked preset=fuzz-checked
  shift
fi
minutes=${1:-30}
shift || true
cmake --preset "$preset" >/dev/null
cmake --build "$out" -j2 --target bop_fuzz
mkdir -p "$out/corpus-long" "$out/artifacts"
log="$out/long-$(date -u +%Y%m%dT%H%M%SZ).log"
echo "fuzzing for $minutes min; log: $log"
status=0
nice -n 19 "$out/fuzz/bop_fuzz" -max_total_time=$((minutes * 60)) -print_final_stats=1 \
  -artifact_prefix="$out/artifacts/" "$@" "$out/corpus-long" fuzz/seeds >"$log" 2>&1 || status=$?
grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" || true
grep -E 'bop_fuzz:|ERROR|Test unit written' "$log" || true
exit $status
