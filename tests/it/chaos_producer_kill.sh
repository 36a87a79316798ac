#!/usr/bin/env bash
# chaos_producer_kill.sh -- producers killed in the middle of a put.
#
# Phase 1, deterministic: 100 tool_dieput processes each put 3 messages,
# reserve a 4th, write half its body and raise SIGKILL. The uploader must
# abandon exactly those 100 records (shmstat `abandoned`), upload the 300
# others, and never upload a half-written one.
# Phase 2, random: busy producers (tool_dieput loop) are killed with kill -9
# at random moments, 100 times, each replaced by a new one, while the
# uploader drains. Some kills land inside a put (abandoned, or resynced when
# the producer died between its tail and header CAS), most between puts.
#
# Both phases: the ring never wedges (the backlog drains in bounded time,
# and the 120 producer slots are recycled although 200 producers died),
# and every message whose put returned 0 (each producer logs its key after
# the put, so logged is a subset of committed) is in the bucket with its
# bytes.
set -uo pipefail
IT_NAME=killprod
. "$(dirname "$0")/lib.sh"

DIEPUTS=${CHAOS_DIEPUTS:-100}
KILLS=${CHAOS_KILLS:-100}
[ -n "${SAN:-}" ] && DIEPUTS=${CHAOS_DIEPUTS:-30} KILLS=${CHAOS_KILLS:-30}
MAXLEN=2048

wait_drained() {  # SECONDS
	local i
	for ((i = 0; i < $1 * 4; i++)); do
		[ "$(it_stat '["pending"]')" = 0 ] && [ "$(it_stat '["in_flight"]')" = 0 ] && return 0
		sleep 0.25
	done
	fail "ring wedged: pending=$(it_stat '["pending"]') writing=$(it_stat '["writing"]') after ${1}s"
}

# cpu_pct PID SECONDS: the CPU use of PID over SECONDS, in percent of one core.
cpu_pct() {
	local t0 t1 hz
	hz=$(getconf CLK_TCK)
	t0=$(awk '{ print $14 + $15 }' "/proc/$1/stat")
	sleep "$2"
	t1=$(awk '{ print $14 + $15 }' "/proc/$1/stat")
	echo $(( (t1 - t0) * 100 / hz / $2 ))
}

it_s3rver bucket-kp
it_uploader --bucket bucket-kp --ring-size 1M --workers 8
it_wait_ready
t0=$(date +%s%N)

log "phase 1: $DIEPUTS producers die inside a put (reserve, half a body, SIGKILL)"
batch=()
for i in $(seq 1 "$DIEPUTS"); do
	"$B/tests/tool_dieput" "$RING" die/ "$WORK/die.log" reserve 3 &
	batch+=($!)
	# 10 at a time
	if [ ${#batch[@]} -ge 10 ] || [ "$i" = "$DIEPUTS" ]; then
		for p in "${batch[@]}"; do wait "$p"; done
		batch=()
	fi
done
wait_drained 60
# An idle uploader sleeps: after giving up dead writers' records it must
# not spin on the empty ring.
idle_cpu1=$(cpu_pct "$(it_uploader_pid)" 2)
ab1=$(it_stat '["abandoned"]')
abh1=$(it_stat '["abandoned_hard"]')
[ "$ab1" -eq "$DIEPUTS" ] || fail "abandoned=$ab1 (hard $abh1) after $DIEPUTS deaths inside a put"
[ "$(wc -l <"$WORK/die.log")" -eq $((DIEPUTS * 3)) ] || fail "$(wc -l <"$WORK/die.log") logged puts, want $((DIEPUTS * 3))"
# No record of a dead writer reached the bucket.
half=$(find "$WORK/s3rver/data/bucket-kp/die" -name '4._S3rver_object' | wc -l)
[ "$half" -eq 0 ] || fail "$half half-written messages were uploaded"
p1_s=$(( ($(date +%s%N) - t0) / 1000000000 ))
log "phase 1: $ab1 abandoned, $((DIEPUTS * 3)) committed, in ${p1_s}s"

log "phase 2: kill -9 of busy producers, $KILLS times"
t1=$(date +%s%N)
pids=()
for _ in 1 2 3 4; do
	"$B/tests/tool_dieput" "$RING" busy/ "$WORK/busy.log" loop $MAXLEN &
	pids+=($!)
done
for _ in $(seq 1 "$KILLS"); do
	sleep "0.$((RANDOM % 3))$((RANDOM % 10))"
	k=$((RANDOM % 4))
	kill -KILL "${pids[$k]}" 2>/dev/null
	wait "${pids[$k]}" 2>/dev/null
	"$B/tests/tool_dieput" "$RING" busy/ "$WORK/busy.log" loop $MAXLEN &
	pids[$k]=$!
	# The uploader must keep up: the ring never stays full for long.
	p=$(it_uploader_pid)
	[ -n "$p" ] && kill -0 "$p" || fail "the uploader died"
done
for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
wait_drained 120
p2_s=$(( ($(date +%s%N) - t1) / 1000000000 ))
ab2=$(it_stat '["abandoned"]')
rs=$(it_stat '["resynced"]')
abh=$(it_stat '["abandoned_hard"]')
up=$(it_stat '["uploaded"]')
produced=$(it_stat '["produced"]')
[ "$(it_stat '["corrupt"]')" -eq 0 ] || fail "corrupt records"
[ "$(it_stat '["dead_lettered"]')" -eq 0 ] || fail "dead letters"
[ "$abh" -eq 0 ] || fail "$abh records abandoned by the hard timeout (the owner check should have caught them)"
# Every kill inside a put is one abandoned or one resynced record at most.
[ $((ab2 - ab1 + rs)) -le "$KILLS" ] || fail "$((ab2 - ab1)) abandoned + $rs resynced > $KILLS kills"
[ "$up" -eq "$produced" ] || fail "uploaded $up != produced $produced (committed)"
nlive=$(it_stat '["producers"].__len__()')
idle_cpu2=$(cpu_pct "$(it_uploader_pid)" 2)

log "checking the logged (committed) messages"
logged=$(( $(wc -l <"$WORK/die.log") + $(wc -l <"$WORK/busy.log") ))
for f in die busy; do
	"$B/tests/tool_keycheck" --dir "$WORK/s3rver/data/bucket-kp" $f/ 1 \
		$([ $f = die ] && echo 1024 || echo $MAXLEN) <"$WORK/$f.log" || fail "bucket check ($f)"
done
shuf -n 200 "$WORK/busy.log" | S3_BUCKET=bucket-kp "$B/tests/tool_keycheck" busy/ 1 $MAXLEN ||
	fail "bucket check (GET)"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
echo "figure: chaos_producer_kill deaths_inside_put=$DIEPUTS abandoned_phase1=$ab1 random_kills=$KILLS abandoned_phase2=$((ab2 - ab1)) resynced=$rs abandoned_hard=$abh committed_logged=$logged produced=$produced uploaded=$up lost=0 producer_slots_listed=$nlive seconds=$((p1_s + p2_s))"
echo "figure: chaos_producer_kill idle_uploader_cpu_pct_after_phase1=$idle_cpu1 after_phase2=$idle_cpu2"
[ "$idle_cpu1" -lt 20 ] && [ "$idle_cpu2" -lt 20 ] ||
	fail "the idle uploader spins (${idle_cpu1}% and ${idle_cpu2}% CPU) after abandoning records"
