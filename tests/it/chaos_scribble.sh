#!/usr/bin/env bash
# chaos_scribble.sh -- a process with write access scribbles random bytes
# into the ring while producers put and the uploader drains
# (tests/tool_scribble.c).
#
# 1. data region: 3,000 writes into records, keys, bodies and tags.
# 2. header: 1,000 writes into counters, slots, uploader state, futex words.
# 3. control words: head and tail set to garbage.
# After each phase the uploader is alive, its heartbeat is fresh, and after
# the last one it still stops on SIGTERM within its stop timeout. Corrupt
# records are counted, and a ring it cannot read raises the "ring
# unreadable" alarm (shmstat --check CRITICAL/UNKNOWN, last_error says it).
# A key damaged after it was checked is never stored under the damaged
# name: the uploader checks the header CRC (which covers the key) on its
# own copy. An object under a key no producer used is counted and reported
# as stored_under_damaged_key, and fails the test at the end.
# A body changed while it is sent makes the uploader abort the PUT before
# its last byte; s3rver keeps the truncated body without metadata, where
# S3 stores nothing, so only objects with metadata count as stored.
# Only messages that were committed and not scribbled can be expected:
# every expected key that is in the bucket has the right bytes; the counts
# (missing, corrupt, resynced, uploaded under a damaged key) are reported.
set -uo pipefail
IT_NAME=scribble
. "$(dirname "$0")/lib.sh"

PROCS=2 PER=3000 DWRITES=3000 HWRITES=1000
[ -n "${SAN:-}" ] && PER=1000 DWRITES=1000 HWRITES=300
MAXLEN=1024
N=$((PROCS * PER))

alive_and_beating() {  # WHAT
	local p; p=$(it_uploader_pid)
	[ -n "$p" ] && kill -0 "$p" 2>/dev/null || fail "$1: the uploader died"
	[ "$(awk '{ print $3 }' "/proc/$p/stat")" != Z ] || fail "$1: the uploader is a zombie"
	local hb
	hb=$("$B/bin/shmstat" --ring "$RING" --json 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["uploader"]["heartbeat_age_ms"])' 2>/dev/null)
	case $hb in
	'' | None) log "$1: shmstat cannot read the heartbeat" ;;
	*) [ "$hb" -lt 3000 ] || fail "$1: heartbeat ${hb} ms old (hung?)" ;;
	esac
}

# The check itself: the body of an aborted PUT (what s3rver leaves, with no
# metadata) is missing, not wrong; the same bytes with metadata are wrong.
mkdir -p "$WORK/kc/scr/p0"
printf 'truncated' >"$WORK/kc/scr/p0/1._S3rver_object"
kc=$(echo scr/p0/1 | "$B/tests/tool_keycheck" --dir "$WORK/kc" scr/ 1 $MAXLEN 2>/dev/null)
[ "$kc" = "checked 1 missing 1 wrong 0" ] || fail "an unfinished PUT's body: $kc"
echo '{}' >"$WORK/kc/scr/p0/1._S3rver_metadata.json"
kc=$(echo scr/p0/1 | "$B/tests/tool_keycheck" --dir "$WORK/kc" scr/ 1 $MAXLEN 2>/dev/null)
[ "$kc" = "checked 1 missing 0 wrong 1" ] || fail "a finished PUT with wrong bytes: $kc"

it_s3rver bucket-scr
it_uploader --bucket bucket-scr --ring-size 1M --workers 8 --stop-timeout 5
it_wait_ready

log "phase 1: $PROCS x $PER messages while $DWRITES random writes hit the data region"
"$B/tests/tool_produce" "$RING" $PROCS $PER scr/ 1 $MAXLEN 5000 2>"$WORK/prod.err" &
prod=$!
"$B/tests/tool_scribble" "$RING" data "$DWRITES" 1000 42 || fail "scribbler"
wait $prod || log "producers reported errors: $(sort "$WORK/prod.err" | uniq -c | head -3)"
for _ in $(seq 1 240); do
	[ "$(it_stat '["pending"]')" = 0 ] && [ "$(it_stat '["in_flight"]')" = 0 ] && break
	sleep 0.25
done
[ "$(it_stat '["pending"]')" = 0 ] || fail "ring wedged after data scribbles: pending $(it_stat '["pending"]')"
alive_and_beating "data scribbles"
produced=$(it_stat '["produced"]')
up=$(it_stat '["uploaded"]')
corrupt=$(it_stat '["corrupt"]')
resynced=$(it_stat '["resynced"]')
abandoned=$(it_stat '["abandoned"]')
dead=$(it_stat '["dead_lettered"]')
[ "$corrupt" -gt 0 ] || log "note: no record counted corrupt (scribbles hit consumed space only)"
awk -v P=$PROCS -v M=$PER 'BEGIN { for (p = 0; p < P; p++) for (i = 1; i <= M; i++) print "scr/p" p "/" i }' >"$WORK/keys"
out=$("$B/tests/tool_keycheck" --dir "$WORK/s3rver/data/bucket-scr" scr/ 1 $MAXLEN <"$WORK/keys" 2>/dev/null | tail -n 1)
read -r _ checked _ missing _ wrong <<<"$out"
[ "$wrong" -eq 0 ] || fail "$wrong objects with wrong bytes under their right key"
# Objects under a key no producer used: a scribbled key that still passed
# every check (the key is not covered by a CRC).
# Only finished PUTs count (tool_keycheck.c: s3rver keeps the body of an
# aborted one, without its metadata).
find "$WORK/s3rver/data/bucket-scr" -name '*._S3rver_metadata.json' | sed "s|^$WORK/s3rver/data/bucket-scr/||; s|\._S3rver_metadata\.json$||" |
	sort >"$WORK/stored"
sort "$WORK/keys" >"$WORK/keys.sorted"
foreign=$(comm -23 "$WORK/stored" "$WORK/keys.sorted" | wc -l)
comm -23 "$WORK/stored" "$WORK/keys.sorted" | head -3 | sed 's/^/    stored under a damaged key: /' | cat -v
echo "figure: scribble_data messages=$N writes=$DWRITES produced=$produced uploaded=$up missing=$missing wrong_bytes=0 corrupt=$corrupt resynced=$resynced abandoned=$abandoned dead_lettered=$dead stored_under_damaged_key=$foreign"

log "phase 2: $HWRITES random writes into the header (not the geometry, head or tail)"
"$B/tests/tool_produce" "$RING" 1 500 scr2/ 1 $MAXLEN 2000 >/dev/null 2>&1 &
prod=$!
"$B/tests/tool_scribble" "$RING" header "$HWRITES" 2000 7 || fail "scribbler"
wait $prod
sleep 1
alive_and_beating "header scribbles"
json=$("$B/bin/shmstat" --ring "$RING" --json 2>&1)
check=$("$B/bin/shmstat" --ring "$RING" --check 2>&1)
echo "figure: scribble_header writes=$HWRITES shmstat_check=\"$check\""

log "phase 3: head and tail set to garbage"
"$B/tests/tool_scribble" "$RING" control 4 100000 9 || fail "scribbler"
sleep 1.5
alive_and_beating "control-word scribbles"
# shmstat refuses a ring whose control words are out of range (UNKNOWN,
# with the reason); the uploader raises its alarm in the header and logs it.
check=$("$B/bin/shmstat" --ring "$RING" --check 2>&1)
crc=$?
[ $crc -ge 2 ] || fail "shmstat --check exit $crc after garbage control words: $check"
echo "$check" | grep -q 'not a valid ring' || fail "shmstat --check does not say why: $check"
grep -q 'alarm="ring unreadable"' "$WORK/upl.log" || fail "no 'ring unreadable' alarm in the log"
alarm=$(grep -o 'alarm="ring unreadable" error="[^"]*"' "$WORK/upl.log" | head -n 1)
t0=$(date +%s%N)
it_stop_uploader || fail "uploader exited non-zero on SIGTERM after the scribbles"
stop_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $stop_ms -lt 10000 ] || fail "SIGTERM took ${stop_ms} ms"
echo "figure: scribble_control check_exit=$crc uploader_log: $alarm sigterm_stop_ms=$stop_ms"
[ "$foreign" -eq 0 ] || fail "$foreign messages were stored under a damaged key (the record's key is not covered by a CRC)"
