#!/usr/bin/env bash
# ring_namespaces.sh -- producers and the uploader in separate PID and mount
# namespaces, as separate uids, sharing only /dev/shm (the container setup).
#
# The uploader runs as nobody in a PID and mount namespace of its own, with
# /proc mounted hidepid=2 there (it cannot see any other process), and
# creates the ring with --ring-mode 0660 --ring-group users. Four producers
# run as uid 12345, group users, in another PID and mount namespace whose
# /dev/shm is an empty tmpfs with the uploader's /dev/shm bound over it:
# their pids mean nothing to the uploader, and it has no /proc entry of
# theirs to look at. They put 100,000 messages (divided by
# $S3RING_TEST_SCALE_DIV) with zero-copy puts, every 500th holding its
# record open 1 to 50 ms between reserve and commit. Then shmstat shows
# `abandoned` 0 (no live producer was judged dead), and every logged key is
# in the bucket with its bytes.
set -uo pipefail
IT_NAME=ns
. "$(dirname "$0")/lib.sh"

DIV=${S3RING_TEST_SCALE_DIV:-1}
PROCS=4
PER=$((25000 / DIV))
N=$((PROCS * PER))
MAXLEN=512
SLOW_EVERY=500
PUID=12345
GROUP=users
GID=$(getent group $GROUP | cut -d: -f3)
DATA=$WORK/s3rver/data/bucket-ns

[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root for unshare and setpriv"; exit 0; }
[ -n "$GID" ] || fail "no group $GROUP"
command -v unshare >/dev/null && command -v setpriv >/dev/null || fail "unshare or setpriv missing (util-linux)"

# The uploader (nobody) needs its spool, the producers (uid $PUID) their
# logs; both need to reach them through $WORK.
chmod 0755 "$WORK"
mkdir -p "$WORK/spool" "$WORK/plog" "$WORK/shm-stage"
chown nobody "$WORK/spool"
chown $PUID "$WORK/plog"

# uploader_host_pid: the uploader's pid as seen from here (the ring holds
# the one of its own namespace).
uploader_host_pid() {
	local p
	for p in $(srv_tree "$UPL_PID"); do
		[ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$(readlink -f "$B/bin/s3ring-uploader")" ] &&
			{ echo "$p"; return 0; }
	done
	return 1
}

# Liveness by heartbeat: shmstat judges the uploader's pid in its own
# namespace, where that pid means nothing.
wait_heartbeat() {
	for _ in $(seq 1 200); do
		"$B/bin/shmstat" --ring "$RING" --json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
u = json.load(sys.stdin)["uploader"]
sys.exit(0 if u["pid"] != 0 and u["heartbeat_age_ms"] is not None and u["heartbeat_age_ms"] < 2000 else 1)' 2>/dev/null &&
			return 0
		sleep 0.05
	done
	fail "uploader did not start"
}

# The uploader and the producers are grandchildren (timeout, unshare):
# stop them by their own pids too (unshare --kill-child covers the rest).
ns_cleanup() {
	local p
	p=$(uploader_host_pid) && kill -KILL "$p" 2>/dev/null
	[ -n "${PROD_PID:-}" ] && kill -KILL $(srv_tree "$PROD_PID") 2>/dev/null
	it_cleanup
}
trap ns_cleanup EXIT

. "$TOP/tests/servers/lib.sh"
it_s3rver bucket-ns

log "uploader as nobody in its own PID and mount namespace, /proc hidepid=2"
# The inner script is pid 1 of the new namespace; it mounts /proc, notes
# whether nobody can see pid 1 (itself, root's) there, and becomes the
# uploader.
timeout -s KILL 900 unshare --pid --fork --kill-child --mount --propagation private bash -c '
	work=$1; shift
	if mount -t proc -o hidepid=2 proc /proc; then
		echo hidepid=2 >"$work/upl-proc"
	else
		mount -t proc proc /proc && echo hidepid=none >"$work/upl-proc"
	fi
	setpriv --reuid=nobody --regid=nogroup --groups='"$GID"' sh -c "test -e /proc/1/stat && echo seen || echo hidden" >>"$work/upl-proc"
	exec setpriv --reuid=nobody --regid=nogroup --groups='"$GID"' --no-new-privs "$@"' _ "$WORK" \
	"$B/bin/s3ring-uploader" --ring "$RING" --endpoint "$S3_ENDPOINT" --path-style \
	--spool "$WORK/spool" --bucket bucket-ns --ring-size 4M --workers 16 \
	--ring-mode 0660 --ring-group $GROUP >>"$WORK/upl.log" 2>&1 &
UPL_PID=$!
wait_heartbeat
upl=$(uploader_host_pid) || fail "no uploader process"
hide=$(head -n 1 "$WORK/upl-proc")
visible=$(sed -n 2p "$WORK/upl-proc")
# Pid 1 there is root's shell: nobody must not see it.
[ "$hide" != hidepid=2 ] || [ "$visible" = hidden ] ||
	fail "nobody sees root's pid 1 in a hidepid=2 /proc"
owner=$(stat -c '%U:%G %a' "/dev/shm/s3ring.$RING")
[ "$owner" = "nobody:$GROUP 660" ] || fail "ring is $owner, want nobody:$GROUP 660"
ns_pid=$(it_stat '["uploader"]["pid"]')
log "uploader: pid $upl here, $ns_pid in the ring; $hide, root's pid 1 $visible to it"

log "$PROCS producers as uid $PUID in another PID and mount namespace: $N puts, every ${SLOW_EVERY}th held 1-50 ms"
t0=$(date +%s%N)
timeout -s KILL 600 unshare --pid --fork --kill-child --mount --propagation private --mount-proc bash -c '
	stage=$1 uid=$2 gid=$3 procs=$4; shift 4
	# An empty /dev/shm of our own, then the shared one bound over it:
	# the ring is reachable only through the bind.
	mount --bind /dev/shm "$stage" && mount -t tmpfs -o size=1m tmpfs /dev/shm &&
		mount --bind "$stage" /dev/shm || exit 3
	pids=()
	for id in $(seq 1 "$procs"); do
		setpriv --reuid="$uid" --regid="$gid" --clear-groups --no-new-privs "$@" $id &
		pids+=($!)
	done
	rc=0
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	exit $rc' _ "$WORK/shm-stage" $PUID "$GID" $PROCS \
	/bin/sh -c 'exec "$0" "$1" "$5" ns/ "$2/p$5.log" count "$3" '$MAXLEN' "$4" >"$2/p$5.out"' \
	"$B/tests/tool_slowput" "$RING" "$WORK/plog" $PER $SLOW_EVERY &
PROD_PID=$!
wait $PROD_PID ||
	fail "producers failed: $(cat "$WORK"/plog/p*.out 2>/dev/null | tr '\n' ' ')"
put_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
cat "$WORK"/plog/p*.log >"$WORK/keys"
logged=$(wc -l <"$WORK/keys")
[ "$logged" -eq "$N" ] || fail "$logged puts logged, want $N"
slow=$(awk '{ s += $8 } END { print s }' "$WORK"/plog/p*.out)
[ "$slow" -ge $((N / SLOW_EVERY)) ] || fail "only $slow slow commits"
it_wait_uploaded "$N" 240
up_ms=$(( ($(date +%s%N) - t0) / 1000000 ))

ab=$(it_stat '["abandoned"]')
abh=$(it_stat '["abandoned_hard"]')
[ "$ab" -eq 0 ] || fail "abandoned=$ab: live producers in another PID namespace were judged dead"
[ "$abh" -eq 0 ] || fail "abandoned_hard=$abh"
[ "$(it_stat '["failed"]')" -eq 0 ] || fail "failed=$(it_stat '["failed"]')"
[ "$(it_stat '["corrupt"]')" -eq 0 ] || fail "corrupt records"
[ "$(it_stat '["dead_lettered"]')" -eq 0 ] || fail "dead letters"
"$B/tests/tool_keycheck" --dir "$DATA" ns/ 1 $MAXLEN <"$WORK/keys" || fail "bucket check"
shuf -n 200 "$WORK/keys" | S3_BUCKET=bucket-ns "$B/tests/tool_keycheck" ns/ 1 $MAXLEN ||
	fail "bucket check (GET)"
# Seen from outside its namespace, the uploader's pid is someone else's.
check=$("$B/bin/shmstat" --ring "$RING" --check 2>&1 | cut -c1-100)
log "shmstat --check from another PID namespace: $check"

[ "$(uploader_host_pid)" = "$upl" ] || fail "the uploader restarted"
kill -TERM "$upl"
for _ in $(seq 1 200); do kill -0 "$upl" 2>/dev/null || break; sleep 0.05; done
kill -0 "$upl" 2>/dev/null && fail "the uploader did not stop on SIGTERM"
grep -q 'msg="stopped"' "$WORK/upl.log" || fail "no 'stopped' line in the log"
echo "figure: ring_namespaces puts=$N slow_commits=$slow abandoned=$ab uploaded=$(it_stat '["uploaded"]') proc=$hide put_ms=$put_ms upload_ms=$up_ms"
