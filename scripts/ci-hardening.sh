#!/bin/sh
# Hardening checks, run after the main suites (scripts/test.sh):
#  1. the unit and integration suites built with gcc's ASan + UBSan, where any
#     finding (including a leak) fails the run;
#  2. each libFuzzer target (tests/fuzz, clang) for a bounded time, starting
#     from a seeded corpus; any crash, leak, UB or timeout fails the run;
#  3. one summary line.
# Environment: CONNSCOPE_HARDENING_BUILD (build dir, default build-hardening),
# CONNSCOPE_FUZZ_SECONDS (per target, default 60). Integration tests need
# root (they skip, exit 77, without it).
set -eu
cd "$(dirname "$0")/.."
src=$(pwd)
build=${CONNSCOPE_HARDENING_BUILD:-build-hardening}
seconds=${CONNSCOPE_FUZZ_SECONDS:-60}
started=$(date +%s)

if [ ! -d "$build" ]; then
	# static_tests off: ASan does not link into -static binaries. -O1 with
	# line tables (-g1): what ASan's reports need; -O2 -g took a test source
	# 139 s to compile here under ASan+UBSan, -O1 -g1 10 s.
	meson setup "$build" -Db_sanitize=address,undefined -Db_lundef=false \
		-Doptimization=1 -Dc_args=-g1 -Dcpp_args=-g1 \
		-Ddocs=disabled -Dbench=disabled -Dexamples=disabled -Dtests=enabled \
		-Dfuzz=enabled -Dstatic_tests=disabled >/dev/null
fi
# Everything this build enables: the unit and integration suites' programs,
# the fuzz targets, the seed writer and the regression replays (the ABI and
# Python suites run in the main build).
ninja -C "$build"

# Sanitizer reports fail the test that produced them. Leaks inside third-party
# libraries (never ours) would be listed in tests/fuzz/lsan.supp.
export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:strict_string_checks=1:check_initialization_order=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
if [ -f tests/fuzz/lsan.supp ]; then
	export LSAN_OPTIONS=suppressions=$src/tests/fuzz/lsan.supp:print_suppressions=0
fi

echo "== unit and integration suites under ASan+UBSan"
# A failing suite does not stop the fuzzing: both verdicts are reported. The
# integration tests run once, on the default backend: the tracepoint run of the
# main build repeats a part of them for its BPF side, whose user space is this.
suites_rc=0
meson test -C "$build" --no-rebuild --print-errorlogs --suite unit --suite integration --no-suite tracepoint ||
	suites_rc=$?
suites=$(python3 -c 'import json,sys
r=[json.loads(l) for l in open(sys.argv[1])]
ok=sum(1 for t in r if t["result"] in ("OK","EXPECTEDFAIL"))
sk=sum(1 for t in r if t["result"]=="SKIP")
bad=[t["name"] for t in r if t["result"] not in ("OK","EXPECTEDFAIL","SKIP")]
print("%d ok, %d skipped, %d failed%s" % (ok, sk, len(bad), " (" + ", ".join(bad) + ")" if bad else ""))' "$build/meson-logs/testlog.json")

corpus=$build/fuzz-corpus
artifacts=$build/fuzz-artifacts
mkdir -p "$artifacts"
"$build/tests/fuzz/connscope-fuzz-seeds" "$corpus"
regressions=$src/tests/fuzz/regressions

# Every committed regression input first, once each and deterministically,
# by the libFuzzer build itself; they also seed the timed runs below.
echo "== fuzz regressions (tests/fuzz/regressions)"
fuzz_rc=0
rm -f "$build/meson-logs/fuzzlog.json"
for target in dns_parser_fuzz record_decoder_fuzz; do
	case $target in
	dns_parser_fuzz) sub=dns ;;
	record_decoder_fuzz) sub=record ;;
	esac
	mkdir -p "$corpus/$sub"
	cp "$regressions/$sub"/* "$corpus/$sub/"
	rc=0
	"$build/tests/fuzz/$target" "$regressions/$sub"/* >"$build/fuzz-$target-regressions.log" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ]; then
		fuzz_rc=1
		grep -E '^(Running:|==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$build/fuzz-$target-regressions.log" || tail -n 40 "$build/fuzz-$target-regressions.log"
		echo "$target: a committed regression input fails again; reproduce with:"
		echo "  $build/tests/fuzz/$target $regressions/$sub/*"
	fi
	printf '{"name": "fuzz/%s-regressions", "result": "%s"}\n' "$target" "$([ "$rc" -eq 0 ] && echo OK || echo FAIL)" \
		>>"$build/meson-logs/fuzzlog.json"
	echo "$target: $(ls "$regressions/$sub" | wc -l) regression inputs, exit $rc"
done

echo "== fuzzing, $seconds s per target"
# The two targets run side by side (one core each); each keeps what it finds
# new in its corpus dir, so later runs start further on.
pids=""
for target in dns_parser_fuzz record_decoder_fuzz; do
	case $target in
	dns_parser_fuzz) dir=$corpus/dns ;;
	record_decoder_fuzz) dir=$corpus/record ;;
	esac
	"$build/tests/fuzz/$target" "$dir" -max_total_time="$seconds" -print_final_stats=1 \
		-timeout=10 -rss_limit_mb=2048 -detect_leaks=1 \
		-artifact_prefix="$artifacts/$target-" >"$build/fuzz-$target.log" 2>&1 &
	pids="$pids $!"
done
fuzz_summary=""
set -- $pids
for target in dns_parser_fuzz record_decoder_fuzz; do
	rc=0
	wait "$1" || rc=$?
	shift
	log=$build/fuzz-$target.log
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	if [ "$rc" -ne 0 ]; then
		fuzz_rc=1
		echo "$target: FAILED (exit $rc), findings saved under $artifacts/:"
		grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|artifact_prefix|Test unit written)' "$log" || tail -n 40 "$log"
		for finding in $(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log"); do
			echo "  reproduce: $build/tests/fuzz/$target $finding"
			echo "  then commit it under tests/fuzz/regressions/ with the fix"
		done
	fi
	echo "$target: ${execs:-?} executions in ${seconds} s, exit $rc (log: $log)"
	fuzz_summary="$fuzz_summary $target=${execs:-?}"
	# One result line per target, in the form of meson's testlog.json, so
	# scripts/summarize-tests.py counts the fuzz runs with the suites.
	printf '{"name": "fuzz/%s", "result": "%s"}\n' "$target" "$([ "$rc" -eq 0 ] && echo OK || echo FAIL)" \
		>>"$build/meson-logs/fuzzlog.json"
done

elapsed=$(($(date +%s) - started))
if [ "$fuzz_rc" -ne 0 ] || [ "$suites_rc" -ne 0 ]; then
	echo "hardening: FAILED: sanitizer suites $suites; fuzz executions:$fuzz_summary (fuzz $([ "$fuzz_rc" -eq 0 ] && echo clean || echo FINDINGS)); ${elapsed} s"
	exit 1
fi
echo "hardening: passed: sanitizer suites $suites; fuzz executions:$fuzz_summary, no findings; ${elapsed} s"
