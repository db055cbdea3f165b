#!/bin/sh
# The whole test suite on a fresh machine: install, build, run every suite
# (unit, integration, abi, python, vm), then say how many passed and failed.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
build=${CONNSCOPE_BUILD:-build}
[ -d "$build" ] || meson setup "$build" -Ddocs=enabled -Dtests=enabled -Dbench=enabled >/dev/null
ninja -C "$build"
rc=0
meson test -C "$build" --print-errorlogs "$@" || rc=$?
python3 scripts/summarize-tests.py "$build/meson-logs/testlog.json"
exit $rc
