#!/usr/bin/env bash
# bench_smoke.sh -- s3ring-bench ring runs end to end on a tiny workload: its
# --json lines parse, the contract lines have exactly the contract's keys and
# sane values, every extra line names its "measure", and the shm ring is
# removed afterwards, also when the run is interrupted. No timing is
# asserted: speed is for the benchmark itself to report, not for a test.
set -uo pipefail
B=${BUILD:-build}
bench=$B/bin/s3ring-bench
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

[ -x "$bench" ] || fail "$bench not built"

# Usage errors exit 64 (EX_USAGE).
$bench ring --sizes 8 >/dev/null 2>&1; [ $? -eq 64 ] || fail "--sizes 8 not refused"
$bench nosuch >/dev/null 2>&1; [ $? -eq 64 ] || fail "unknown subcommand not refused"

$bench ring --json --msgs 2000 --sizes 64 --producers 1,2 --repeat 1 \
    --wake-samples 20 --full-tries 1000 >"$tmp/out" 2>"$tmp/err" &
pid=$!
wait $pid || fail "bench exited $?: $(cat "$tmp/err")"
for f in /dev/shm/s3ring.bench-$pid /dev/shm/s3ring.bench-$pid-full; do
	[ -e "$f" ] && fail "$f left behind"
done

python3 - "$tmp/out" <<'PY' || fail "JSON: $(cat "$tmp/out")"
import json, sys
contract = ["transport", "producers", "size", "msgs", "msgs_per_s", "p50_ns", "p99_ns"]
seen, measures = set(), set()
for n, line in enumerate(open(sys.argv[1]), 1):
    d = json.loads(line)
    if "measure" in d:
        measures.add(d["measure"])
        continue
    assert list(d) == contract, f"line {n}: keys {list(d)}"
    assert d["transport"] in ("s3ring", "posix_mq", "unix_dgram"), d
    assert d["producers"] in (1, 2) and d["size"] == 64, d
    assert d["msgs"] == 2000, d
    assert d["msgs_per_s"] > 0, d
    assert 0 < d["p50_ns"] <= d["p99_ns"], d
    seen.add((d["transport"], d["producers"]))
want = {(t, p) for t in ("s3ring", "posix_mq", "unix_dgram") for p in (1, 2)}
assert seen == want, f"missing {want - seen}"
for m in ("throughput_detail", "full_tryput", "wake_latency", "memcpy", "config", "target"):
    assert m in measures, f"no {m} line"
PY
echo "figure: $(grep -c . "$tmp/out") JSON lines"

# Interrupted mid-run: it stops, says so, and still removes its ring.
$bench ring --msgs 1000000 --sizes 8192 --producers 1 --repeat 5 \
    --transports s3ring,posix_mq >/dev/null 2>"$tmp/err2" &
pid=$!
sleep 1
kill -INT $pid
wait $pid
rc=$?
[ $rc -ne 0 ] || fail "interrupted run exited 0"
for f in /dev/shm/s3ring.bench-$pid /dev/shm/s3ring.bench-$pid-full; do
	[ -e "$f" ] && fail "$f left behind after SIGINT"
done
echo "ok"
