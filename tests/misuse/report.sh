#!/usr/bin/env bash
# tests/misuse/report.sh [NAME=LIB ...]
#
# Runs every misuse kind of misuse_probe under each allocator and prints one
# row per kind and the number detected per allocator (check, crash or
# contained; see run_misuse.sh).  Default allocators: glibc, Debian's
# jemalloc and mimalloc when installed, and bop's release and checked builds
# when built (build/release, build/checked).  Builds nothing itself:
#   cmake --build --preset release --target bop_shared misuse_probe
#   cmake --build --preset checked --target bop_shared
set -u
cd "$(dirname "$0")/../.."
probe=""
for p in build/release/tests/misuse/misuse_probe build/checked/tests/misuse/misuse_probe; do
  [[ -x $p ]] && { probe=$p; break; }
done
[[ -n $probe ]] || { echo "build misuse_probe first (see the comment at the top)" >&2; exit 2; }

allocs=()
if (($# > 0)); then
  allocs=("$@")
else
  allocs+=(glibc=glibc)
  lib=/usr/lib/x86_64-linux-gnu
  [[ -e $lib/libjemalloc.so.2 ]] && allocs+=(jemalloc=$lib/libjemalloc.so.2)
  [[ -e $lib/libmimalloc.so.2 ]] && allocs+=(mimalloc=$lib/libmimalloc.so.2)
  [[ -e build/release/libbop.so ]] && allocs+=(bop=build/release/libbop.so)
  [[ -e build/checked/libbop.so ]] && allocs+=(bop-checked=build/checked/libbop.so)
fi

declare -A count
printf "%-32s" kind
for a in "${allocs[@]}"; do printf " %-12s" "${a%%=*}"; count[${a%%=*}]=0; done
echo
kinds=$("$probe" --list)
total=0
for k in $kinds; do
  total=$((total + 1))
  printf "%-32s" "$k"
  for a in "${allocs[@]}"; do
    name=${a%%=*} lib=${a#*=}
    [[ $lib == glibc ]] || lib=$(realpath "$lib")
    out=$(tests/misuse/run_misuse.sh "$lib" "$probe" "$k" 2>/dev/null)
    [[ $out == check || $out == crash || $out == contained ]] && count[$name]=$((count[$name] + 1))
    printf " %-12s" "$out"
  done
  echo
done
printf "%-32s" "detected (of $total)"
for a in "${allocs[@]}"; do printf " %-12s" "${count[${a%%=*}]}"; done
echo
