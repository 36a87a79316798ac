#!/usr/bin/env bash
# ring_retire_backlog.sh -- a ring removed while it holds a backlog: the
# uploader reads every committed record of the retired ring before it
# starts again, however long past --stop-timeout that takes.
#
# 5,000 messages are put into a ring with no uploader attached; then the
# uploader starts with one worker and --stop-timeout 1, and the ring is
# removed at once. Draining 5,000 records through one worker takes several
# seconds: the stop timeout bounds the wait for producers still writing,
# never the reading of what was committed. Every message is in the bucket,
# and the uploader then serves the ring it created again.
set -uo pipefail
IT_NAME=backlog
. "$(dirname "$0")/lib.sh"

# Not scaled down under the sanitizers: the drain must outlast the stop
# timeout for the test to mean anything (a sanitized uploader is slower
# too, so it takes about as long).
N=5000
DATA=$WORK/s3rver/data/bucket-bl

it_s3rver bucket-bl
"$B/tests/tool_ring" create "$RING" $((4 << 20)) || fail "tool_ring create"
"$B/tests/tool_produce" "$RING" 1 $N bl/ 1 200 || fail "producer"
[ "$(it_stat '["pending"]')" -eq "$N" ] || fail "pending $(it_stat '["pending"]'), want $N"
it_uploader --bucket bucket-bl --workers 1 --stop-timeout 1
it_wait_ready
upl=$(it_uploader_pid)
rm "/dev/shm/s3ring.$RING"
log "ring removed with $N records in it"
t0=$SECONDS
for _ in $(seq 1 1200); do
	[ "$(grep -c 'msg="started"' "$WORK/upl.log")" -ge 2 ] && break
	sleep 0.1
done
[ "$(grep -c 'msg="started"' "$WORK/upl.log")" -ge 2 ] || fail "the uploader did not start again on a new ring"
drain_s=$((SECONDS - t0))
grep -q 'the ring was removed' "$WORK/upl.log" || fail "no log line about the removal"
[ "$(it_uploader_pid)" = "$upl" ] || fail "the uploader is another process"
seq 1 $N | sed 's|^|bl/p0/|' >"$WORK/keys"
"$B/tests/tool_keycheck" --dir "$DATA" bl/ 1 200 <"$WORK/keys" ||
	fail "committed records of the retired ring were not uploaded"
log "all $N uploaded; the uploader started again after ${drain_s}s"
it_wait_ready
echo "one more" | "$B/bin/s3ring-put" --ring "$RING" bl/after /dev/stdin || fail "s3ring-put into the new ring"
it_wait_uploaded 1 30
[ -e "$DATA/bl/after._S3rver_object" ] || fail "the new ring is not served"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
echo "figure: ring_retire_backlog backlog=$N workers=1 stop_timeout_s=1 drain_s=$drain_s lost=0"
