#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
# What a busy server pays (issue 14): nginx on 127.0.0.1 serving a tiny static
# file with access_log off, driven by ab with a new TCP connection per request
# (-c 8, no -k), in interleaved rounds under four setups:
#   untraced
#   library    bench-load-noop: a Session with the defaults, no-op callbacks
#   library-no-outcomes  the same with Options::outcomes off (what following
#              each connect to its outcome costs, issue 21)
#   cli        connscope-trace --json > /dev/null
# It prints requests/s per setup and the ratio to the untraced run of the same
# round (medians over rounds), the tracer's CPU per request, and then one pass
# with the kernel's BPF statistics on that splits the CPU per event into the
# kernel programs, the consumer (library, no-op) and the CLI's output.
#
# Needs root, nginx and ab (Debian: apt-get install nginx-light apache2-utils;
# tried when missing), bpftool for the split. Exits 77 when one is missing.
# Environment: CONNSCOPE_TRACE, CONNSCOPE_LOAD_NOOP (set by meson),
# LOAD_ROUNDS (9), LOAD_REQUESTS (10000 per run), LOAD_PORT (18437).
set -u
trace=${CONNSCOPE_TRACE:-}
noop=${CONNSCOPE_LOAD_NOOP:-}
rounds=${LOAD_ROUNDS:-9}
requests=${LOAD_REQUESTS:-10000}
port=${LOAD_PORT:-18437}

skip() { echo "load.sh: skipped: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (the tracers load BPF programs; nginx binds as root)"
[ -x "$trace" ] && [ -x "$noop" ] || skip "CONNSCOPE_TRACE and CONNSCOPE_LOAD_NOOP must name the built programs"
if ! command -v nginx >/dev/null || ! command -v ab >/dev/null; then
	echo "load.sh: nginx or ab missing; trying apt-get install -y nginx-light apache2-utils"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light apache2-utils >/dev/null 2>&1 || true
fi
command -v nginx >/dev/null || skip "needs nginx (apt-get install nginx-light)"
command -v ab >/dev/null || skip "needs ab (apt-get install apache2-utils)"

dir=$(mktemp -d /tmp/connscope-load.XXXXXX)
chmod 755 "$dir"
mkdir -p "$dir/www" "$dir/tmp"
printf 'ok\n' > "$dir/www/t.txt"
chmod -R a+rX "$dir"
cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $dir/tmp/body;
	proxy_temp_path $dir/tmp/proxy;
	fastcgi_temp_path $dir/tmp/fastcgi;
	uwsgi_temp_path $dir/tmp/uwsgi;
	scgi_temp_path $dir/tmp/scgi;
	server {
		listen 127.0.0.1:$port;
		root $dir/www;
		location / { }
	}
}
CONF

tracer_pid=""
cli_pid=""
nginx_pid=""
cleanup() {
	[ -n "$cli_pid" ] && kill "$cli_pid" 2>/dev/null && wait "$cli_pid" 2>/dev/null
	[ -n "$tracer_pid" ] && kill "$tracer_pid" 2>/dev/null && wait "$tracer_pid" 2>/dev/null
	[ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
	[ -n "${stats_was:-}" ] && sysctl -q kernel.bpf_stats_enabled="$stats_was"
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
nginx_pid=$!
url="http://127.0.0.1:$port/t.txt"
for _ in $(seq 50); do
	ab -q -n 1 "$url" >/dev/null 2>&1 && break
	sleep 0.1
done
ab -q -n 1 "$url" >/dev/null 2>&1 || { echo "load.sh: nginx did not answer on $url:"; cat "$dir/error.log"; exit 1; }

# CPU time of a process so far, ns (every thread; schedstat is in ns).
cpu_of() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d", s }'; }

# start_tracer MODE: starts the tracer in the background, waits until it is attached.
start_tracer() {
	: > "$dir/tracer.err"
	case $1 in
	library) "$noop" > "$dir/tracer.out" 2> "$dir/tracer.err" & ;;
	library-no-outcomes) "$noop" --no-outcomes > "$dir/tracer.out" 2> "$dir/tracer.err" & ;;
	cli) "$trace" --json > /dev/null 2> "$dir/tracer.err" & ;;
	esac
	tracer_pid=$!
	for _ in $(seq 150); do
		grep -q 'watching' "$dir/tracer.err" && grep -q -e 'DNS capture' -e 'bench-load-noop' "$dir/tracer.err" && return 0
		kill -0 "$tracer_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "load.sh: $1 did not start:"; cat "$dir/tracer.err"; exit 1
}
stop_tracer() {
	kill -INT "$tracer_pid"
	wait "$tracer_pid" || { echo "load.sh: the tracer failed:"; cat "$dir/tracer.err"; exit 1; }
	tracer_pid=""
}

# run_ab: one ab run; prints requests/s. Fails on failed requests.
run_ab() {
	out=$(ab -q -n "$requests" -c 8 "$url" 2>&1) || { echo "load.sh: ab failed: $out" >&2; exit 1; }
	failed=$(printf '%s\n' "$out" | awk '/^Failed requests:/ { print $3 }')
	[ "${failed:-1}" = 0 ] || { echo "load.sh: ab: $failed failed requests" >&2; exit 1; }
	printf '%s\n' "$out" | awk '/^Requests per second:/ { print $4 }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

modes=(untraced library library-no-outcomes cli)
run_ab >/dev/null # warm up nginx, ab and the page cache
echo "load: nginx (1 worker) on 127.0.0.1:$port, ab -n $requests -c 8 (a new connection per request),"
echo "$rounds interleaved rounds, the order rotated each round; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
: > "$dir/results"
for r in $(seq 0 $((rounds - 1))); do
	for k in 0 1 2 3; do
		mode=${modes[$(((k + r) % 4))]}
		cpu=0
		if [ "$mode" != untraced ]; then
			start_tracer "$mode"
			c0=$(cpu_of "$tracer_pid")
		fi
		rate=$(run_ab) || exit 1
		if [ "$mode" != untraced ]; then
			c1=$(cpu_of "$tracer_pid")
			cpu=$(((c1 - c0) / requests))
			stop_tracer
		fi
		echo "$r $mode $rate $cpu" >> "$dir/results"
	done
	echo "  round $((r + 1))/$rounds: $(awk -v r="$r" '$1 == r { printf "%s %s/s  ", $2, $3 }' "$dir/results")" >&2
done

echo
echo "requests/s and ratio: medians over rounds; ratio = requests/s / untraced requests/s of the same round."
echo "tracer CPU/request: the tracer process's CPU time over the ab run (from /proc), per request."
printf '%-34s %12s %12s %12s %18s\n' setup "requests/s" "ratio" "goal" "tracer CPU/request"
for mode in untraced library library-no-outcomes cli; do
	rate=$(awk -v m="$mode" '$2 == m { print $3 }' "$dir/results" | median)
	ratio=$(awk -v m="$mode" 'NR == FNR { if ($2 == "untraced") base[$1] = $3; next } $2 == m { print $3 / base[$1] }' \
		"$dir/results" "$dir/results" | median)
	cpu=$(awk -v m="$mode" '$2 == m { print $4 }' "$dir/results" | median)
	case $mode in
	untraced) goal="-"; name="untraced" ;;
	library) goal=">= 0.99"; name="library, no-op callback" ;;
	library-no-outcomes) goal="-"; name="library, no-op, outcomes off" ;;
	cli) goal=">= 0.97"; name="connscope-trace --json >/dev/null" ;;
	esac
	verdict=""
	[ "$goal" != "-" ] && verdict=$(awk -v x="$ratio" -v g="${goal#>= }" 'BEGIN { print (x >= g ? "met" : "MISSED") }')
	printf '%-34s %12.0f %12.3f %12s %15s ns %s\n' "$name" "$rate" "$ratio" "$goal" \
		"$([ "$mode" = untraced ] && echo - || echo "$cpu")" "$verdict"
done

# --- CPU per event, split ---------------------------------------------------------
command -v bpftool >/dev/null || { echo; echo "CPU split skipped: needs bpftool"; exit 0; }
prog_ids() { bpftool prog show -j 2>/dev/null | python3 -c 'import json,sys; print(" ".join(str(p["id"]) for p in json.load(sys.stdin)))'; }
# prog_stats IDS...: "name run_cnt run_time_ns" per program.
prog_stats() {
	bpftool prog show -j 2>/dev/null | python3 -c '
import json, sys
want = set(int(i) for i in sys.argv[1:])
for p in json.load(sys.stdin):
    if p["id"] in want:
        print(p.get("name", "?"), p.get("run_cnt", 0), p.get("run_time_ns", 0))' "$@"
}
stats_was=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -q kernel.bpf_stats_enabled=1
echo
echo "CPU per event (one more ab run, kernel BPF statistics on; connscope-trace --json >/dev/null and"
echo "the no-op library run side by side, so both see the same events; the library run counts them):"
before=$(prog_ids)
start_tracer cli
cli_pid=$tracer_pid
after=$(prog_ids)
mine=$(comm -13 <(tr ' ' '\n' <<< "$before" | sort) <(tr ' ' '\n' <<< "$after" | sort) | tr '\n' ' ')
tracer_pid=""
start_tracer library
lib_pid=$tracer_pid
k0=$(prog_stats $mine)
c0_cli=$(cpu_of "$cli_pid")
c0_lib=$(cpu_of "$lib_pid")
rate=$(run_ab) || exit 1
c1_cli=$(cpu_of "$cli_pid")
c1_lib=$(cpu_of "$lib_pid")
k1=$(prog_stats $mine)
stop_tracer
events=$(awk '/^events/ { print $2 }' "$dir/tracer.out")
tracer_pid=$cli_pid
cli_pid=""
stop_tracer
sysctl -q kernel.bpf_stats_enabled="$stats_was"
stats_was=""
echo "  $requests requests, $events events ($(awk -v e="$events" -v n="$requests" 'BEGIN { printf "%.2f", e / n }') per request; other processes' connects included)"
printf '  %-28s %10s %10s %12s\n' "kernel program" runs "ns/run" "ns/event"
paste <(echo "$k0") <(echo "$k1") | awk -v e="$events" '
	{ runs = $5 - $2; ns = $6 - $3; total += ns
	  if (runs > 0) printf "  %-28s %10d %10.0f %12.1f\n", $1, runs, ns / runs, ns / e }
	END { printf "  %-28s %10s %10s %12.0f\n", "kernel programs, all", "", "", total / e }'
lib_ns=$(awk -v a="$c0_lib" -v b="$c1_lib" -v e="$events" 'BEGIN { printf "%.0f", (b - a) / e }')
cli_ns=$(awk -v a="$c0_cli" -v b="$c1_cli" -v e="$events" 'BEGIN { printf "%.0f", (b - a) / e }')
out_ns=$((cli_ns - lib_ns))
printf '  %-44s %6s ns   goal <= 150 ns: %s\n' "consumer (library, no-op callback) per event" "$lib_ns" \
	"$([ "$lib_ns" -le 150 ] && echo met || echo MISSED)"
printf '  %-44s %6s ns\n' "connscope-trace --json per event, all" "$cli_ns"
printf '  %-44s %6s ns   goal <= 250 ns: %s\n' "output (CLI minus library)" "$out_ns" \
	"$([ "$out_ns" -le 250 ] && echo met || echo MISSED)"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
