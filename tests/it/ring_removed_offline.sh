#!/usr/bin/env bash
# ring_removed_offline.sh -- a ring removed while no uploader runs, under 2
# busy producers: nobody is there to retire it, so the producers must see
# for themselves (no heartbeat: one fstat per put) that their object lost
# its name, and fail with -ESTALE instead of returning 0 for puts nobody
# will read. The uploader is stopped (SIGTERM), the ring removed, and the
# uploader started again: it creates a new ring, the producers reopen it,
# and every put that returned 0 after the removal is in the bucket. (What
# was committed into the old ring between the stop and the removal is
# removed with it: nobody can upload a deleted ring.)
set -uo pipefail
IT_NAME=offline
. "$(dirname "$0")/lib.sh"

MAXLEN=1024
SHM=/dev/shm/s3ring.$RING
DATA=$WORK/s3rver/data/bucket-off
PIDS=()

it_s3rver bucket-off
it_uploader --bucket bucket-off --ring-size 4M --workers 8
it_wait_ready
for id in 1 2; do
	"$B/tests/tool_slowput" "$RING" $id off/ "$WORK/p$id.log" loop $MAXLEN >"$WORK/p$id.out" 2>&1 &
	PIDS+=($!)
done
sleep 2
before=$(it_stat '["produced"]')
it_wait_uploaded "$before" 60 || fail "the first puts were not uploaded"
log "the uploader stops; the ring is removed while none runs"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
sleep 0.5
rm "$SHM"
sleep 0.3
# Every put logged so far went into the old object before it lost its
# name; from here on a put that returns 0 must be in a ring an uploader
# reads.
for id in 1 2; do wc -l <"$WORK/p$id.log" >"$WORK/p$id.before"; done
sleep 0.7
log "an uploader starts again and creates the ring"
it_uploader --bucket bucket-off --ring-size 4M --workers 8
it_wait_ready
sleep 2
for i in 0 1; do
	kill -TERM "${PIDS[$i]}"
	wait "${PIDS[$i]}" || fail "producer $((i + 1)) failed: $(cat "$WORK/p$((i + 1)).out")"
done
for id in 1 2; do
	read -r _ puts _ estale _ reopens _ <"$WORK/p$id.out"
	[ "$estale" -ge 1 ] && [ "$reopens" -ge 1 ] ||
		fail "producer $id: $estale -ESTALE, $reopens reopens: the removed ring was not noticed"
done
: >"$WORK/keys"
for id in 1 2; do
	tail -n +"$(( $(cat "$WORK/p$id.before") + 1 ))" "$WORK/p$id.log" >>"$WORK/keys"
done
n=$(wc -l <"$WORK/keys")
[ "$n" -gt 0 ] || fail "no put after the removal returned 0"
it_wait_uploaded "$(it_stat '["produced"]')" 120 || fail "the new ring's puts were not uploaded"
"$B/tests/tool_keycheck" --dir "$DATA" off/ 1 $MAXLEN <"$WORK/keys" ||
	fail "puts that returned 0 are missing from the bucket"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
echo "figure: ring_removed_offline committed_puts=$n lost=0"
