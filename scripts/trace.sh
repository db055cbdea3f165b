#!/bin/sh
# The main job on a fresh machine: install, build, and show every connect()
# on this host live. Arguments go to connscope-trace (try --help, --json).
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build examples/connscope-trace/connscope-trace >/dev/null
exec build/examples/connscope-trace/connscope-trace "$@"
