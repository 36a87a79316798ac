#!/usr/bin/env bash
# uploader_batch_edges.sh -- batch mode's corner cases, each from the fault
# it once had:
# (a) the journal's batch table full of confirmed batches that head has not
#     passed (one rule's batch held open by max-age while another rule's
#     batches of 1K are confirmed 80 times): batches must go on closing;
# (b) a record read late (a producer stopped between reserve and commit)
#     inside the span of a batch that closed meanwhile, delivered while the
#     rule's next batch is open: it is in the closed batch's object, and
#     nowhere else, and the scan that waits for it does not spin;
# (c) a record over max-bytes inside the span of a batch confirmed before a
#     kill -9 goes alone after the restart (it was skipped, and lost), and
#     the confirmed batch is not sent again (its journal entry was dropped
#     when head sat inside its span, and its records were sent twice);
# (d) SIGTERM during an outage does not wait for a batch backing off;
# (e) more records that go alone than the in-flight table holds, behind an
#     open batch, do not stop reading until the batch's max-age;
# (f) a batch object refused for good goes to the spool whole, and
#     --replay sends it;
# (g) the same for a batch object over the part size, a multipart upload
#     whose earlier parts are no longer in memory: it is built again from
#     the ring into the spool, piece by piece (its records used to stay in
#     the ring under the configuration alarm);
# (h) the same with the dead-letter file's name taken: built again 5 s
#     later, not at once;
# (i) records damaged in the ring before they are read: counted corrupt
#     once each, in no object, and not again after a kill -9.
set -uo pipefail
IT_NAME=batchedge
. "$(dirname "$0")/lib.sh"

BUCKET=bucket-batchedge
it_s3rver "$BUCKET"
objects_with() { # PREFIX NEEDLE: how many objects under PREFIX hold NEEDLE
	local n=0 f
	for f in $("$TOP/tests/it/batch_fetch.py" "$BUCKET" "$1" "$WORK/got-$RANDOM" | cut -d' ' -f1); do
		grep -q -a -- "$2" "$f" && n=$((n + 1))
	done
	echo "$n"
}

# ---- (a)
it_uploader --bucket "$BUCKET" --ring-size 4M \
	--batch "a/:max-age=8000,max-bytes=512K" --batch "b/:max-bytes=1K,max-age=50"
it_wait_ready
echo hello | "$B/bin/s3ring-put" --ring "$RING" a/1 || fail "put a/1"
body=$(head -c 600 /dev/zero | tr '\0' x)
for i in $(seq 1 80); do
	printf '%s\n%s\n' "$body" "$body" | "$B/bin/s3ring-put" --ring "$RING" --lines "b/$i-" || fail "put b/$i"
done
it_wait_uploaded 161 60
[ "$(it_stat '["used_bytes"]')" -eq 0 ] || fail "records left in the ring"
grep -q "batch table is full" "$WORK/upl.log" || fail "the table never filled: the case was not made"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
echo "figure: batch_edges journal_full objects_b=$(it_stat '["uploader"]["batch"]["objects"]') uploaded=161"

# ---- (b)
it_uploader --bucket "$BUCKET" --batch "h/:max-bytes=64K,max-age=1500,framing=length,compression=none"
it_wait_ready
up0=$(it_stat '["uploaded"]')
echo one | "$B/bin/s3ring-put" --ring "$RING" h/a1 || fail "put h/a1"
"$B/tests/tool_slowput" "$RING" 1 h/ "$WORK/slow.log" stop &
slow=$!
sleep 0.6
echo two | "$B/bin/s3ring-put" --ring "$RING" h/a2 || fail "put h/a2"
sleep 2     # the batch [a1 .. a2] closes by age; its scan waits at the hole
upid=$(it_real_pid)
t0=$(awk '{print $14 + $15}' "/proc/$upid/stat")
sleep 1
t1=$(awk '{print $14 + $15}' "/proc/$upid/stat")
echo three | "$B/bin/s3ring-put" --ring "$RING" h/a3 || fail "put h/a3"
kill -CONT "$slow"
wait "$slow" || fail "the stopped producer's commit failed"
it_wait_uploaded $((up0 + 4)) 30
[ $((t1 - t0)) -lt 50 ] || fail "the uploader spun while a scan waited for a record ($((t1 - t0)) ticks in 1 s)"
[ "$(objects_with h/ h/p1/1)" -eq 1 ] || fail "the late record is in $(objects_with h/ h/p1/1) objects"
[ -z "$("$TOP/tests/it/batch_fetch.py" "$BUCKET" h/p1/ "$WORK/alone")" ] || fail "the late record went alone as well"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
echo "figure: batch_edges late_record objects=1 ticks_while_waiting=$((t1 - t0))"

# ---- (c) kill -9 with head held below (HOLD=1: a record over max-bytes
# before the batch) or inside (HOLD=0) a confirmed batch's span
RULE=(--key-prefix p/ --batch "d/:max-bytes=1K,max-age=300,framing=length,compression=none")
bigkey="d/$(head -c 1022 /dev/zero | tr '\0' k)"    # with p/, too long: dead-lettered
done_span() {
	local hold=$1 want=$((1 + $1)) dl0
	it_uploader --bucket "$BUCKET" "${RULE[@]}"
	it_wait_ready
	rm -rf "$WORK/spool"; touch "$WORK/spool"   # unusable: the records over max-bytes wait
	[ "$hold" -eq 1 ] && { head -c 2000 /dev/zero | tr '\0' A | "$B/bin/s3ring-put" --ring "$RING" "d/A${bigkey:3}" || fail "put big A"; }
	echo "s1-$hold" | "$B/bin/s3ring-put" --ring "$RING" "d/s1-$hold" || fail "put d/s1"
	head -c 2000 /dev/zero | tr '\0' B | "$B/bin/s3ring-put" --ring "$RING" "$bigkey" || fail "put big B"
	echo "s2-$hold" | "$B/bin/s3ring-put" --ring "$RING" "d/s2-$hold" || fail "put d/s2"
	for _ in $(seq 1 100); do
		[ "$(objects_with p/d/ "d/s2-$hold")" -eq 1 ] && break
		sleep 0.1
	done
	[ "$(objects_with p/d/ "d/s2-$hold")" -eq 1 ] || fail "the batch [s1, s2] was not confirmed before the kill"
	dl0=$(it_stat '["dead_lettered"]')
	kill -KILL "$(it_real_pid)"; wait "$UPL_PID" 2>/dev/null; UPL_PID=
	rm -f "$WORK/spool"; mkdir "$WORK/spool"
	it_uploader --bucket "$BUCKET" "${RULE[@]}"
	it_wait_ready
	for _ in $(seq 1 100); do
		[ "$(it_stat '["used_bytes"]')" -eq 0 ] && break
		sleep 0.1
	done
	[ "$(it_stat '["used_bytes"]')" -eq 0 ] || fail "hold=$hold: records left in the ring after the restart"
	[ "$(ls "$WORK/spool" | wc -l)" -eq "$want" ] || fail "hold=$hold: $(ls "$WORK/spool" | wc -l) of the $want records over max-bytes reached the spool"
	[ "$(it_stat '["dead_lettered"]')" -eq $((dl0 + want)) ] || fail "hold=$hold: dead_lettered $(it_stat '["dead_lettered"]'), not $((dl0 + want))"
	[ "$(objects_with p/d/ "d/s2-$hold")" -eq 1 ] || fail "hold=$hold: the confirmed batch was sent again under another key"
	it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
}
done_span 1
done_span 0
echo "figure: batch_edges done_span_after_kill held_below=ok held_inside=ok"

# ---- (d) SIGTERM during an outage: a batch backing off is not waited for
# (the drain used to last the whole stop-timeout); it stays in the ring and
# the next start sends it, once.
SRV=$TOP/tests/servers/s3rver.sh
it_uploader --bucket "$BUCKET" --stop-timeout 30 --batch "t/:max-age=100,framing=length,max-bytes=64K"
it_wait_ready
"$SRV" stop "$WORK/s3rver" >/dev/null 2>&1 || fail "stopping s3rver"
"$B/tests/tool_produce" "$RING" 1 50 t/ 0 100 || fail "producing t/"
sleep 1.5
t0=$(date +%s%N)
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
stop_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$stop_ms" -lt 20000 ] || fail "SIGTERM took ${stop_ms} ms with a batch backing off (stop-timeout 30 s)"
[ "$(it_stat '["used_bytes"]')" -gt 0 ] || fail "the batch did not stay in the ring"
S3RVER_PORT=$S3_PORT S3RVER_QUIET=1 "$SRV" start "$WORK/s3rver" "$BUCKET" >/dev/null ||
	fail "s3rver did not start again on port $S3_PORT"
it_uploader --bucket "$BUCKET" --batch "t/:max-age=100,framing=length,max-bytes=64K"
it_wait_ready
for _ in $(seq 1 300); do
	[ "$(it_stat '["used_bytes"]')" -eq 0 ] && break
	sleep 0.1
done
files=$("$TOP/tests/it/batch_fetch.py" "$BUCKET" t/ "$WORK/t") || fail "a t/ object does not decompress"
# shellcheck disable=SC2046
"$B/tests/tool_batchcheck" length 1 50 t/ 0 100 $(echo "$files" | cut -d' ' -f1) || fail "t/ is not in the bucket exactly once"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
echo "figure: batch_edges sigterm_in_outage stop_ms=$stop_ms delivered_after=yes"

# ---- (e) more records that go alone than the in-flight table has entries
# (4,096), behind a batch that stays open (max-age 10 minutes): the table,
# held at the batch's first record, stopped all reading until the batch's
# max-age; a full table now closes the batch.
SINGLES=4500
RULE=(--batch "e/:max-bytes=1M,max-age=600000,framing=length")
it_uploader --bucket "$BUCKET" --ring-size 8M "${RULE[@]}"
it_wait_ready
up0=$(it_stat '["uploaded"]')
head -c 600 /dev/zero | tr '\0' a | "$B/bin/s3ring-put" --ring "$RING" e/1 || fail "put e/1"
"$B/tests/tool_produce" "$RING" 1 "$SINGLES" single/ 1 64 || fail "producing the singles"
head -c 600 /dev/zero | tr '\0' b | "$B/bin/s3ring-put" --ring "$RING" e/2 || fail "put e/2"
it_wait_uploaded $((up0 + SINGLES + 2)) 300
[ "$(objects_with e/ 'e/1')" -eq 1 ] || fail "e/1 is in $(objects_with e/ 'e/1') objects"
S3_BUCKET=$BUCKET "$B/tests/tool_s3check" 1 "$SINGLES" single/ 1 64 || fail "the singles are not all in the bucket"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
echo "figure: batch_edges full_table_behind_an_open_batch singles=$SINGLES delivered=yes"

# A fake S3 that answers everything but HEAD with 503 SlowDown becomes
# S3_ENDPOINT (the real one kept in REAL_ENDPOINT), with an empty spool.
REAL_ENDPOINT=$S3_ENDPOINT
FAKE_PID=
trap '[ -n "$FAKE_PID" ] && kill -TERM "$FAKE_PID" 2>/dev/null; it_cleanup' EXIT
refusing_server() {  # NAME
	timeout -s KILL 120 python3 "$TOP/tests/fake_s3.py" slowdown "$WORK/port-$1" 110 >"$WORK/fake-$1.log" 2>&1 &
	FAKE_PID=$!
	for _ in $(seq 1 100); do [ -s "$WORK/port-$1" ] && break; sleep 0.05; done
	[ -s "$WORK/port-$1" ] || fail "fake server did not start"
	S3_ENDPOINT=http://127.0.0.1:$(cat "$WORK/port-$1")
	rm -rf "$WORK/spool"; mkdir "$WORK/spool"
}

# After N messages of PREFIX (MIN to MAX bytes) were put: the ring drains,
# all N are dead-lettered in one spool file and nothing else; then the
# uploader stops, --replay sends the file to s3rver, and the object holds
# every message once. DL_FILES: the object's "FILE KEY STORED_BYTES".
DL_FILES=
dead_lettered_and_replayed() {  # PREFIX N MIN MAX DL0
	for _ in $(seq 1 600); do
		[ "$(it_stat '["used_bytes"]')" -eq 0 ] && break
		sleep 0.1
	done
	[ "$(it_stat '["used_bytes"]')" -eq 0 ] || fail "the refused $1 batch stayed in the ring"
	[ "$(it_stat '["dead_lettered"]')" -eq $(($5 + $2)) ] || fail "dead_lettered $(it_stat '["dead_lettered"]'), not $(($5 + $2))"
	[ "$(find "$WORK/spool" -name '*.dlq' | wc -l)" -eq 1 ] || fail "spool files: $(ls -a "$WORK/spool")"
	DL_NAME=$(basename "$(find "$WORK/spool" -name '*.dlq')")
	[ "$(find "$WORK/spool" -name '.tmp-*' | wc -l)" -eq 0 ] || fail "a temporary spool file was left: $(ls -a "$WORK/spool")"
	grep -q 'msg="batch object dead-lettered"' "$WORK/upl.log" || fail "no log line for the dead-lettered $1 batch"
	it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
	kill -TERM "$FAKE_PID" 2>/dev/null
	FAKE_PID=
	S3_ENDPOINT=$REAL_ENDPOINT
	"$B/bin/s3ring-uploader" --replay "$WORK/spool" --bucket "$BUCKET" --endpoint "$S3_ENDPOINT" --path-style \
		>"$WORK/replay.out" 2>"$WORK/replay.err" || fail "replay: $(cat "$WORK/replay.out" "$WORK/replay.err")"
	grep -q "replayed 1, failed 0" "$WORK/replay.out" || fail "replay: $(cat "$WORK/replay.out")"
	DL_FILES=$("$TOP/tests/it/batch_fetch.py" "$BUCKET" "$1" "$WORK/got-${1%/}") || fail "the replayed $1 object does not decompress"
	# shellcheck disable=SC2046
	"$B/tests/tool_batchcheck" length 1 "$2" "$1" "$3" "$4" $(echo "$DL_FILES" | cut -d' ' -f1) ||
		fail "$1 is not in the replayed object exactly once"
}

# ---- (f) a batch object refused for good (a server that answers every PUT
# with 503 SlowDown, and --max-attempts 3) is dead-lettered whole, its
# messages counted; --replay sends it to s3rver, and it holds every message
# once.
# The messages are in the ring before the uploader starts: it reads them
# as one backlog, so the batch closes by max-bytes or when the reader has
# caught up, never by max-age while a slow producer is still putting (two
# objects, when the machine is busy).
refusing_server f
dl0=$(it_stat '["dead_lettered"]')
"$B/tests/tool_produce" "$RING" 1 50 f/ 0 100 || fail "producing f/"
it_uploader --bucket "$BUCKET" --max-attempts 3 --batch "f/:max-age=100,framing=length,max-bytes=64K"
it_wait_ready
dead_lettered_and_replayed f/ 50 0 100 "$dl0"
echo "figure: batch_edges dead_lettered_batch messages=50 spool_files=1 replayed=1"

# multipart_object PREFIX: a ring of its own (the batch, 8M, must fit a
# quarter of it) and a fresh journal, so the run is 1 and the first record
# the ring's first position; 40 messages of PREFIX over the part size are
# put, then the uploader starts (dl0: dead_lettered before).
multipart_object() {
	"$B/tests/tool_ring" unlink "$RING" 2>/dev/null
	rm -f "/dev/shm/s3ring.$RING.journal"
	"$B/tests/tool_ring" create "$RING" $((64 << 20)) || fail "creating the $1 ring"
	dl0=$(it_stat '["dead_lettered"]')
	"$B/tests/tool_produce" "$RING" 1 40 "$1" 150000 250000 || fail "producing $1"
	it_uploader --bucket "$BUCKET" --max-attempts 3 --ring-size 64M --part-size 5M \
		--batch "$1:max-age=100,framing=length,max-bytes=8M,compression=none"
	it_wait_ready
}

# ---- (g) a multipart batch object refused for good (CreateMultipartUpload
# answered 503 SlowDown, --max-attempts 3): built again into the spool.
refusing_server g
multipart_object g/
dead_lettered_and_replayed g/ 40 150000 250000 "$dl0"
grep -q 'msg="batch: a multipart object refused for good; building it again into the spool"' "$WORK/upl.log" ||
	fail "the g/ batch was not refused as a multipart upload"
stored=$(echo "$DL_FILES" | awk '{ print $3 }')
[ "$stored" -gt $((5 * 1024 * 1024)) ] || fail "the g/ object ($stored bytes) was not over the part size"
echo "figure: batch_edges dead_lettered_multipart_batch messages=40 bytes=$stored spool_files=1 replayed=1"

# ---- (h) the same object again, with its dead-letter file's name taken by
# a directory (a ring and journal made as for (g), so the same name: the run and the
# first record):
# each commit fails on the rename and the object is built again 5 s later;
# once the name is free it lands (prefix k/: h/ is (b)'s).
refusing_server h
mkdir -p "$WORK/spool/$DL_NAME/taken" || fail "blocking $DL_NAME"
multipart_object k/
failed_commits() { grep -c 'msg="batch: the dead-letter file was not committed' "$WORK/upl.log"; }
for _ in $(seq 1 300); do [ "$(failed_commits)" -ge 1 ] && break; sleep 0.1; done
[ "$(failed_commits)" -ge 1 ] || fail "the blocked dead-letter file was never tried"
sleep 8
n=$(failed_commits)
# 8 s after the first failure: at most 3 more at one every 5 s (the
# machine may be slow, never fast); without the wait, hundreds.
[ "$n" -le 4 ] || fail "$n failed commits in about 8 s: the 5 s wait is not kept"
rm -rf "${WORK:?}/spool/$DL_NAME"
dead_lettered_and_replayed k/ 40 150000 250000 "$dl0"
echo "figure: batch_edges blocked_dead_letter failed_commits_in_8s=$n then_landed=yes"

# ---- (i) records whose bodies do not match their CRCs: damaged in the
# ring before the uploader reads them, a small one, one over the stage
# (600 KB: compressed from a copy of its own) and one over max-bytes (900K: it
# goes alone). Batch mode checks a body once, on the copy it compresses,
# not at the cursor as well: each is counted corrupt once, none reaches
# an object, and after a kill -9 with the batch not yet sent (a server
# answering 503) the rebuilt batch skips them without counting them again.
kill -TERM "$FAKE_PID" 2>/dev/null
refusing_server i
"$B/tests/tool_ring" unlink "$RING" 2>/dev/null
rm -f "/dev/shm/s3ring.$RING.journal"
"$B/tests/tool_ring" create "$RING" $((64 << 20)) || fail "creating the c/ ring"
# The damaged ones first: in the first batch, which is built while the
# later ones may wait for a slot.
for bad in small:100 large:600000 alone:1000000; do
	{ printf 'DAMAGE-ME-%s' "${bad%%:*}"; head -c "${bad#*:}" /dev/zero | tr '\0' d; } >"$WORK/bad"
	"$B/bin/s3ring-put" --ring "$RING" "c/bad-${bad%%:*}" "$WORK/bad" || fail "put c/bad-${bad%%:*}"
done
"$B/tests/tool_produce" "$RING" 1 30 c/ 100 700000 || fail "producing c/"
/usr/bin/python3 - "/dev/shm/s3ring.$RING" <<'PY' || fail "damaging the c/bad- bodies"
import mmap, sys
with open(sys.argv[1], "r+b") as f:
    m = mmap.mmap(f.fileno(), 0)
    for name in (b"small", b"large", b"alone"):
        marker = b"DAMAGE-ME-" + name
        i = m.find(marker)
        assert i >= 0 and m.find(marker, i + 1) < 0, name
        m[i + len(marker)] ^= 0x20  # the body's first 'd'
PY
[ "$(it_stat '["corrupt"]')" -eq 0 ] || fail "corrupt before the uploader started"
CRULE=(--ring-size 64M --batch-flushes 16 --batch "c/:max-age=100,framing=length,max-bytes=900K")
it_uploader --bucket "$BUCKET" "${CRULE[@]}"
it_wait_ready
for _ in $(seq 1 300); do [ "$(it_stat '["corrupt"]')" -ge 3 ] && break; sleep 0.1; done
[ "$(it_stat '["corrupt"]')" -eq 3 ] || fail "corrupt $(it_stat '["corrupt"]'), not 3"
grep -q 'msg="batch: a record does not match its CRC in the ring; counted corrupt, not sent"' "$WORK/upl.log" ||
	fail "no log line for a damaged batch record"
grep -q 'msg="record does not match its CRC in the ring; counted corrupt, not uploaded" key=c/bad-alone' "$WORK/upl.log" ||
	fail "no log line for the damaged record that goes alone"
sleep 0.5
p=$(it_real_pid) || fail "no uploader to kill"
kill -KILL "$p"
wait "$UPL_PID" 2>/dev/null
UPL_PID=
[ "$(it_stat '["used_bytes"]')" -gt 0 ] || fail "the c/ batch was sent to a server answering 503"
kill -TERM "$FAKE_PID" 2>/dev/null
FAKE_PID=
S3_ENDPOINT=$REAL_ENDPOINT
it_uploader --bucket "$BUCKET" "${CRULE[@]}"
it_wait_ready
for _ in $(seq 1 300); do [ "$(it_stat '["used_bytes"]')" -eq 0 ] && break; sleep 0.1; done
[ "$(it_stat '["used_bytes"]')" -eq 0 ] || fail "the c/ records did not drain after the restart"
[ "$(it_stat '["corrupt"]')" -eq 3 ] || fail "corrupt $(it_stat '["corrupt"]') after the restart, not 3"
files=$("$TOP/tests/it/batch_fetch.py" "$BUCKET" c/ "$WORK/c") || fail "a c/ object does not decompress"
# tool_batchcheck fails on any key that is not one of tool_produce's.
# shellcheck disable=SC2046
"$B/tests/tool_batchcheck" length 1 30 c/ 100 700000 $(echo "$files" | cut -d' ' -f1) ||
	fail "c/ is not in the bucket exactly once, or a damaged record is"
[ "$(objects_with c/bad- DAMAGE-ME)" -eq 0 ] || fail "the damaged record that goes alone was uploaded"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
echo "figure: batch_edges damaged_bodies corrupt=3 after_restart=3 delivered=30"
