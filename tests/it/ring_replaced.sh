#!/usr/bin/env bash
# ring_replaced.sh -- a ring removed, then replaced, under 4 busy producers.
#
# Four tool_slowput producers put without pause; on -ESTALE they close the
# handle and open the ring again (waiting while it does not exist).
# 1. The ring is removed (rm /dev/shm/s3ring.NAME). The uploader notices
#    within about a second, retires the old ring (its puts fail with
#    -ESTALE from then on), uploads what it holds, starts again in the same
#    process (exec, same pid) and creates the ring anew.
# 2. The ring is removed and another process creates it at once with
#    another size (tool_ring create, 256 KiB): the uploader finds it
#    replaced, finishes the old one and attaches to the new one.
# Every put that returned 0 (each producer logs its key after the commit)
# is in the bucket with its bytes, each producer reopened once per
# replacement, and the uploader, still the same process, serves the ring
# that now has the name.
set -uo pipefail
IT_NAME=replaced
. "$(dirname "$0")/lib.sh"

MAXLEN=1024
SHM=/dev/shm/s3ring.$RING
DATA=$WORK/s3rver/data/bucket-rep
PIDS=()

# live_producers: producer slots of the ring now named $RING whose
# process is alive.
live_producers() {
	it_stat '["producers"]' 2>/dev/null | /usr/bin/python3 -c \
		'import ast, sys; print(sum(1 for p in ast.literal_eval(sys.stdin.read()) if p["alive"]))' 2>/dev/null ||
		echo 0
}

# wait_log SECONDS N PATTERN: until the uploader's log has N lines
# matching PATTERN (grep -E); prints the seconds waited.
wait_log() {
	local t0=$SECONDS
	while [ "$(grep -cE "$3" "$WORK/upl.log")" -lt "$2" ]; do
		[ $((SECONDS - t0)) -lt "$1" ] || fail "not $2 log lines like '$3' after ${1}s"
		sleep 0.05
	done
	echo $((SECONDS - t0))
}

# wait_serving INODE SECONDS: until a ring other than INODE has the name,
# the uploader heartbeats into it and all 4 producers have opened it.
wait_serving() {
	local old=$1 t0=$SECONDS ino
	while :; do
		ino=$(stat -c %i "$SHM" 2>/dev/null)
		if [ -n "$ino" ] && [ "$ino" != "$old" ] &&
			[ "$(it_stat '["uploader"]["alive"]' 2>/dev/null)" = True ] &&
			[ "$(live_producers)" -eq 4 ]; then
			return 0
		fi
		[ $((SECONDS - t0)) -lt "$2" ] ||
			fail "after ${2}s: ring inode ${ino:-none} (old $old), $(live_producers) producers on it"
		sleep 0.1
	done
}

it_s3rver bucket-rep
it_uploader --bucket bucket-rep --ring-size 1M --workers 8
it_wait_ready
upl=$(it_uploader_pid)

for id in 1 2 3 4; do
	"$B/tests/tool_slowput" "$RING" $id rep/ "$WORK/p$id.log" loop $MAXLEN >"$WORK/p$id.out" 2>&1 &
	PIDS+=($!)
done
sleep 2
[ "$(live_producers)" -eq 4 ] || fail "$(live_producers) producers on the ring, want 4"

log "1: the ring is removed under 4 busy producers"
ino1=$(stat -c %i "$SHM")
before=$(it_stat '["produced"]')
rm "$SHM"
notice1=$(wait_log 30 1 'the ring was removed')
wait_serving "$ino1" 60
[ "$(it_uploader_pid)" = "$upl" ] || fail "the uploader is another process after the removal"
[ "$(it_stat '["capacity_bytes"]')" -eq $((1 << 20)) ] || fail "the ring was created again at another size"
log "noticed after ${notice1}s; ring created again, $before puts into the old one before it went"
sleep 1

log "2: the ring is removed and another process creates it first, at 256 KiB"
ino2=$(stat -c %i "$SHM")
rm "$SHM"
"$B/tests/tool_ring" create "$RING" 262144 || fail "tool_ring create"
# "replaced", unless the uploader looked between the rm and the create
# (it then saw it removed, and attaches to the new ring all the same).
notice2=$(wait_log 30 2 'the ring was (removed|replaced)')
wait_serving "$ino2" 60
[ "$(it_uploader_pid)" = "$upl" ] || fail "the uploader is another process after the replacement"
[ "$(it_stat '["capacity_bytes"]')" -eq 262144 ] || fail "the uploader does not serve the new 256 KiB ring"
log "noticed after ${notice2}s; the uploader serves the new ring"
sleep 1

log "stopping the producers"
for i in 0 1 2 3; do
	kill -TERM "${PIDS[$i]}"
	wait "${PIDS[$i]}" || fail "producer $((i + 1)) failed: $(cat "$WORK/p$((i + 1)).out")"
done
# "puts P estale E reopens R slow S": one reopen per replacement.
for id in 1 2 3 4; do
	read -r _ puts _ estale _ reopens _ <"$WORK/p$id.out"
	[ "$reopens" -eq 2 ] && [ "$estale" -eq 2 ] ||
		fail "producer $id: $estale -ESTALE, $reopens reopens, want 2 and 2"
	[ "$(wc -l <"$WORK/p$id.log")" -eq "$puts" ] || fail "producer $id: $puts puts, $(wc -l <"$WORK/p$id.log") logged"
done
cat "$WORK"/p?.log >"$WORK/keys"
n=$(wc -l <"$WORK/keys")
produced=$(it_stat '["produced"]')
it_wait_uploaded "$produced" 120
"$B/tests/tool_keycheck" --dir "$DATA" rep/ 1 $MAXLEN <"$WORK/keys" ||
	fail "puts that returned 0 are missing from the bucket"
shuf -n 200 "$WORK/keys" | S3_BUCKET=bucket-rep "$B/tests/tool_keycheck" rep/ 1 $MAXLEN ||
	fail "bucket check (GET)"
[ "$(it_stat '["corrupt"]')" -eq 0 ] || fail "corrupt records"
[ "$(it_stat '["dead_lettered"]')" -eq 0 ] || fail "dead letters"
[ "$(grep -c 'msg="started"' "$WORK/upl.log")" -eq 3 ] || fail "the uploader did not start exactly twice again"
[ "$(it_uploader_pid)" = "$upl" ] || fail "the uploader is another process"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
echo "figure: ring_replaced committed_puts=$n on_last_ring=$produced noticed_removed_s=$notice1 noticed_replaced_s=$notice2 lost=0"
