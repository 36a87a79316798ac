#!/usr/bin/env bash
# ring_stopped_producer.sh -- a producer stopped between reserve and commit
# holds up nothing but its own record.
#
# One tool_slowput reserves a record, writes its body and stops itself
# (SIGSTOP) before the commit. For 5 s, while it is stopped, three other
# producers put their messages: the uploader reads past the stopped
# record (a hole) and uploads theirs, which are checked in the bucket
# before the stopped one is continued. Then SIGCONT: its commit returns 0,
# its message lands too, and nothing was abandoned (the owner is alive,
# however long it stays stopped, so its record is never given up).
set -uo pipefail
IT_NAME=stopped
. "$(dirname "$0")/lib.sh"

DIV=${S3RING_TEST_SCALE_DIV:-1}
PER=$((300 / DIV))
STOP_S=5
DATA=$WORK/s3rver/data/bucket-stop

# proc_state PID: the one-letter state of PID (R, S, T, Z...), or nothing.
proc_state() {
	sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1
}

it_s3rver bucket-stop
it_uploader --bucket bucket-stop --ring-size 1M --workers 4
it_wait_ready

log "one producer reserves, writes its body and stops before the commit"
"$B/tests/tool_slowput" "$RING" 100 stopped/ "$WORK/stopped.log" stop >"$WORK/stopped.out" 2>&1 &
stopped=$!
for _ in $(seq 1 200); do
	[ "$(proc_state $stopped)" = T ] && break
	sleep 0.05
done
[ "$(proc_state $stopped)" = T ] || fail "the stopping producer did not stop (state $(proc_state $stopped))"
t_stop=$SECONDS

log "3 x $PER messages from other producers while it is stopped"
others=()
for id in 1 2 3; do
	"$B/tests/tool_slowput" "$RING" $id others/ "$WORK/others.log" count $PER 1024 0 >/dev/null &
	others+=($!)
done
for p in "${others[@]}"; do wait "$p" || fail "a producer failed"; done
it_wait_uploaded $((3 * PER)) 60
[ "$(proc_state $stopped)" = T ] || fail "the stopped producer was continued too early"
[ "$(wc -l <"$WORK/others.log")" -eq $((3 * PER)) ] || fail "$(wc -l <"$WORK/others.log") puts logged, want $((3 * PER))"
"$B/tests/tool_keycheck" --dir "$DATA" others/ 1 1024 <"$WORK/others.log" ||
	fail "the others' messages are not all in the bucket while one producer is stopped"
[ -e "$DATA/stopped/p100/1._S3rver_object" ] && fail "the stopped producer's message was uploaded before its commit"
# The cursor has read past the open record; head stays at it, so its
# space is not given back while its owner may still write it.
head=$(it_stat '["head"]') cursor=$(it_stat '["cursor"]') tail=$(it_stat '["tail"]')
[ "$head" -lt "$cursor" ] && [ "$cursor" -eq "$tail" ] ||
	fail "head=$head cursor=$cursor tail=$tail: the uploader did not read past the open record"
[ "$(it_stat '["abandoned"]')" -eq 0 ] || fail "a record was abandoned while its owner was stopped"
while [ $((SECONDS - t_stop)) -lt $STOP_S ]; do sleep 0.2; done
held_s=$((SECONDS - t_stop))

log "SIGCONT after ${held_s}s"
[ "$(proc_state $stopped)" = T ] || fail "the stopped producer is no longer stopped"
kill -CONT $stopped
wait $stopped || fail "the continued producer's commit failed: $(cat "$WORK/stopped.out")"
grep -qx 'stopped/p100/1' "$WORK/stopped.log" || fail "the continued producer did not log its commit"
it_wait_uploaded $((3 * PER + 1)) 60
"$B/tests/tool_keycheck" --dir "$DATA" stopped/ 1 1024 <"$WORK/stopped.log" ||
	fail "the continued producer's message is not in the bucket"
echo stopped/p100/1 | S3_BUCKET=bucket-stop "$B/tests/tool_keycheck" stopped/ 1 1024 ||
	fail "the continued producer's message (GET)"
shuf -n 20 "$WORK/others.log" | S3_BUCKET=bucket-stop "$B/tests/tool_keycheck" others/ 1 1024 ||
	fail "bucket check (GET)"
ab=$(it_stat '["abandoned"]')
[ "$ab" -eq 0 ] || fail "abandoned=$ab"
[ "$(it_stat '["corrupt"]')" -eq 0 ] || fail "corrupt records"
[ "$(it_stat '["failed"]')" -eq 0 ] || fail "failed puts"
# Once the record is uploaded, head moves past it: its space is released.
for _ in $(seq 1 100); do
	[ "$(it_stat '["used_bytes"]')" -eq 0 ] && break
	sleep 0.1
done
[ "$(it_stat '["used_bytes"]')" -eq 0 ] || fail "head=$(it_stat '["head"]') tail=$(it_stat '["tail"]'): space not released after the commit"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
echo "figure: ring_stopped_producer stopped_s=$held_s others_uploaded_while_stopped=$((3 * PER)) abandoned=$ab"
