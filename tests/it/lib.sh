# lib.sh -- shared by the uploader's integration scripts (sourced).
#
# Starts what a test needs and stops it by PID on exit: it_s3rver, it_uploader,
# it_stop_uploader, it_wait_uploaded. Each test gets its own ring name and
# work directory, both removed at exit.
B=${BUILD:-build}
TOP=${S3RING_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
IT_NAME=${IT_NAME:-it}
RING=test-$IT_NAME-$$
WORK=$(mktemp -d /tmp/s3ring-$IT_NAME.XXXXXX)
UPL_PID=
IT_SERVERS=()
# No test may take keys from a real EC2 metadata service (a CI runner on
# EC2 has one); the creds_* tests turn it on against their stand-in.
export AWS_EC2_METADATA_DISABLED=${AWS_EC2_METADATA_DISABLED:-true}

fail() { echo "FAIL: $*"; [ -f "$WORK/upl.log" ] && tail -n 20 "$WORK/upl.log"; exit 1; }
log() { echo "$(date +%T) $*"; }

# The uploader's own pid (UPL_PID is the `timeout` wrapper around it).
it_uploader_pid() {
	it_child_pid "$UPL_PID"
}

# it_child_pid PID: the process PID (a `timeout`) runs, or nothing.
it_child_pid() {
	pgrep -P "$1" | head -n 1
}

# The uploader's pid once `timeout` has forked it (2 s at most), or fail.
it_real_pid() {
	local p
	for _ in $(seq 1 200); do
		p=$(it_uploader_pid)
		[ -n "$p" ] && { echo "$p"; return 0; }
		sleep 0.01
	done
	return 1
}

# it_kill9_round I MAX_MS: waits a random 0 to MAX_MS ms (every fifth
# round 0 to 20 ms: right after a start, during the journal replay and the
# bucket check, or before the ring is even attached), then kill -9s the
# uploader and reaps it. Sets KILL_MS and KILLED_PID.
it_kill9_round() {
	if [ $(($1 % 5)) -eq 0 ]; then KILL_MS=$((RANDOM % 20)); else KILL_MS=$((RANDOM % $2)); fi
	sleep "$((KILL_MS / 1000)).$(printf '%03d' $((KILL_MS % 1000)))"
	KILLED_PID=$(it_real_pid) || fail "no uploader process to kill (round $1)"
	kill -KILL "$KILLED_PID" || fail "kill -9 $KILLED_PID"
	wait "$UPL_PID" 2>/dev/null
	UPL_PID=
}

it_cleanup() {
	if [ -n "$UPL_PID" ]; then
		local p; p=$(it_uploader_pid)
		[ -n "$p" ] && kill -KILL "$p" 2>/dev/null
		kill -KILL "$UPL_PID" 2>/dev/null
	fi
	for s in "${IT_SERVERS[@]}"; do
		"$TOP/tests/servers/${s%%:*}.sh" stop "${s#*:}" >/dev/null 2>&1
	done
	"$B/tests/tool_ring" unlink "$RING" 2>/dev/null
	rm -f "/dev/shm/s3ring.$RING.journal"
	rm -rf "$WORK"
}
trap it_cleanup EXIT

# it_s3rver BUCKET...: starts s3rver, exports its environment.
it_s3rver() {
	S3RVER_QUIET=1 "$TOP/tests/servers/s3rver.sh" start "$WORK/s3rver" "$@" >/dev/null ||
		fail "s3rver did not start"
	IT_SERVERS+=("s3rver:$WORK/s3rver")
	set -a
	. "$WORK/s3rver/env"
	set +a
}

# it_uploader ARGS...: starts the uploader on $RING in the background, with
# its log in $WORK/upl.log (appended), under a bounded lifetime.
it_uploader() {
	timeout -s KILL 900 "$B/bin/s3ring-uploader" --ring "$RING" --endpoint "$S3_ENDPOINT" \
		--path-style --spool "$WORK/spool" "$@" >>"$WORK/upl.log" 2>&1 &
	UPL_PID=$!
}

# Waits for the uploader to attach (pid and heartbeat in the ring).
it_wait_ready() {
	for _ in $(seq 1 200); do
		"$B/bin/shmstat" --ring "$RING" --json 2>/dev/null |
			python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d["uploader"]["alive"] else 1)' 2>/dev/null && return 0
		sleep 0.05
	done
	fail "uploader did not start"
}

# it_stat KEY: one field of shmstat --json.
it_stat() {
	"$B/bin/shmstat" --ring "$RING" --json | python3 -c "import json,sys; print(json.load(sys.stdin)$1)"
}

# it_wait_uploaded N SECONDS: until uploaded + dead_lettered >= N, for at
# most SECONDS of wall-clock time (a loaded machine slows each poll).
it_wait_uploaded() {
	local n=$1 secs=$2 end=$((SECONDS + $2)) got
	while :; do
		got=$("$B/bin/shmstat" --ring "$RING" --json | python3 -c \
			'import json,sys; d=json.load(sys.stdin); print(d["uploaded"] + d["dead_lettered"])')
		[ "$got" -ge "$n" ] && return 0
		[ $SECONDS -lt $end ] || break
		sleep 0.1
	done
	fail "only $got of $n uploaded or dead-lettered after ${secs}s"
}

# it_term PID: SIGTERM to the command that `timeout` (PID) runs, not to
# timeout itself. Timeout passes a signal on and then sends SIGCONT, and a
# SIGCONT discards a pending SIGSTOP. Under ASan that SIGSTOP may be
# LeakSanitizer's, sent at exit to stop the process for its leak check,
# which then waits for the stop for ever: the uploader logged "stopped" and
# spun in StopTheWorld until its 900 s kill (chaos_scribble, make check);
# an ASan program flooded with SIGCONT while it exits hangs 9 times in 10.
it_term() {
	local p
	p=$(it_child_pid "$1")
	kill -TERM "${p:-$1}" 2>/dev/null
}

it_stop_uploader() {
	[ -n "$UPL_PID" ] || return 0
	it_term "$UPL_PID"
	wait "$UPL_PID"
	local rc=$?
	UPL_PID=
	return $rc
}
