#!/usr/bin/env bash
# run.sh -- runs the whole suite: every cmocka unit test in $BUILD/tests, then
# every integration script tests/it/*.sh, and ends with "N passed, N failed,
# N skipped".
#
# Skips: a script that cannot run here prints "SKIP: why" and exits 77; it
# is counted as skipped, never as passed. A skip is the script's own
# decision that it should not run on this machine or in this build (a
# sanitizer build, no root for a mount); where it should run, the script
# fails instead. A script that prints a SKIP line and exits 0 is counted as
# a failure: it would pass without having run.
#
# Environment: BUILD (default build), SAN (the sanitizers of this build, for
# scripts that must adapt), ONLY (a substring: run only matching tests).
set -uo pipefail
cd "$(dirname "$0")/.."
export BUILD=${BUILD:-build} SAN=${SAN:-}
export S3RING_TOP=$PWD
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp}
ONLY=${ONLY:-}
# Sanitized builds run several times slower: the multi-process stress tests
# divide their message counts by this (the checks stay the same).
if [ -n "$SAN" ]; then
	export S3RING_TEST_SCALE_DIV=${S3RING_TEST_SCALE_DIV:-10}
fi

pass=0 fail=0 skip=0 failed=() skipped=()
logdir=$BUILD/test-logs
mkdir -p "$logdir"

run_one() {
	local name=$1; shift
	[ -n "$ONLY" ] && [[ $name != *"$ONLY"* ]] && return 0
	local t0=$SECONDS
	printf '%-40s ' "$name"
	"$@" >"$logdir/$name.log" 2>&1
	local rc=$?
	if [ $rc -eq 0 ] && grep -q '^SKIP' "$logdir/$name.log"; then
		fail=$((fail + 1))
		failed+=("$name")
		echo "FAILED ($((SECONDS - t0))s): printed SKIP but exited 0 (a skip exits 77)"
		grep -m 3 '^SKIP' "$logdir/$name.log" | sed 's/^/    /'
	elif [ $rc -eq 77 ]; then
		skip=$((skip + 1))
		skipped+=("$name")
		echo "skipped ($((SECONDS - t0))s): $(grep -m 1 '^SKIP' "$logdir/$name.log" || echo 'SKIP: no reason given')"
	elif [ $rc -eq 0 ]; then
		pass=$((pass + 1))
		echo "ok ($((SECONDS - t0))s)"
	else
		fail=$((fail + 1))
		failed+=("$name")
		echo "FAILED ($((SECONDS - t0))s), log: $logdir/$name.log"
		tail -n 30 "$logdir/$name.log" | sed 's/^/    /'
	fi
	# Integration scripts print their figures on lines starting "figure:".
	grep -h '^figure:' "$logdir/$name.log" 2>/dev/null | sed 's/^/    /'
}

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	run_one "$(basename "$t")" "$t"
done
for s in tests/it/*.sh; do
	[ -f "$s" ] || continue
	[ "$(basename "$s")" = lib.sh ] && continue # sourced by the others
	run_one "$(basename "$s" .sh)" bash "$s"
done

echo
# Each failure once more, last: whoever reads only the end of a long run
# still sees why it failed (a sanitizer's report ends in its legend, so
# its first lines are picked out).
for name in "${failed[@]}"; do
	echo "--- $name ($logdir/$name.log):"
	{ grep -E -m 8 'ERROR:|SUMMARY:|FAILED|FAIL:|Tracer caught|fatal error|[Aa]ssert|error:' \
	    "$logdir/$name.log"; tail -n 4 "$logdir/$name.log"; } | cut -c1-300 | sed 's/^/    /'
done
[ ${#skipped[@]} -eq 0 ] || echo "skipped: ${skipped[*]}"
[ ${#failed[@]} -eq 0 ] || echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
