#!/usr/bin/env bash
# chaos_truncate.sh -- a process with write access shrinks the ring's shm
# object (ftruncate, here by truncate(1) as the same user) while the
# uploader is attached and messages are waiting.
#
# 1. Cut to the header size (the data region is gone): the uploader must
#    not die of SIGBUS; it raises the "ring unreadable" alarm (log line;
#    shmstat --check says UNKNOWN, truncated), and stays up.
# 2. Cut to 0 bytes (the header is gone too): the uploader must not die of
#    SIGBUS. Its ring is gone, so it says so in one log line and stops by
#    itself with exit status 1 (a supervisor's restart then reports the
#    corrupt ring until it is recreated).
set -uo pipefail
IT_NAME=truncate
. "$(dirname "$0")/lib.sh"

HDR=16384  # RING_HEADER_SIZE

upl_alive() {
	local p; p=$(it_uploader_pid)
	[ -n "$p" ] && kill -0 "$p" 2>/dev/null && [ "$(awk '{ print $3 }' "/proc/$p/stat")" != Z ]
}

it_s3rver bucket-tr
it_uploader --bucket bucket-tr --ring-size 1M --workers 2 --stop-timeout 3
it_wait_ready
"$B/tests/tool_produce" "$RING" 1 200 tr/ 1 4096 || fail "producer"
it_wait_uploaded 200 60
# More messages, with the uploader paused by SIGSTOP so that they wait.
p=$(it_uploader_pid)
kill -STOP "$p"
"$B/tests/tool_produce" "$RING" 1 100 tr2/ 1 4096 || fail "producer"

log "phase 1: truncating the ring to its header ($HDR bytes) under the uploader"
truncate -s $HDR "/dev/shm/s3ring.$RING" || fail "truncate"
kill -CONT "$p"
sleep 2
upl_alive || fail "the uploader died after the data region was cut (SIGBUS?): $(tail -n 3 "$WORK/upl.log")"
grep -q 'alarm="ring unreadable"' "$WORK/upl.log" || fail "no 'ring unreadable' alarm in the log"
line=$(grep -o 'alarm="ring unreadable" error="[^"]*"' "$WORK/upl.log" | head -n 1)
check=$("$B/bin/shmstat" --ring "$RING" --check 2>&1)
crc=$?
log "shmstat --check ($crc): $check"
# shmstat cannot map a truncated ring, so it cannot show the uploader's
# alarm flag; it says UNKNOWN and why.
[ $crc -ge 2 ] || fail "shmstat --check exit $crc: $check"
echo "$check" | grep -q 'truncated' || fail "shmstat --check does not say why: $check"
echo "figure: truncate_data uploader=alive $line shmstat_check_exit=$crc"

log "phase 2: truncating the ring to 0 bytes"
truncate -s 0 "/dev/shm/s3ring.$RING" || fail "truncate"
for _ in $(seq 1 100); do upl_alive || break; sleep 0.1; done
if upl_alive; then
	fail "the uploader still runs 10 s after its ring was cut to nothing"
fi
wait "$UPL_PID"
rc=$?
UPL_PID=
echo "figure: truncate_all uploader_exit=$rc"
[ $rc -eq 135 ] && fail "the uploader died of SIGBUS when the header was cut"
[ $rc -eq 1 ] || fail "exit $rc after the ring was cut to nothing (expected 1)"
grep -q 'the ring was truncated by another process' "$WORK/upl.log" ||
	fail "no log line saying the ring was truncated: $(tail -n 3 "$WORK/upl.log")"
echo "chaos_truncate ok"
