#!/usr/bin/env bash
# uploader_outage.sh -- the S3 server goes away while messages flow and
# comes back on the same port with the same data: producers are never
# blocked (the ring absorbs the backlog), uploads pause and are retried,
# and after the server returns every message is delivered byte for byte,
# nothing dead-lettered, retried > 0.
set -uo pipefail
IT_NAME=outage
. "$(dirname "$0")/lib.sh"

SRV=$TOP/tests/servers/s3rver.sh
NA=${NA:-$([ -n "${SAN:-}" ] && echo 150 || echo 1500)}  # per producer, before and across the stop
NB=${NB:-$([ -n "${SAN:-}" ] && echo 150 || echo 1500)}  # per producer, while the server is down
OUTAGE_S=${OUTAGE_S:-5}
BUCKET=bucket-outage

it_s3rver "$BUCKET"
# --max-attempts 2: failures during an outage (nothing answers, not even
# HEAD of the bucket) do not count toward it, so even a small limit must
# dead-letter nothing: the messages wait in the ring for the server.
it_uploader --bucket "$BUCKET" --workers 8 --ring-size 16M --max-attempts 2
it_wait_ready

log "batch A: 2 x $NA messages, flowing"
"$B/tests/tool_produce" "$RING" 2 "$NA" outA/ 1 2048 &
prodA=$!
sleep 1
before=$(it_stat '["uploaded"]')
log "stopping s3rver at uploaded=$before"
"$SRV" stop "$WORK/s3rver" >/dev/null 2>&1 || fail "stopping s3rver"
t_down=$(date +%s%N)
wait $prodA || fail "producers of batch A failed"
log "batch B: 2 x $NB messages while the server is down, put with timeout 0"
"$B/tests/tool_produce" "$RING" 2 "$NB" outB/ 1 2048 0 || fail "a put failed while the server was down: the ring did not absorb"
sleep 1
at_down=$(it_stat '["uploaded"]')
pending=$(it_stat '["pending"]')
dropped=$(it_stat '["dropped_full"]')
[ "$dropped" -eq 0 ] || fail "$dropped puts dropped"
[ "$pending" -gt 0 ] || fail "nothing pending while the server is down"
while [ $(( ($(date +%s%N) - t_down) / 1000000000 )) -lt "$OUTAGE_S" ]; do sleep 0.2; done
[ "$(it_stat '["uploaded"]')" -eq "$at_down" ] || fail "uploads counted while the server was down"
retried_down=$(it_stat '["retried"]')
[ "$retried_down" -gt 0 ] || fail "no retries while the server was down"
kill -0 "$(it_uploader_pid)" || fail "the uploader died during the outage"

log "starting s3rver again on port $S3_PORT with the same data ($pending pending, $retried_down retried)"
S3RVER_PORT=$S3_PORT S3RVER_QUIET=1 "$SRV" start "$WORK/s3rver" "$BUCKET" >/dev/null ||
	fail "s3rver did not start again on port $S3_PORT"
t_up=$(date +%s%N)
total=$((2 * NA + 2 * NB))
it_wait_uploaded "$total" 180
recover_ms=$(( ($(date +%s%N) - t_up) / 1000000 ))
outage_ms=$(( (t_up - t_down) / 1000000 ))
S3_BUCKET=$BUCKET "$B/tests/tool_s3check" 2 "$NA" outA/ 1 2048 || fail "batch A is not all in the bucket"
S3_BUCKET=$BUCKET "$B/tests/tool_s3check" 2 "$NB" outB/ 1 2048 || fail "batch B is not all in the bucket"
up=$(it_stat '["uploaded"]')
retried=$(it_stat '["retried"]')
dl=$(it_stat '["dead_lettered"]')
[ "$dl" -eq 0 ] || fail "$dl dead-lettered"
[ "$retried" -gt 0 ] || fail "retried = 0"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
echo "figure: outage messages=$total outage_ms=$outage_ms pending_at_outage=$pending uploaded_before=$before retried=$retried drain_after_return_ms=$recover_ms duplicates=$((up - total)) dead_lettered=$dl"
