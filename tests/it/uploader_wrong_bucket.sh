#!/usr/bin/env bash
# uploader_wrong_bucket.sh -- a configuration error never loses messages:
# 1. started with a bucket that does not exist (--recheck-interval 1), the
#    uploader raises the alarm (shmstat --json, shmstat --check exits 2),
#    uploads nothing and leaves every message pending in the ring; once the
#    bucket is created, the alarm clears by itself and every message is
#    delivered byte for byte;
# 2. the bucket vanishes while the uploader runs (s3rver restarted on the
#    same port with an empty data directory, messages put meanwhile): PUTs
#    get NoSuchBucket, the alarm is raised, nothing is dead-lettered;
#    creating the bucket again clears it and every message is delivered.
set -uo pipefail
IT_NAME=wrongbucket
. "$(dirname "$0")/lib.sh"

SRV=$TOP/tests/servers/s3rver.sh
N=${N:-$([ -n "${SAN:-}" ] && echo 100 || echo 500)}   # per producer, 2 producers
BUCKET=wb-late

check_rc() { "$B/bin/shmstat" --ring "$RING" --check >"$WORK/check.out" 2>&1; echo $?; }
wait_stat() {  # EXPR VALUE SECONDS
	for _ in $(seq 1 $(($3 * 10))); do
		[ "$(it_stat "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

it_s3rver   # no bucket
it_uploader --bucket "$BUCKET" --workers 4 --ring-size 4M --recheck-interval 1
it_wait_ready
wait_stat '["config_alarm"]' True 15 || fail "no configuration alarm with a missing bucket"
"$B/tests/tool_produce" "$RING" 2 "$N" wb/ 1 4096 || fail "producers failed"
sleep 3  # three re-checks
total=$((2 * N))
[ "$(it_stat '["config_alarm"]')" = True ] || fail "the alarm went away by itself"
[ "$(it_stat '["uploader"]["config_alarm"]')" = True ] || fail "uploader.config_alarm is not set"
err=$(it_stat '["last_error"]')
grep -q NoSuchBucket <<<"$err" || fail "last_error does not name the error: $err"
rc=$(check_rc)
log "alarm: shmstat --check exits $rc: $(cat "$WORK/check.out")"
[ "$rc" -eq 2 ] || fail "shmstat --check exits $rc during the alarm, want 2"
up=$(it_stat '["uploaded"]')
pending=$(it_stat '["pending"]')
dl=$(it_stat '["dead_lettered"]')
[ "$up" -eq 0 ] || fail "$up uploaded to a bucket that does not exist"
[ "$dl" -eq 0 ] || fail "$dl dead-lettered because of a configuration error"
[ "$pending" -eq "$total" ] || fail "$pending pending, want $total"
kill -0 "$(it_uploader_pid)" || fail "the uploader died during the alarm"
cfgerr=$(it_stat '["config_errors"]')

t0=$(date +%s%N)
"$SRV" mkbucket "$WORK/s3rver" "$BUCKET" || fail "mkbucket"
wait_stat '["config_alarm"]' False 15 || fail "the alarm did not clear after the bucket was created"
clear_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
it_wait_uploaded "$total" 120
deliver_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
grep -q 'alarm cleared' "$WORK/upl.log" || fail "no 'alarm cleared' log line"
S3_BUCKET=$BUCKET "$B/tests/tool_s3check" 2 "$N" wb/ 1 4096 || fail "bucket check after the alarm"
rc=$(check_rc)
[ "$rc" -eq 0 ] || fail "shmstat --check exits $rc after the alarm cleared: $(cat "$WORK/check.out")"
echo "figure: wrong_bucket messages=$total config_errors=$cfgerr alarm_clear_ms=$clear_ms all_delivered_ms=$deliver_ms"

# ---- 2. the bucket vanishes: the server comes back without it
"$SRV" stop "$WORK/s3rver" >/dev/null 2>&1 || fail "stopping s3rver"
"$B/tests/tool_produce" "$RING" 2 "$N" wb2/ 1 4096 || fail "producers failed"
S3RVER_PORT=$S3_PORT S3RVER_QUIET=1 "$SRV" start "$WORK/s3rver-empty" >/dev/null ||
	fail "s3rver did not start again on port $S3_PORT"
IT_SERVERS+=("s3rver:$WORK/s3rver-empty")
wait_stat '["config_alarm"]' True 30 || fail "no alarm when the bucket vanished"
mid=$(it_stat '["uploaded"]')
sleep 2
[ "$(it_stat '["uploaded"]')" -eq "$mid" ] || fail "uploads went on during the alarm"
[ "$(it_stat '["dead_lettered"]')" -eq 0 ] || fail "dead letters during the alarm"
[ "$(check_rc)" -eq 2 ] || fail "shmstat --check is not CRITICAL during the alarm"
pending=$(it_stat '["pending"]')
"$SRV" mkbucket "$WORK/s3rver-empty" "$BUCKET" || fail "mkbucket"
wait_stat '["config_alarm"]' False 15 || fail "the alarm did not clear after the bucket came back"
it_wait_uploaded $((2 * total)) 120
S3_BUCKET=$BUCKET "$B/tests/tool_s3check" 2 "$N" wb2/ 1 4096 || fail "bucket check of the second batch"
[ "$(it_stat '["dead_lettered"]')" -eq 0 ] || fail "dead letters"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
echo "figure: wrong_bucket vanished messages=$total pending_during_alarm=$pending retried=$(it_stat '["retried"]')"
