#!/usr/bin/env bash
# uploader_kill9.sh -- at-least-once across kill -9: while 20,000 messages
# flow from 4 producers to s3rver, the uploader (the real process) is
# SIGKILLed 20 times at random moments, some of them during its start, and
# restarted each time. Every key must then be in the bucket with the right
# bytes. Reports the duplicates (the ring's uploaded counter survives the
# restarts: duplicates = uploaded - messages) and the journal epoch.
set -uo pipefail
IT_NAME=kill9
. "$(dirname "$0")/lib.sh"

PROCS=4
PER=${PER:-$([ -n "${SAN:-}" ] && echo 500 || echo 5000)}
KILLS=${KILLS:-20}
MAXLEN=4096
BUCKET=bucket-kill9
TOTAL=$((PROCS * PER))
# Random moments: 0 to MAX_MS after the previous start (sanitizer builds
# start and upload more slowly, so the same spread covers the run there).
MAX_MS=${MAX_MS:-$([ -n "${SAN:-}" ] && echo 2500 || echo 2000)}

it_s3rver "$BUCKET"
it_uploader --bucket "$BUCKET" --workers 8 --ring-size 4M
it_wait_ready

log "producing $PROCS x $PER messages of 1 B to $MAXLEN B"
"$B/tests/tool_produce" "$RING" "$PROCS" "$PER" k9/ 1 "$MAXLEN" &
prod=$!

kills=0 early=0
for i in $(seq 1 "$KILLS"); do
	it_kill9_round "$i" "$MAX_MS"
	pid=$KILLED_PID ms=$KILL_MS
	kills=$((kills + 1))
	# The pid stays in the ring after death: had this one attached?
	attached=$(it_stat '["uploader"]["pid"]')
	[ "$attached" = "$pid" ] || early=$((early + 1))
	up=$(it_stat '["uploaded"]')
	log "kill $i after ${ms} ms (pid $pid$([ "$attached" = "$pid" ] || echo ', before it attached')): uploaded=$up"
	it_uploader --bucket "$BUCKET" --workers 8
done
it_wait_ready
wait $prod || fail "producers failed"
log "producers done; waiting for the ring to drain"
for _ in $(seq 1 1800); do
	[ "$(it_stat '["used_bytes"]')" -eq 0 ] && [ "$(it_stat '["in_flight"]')" -eq 0 ] && break
	sleep 0.1
done
[ "$(it_stat '["used_bytes"]')" -eq 0 ] || fail "the ring did not drain: $(it_stat '["pending"]') pending"
S3_BUCKET=$BUCKET "$B/tests/tool_s3check" "$PROCS" "$PER" k9/ 1 "$MAXLEN" || fail "bucket check after $kills kills"
up=$(it_stat '["uploaded"]')
epoch=$(it_stat '["uploader"]["epoch"]')
for c in dead_lettered corrupt abandoned dropped_full; do
	v=$(it_stat "[\"$c\"]")
	[ "$v" -eq 0 ] || fail "$c = $v"
done
[ "$up" -ge "$TOTAL" ] || fail "uploaded = $up < $TOTAL"
[ "$epoch" -ge 2 ] && [ "$epoch" -le $((kills + 1)) ] || fail "epoch $epoch after $kills kills"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
echo "figure: kill9 messages=$TOTAL kills=$kills kills_before_attach=$early uploaded=$up duplicates=$((up - TOTAL)) epoch=$epoch"
