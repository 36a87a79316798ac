#!/usr/bin/env bash
# shmstat_check.sh -- shmstat --check on real rings, one state at a time:
# OK, more than 80% full, new drops (and OK again once they are old), uploader
# dead, stale heartbeat, configuration alarm (exit 0/1/2), and the UNKNOWN
# cases (exit 3, one line, in every mode): no ring, corrupt header, newer
# layout, truncated object, control words out of range, another user's ring.
set -uo pipefail
B=${BUILD:-build}
stat=$(realpath "$B/bin/shmstat")
helper=$B/tests/test_shmstat
base=test-shmstat-chk-$$
tmp=$(mktemp -d)
trap 'rm -f /dev/shm/s3ring.$base-*; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
n=0

# check RING WANT_RC PATTERN: one line on stdout, the exit code, the pattern.
check() {
	local ring=$1 want=$2 pat=$3 rc
	$stat --ring "$ring" --check --state "$tmp/state.$ring" >"$tmp/out" 2>"$tmp/err"; rc=$?
	[ "$rc" -eq "$want" ] || fail "$ring: exit $rc, want $want: $(cat "$tmp/out" "$tmp/err")"
	[ "$(wc -l <"$tmp/out")" -eq 1 ] || fail "$ring: not one line: $(cat "$tmp/out")"
	grep -Eq "$pat" "$tmp/out" || fail "$ring: no /$pat/ in: $(cat "$tmp/out")"
	n=$((n + 1))
}

# fresh SUFFIX: a ring with a live uploader (this shell) and a 1 s heartbeat.
fresh() {
	local r=$base-$1
	$helper ring create "$r" || fail "create $r"
	$helper ring uploader "$r" $$ 1 || fail "uploader $r"
	echo "$r"
}

r=$(fresh ok)
$helper ring put "$r" 10 1000 || fail put
check "$r" 0 '^S3RING OK - .*10 pending.* \| used_pct='

r=$(fresh full)
$helper ring fill "$r" 85 || fail fill
check "$r" 1 '^S3RING WARNING - .*8[0-9]% full'

# Drops are new once, then old: the state file remembers the count.
r=$(fresh drops)
check "$r" 0 '^S3RING OK'
$helper ring fill "$r" 100 || fail fill
$helper ring drop "$r" 3 || fail drop
check "$r" 1 '^S3RING WARNING - .*3 new drops'
check "$r" 1 '^S3RING WARNING - .*% full'        # still full, no new drops
grep -q "new drops" "$tmp/out" && fail "drops reported twice: $(cat "$tmp/out")"
# Without a state file every drop counts as new.
rm -f "$tmp/state.$r"
check "$r" 1 'new drops'

r=$(fresh dead)
$helper ring uploader "$r" $$ 1 dead || fail "uploader dead"
check "$r" 2 '^S3RING CRITICAL - .*uploader pid [0-9]+ is dead'

r=$base-none
$helper ring create "$r" || fail create
check "$r" 2 '^S3RING CRITICAL - .*no uploader'

r=$(fresh stale)
$helper ring uploader "$r" $$ 30 || fail "uploader stale"
check "$r" 2 '^S3RING CRITICAL - .*heartbeat stale'
$stat --ring "$r" --check --heartbeat-max 60 --state "$tmp/s" >/dev/null; rc=$?
[ $rc -eq 0 ] || fail "--heartbeat-max 60: exit $rc"

r=$(fresh alarm)
$helper ring alarm "$r" 'AccessDenied: Access Denied' || fail alarm
check "$r" 2 '^S3RING CRITICAL - .*configuration error: AccessDenied'
$helper ring alarm "$r" hostile || fail alarm
check "$r" 2 '^S3RING CRITICAL - .*configuration error'

# UNKNOWN: exit 3 and one line in --check; exit 3 and one line on stderr
# (nothing on stdout) in the other modes.
unknown() {
	local ring=$1 pat=$2 mode rc
	check "$ring" 3 "^S3RING UNKNOWN - .*$pat"
	for mode in "" --json --prometheus; do
		$stat --ring "$ring" $mode >"$tmp/out" 2>"$tmp/err"; rc=$?
		[ $rc -eq 3 ] || fail "$ring $mode: exit $rc, want 3"
		[ -s "$tmp/out" ] && fail "$ring $mode: output on stdout: $(cat "$tmp/out")"
		[ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "$ring $mode: stderr not one line: $(cat "$tmp/err")"
		grep -Eq "$pat" "$tmp/err" || fail "$ring $mode: no /$pat/ in $(cat "$tmp/err")"
	done
}
unknown "$base-absent" 'no such ring'

# poke RING OFFSET BYTES: overwrite the object in place.
poke() { printf "$3" | dd of="/dev/shm/s3ring.$1" bs=1 seek="$2" conv=notrunc status=none; }

r=$(fresh magic); poke "$r" 0 'XXXXXXXX'
unknown "$r" 'not a valid ring'
r=$(fresh version); poke "$r" 8 '\143\000\000\000'
unknown "$r" 'layout version 99'
r=$(fresh capacity); poke "$r" 16 '\000\000\000\100\000\000\000\000'   # 1 GiB: past the object
unknown "$r" 'not a valid ring'
r=$(fresh tail); poke "$r" 128 '\377\377\377\377\377\377\377\377'
unknown "$r" 'not a valid ring'
r=$(fresh trunc); truncate -s 20000 "/dev/shm/s3ring.$r"
unknown "$r" 'not a valid ring'
r=$(fresh short); truncate -s 100 "/dev/shm/s3ring.$r"
unknown "$r" 'not a valid ring'
r=$base-garbage; head -c $((16384 + 65536)) /dev/urandom >"/dev/shm/s3ring.$r"
unknown "$r" 'not a valid ring'
unknown "../etc" 'invalid ring name'

# An object shrunk and regrown while shmstat reads it: the SIGBUS guard
# turns a fault into "truncated" and exit 3; never a crash.
r=$(fresh race)
$helper ring put "$r" 900 1000 || fail put
f=/dev/shm/s3ring.$r
size=$(stat -c %s "$f")
(for i in $(seq 2000); do truncate -s 20000 "$f"; truncate -s "$size" "$f"; done) &
bg=$!
faults=0
for i in $(seq 150); do
	$stat --ring "$r" --json >/dev/null 2>"$tmp/err"; rc=$?
	[ $rc -eq 0 ] || [ $rc -eq 3 ] || { kill $bg; fail "truncation race: exit $rc: $(cat "$tmp/err")"; }
	grep -q 'truncated while being read' "$tmp/err" && faults=$((faults + 1))
done
kill $bg 2>/dev/null; wait $bg 2>/dev/null
echo "figure: shmstat truncation race: 150 runs, $faults caught by the SIGBUS guard"

# Another user's ring (0600, owned by root): a clear message, exit 3.
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
	r=$(fresh private)
	chmod 0600 "/dev/shm/s3ring.$r"
	cp "$stat" "$tmp/shmstat" && chmod 0755 "$tmp" "$tmp/shmstat"
	out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups \
	    "$tmp/shmstat" --ring "$r" 2>&1); rc=$?
	[ $rc -eq 3 ] || fail "other user: exit $rc: $out"
	[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || fail "other user: not one line: $out"
	echo "$out" | grep -q 'permission denied: .* owned by uid 0 with mode 0600' \
	    || fail "other user: $out"
	out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups \
	    "$tmp/shmstat" --ring "$r" --check --state "$tmp/nobody-state" 2>&1); rc=$?
	[ $rc -eq 3 ] || fail "other user --check: exit $rc: $out"
	echo "$out" | grep -q '^S3RING UNKNOWN - .*permission denied' || fail "other user --check: $out"
	n=$((n + 1))
else
	echo "figure: shmstat other-user case skipped (needs root and user nobody)"
fi

# shmstat never writes the ring: its bytes are the same before and after.
r=$(fresh ro)
$helper ring put "$r" 5 100 || fail put
sum=$(md5sum <"/dev/shm/s3ring.$r")
$stat --ring "$r" >/dev/null && $stat --ring "$r" --json >/dev/null &&
    $stat --ring "$r" --check --state "$tmp/ro" >/dev/null
[ "$(md5sum <"/dev/shm/s3ring.$r")" = "$sum" ] || fail "the ring changed under shmstat"
echo "figure: shmstat --check states verified: $n"
