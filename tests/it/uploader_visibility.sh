#!/usr/bin/env bash
# uploader_visibility.sh -- an S3 outage and a loss are visible:
# 1. the server dies with messages pending: the uploader logs at info that
#    uploads are failing, last_error names the error with its time,
#    shmstat --json shows the failing time and network errors, and
#    shmstat --check goes WARNING then CRITICAL on the failing time and on
#    the oldest pending message, naming the error;
# 2. --max-age 3 during a 6 s outage dead-letters nothing (the age counts
#    only while the service works); when the server returns, "uploads
#    recovered" is logged, every message lands and --check is OK again;
# 3. a new uploader process starts with no stale last_error;
# 4. a dead letter makes the next --check WARNING, the one after OK (the
#    state file remembers the count);
# 5. shmstat --listen serves /metrics that promcheck accepts, with errors
#    by class and the latency histogram;
# 6. SIGTERM while messages wait for a retry reports how many were handed
#    back, and the next start delivers them;
# 7. a batch object retried during an outage counts in in_flight (it used
#    to count only single messages' uploads: 0 with a batch stuck).
set -uo pipefail
IT_NAME=visibility
. "$(dirname "$0")/lib.sh"

SRV=$TOP/tests/servers/s3rver.sh
BUCKET=vis-bucket
N=${N:-$([ -n "${SAN:-}" ] && echo 20 || echo 100)}
LISTEN_PID=
trap '[ -n "$LISTEN_PID" ] && kill -TERM "$LISTEN_PID" 2>/dev/null; it_cleanup' EXIT
check() { "$B/bin/shmstat" --ring "$RING" --check --state "$WORK/check.state" "$@" >"$WORK/check.out" 2>&1; echo $?; }
wait_for() {  # PYTHON-EXPR-ON-d SECONDS
	local end=$((SECONDS + $2))
	while [ $SECONDS -lt $end ]; do
		"$B/bin/shmstat" --ring "$RING" --json | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if ($1) else 1)" && return 0
		sleep 0.2
	done
	return 1
}

it_s3rver "$BUCKET"
it_uploader --bucket "$BUCKET" --workers 4 --ring-size 4M --max-age 3 --max-attempts 3
it_wait_ready
"$B/tests/tool_produce" "$RING" 1 "$N" v1/ 1 1024 || fail "producer"
it_wait_uploaded "$N" 60
[ "$(check)" -eq 0 ] || fail "--check not OK while uploads work: $(cat "$WORK/check.out")"
[ "$(it_stat '["failing_for_ms"]')" = None ] || fail "failing while uploads work"
[ "$(it_stat '["last_success_age_ms"]')" != None ] || fail "no last success"

# ---- 1. the outage
"$SRV" stop "$WORK/s3rver" >/dev/null 2>&1 || fail "stopping s3rver"
t_down=$SECONDS
"$B/tests/tool_produce" "$RING" 1 20 v2/ 1 1024 0 || fail "producer during the outage"
wait_for 'd["failing_for_ms"] is not None and d["errors"]["network"] > 0' 20 ||
	fail "no failing time or network errors in shmstat --json"
grep 'level=info' "$WORK/upl.log" | grep -q 'uploads failing' || fail "no info line when uploads started failing"
err=$(it_stat '["last_error"]')
[ "$err" != None ] || fail "no last_error during the outage"
[ "$(it_stat '["last_error_age_ms"]')" -lt 30000 ] || fail "last_error is stale"
sleep 2.5
rc=$(check --failing-warn 1 --failing-crit 60 --age-warn 100 --age-crit 200)
[ "$rc" -eq 1 ] || fail "--check exits $rc after 2 s of failures, want 1: $(cat "$WORK/check.out")"
grep -q 'every upload has failed for' "$WORK/check.out" || fail "--check does not say uploads fail"
grep -q 'last error: ' "$WORK/check.out" || fail "--check does not name the error: $(cat "$WORK/check.out")"
rc=$(check --failing-warn 1 --failing-crit 2)
[ "$rc" -eq 2 ] || fail "--check exits $rc past --failing-crit, want 2: $(cat "$WORK/check.out")"
rc=$(check --failing-warn 0 --failing-crit 0 --age-warn 1 --age-crit 100)
[ "$rc" -eq 1 ] || fail "--check exits $rc on an old pending message, want 1: $(cat "$WORK/check.out")"
grep -q 'oldest pending message' "$WORK/check.out" || fail "--check does not name the pending age"
log "outage check: $(cat "$WORK/check.out")"
while [ $((SECONDS - t_down)) -lt 6 ]; do sleep 0.2; done

# ---- 2. the server returns: nothing was spooled
S3RVER_PORT=$S3_PORT S3RVER_QUIET=1 "$SRV" start "$WORK/s3rver" "$BUCKET" >/dev/null ||
	fail "s3rver did not start again on port $S3_PORT"
it_wait_uploaded $((N + 20)) 120
[ "$(it_stat '["dead_lettered"]')" -eq 0 ] || fail "--max-age 3 dead-lettered messages during a 6 s outage"
for _ in $(seq 1 50); do grep -q 'uploads recovered' "$WORK/upl.log" && break; sleep 0.1; done
grep -q 'uploads recovered' "$WORK/upl.log" || fail "no 'uploads recovered' line"
[ "$(it_stat '["failing_for_ms"]')" = None ] || fail "still failing after the recovery"
S3_BUCKET=$BUCKET "$B/tests/tool_s3check" 1 20 v2/ 1 1024 || fail "outage messages are not in the bucket"
rc=$(check)
[ "$rc" -eq 0 ] || fail "--check exits $rc after the recovery: $(cat "$WORK/check.out")"
summaries=$(grep -c 'uploads failing\|uploads still failing\|uploads recovered' "$WORK/upl.log")
echo "figure: visibility outage_s=6 info_lines=$summaries network_errors=$(it_stat '["errors"]["network"]') last_error=\"$err\""

# ---- 3. a new process clears the stale error
it_stop_uploader || fail "uploader exited non-zero"
it_uploader --bucket "$BUCKET" --workers 2 --ring-size 4M
it_wait_ready
[ "$(it_stat '["last_error"]')" = None ] || fail "a new uploader shows the previous one's last_error"

# ---- 4. a dead letter since the last check
it_stop_uploader || fail "uploader exited non-zero"
long=$(printf 'p%.0s' $(seq 1 1010))
it_uploader --bucket "$BUCKET" --workers 2 --ring-size 4M --key-prefix "$long/"
it_wait_ready
"$B/tests/tool_produce" "$RING" 1 1 v4-a-key-that-goes-over-the-limit/ 1 64 || fail "producer"
wait_for 'd["dead_lettered"] == 1' 20 || fail "the over-long key was not dead-lettered"
rc=$(check)
[ "$rc" -eq 1 ] || fail "--check exits $rc after a dead letter, want 1: $(cat "$WORK/check.out")"
grep -q '1 new dead letter' "$WORK/check.out" || fail "--check does not count the dead letter"
rc=$(check)
[ "$rc" -eq 0 ] || fail "the second --check exits $rc, want 0: $(cat "$WORK/check.out")"

# ---- 5. /metrics
"$B/bin/shmstat" --ring "$RING" --listen 127.0.0.1:0 2>"$WORK/listen.err" &
LISTEN_PID=$!
for _ in $(seq 1 50); do grep -q 'serving' "$WORK/listen.err" && break; sleep 0.1; done
url=$(sed -n 's/.*serving \/metrics on \(http[^ ]*\)$/\1/p' "$WORK/listen.err")
[ -n "$url" ] || fail "shmstat --listen did not start: $(cat "$WORK/listen.err")"
curl -fsS "$url" >"$WORK/metrics" || fail "GET $url failed"
/usr/bin/python3 "$TOP/tests/promcheck.py" --s3ring <"$WORK/metrics" || fail "promcheck rejects /metrics"
grep -Eq '^s3ring_upload_errors_total\{ring="[^"]*",class="network"\} [1-9]' "$WORK/metrics" ||
	fail "/metrics has no network errors"
grep -Eq '^s3ring_upload_latency_seconds_count\{ring="[^"]*"\} [1-9]' "$WORK/metrics" ||
	fail "/metrics has no latency histogram"
code=$(curl -s -o /dev/null -w '%{http_code}' "${url%/metrics}/other")
[ "$code" = 404 ] || fail "GET /other answered $code, want 404"
kill -TERM "$LISTEN_PID"; wait "$LISTEN_PID"; lrc=$?; LISTEN_PID=
[ "$lrc" -eq 0 ] || fail "shmstat --listen exited $lrc on SIGTERM"

# ---- 6. SIGTERM hands back the messages waiting for a retry
it_stop_uploader || fail "uploader exited non-zero"
: >"$WORK/upl.log"
it_uploader --bucket "$BUCKET" --workers 4 --ring-size 4M
it_wait_ready
# One upload proves the bucket check is behind us.
up0=$(it_stat '["uploaded"]')
"$B/tests/tool_produce" "$RING" 1 1 v6-first/ 1 128 || fail "producer"
wait_for "d['uploaded'] > $up0" 30 || fail "no upload before the outage"
"$SRV" stop "$WORK/s3rver" >/dev/null 2>&1 || fail "stopping s3rver"
"$B/tests/tool_produce" "$RING" 1 7 v6/ 1 128 0 || fail "producer"
wait_for 'd["in_flight"] >= 4 and d["retried"] > 0' 20 || fail "no retries with the server down"
it_stop_uploader || fail "uploader exited non-zero"
hb=$(sed -n 's/.*msg="stopped" handed_back=\([^ ]*\).*/\1/p' "$WORK/upl.log")
[ -n "$hb" ] && [ "$hb" != none ] && [ "$hb" -ge 4 ] ||
	fail "SIGTERM reported handed_back=$hb with 4 workers retrying"
S3RVER_PORT=$S3_PORT S3RVER_QUIET=1 "$SRV" start "$WORK/s3rver" "$BUCKET" >/dev/null ||
	fail "s3rver did not start again"
it_uploader --bucket "$BUCKET" --workers 4 --ring-size 4M
it_wait_ready
S3_BUCKET=$BUCKET timeout 60 bash -c "until '$B/tests/tool_s3check' 1 7 v6/ 1 128 2>/dev/null; do sleep 0.5; done" ||
	fail "the handed-back messages were not delivered after a restart"
it_stop_uploader || fail "uploader exited non-zero"

# ---- 7. a batch object under way is in flight
it_uploader --bucket "$BUCKET" --workers 4 --ring-size 4M \
	--batch "vb/:max-bytes=64K,max-age=200,compression=none"
it_wait_ready
"$SRV" stop "$WORK/s3rver" >/dev/null 2>&1 || fail "stopping s3rver"
"$B/tests/tool_produce" "$RING" 1 5 vb/ 1 64 0 || fail "producer"
wait_for 'd["in_flight"] >= 1 and d["used_bytes"] > 0' 20 ||
	fail "a batch retried during an outage is not in in_flight: $("$B/bin/shmstat" --ring "$RING" --json)"
S3RVER_PORT=$S3_PORT S3RVER_QUIET=1 "$SRV" start "$WORK/s3rver" "$BUCKET" >/dev/null ||
	fail "s3rver did not start again"
wait_for 'd["in_flight"] == 0 and d["used_bytes"] == 0 and d["uploader"]["batch"]["objects"] >= 1' 60 ||
	fail "the batch did not land, or in_flight stayed up: $("$B/bin/shmstat" --ring "$RING" --json)"
it_stop_uploader || fail "uploader exited non-zero"
echo "figure: visibility handed_back=$hb"
