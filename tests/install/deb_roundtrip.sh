#!/usr/bin/env bash
# The Debian packages on a real system (CI; needs root or sudo, and changes
# the system while it runs): build bop_*.deb and bop-dev_*.deb with CPack,
# dpkg -i them, run the consumer, pkg-config and launcher tests against the
# files in /usr (install_test.py --system), dpkg -r them, and check that
# nothing of bop is left in /usr.
#
#   bash tests/install/deb_roundtrip.sh <configured and built build dir>
set -euo pipefail
build=$(cd "${1:?usage: deb_roundtrip.sh <build dir>}" && pwd)
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
version=$(cache_value CMAKE_PROJECT_VERSION)
libdir_name=$(cache_value CMAKE_INSTALL_LIBDIR)
cc=$(cache_value CMAKE_C_COMPILER)

# What bop installs under /usr, whatever the package lists say.
leftovers() {
  ls -d /usr/include/bop /usr/bin/bop /usr/bin/bop-report /usr/share/doc/bop \
    /usr/lib/libbop* /usr/lib/*/libbop* /usr/lib/cmake/bop /usr/lib/*/cmake/bop \
    /usr/lib/pkgconfig/bop*.pc /usr/lib/*/pkgconfig/bop*.pc 2>/dev/null || true
  ldconfig -p | grep -F libbop || true
}

if dpkg -s bop >/dev/null 2>&1 || dpkg -s bop-dev >/dev/null 2>&1; then
  echo "deb_roundtrip: bop packages are already installed; remove them first" >&2
  exit 1
fi
if [ -n "$(leftovers)" ]; then
  echo "deb_roundtrip: bop files are already in /usr (from an earlier install?):" >&2
  leftovers >&2
  exit 1
fi

work=$(mktemp -d)
installed=0
cleanup() {
  if [ "$installed" = 1 ]; then $SUDO dpkg -r bop-dev bop >/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

cpack -G DEB -B "$work/deb" --config "$build/CPackConfig.cmake" >/dev/null
arch=$(dpkg --print-architecture)
debs=("$work/deb/bop_${version}_${arch}.deb" "$work/deb/bop-dev_${version}_${arch}.deb")
ls -l "${debs[@]}"

installed=1
$SUDO dpkg -i "${debs[@]}"
ldconfig -p | grep -F "libbop.so.0 " || { echo "deb_roundtrip: libbop.so.0 is not in the ldconfig cache" >&2; exit 1; }

python3 "$source_dir/tests/install/install_test.py" --system \
  --source="$source_dir" --prefix=/usr --libdir="/usr/$libdir_name" --work="$work/tests" \
  --version="$version" --cc="$cc" --launcher=/usr/bin/bop \
  ConsumerBuild ConsumerRun PkgConfigTest LauncherTest

$SUDO dpkg -r bop-dev bop
installed=0
left=$(leftovers)
for deb in "${debs[@]}"; do  # every file (not directory) the packages listed
  for path in $(dpkg-deb --contents "$deb" | awk '$1 !~ /^d/ {print substr($6, 2)}'); do
    if [ -e "$path" ] || [ -L "$path" ]; then left+=$'\n'"$path"; fi
  done
done
for package in bop bop-dev; do  # no maintainer scripts, so no "config-files" state either
  if dpkg -s "$package" >/dev/null 2>&1; then left+=$'\n'"dpkg still knows $package"; fi
done
if [ -n "$left" ]; then
  echo "deb_roundtrip: left in /usr after dpkg -r:$left" >&2
  exit 1
fi
echo "deb_roundtrip: bop ${version} installed, used and removed cleanly"
