#!/usr/bin/env bash
# ring_replaced_outage.sh -- a ring removed while S3 is down, for longer
# than stop-timeout.
#
# The uploader (stop-timeout 1 s) holds committed messages it cannot upload
# when the ring is removed. It retires the ring, and once stop-timeout is
# up it gives up only producers still writing: the committed messages, whose
# puts returned 0, wait for the server and are all in the bucket after it
# returns; only then does the uploader start again on a new ring.
set -uo pipefail
IT_NAME=replaced_outage
. "$(dirname "$0")/lib.sh"

SRV=$TOP/tests/servers/s3rver.sh
N=${N:-$([ -n "${SAN:-}" ] && echo 100 || echo 500)}  # per producer, while the server is down
BUCKET=bucket-rout
SHM=/dev/shm/s3ring.$RING

it_s3rver "$BUCKET"
it_uploader --bucket "$BUCKET" --workers 4 --ring-size 4M --stop-timeout 1 --max-attempts 2
it_wait_ready
upl=$(it_uploader_pid)

log "stopping s3rver"
"$SRV" stop "$WORK/s3rver" >/dev/null 2>&1 || fail "stopping s3rver"
log "2 x $N messages while the server is down"
"$B/tests/tool_produce" "$RING" 2 "$N" rout/ 1 512 0 || fail "a put failed while the server was down"
pending=$(it_stat '["pending"]')
[ "$pending" -gt 0 ] || fail "nothing pending while the server is down"

log "removing the ring with $pending bytes pending"
ino=$(stat -c %i "$SHM")
rm "$SHM"
t0=$SECONDS
while ! grep -q 'the ring was removed' "$WORK/upl.log"; do
	[ $((SECONDS - t0)) -lt 30 ] || fail "the removal was not noticed"
	sleep 0.1
done
# Well past stop-timeout, with the server still away.
sleep 4
kill -0 "$upl" 2>/dev/null || fail "the uploader died while the server was down"

log "starting s3rver again on port $S3_PORT"
S3RVER_PORT=$S3_PORT S3RVER_QUIET=1 "$SRV" start "$WORK/s3rver" "$BUCKET" >/dev/null ||
	fail "s3rver did not start again on port $S3_PORT"
t0=$SECONDS
until out=$(S3_BUCKET=$BUCKET "$B/tests/tool_s3check" 2 "$N" rout/ 1 512 2>&1); do
	[ $((SECONDS - t0)) -lt 120 ] || fail "not every committed message is in the bucket: $out"
	sleep 1
done
log "$out"
t0=$SECONDS
until [ "$(stat -c %i "$SHM" 2>/dev/null)" != "" ] && [ "$(stat -c %i "$SHM")" != "$ino" ]; do
	[ $((SECONDS - t0)) -lt 60 ] || fail "the uploader did not create the ring again"
	sleep 0.1
done
[ "$(it_uploader_pid)" = "$upl" ] || fail "the uploader is another process after the removal"
echo "figure: ring_replaced_outage messages=$((2 * N)) lost=0"
