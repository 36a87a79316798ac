#!/usr/bin/env bash
# shmstat_live.sh -- shmstat against a real s3ring-uploader and s3rver: a
# healthy uploader is OK and its batch rule's figures are shown, one killed
# with SIGKILL is reported dead with the records it left pending, and a
# missing bucket raises the configuration alarm (CRITICAL) with the
# uploader's last error.
set -uo pipefail
IT_NAME=shmstat-live
. "$(dirname "$0")/lib.sh"
stat=$B/bin/shmstat

it_s3rver bucket-live
it_uploader --bucket bucket-live --ring-size 1M --workers 2 \
	--batch 'blive/:max-age=1s,max-bytes=64K,compression=gzip'
it_wait_ready
seq 1 30 | "$B/bin/s3ring-put" --ring "$RING" --lines live/ || fail "put"
it_wait_uploaded 30 30

# A batch rule's figures, as the uploader publishes them: 20 messages in
# one gzip object, then nothing waiting.
seq 1 20 | "$B/bin/s3ring-put" --ring "$RING" --lines blive/ || fail "put blive/"
it_wait_uploaded 50 30
# The rule's figures follow the message counts, and the oldest age is
# published on the uploader's next pass: wait for both.
for _ in $(seq 1 100); do
	[ "$(it_stat '["uploader"]["batch"]["by_rule"][0]["oldest_unflushed_age_s"]')" = None ] &&
		[ "$(it_stat '["uploader"]["batch"]["objects"]')" -ge 1 ] && break
	sleep 0.1
done
$stat --ring "$RING" --json | python3 -c '
import json, sys
b = json.load(sys.stdin)["uploader"]["batch"]
assert (b["rules"], b["objects"], b["messages"]) == (1, 1, 20), b
r = b["by_rule"][0]
assert r["prefix"] == "blive/" and r["messages"] == 20 and r["objects"] == 1, r
assert r["uploaded_bytes"] == r["bytes"] and 0 < r["stored_bytes"], r
assert r["compression_ratio"] == round(r["uploaded_bytes"] / r["stored_bytes"], 3), r
assert r["oldest_unflushed_age_s"] is None and r["alone"] == 0, r
' || fail "batch figures: $($stat --ring "$RING" --json)"
$stat --ring "$RING" | grep -Eq '^blive/ +20 +[0-9.]+[BK] +1 +[0-9.]+x +- +0$' ||
	fail "batch summary: $($stat --ring "$RING")"

out=$($stat --ring "$RING" --check --state "$WORK/state"); rc=$?
[ $rc -eq 0 ] || fail "healthy uploader: exit $rc: $out"
$stat --ring "$RING" | grep -q "alive, epoch" || fail "summary: $($stat --ring "$RING")"
$stat --ring "$RING" --prometheus >"$WORK/prom" || fail "prometheus"
python3 "$TOP/tests/promcheck.py" --s3ring <"$WORK/prom" || fail "exposition"
grep -q "^s3ring_uploader_up{ring=\"$RING\"} 1$" "$WORK/prom" || fail "uploader_up"
grep -q "^s3ring_batch_rule_objects_total{ring=\"$RING\",prefix=\"blive/\"} 1$" "$WORK/prom" ||
	fail "batch_rule_objects_total: $(grep batch "$WORK/prom")"
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
