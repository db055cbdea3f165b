#!/bin/sh
# Builds and runs consumers the way users would.
#
# usage: consumer-test.sh pkg-config  BUILD_DIR SOURCE_DIR PREFIX LIBDIR
#        consumer-test.sh subproject  SOURCE_DIR
#
# pkg-config: `meson install --destdir` into a temporary directory, then build
# examples/c/trace.c (C) and tests/abi/consumer.cpp (C++) out of tree with
# `pkg-config --cflags --libs connscope` pointed into that DESTDIR, and run them.
# subproject: a tiny meson project whose subprojects/connscope is a symlink to
# the source tree, built with dependency('connscope').
# CC and CXX name the compilers (meson passes its own). The programs exit 77
# when not root; so does this script, after building them.
set -eu
mode=$1
shift
CC=${CC:-cc}
CXX=${CXX:-c++}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/connscope-abi.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

run() {
    name=$1
    shift
    echo "+ $*"
    set +e
    "$@"
    rc=$?
    set -e
    case $rc in
    0) echo "$name: ok" ;;
    77) echo "$name: skipped (needs root)"; skipped=1 ;;
    *) echo "$name: FAILED ($rc)"; exit 1 ;;
    esac
}
skipped=0

case $mode in
pkg-config)
    build=$1 src=$2 prefix=$3 libdir=$4
    case $libdir in /*) ;; *) libdir=$prefix/$libdir ;; esac
    root=$tmp/root
    echo "+ meson install -C $build --destdir $root"
    meson install -C "$build" --no-rebuild --quiet --destdir "$root" >"$tmp/install.log" 2>&1 ||
        { cat "$tmp/install.log"; exit 1; }

    export PKG_CONFIG_PATH="$root$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
    export PKG_CONFIG_SYSROOT_DIR="$root"
    pkg-config --print-errors --exists connscope
    cflags=$(pkg-config --cflags connscope)
    libs=$(pkg-config --libs connscope)
    echo "pkg-config: version $(pkg-config --modversion connscope), cflags '$cflags', libs '$libs'"
    case $cflags in *"$root"*) ;; *) echo "cflags do not point into DESTDIR"; exit 1 ;; esac
    # Nothing but the installed tree may be used: no source or build include dirs.
    # shellcheck disable=SC2086
    $CC -std=c11 -Wall -Wextra -Werror -o "$tmp/trace" "$src/examples/c/trace.c" $cflags $libs
    # shellcheck disable=SC2086
    $CXX -std=c++17 -Wall -Wextra -Werror -o "$tmp/consumer" "$src/tests/abi/consumer.cpp" $cflags $libs
    export LD_LIBRARY_PATH="$root$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    run "C consumer (examples/c/trace.c)" "$tmp/trace" --self-check -t 5
    run "C++ consumer (tests/abi/consumer.cpp)" "$tmp/consumer"
    ;;
subproject)
    src=$1
    cp -R "$src/tests/abi/subproject-consumer" "$tmp/project"
    mkdir "$tmp/project/subprojects"
    ln -s "$(cd "$src" && pwd)" "$tmp/project/subprojects/connscope"
    echo "+ meson setup $tmp/build $tmp/project"
    meson setup "$tmp/build" "$tmp/project" >"$tmp/setup.log" 2>&1 || { cat "$tmp/setup.log"; exit 1; }
    ninja -C "$tmp/build" >"$tmp/ninja.log" 2>&1 || { tail -50 "$tmp/ninja.log"; exit 1; }
    echo "built $(grep -c . "$tmp/ninja.log") ninja lines; consumer linked"
    run "subproject consumer" "$tmp/build/consumer"
    ;;
*)
    echo "unknown mode $mode"
    exit 2
    ;;
esac
[ $skipped -eq 0 ] || exit 77
exit 0
