#!/usr/bin/env bash
# Installs the Debian packages bop's build, tests and benchmarks need, if any
# is missing.  Safe to run repeatedly.
set -euo pipefail
packages=(cmake g++ clang make python3 libgtest-dev libbenchmark-dev valgrind pkgconf)
missing=()
# The Rust crate (rust/bop-rs) needs a cargo: any found is used, else Debian's.
if ! command -v cargo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo" ] && [ ! -x /usr/bin/cargo ]; then
  packages+=(cargo)
fi
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y "${missing[@]}" || { $SUDO apt-get update && $SUDO apt-get install -y "${missing[@]}"; }
fi
