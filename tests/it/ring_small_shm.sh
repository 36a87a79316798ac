#!/usr/bin/env bash
# ring_small_shm.sh -- in a container's default /dev/shm (a 64 MiB tmpfs,
# Docker's default) the uploader's default ring (64 MiB plus its header)
# does not fit: the uploader creates a smaller one and says so, and an
# explicit --ring-size that does not fit is one clear error. Runs in a
# private mount namespace (unshare), so the host's /dev/shm is untouched.
set -uo pipefail
IT_NAME=smallshm
. "$(dirname "$0")/lib.sh"

unshare --mount true 2>/dev/null || fail "unshare --mount is not available here"

# shellcheck disable=SC2016
out=$(AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER unshare --mount bash -c '
	set -u
	mount -t tmpfs -o size=64m tmpfs /dev/shm || exit 90
	timeout -s KILL 60 "$1/bin/s3ring-uploader" --ring "$2" --bucket b \
		--endpoint http://127.0.0.1:9 --path-style --spool "$3/spool" >"$3/upl.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 100); do
		"$1/bin/shmstat" --ring "$2" --json >"$3/stat.json" 2>/dev/null && break
		sleep 0.1
	done
	# To the uploader, not its timeout (see it_term in lib.sh).
	kill -TERM "$(pgrep -P $pid | head -n 1)" 2>/dev/null; wait $pid
	echo "default_rc=$?"
	timeout 20 "$1/bin/s3ring-uploader" --ring "$2-explicit" --ring-size 64M --bucket b \
		--endpoint http://127.0.0.1:9 --path-style --spool "$3/spool" >"$3/explicit.log" 2>&1
	echo "explicit_rc=$?"
' _ "$B" "$RING" "$WORK")
rc=$?
[ $rc -ne 90 ] || fail "cannot mount a tmpfs in a mount namespace"
cap=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["capacity_bytes"])' "$WORK/stat.json") ||
	fail "no ring was created: $(cat "$WORK/upl.log")"
[ "$cap" -lt $((64 << 20)) ] || fail "capacity $cap does not fit a 64 MiB /dev/shm"
grep -q 'created a smaller one' "$WORK/upl.log" || fail "the smaller ring was not announced: $(cat "$WORK/upl.log")"
echo "$out" | grep -q 'default_rc=0' || fail "the uploader on the smaller ring did not stop cleanly on SIGTERM: $out"
echo "figure: small_shm default_ring_capacity=$cap"
echo "$out" | grep -q 'explicit_rc=1' || fail "an explicit --ring-size that does not fit: $out"
err=$(grep -v '^ts=' "$WORK/explicit.log")
echo "$err" | grep -q 'no room' || fail "unclear error: $(cat "$WORK/explicit.log")"
[ "$(echo "$err" | wc -l)" -eq 1 ] || fail "more than one line: $err"
echo "figure: small_shm explicit: $err"
echo "ring_small_shm ok"
