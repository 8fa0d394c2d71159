#!/usr/bin/env bash
# run_misuse.sh [--expect OUTCOME] LIB PROBE KIND
#
# Runs `PROBE KIND` (misuse_probe) with LIB preloaded ("" or "glibc": no
# preload) and prints how the misuse ended:
#   check      killed by a signal after a one-line "bop: ..." diagnostic
#   crash      killed by a signal without one (detected, but by accident)
#   contained  a read saw no stale or foreign data (probe exit 3)
#   missed     the probe ran to its end (exit 0)
#   error      anything else (usage error, timeout)
# With --expect, exits non-zero unless the outcome meets OUTCOME: `check` and
# `contained` must be met exactly, `crash` by any detection (check or crash),
# `missed` by anything (a kind this build is not expected to detect).
set -u
expect=""
if [[ "${1:-}" == "--expect" ]]; then expect=$2; shift 2; fi
lib=$1 probe=$2 kind=$3

err=$(mktemp)
trap 'rm -f "$err"' EXIT
ulimit -c 0
if [[ -z "$lib" || "$lib" == glibc ]]; then
  timeout 60 "$probe" "$kind" >/dev/null 2>"$err"
else
  LD_PRELOAD="$lib" timeout 60 "$probe" "$kind" >/dev/null 2>"$err"
fi
rc=$?
if ((rc == 0)); then
  outcome=missed
elif ((rc == 3)); then
  outcome=contained
elif ((rc > 128)); then
  if grep -q '^bop: ' "$err"; then outcome=check; else outcome=crash; fi
else
  outcome=error
fi
echo "$outcome"
if [[ -n "$expect" ]]; then
  head -c 2000 "$err" >&2
  case "$expect" in
    check | contained) [[ "$outcome" == "$expect" ]] ;;
    crash) [[ "$outcome" == check || "$outcome" == crash ]] ;;
    missed) [[ "$outcome" != error ]] ;;
    *) echo "unknown expectation $expect" >&2; exit 2 ;;
  esac || { echo "misuse $kind: expected $expect, got $outcome" >&2; exit 1; }
fi
exit 0
