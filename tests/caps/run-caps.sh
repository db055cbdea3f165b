#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
# Suite 'caps': the integration tests as a user that is not root and holds
# only the capabilities docs/deploy.md lists for this kernel (ambient, through
# setpriv): CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, and CAP_SYS_RESOURCE before
# Linux 5.11 (BPF memory charged to RLIMIT_MEMLOCK, which libbpf then raises).
# Cases that need more (a network or mount namespace, port 53, another uid)
# warn naming the capability and return; the connect and DNS cases must pass.
# Then connscope-trace with each of the three taken away in turn must name it.
#   run-caps.sh INTEGRATION_TEST CONNSCOPE_TRACE
set -u
test_bin=$1 trace=$2
user=65534
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root to become user $user with only the documented capabilities"
command -v setpriv >/dev/null || skip "needs setpriv (util-linux)"

caps=bpf,perfmon,net_admin
release=$(uname -r)
major=${release%%.*} rest=${release#*.} minor=${rest%%[!0-9]*}
if [ "$major" -lt 5 ] || { [ "$major" -eq 5 ] && [ "$minor" -lt 11 ]; }; then
    caps=$caps,sys_resource
fi
as_user() {
    c=$1; shift
    plus=$(echo "$c" | sed 's/\([a-z_]*\)/+\1/g')
    (cd / && setpriv --reuid=$user --regid=$user --clear-groups --inh-caps="$plus" --ambient-caps="$plus" "$@")
}
[ -r "$test_bin" ] && as_user "$caps" test -x "$test_bin" ||
    skip "user $user cannot run $test_bin (a build directory it cannot read)"

echo "== integration tests as user $user with only $caps (kernel $release)"
as_user "$caps" grep Cap /proc/self/status
as_user "$caps" "$test_bin" --use-colour no
rc=$?
[ $rc -eq 0 ] || { echo "FAIL: the integration tests failed as user $user with $caps (exit $rc)"; exit 1; }

failed=0
for missing in bpf perfmon net_admin; do
    fewer=$(echo "$caps" | tr ',' '\n' | grep -vx "$missing" | paste -sd, -)
    name=CAP_$(echo "$missing" | tr a-z A-Z)
    out=$(as_user "$fewer" "$trace" --duration 1 2>&1)
    rc=$?
    if [ $rc -ne 1 ] || ! echo "$out" | grep -q "missing.*$name"; then
        echo "FAIL: without $name, connscope-trace exited $rc and said: $out"
        failed=1
    else
        echo "ok: without $name: $(echo "$out" | head -n 1)"
    fi
done
exit $failed
