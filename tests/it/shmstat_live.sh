#!/usr/bin/env bash
# shmstat_live.sh -- shmstat against a real s3ring-uploader and s3rver: a
# healthy uploader is OK, one killed with SIGKILL is reported dead with the
# records it left pending, and a missing bucket raises the configuration
# alarm (CRITICAL) with the uploader's last error.
set -uo pipefail
IT_NAME=shmstat-live
. "$(dirname "$0")/lib.sh"
stat=$B/bin/shmstat

it_s3rver bucket-live
it_uploader --bucket bucket-live --ring-size 1M --workers 2
it_wait_ready
seq 1 30 | "$B/bin/s3ring-put" --ring "$RING" --lines live/ || fail "put"
it_wait_uploaded 30 30

out=$($stat --ring "$RING" --check --state "$WORK/state"); rc=$?
[ $rc -eq 0 ] || fail "healthy uploader: exit $rc: $out"
$stat --ring "$RING" | grep -q "alive, epoch" || fail "summary: $($stat --ring "$RING")"
$stat --ring "$RING" --prometheus >"$WORK/prom" || fail "prometheus"
python3 "$TOP/tests/promcheck.py" --s3ring <"$WORK/prom" || fail "exposition"
grep -q "^s3ring_uploader_up{ring=\"$RING\"} 1$" "$WORK/prom" || fail "uploader_up"
[ "$(it_stat '["pending"]')" -eq 0 ] || fail "pending after upload"

# SIGKILL: the ring keeps what the uploader had not taken.
upid=$(it_uploader_pid)
kill -KILL "$upid"
wait "$UPL_PID" 2>/dev/null
UPL_PID=
seq 1 5 | "$B/bin/s3ring-put" --ring "$RING" --lines after/ || fail "put after kill"
[ "$(it_stat '["uploader"]["alive"]')" = False ] || fail "uploader reported alive after SIGKILL"
[ "$(it_stat '["uploader"]["pid"]')" -eq "$upid" ] || fail "uploader pid"
[ "$(it_stat '["pending"]')" -eq 5 ] || fail "pending after kill: $(it_stat '["pending"]')"
out=$($stat --ring "$RING" --check --state "$WORK/state"); rc=$?
[ $rc -eq 2 ] || fail "dead uploader: exit $rc: $out"
echo "$out" | grep -q "uploader pid $upid is dead" || fail "dead uploader line: $out"

# A bucket that does not exist: the uploader pauses and raises the alarm.
it_uploader --bucket no-such-bucket-live --workers 2
it_wait_ready
for _ in $(seq 1 100); do
	[ "$(it_stat '["config_alarm"]')" = True ] && break
	sleep 0.1
done
out=$($stat --ring "$RING" --check --state "$WORK/state"); rc=$?
[ $rc -eq 2 ] || fail "configuration alarm: exit $rc: $out"
echo "$out" | grep -q "configuration error: " || fail "alarm line: $out"
$stat --ring "$RING" --json | python3 -m json.tool >/dev/null || fail "json with alarm"
echo "figure: shmstat live: $out"
