#!/usr/bin/env bash
# uploader_slowdown.sh -- the adaptive limit on uploads in flight, against a
# server with a concurrency cap (tests/fake_s3.py throttle: more than 8 PUTs
# at once get 503 SlowDown):
# (a) with --workers 64, the limit shrinks (multiplicatively) well below 64,
#     shmstat shows it and counts the slow-downs, and every message arrives
#     (none is dead-lettered: a SlowDown is waited out, not a message's
#     fault);
# (b) once the cap is lifted, the limit grows back (additively) to 64: by
#     one per window of successes, so from 1 it takes about 2,000 (N2 is
#     at least 3,000).
set -uo pipefail
IT_NAME=slowdown
. "$(dirname "$0")/lib.sh"

N1=${N1:-$([ -n "${SAN:-}" ] && echo 600 || echo 1500)}
N2=${N2:-$([ -n "${SAN:-}" ] && echo 3000 || echo 6000)}
timeout -s KILL 600 python3 "$TOP/tests/fake_s3.py" throttle "$WORK/port" 590 >"$WORK/fake.log" 2>&1 &
FAKE_PID=$!
trap 'kill -TERM $FAKE_PID 2>/dev/null; it_cleanup' EXIT
for _ in $(seq 1 100); do [ -s "$WORK/port" ] && break; sleep 0.05; done
[ -s "$WORK/port" ] || fail "the fake server did not start"
S3_ENDPOINT=http://127.0.0.1:$(cat "$WORK/port")
export AWS_ACCESS_KEY_ID=AKIAFAKE AWS_SECRET_ACCESS_KEY=fake AWS_REGION=us-east-1

it_uploader --bucket b --workers 64 --max-attempts 1000 --ring-size 16M
it_wait_ready
[ "$(it_stat '["uploader"]["concurrency_limit"]')" -eq 64 ] ||
	fail "the limit does not start at --workers: $(it_stat '["uploader"]["concurrency_limit"]')"

# ---- (a) capped at 8
"$B/tests/tool_produce" "$RING" 2 $((N1 / 2)) a/ 100 1000 || fail "producers failed"
lim_seen=64
end=$((SECONDS + 300))
while :; do
	read -r up lim < <("$B/bin/shmstat" --ring "$RING" --json | python3 -c \
		'import json,sys; d=json.load(sys.stdin); print(d["uploaded"], d["uploader"]["concurrency_limit"])')
	[ "$lim" -lt "$lim_seen" ] && lim_seen=$lim
	[ "$up" -ge "$N1" ] && break
	[ $SECONDS -lt $end ] || fail "only $up of $N1 uploaded against the capped server"
	sleep 0.1
done
[ "$lim_seen" -lt 64 ] || fail "shmstat never showed a limit below 64"
# Every decrease is logged with the new limit: the lowest, whatever the
# moments shmstat happened to sample.
lowest=$(grep -o 'fewer uploads in flight" limit=[0-9]*' "$WORK/upl.log" | sed 's/.*=//' | sort -n | head -n 1)
[ -n "$lowest" ] || fail "no decrease of the limit logged"
slow=$(it_stat '["uploader"]["slowdowns"]')
[ "$slow" -gt 0 ] || fail "no slow-down counted against a capped server"
[ "$lowest" -le 16 ] || fail "the limit never went below $lowest against a cap of 8"
[ "$(it_stat '["dead_lettered"]')" -eq 0 ] || fail "SlowDowns dead-lettered messages: $(it_stat '["last_error"]')"
# Whole outputs to files first: grep -q's early exit would SIGPIPE shmstat
# (and fail the pipeline under pipefail).
"$B/bin/shmstat" --ring "$RING" >"$WORK/text" || fail "shmstat failed"
"$B/bin/shmstat" --ring "$RING" --prometheus >"$WORK/prom" || fail "shmstat --prometheus failed"
grep -q "in flight now at most" "$WORK/text" || fail "shmstat's text does not show the limit"
grep -q '^s3ring_uploader_concurrency_limit{' "$WORK/prom" ||
	fail "no s3ring_uploader_concurrency_limit in the Prometheus output"
log "(a) $N1 messages through a cap of 8: limit down to $lowest, $slow slow-downs, none dead-lettered"

# ---- (b) the cap lifted: the limit grows back
touch "$WORK/port.open"
"$B/tests/tool_produce" "$RING" 2 $((N2 / 2)) b/ 100 1000 || fail "producers failed"
it_wait_uploaded $((N1 + N2)) 300
lim=$(it_stat '["uploader"]["concurrency_limit"]')
[ "$lim" -eq 64 ] || fail "the limit grew back only to $lim after $N2 successes"
log "(b) cap lifted: the limit back at $lim after $N2 uploads"
it_stop_uploader || fail "the uploader exited non-zero on SIGTERM"
kill -TERM $FAKE_PID
wait $FAKE_PID 2>/dev/null
echo "figure: slowdown cap=8 workers=64 lowest_limit=$lowest slowdowns=$slow regrown_limit=$lim $(grep peak_inflight "$WORK/fake.log")"
