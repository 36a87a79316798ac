#!/usr/bin/env bash
# uploader_e2e.sh -- 10,000 messages from 4 producer processes reach s3rver
# byte for byte, across a graceful restart (SIGTERM) in the middle.
set -uo pipefail
IT_NAME=e2e
. "$(dirname "$0")/lib.sh"

it_s3rver bucket-e2e
it_uploader --bucket bucket-e2e --ring-size 1M --workers 8
it_wait_ready

log "producing 4 x 2,500 messages of 1 B to 4 KiB"
"$B/tests/tool_produce" "$RING" 4 2500 e2e/ 1 4096 &
prod=$!
sleep 1
log "graceful restart"
t0=$(date +%s%N)
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
stop_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $stop_ms -lt 10000 ] || fail "SIGTERM took ${stop_ms} ms"
grep -q 'msg="stopped"' "$WORK/upl.log" || fail "no 'stopped' line in the log"
it_uploader --bucket bucket-e2e --workers 8
it_wait_ready
wait $prod || fail "producers failed"
it_wait_uploaded 10000 120
epoch=$(it_stat '["uploader"]["epoch"]')
[ "$epoch" -ge 2 ] || fail "epoch $epoch after a restart"
S3_BUCKET=bucket-e2e "$B/tests/tool_s3check" 4 2500 e2e/ 1 4096 || fail "bucket check"
up=$(it_stat '["uploaded"]')
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
# Nothing per message at info level, and the stats are clean.
n=$(wc -l <"$WORK/upl.log")
[ "$n" -lt 40 ] || fail "$n log lines at info level"
[ "$(it_stat '["dead_lettered"]')" -eq 0 ] || fail "dead letters"
[ "$(it_stat '["corrupt"]')" -eq 0 ] || fail "corrupt records"
echo "figure: e2e messages=10000 uploaded=$up duplicates=$((up - 10000)) sigterm_stop_ms=$stop_ms"
