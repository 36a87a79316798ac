#!/usr/bin/env bash
# fuzz.sh -- builds every libFuzzer harness (make fuzz) and runs each for
# FUZZ_SECONDS (default 60) from its committed seed corpus, two at a time.
# A crash, a leak or a sanitizer report fails the test and leaves the
# reproducer in build/fuzz/artifacts/. Runs in the plain suite only: the
# harnesses carry their own ASan+UBSan.
set -uo pipefail
if [ -n "${SAN:-}" ]; then
	echo "SKIP: fuzz: runs in the plain suite (the harnesses are sanitized already)"
	exit 77
fi
secs=${FUZZ_SECONDS:-60}
make --no-print-directory fuzz >/dev/null || { echo "FAIL: make fuzz"; exit 1; }
mkdir -p build/fuzz/artifacts
pids=() names=() failed=0
run() {
	local f=$1 name; name=$(basename "$f")
	local seeds=tests/fuzz/corpus/${name#fuzz_}
	local work=build/fuzz/corpus-$name
	mkdir -p "$work"
	"$f" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	    -artifact_prefix=build/fuzz/artifacts/"$name"- "$work" \
	    $( [ -d "$seeds" ] && echo "$seeds" ) >build/fuzz/"$name".log 2>&1 &
	pids+=($!) names+=("$name")
}
wait_all() {
	for i in "${!pids[@]}"; do
		if wait "${pids[$i]}"; then
			runs=$(grep -o 'Done [0-9]* runs' build/fuzz/"${names[$i]}".log | awk '{print $2}')
			echo "figure: ${names[$i]} runs=${runs:-?} seconds=$secs"
		else
			echo "FAIL: ${names[$i]} (see build/fuzz/${names[$i]}.log)"
			tail -n 20 build/fuzz/"${names[$i]}".log
			failed=1
		fi
	done
	pids=() names=()
}
n=0
for f in build/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	run "$f"
	n=$((n + 1))
	[ ${#pids[@]} -ge 2 ] && wait_all
done
wait_all
[ $n -gt 0 ] || { echo "FAIL: no fuzz harness built"; exit 1; }
exit $failed
