#!/bin/sh
# cross-arm64.sh SOURCE_ROOT CROSS_BUILD_DIR
# The native build's `vm-arm64` test: configures (once) and builds an arm64 cross
# build with cross/aarch64-linux-gnu.ini, the products (libconnscope, connscope-trace,
# the C example) and what the VMs run (the static integration test and
# connscope-trace, the benchmarks), then boots the arm64 VMs (run-vm.py --arch
# arm64). CONNSCOPE_ARM64_BUILD names an existing cross build to use instead;
# Kernels and packages are kept in run-vm.py's cache (~/.cache/connscope-vm/arm64,
# or CONNSCOPE_VM_CACHE/arm64).
# Exit 77 with the reason when the cross toolchain, the arm64 libraries or QEMU
# are missing (scripts/install-deps.sh installs them all).
set -eu
[ $# -eq 2 ] || { echo "usage: $0 SOURCE_ROOT CROSS_BUILD_DIR" >&2; exit 2; }
src=$1
build=${CONNSCOPE_ARM64_BUILD:-$2}
skip() { echo "vm-arm64: SKIP: $*"; exit 77; }
remedy="scripts/install-deps.sh installs it (dpkg --add-architecture arm64 first)"

command -v aarch64-linux-gnu-g++ >/dev/null ||
    skip "no aarch64-linux-gnu-g++ to build for arm64 (Debian package g++-aarch64-linux-gnu; $remedy)"
for lib in libbpf libelf zlib; do
    PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig pkg-config --exists "$lib" ||
        skip "no arm64 $lib (/usr/lib/aarch64-linux-gnu/pkgconfig/$lib.pc; Debian packages libbpf-dev:arm64 libelf-dev:arm64 zlib1g-dev:arm64; $remedy)"
done
command -v qemu-system-aarch64 >/dev/null ||
    skip "no qemu-system-aarch64 to boot arm64 kernels (Debian package qemu-system-arm; $remedy)"

if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$src" --cross-file "$src/cross/aarch64-linux-gnu.ini" \
        -Dtests=enabled -Dbench=enabled -Ddocs=disabled -Dstatic_tests=enabled >"$build.setup.log" 2>&1 ||
        { cat "$build.setup.log"; echo "vm-arm64: meson setup of the arm64 cross build failed (log above)"; exit 1; }
fi
# Not the cross build's unit and integration tests: they cannot run here.
meson compile -C "$build" -j "${CONNSCOPE_CROSS_JOBS:-2}" \
    connscope connscope-trace connscope-trace-c \
    connscope-integration-static connscope-trace-static \
    bench-connect-overhead bench-event-throughput bench-filter-cost bench-traffic-tax bench-dns-engine
exec python3 "$src/tests/vm/run-vm.py" --arch arm64 --workdir "$build/tests/vm/work" \
    suite --test "$build/tests/connscope-integration-static" --trace "$build/tests/connscope-trace-static" \
    --bench "$build/bench"
