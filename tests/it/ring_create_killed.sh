#!/usr/bin/env bash
# ring_create_killed.sh -- creators killed in the middle of creating a ring
# leave no object under its name, or a complete one.
#
# Creating a 256 MiB ring takes tens of milliseconds (posix_fallocate of
# the whole object, then the header): a creator (tool_ring create) is sent
# SIGKILL at a random moment in that window, 20 times. The window is
# measured in the same run (the median of three creations nobody kills)
# and the kill comes from timeout(1) started with the creator, at a random
# moment of 1.5 times that: a fixed window in milliseconds of sleep(1)
# missed every creation on a faster machine. After each kill the
# name is either absent or a complete ring (shmstat reads it, with the size
# asked for), and no other object of the ring's name is left in /dev/shm.
# The same 20 kills first with /proc hidden from the creator, where the
# unnamed object cannot be linked in and the ring is built under a
# temporary name instead: the ring's name obeys the same rule, and the
# temporary objects a kill leaves behind are counted (figure only). In the
# end the uploader starts on whatever the last kill left (nothing, or a
# complete ring), and a message put then reaches the bucket.
set -uo pipefail
IT_NAME=createkill
. "$(dirname "$0")/lib.sh"

KILLS=${CREATE_KILLS:-20}
CAP=$((256 << 20))
SHM=/dev/shm/s3ring.$RING

cleanup_tmp() {
	rm -f "$SHM".new-*
	it_cleanup
}
trap cleanup_tmp EXIT

# check_name: the name is absent or a complete ring of CAP bytes; prints
# "absent" or "complete".
check_name() {
	local cap
	[ -e "$SHM" ] || { echo absent; return 0; }
	cap=$("$B/bin/shmstat" --ring "$RING" --json 2>"$WORK/shmstat.err" |
		/usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["capacity_bytes"])') ||
		fail "a killed creator left a ring that does not open: $(cat "$WORK/shmstat.err")"
	[ "$cap" -eq "$CAP" ] || fail "a killed creator left a ring of $cap bytes"
	echo complete
}

# create_us MODE: the time, in microseconds, of one creation nobody kills,
# started as kill_creators starts them.
create_us() {
	local t0 t1
	t0=$(date +%s%N)
	spawn_creator "$1" 600
	t1=$(date +%s%N)
	"$B/tests/tool_ring" unlink "$RING" 2>/dev/null
	rm -f "$SHM".new-*
	echo $(((t1 - t0) / 1000))
}

# spawn_creator MODE SECONDS: one creator, killed by timeout(1) after
# SECONDS (a decimal). MODE plain, or noproc (an empty /proc in a mount
# namespace of its own: the creator falls back to a temporary name).
spawn_creator() {
	if [ "$1" = plain ]; then
		timeout -s KILL "$2" "$B/tests/tool_ring" create "$RING" $CAP 2>/dev/null
	else
		unshare --mount --propagation private sh -c \
			'mount -t tmpfs none /proc && exec timeout -s KILL "$@"' _ \
			"$2" "$B/tests/tool_ring" create "$RING" $CAP 2>/dev/null
	fi
}

# kill_creators MODE: KILLS creators, each killed at a random moment of
# 1.5 times the median of three creations nobody killed.
kill_creators() {
	local mode=$1 i state leftovers=0 last=0 window us
	window=$( (create_us "$mode"; create_us "$mode"; create_us "$mode") |
		sort -n | sed -n 2p)
	window=$((window * 3 / 2))
	log "$mode: a creation takes $((window * 2 / 3)) us; kills within $window us"
	absent=0 complete=0
	for i in $(seq 1 "$KILLS"); do
		us=$(((RANDOM * 32768 + RANDOM) % window + 1))  # timeout 0 never kills
		spawn_creator "$mode" "$((us / 1000000)).$(printf %06d $((us % 1000000)))"
		state=$(check_name)
		case $state in
		absent) absent=$((absent + 1)) ;;
		complete) complete=$((complete + 1)) ;;
		esac
		# Anything else of the ring's name is a creator's temporary object.
		n=$(find /dev/shm -maxdepth 1 -name "s3ring.$RING.new-*" | wc -l)
		if [ "$mode" = plain ] && [ "$n" -ne 0 ]; then
			fail "a killed creator left $(ls "$SHM".new-*)"
		fi
		# Without /proc, the last killed creator may leave its
		# temporary, but the next creator removes it: never more.
		if [ "$mode" = noproc ] && [ "$n" -gt 1 ]; then
			fail "killed creators' temporaries pile up: $(ls "$SHM".new-*)"
		fi
		leftovers=$n
		# Keep what the last kill left, for the uploader.
		if [ "$state" = complete ] && [ "$i" -lt "$KILLS" ]; then
			rm "$SHM"
		fi
		last=$state
	done
	tmp_left=$leftovers
	last_state=$last
}

[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root for unshare"; exit 0; }

log "$KILLS creators with /proc hidden (they build the ring under a temporary name)"
kill_creators noproc
log "no /proc: $absent left nothing, $complete a complete ring, $tmp_left temporary objects left"
noproc_absent=$absent noproc_tmp_left=$tmp_left
"$B/tests/tool_ring" unlink "$RING" 2>/dev/null
rm -f "$SHM".new-*

log "$KILLS creators of a 256 MiB ring killed at random moments"
kill_creators plain
log "plain: $absent left nothing, $complete a complete ring"
[ "$absent" -gt 0 ] && [ "$noproc_absent" -gt 0 ] ||
	fail "no kill landed before the ring was linked in: the test cannot tell"

log "the uploader starts on what the last kill left ($last_state)"
it_s3rver bucket-ck
it_uploader --bucket bucket-ck --ring-size 256M
it_wait_ready
[ "$(it_stat '["capacity_bytes"]')" -eq "$CAP" ] || fail "capacity $(it_stat '["capacity_bytes"]')"
echo "after the kills" | "$B/bin/s3ring-put" --ring "$RING" ck/after "/dev/stdin" ||
	fail "s3ring-put into the ring"
it_wait_uploaded 1 30
[ "$(cat "$WORK/s3rver/data/bucket-ck/ck/after._S3rver_object")" = "after the kills" ] ||
	fail "the message put after the kills is not in the bucket"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
echo "figure: ring_create_killed kills=$((2 * KILLS)) plain_absent=$absent plain_complete=$complete noproc_absent=$noproc_absent noproc_tmp_left=$noproc_tmp_left"
