#!/bin/sh
# The whole test suite on a fresh machine: install, build, run every suite
# (unit, integration, abi, python, cli, vm, vm-arm64: an arm64 cross build booted
# in arm64 VMs), then the sanitizer build and the
# fuzzers, then say how many passed and failed.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
build=${CONNSCOPE_BUILD:-build}
[ -d "$build" ] || meson setup "$build" -Ddocs=enabled -Dtests=enabled -Dbench=enabled >/dev/null
ninja -C "$build"
rc=0
meson test -C "$build" --print-errorlogs "$@" || rc=$?
# The unit and integration suites again under ASan+UBSan, and the fuzzers
# for a bounded time (CONNSCOPE_SKIP_HARDENING=1 leaves them out).
hardening=${CONNSCOPE_HARDENING_BUILD:-build-hardening}
if [ "${CONNSCOPE_SKIP_HARDENING:-0}" != 1 ]; then
  CONNSCOPE_HARDENING_BUILD=$hardening sh scripts/ci-hardening.sh || rc=1
fi
python3 scripts/summarize-tests.py "$build/meson-logs/testlog.json" \
  "$hardening/meson-logs/testlog.json" "$hardening/meson-logs/fuzzlog.json"
exit $rc
