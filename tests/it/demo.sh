#!/usr/bin/env bash
# demo.sh -- make demo's script works after an interrupted run and twice in
# a row, and leaves no process behind.
set -uo pipefail
if [ -n "${SAN:-}" ]; then
	echo "SKIP: demo: runs in the plain suite"
	exit 77
fi
cd "${S3RING_TOP:-.}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
fail() { echo "FAIL: $*"; tail -n 20 "$log"; exit 1; }

# Interrupted while the messages flow.
tools/demo.sh >"$log" 2>&1 &
demo=$!
for _ in $(seq 1 300); do
	grep -q 'running the example app' "$log" && break
	sleep 0.1
done
grep -q 'running the example app' "$log" || fail "the demo never got to the example app"
upl=$(cat .demo/uploader.pid)
srv=$(cat .demo/s3rver/s3rver.pid)
kill -INT $demo
wait $demo
for _ in $(seq 1 100); do
	kill -0 "$upl" 2>/dev/null || kill -0 "$srv" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$upl" 2>/dev/null && fail "the interrupted demo left the uploader running"
kill -0 "$srv" 2>/dev/null && fail "the interrupted demo left s3rver running"

for run in 1 2; do
	t0=$SECONDS
	tools/demo.sh >"$log" 2>&1 || fail "run $run after the interruption"
	! grep -q $'\033' "$log" || fail "run $run wrote terminal escapes into a pipe"
	last=$(tail -n 1 "$log")
	case $last in
	*"OK: 10000 messages from 4 processes"*"holds 10000 objects"*) ;;
	*) fail "run $run ended with: $last" ;;
	esac
	echo "figure: demo run $run: $((SECONDS - t0)) s"
done
upl=$(cat .demo/uploader.pid)
kill -0 "$upl" 2>/dev/null && fail "the demo left the uploader running"
echo "demo ok"
