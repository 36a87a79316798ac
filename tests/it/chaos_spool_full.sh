#!/usr/bin/env bash
# chaos_spool_full.sh -- the dead-letter spool's file system is full.
#
# The spool is a 64 KiB tmpfs mounted by the test. With --key-prefix of
# 1,000 bytes, every message whose key is longer than 24 bytes must be
# dead-lettered (KeyTooLongError, found before sending); the short ones are
# uploaded. 40 long-key messages of 4 KiB do not fit in 64 KiB. Checks:
# while the spool is full the spool alarm is raised (shmstat), the messages
# that could not be spooled stay in the ring (pending > 0; nothing dropped;
# the workers that hold them wait, so the short-key messages wait too), and
# the uploader keeps its heartbeat. Once the tmpfs is enlarged (remount), every waiting
# message is spooled and the alarm clears. Finally --replay (without the
# prefix) sends the spool to the bucket, and every message is checked
# there: nothing was lost.
set -uo pipefail
IT_NAME=spoolfull
. "$(dirname "$0")/lib.sh"

SPOOL=$WORK/spool
mkdir -p "$SPOOL"
if ! mount -t tmpfs -o size=64k,mode=0700 tmpfs "$SPOOL"; then
	# As root the mount must work (CI runs as root): not a skip then.
	[ "$(id -u)" -ne 0 ] || fail "cannot mount a tmpfs as root"
	echo "SKIP: cannot mount a tmpfs (needs root)"
	exit 77
fi
trap 'umount "$SPOOL" 2>/dev/null; it_cleanup' EXIT

LONG=40 SHORT=200
# 1,000 bytes in 10 segments (s3rver stores a key as a file path, and a
# file name is at most 255 bytes).
seg=$(printf 'k%.0s' $(seq 1 99))/
PREFIX=$seg$seg$seg$seg$seg$seg$seg$seg$seg$seg
# Long keys: long-xxxxxxxx...xxxx/p0/N (over 24 bytes); short: s/p0/N.
LP=long-$(printf 'x%.0s' $(seq 1 40))/

it_s3rver bucket-sp
it_uploader --bucket bucket-sp --ring-size 1M --workers 4 --key-prefix "$PREFIX"
it_wait_ready

log "$LONG messages that must be dead-lettered (4 KiB each) into a 64 KiB spool, $SHORT normal ones"
"$B/tests/tool_produce" "$RING" 1 $LONG "$LP" 4096 4096 || fail "producer (long)"
"$B/tests/tool_produce" "$RING" 1 $SHORT s/ 1 512 || fail "producer (short)"
for _ in $(seq 1 100); do
	[ "$(it_stat '["spool_alarm"]')" = True ] && break
	sleep 0.1
done
[ "$(it_stat '["spool_alarm"]')" = True ] || fail "no spool alarm with a full spool"
err=$(it_stat '["last_error"]')
echo "$err" | grep -q 'spool' || fail "last_error does not name the spool: $err"
grep -q 'alarm="dead-letter spool unusable"' "$WORK/upl.log" || fail "no spool alarm in the log"
sleep 3
dl1=$(it_stat '["dead_lettered"]')
pending=$(it_stat '["pending"]')
inflight=$(it_stat '["in_flight"]')
hb=$(it_stat '["uploader"]["heartbeat_age_ms"]')
files1=$(find "$SPOOL" -name '*.dlq' | wc -l)
[ "$dl1" -lt $LONG ] || fail "all $LONG spooled into 64 KiB?"
[ "$dl1" -eq "$files1" ] || fail "dead_lettered=$dl1 but $files1 spool files"
[ $((pending + inflight)) -gt 0 ] || fail "nothing waits in the ring while the spool is full"
[ "$hb" -lt 3000 ] || fail "heartbeat $hb ms old while the spool is full"
check=$("$B/bin/shmstat" --ring "$RING" --check 2>&1)
echo "figure: spool_full dead_lettered=$dl1 waiting_in_ring=$((pending + inflight)) uploaded=$(it_stat '["uploaded"]') alarm=\"$err\" check=\"$check\""

log "freeing space (remount with 1 MiB)"
mount -o remount,size=1m "$SPOOL" || fail "remount"
t0=$(date +%s%N)
for _ in $(seq 1 300); do
	[ "$(it_stat '["dead_lettered"]')" -ge $LONG ] && [ "$(it_stat '["pending"]')" = 0 ] &&
		[ "$(it_stat '["in_flight"]')" = 0 ] && break
	sleep 0.1
done
free_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
dl=$(it_stat '["dead_lettered"]')
up=$(it_stat '["uploaded"]')
[ "$dl" -eq $LONG ] || fail "dead_lettered=$dl after freeing space, want $LONG"
[ "$up" -ge $SHORT ] || fail "uploaded=$up, want $SHORT"
[ "$(it_stat '["pending"]')" = 0 ] || fail "records left in the ring"
[ "$(it_stat '["spool_alarm"]')" = False ] || fail "the spool alarm stays raised"
[ "$(find "$SPOOL" -name '*.dlq' | wc -l)" -eq $LONG ] || fail "spool files: $(ls "$SPOOL" | wc -l)"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"

log "replaying the spool (without the key prefix) and checking every message"
"$B/bin/s3ring-uploader" --replay "$SPOOL" --bucket bucket-sp --endpoint "$S3_ENDPOINT" --path-style \
	>"$WORK/replay.out" 2>"$WORK/replay.err" || fail "replay: $(cat "$WORK/replay.out" "$WORK/replay.err")"
grep -q "replayed $LONG, failed 0" "$WORK/replay.out" || fail "replay: $(cat "$WORK/replay.out")"
S3_BUCKET=bucket-sp "$B/tests/tool_s3check" 1 $LONG "$LP" 4096 4096 || fail "bucket check (dead-lettered)"
S3_BUCKET=bucket-sp S3CHECK_KEY_PREFIX=$PREFIX "$B/tests/tool_s3check" 1 $SHORT s/ 1 512 ||
	fail "bucket check (uploaded)"
echo "figure: spool_freed dead_lettered=$dl uploaded=$up spooled_within_ms=$free_ms replayed=$LONG lost=0"
