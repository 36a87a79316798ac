#!/usr/bin/env bash
# creds_refresh.sh -- temporary credentials are refreshed before they expire,
# and a refresh never blocks uploads. Web identity keys from the STS stand-in
# live 40 s, so the refresher asks again at 20 s, with the token re-read from
# its file. The stand-in holds that answer until the test releases it; in the
# meantime 100 messages are produced and must all be uploaded with the
# current keys. Then STS starts refusing: each refresh fails and is retried
# with backoff, the keys expire, the configuration alarm is raised naming
# ExpiredToken, and messages wait in the ring (nothing is dead-lettered).
# When STS answers again, the alarm clears and the waiting messages go out.
set -uo pipefail
IT_NAME=creds-refresh
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/creds_lib.bash"

it_s3rver bucket-refresh
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
standin STS sts sts --ttl 40 --hold
ctl() { "$TOP/tests/servers/aws_creds.sh" mode "$WORK/sts" "$1"; }
echo web-token-1 >"$WORK/web-token"

AWS_WEB_IDENTITY_TOKEN_FILE="$WORK/web-token" \
AWS_ROLE_ARN=arn:aws:iam::111122223333:role/s3ring-writer \
AWS_ENDPOINT_URL_STS="$STS" \
	it_uploader --bucket bucket-refresh --recheck-interval 2
it_wait_ready
grep -q 'credentials=web-identity' "$WORK/upl.log" || fail "not started with web identity"
"$B/tests/tool_produce" "$RING" 1 20 before/ 1 1024 || fail "producer"
it_wait_uploaded 20 60

log "waiting for the refresh (due 20 s after start), rotating the token"
echo web-token-2 >"$WORK/web-token"
for _ in $(seq 1 600); do [ -e "$WORK/sts/held" ] && break; sleep 0.1; done
[ -e "$WORK/sts/held" ] || fail "no refresh within 60 s"
log "refresh outstanding; uploads must go on"
"$B/tests/tool_produce" "$RING" 2 50 during/ 1 1024 || fail "producer"
it_wait_uploaded 120 60
[ "$(count sts action AssumeRoleWithWebIdentity)" -eq 1 ] ||
	fail "the held refresh was answered already: $(requests sts)"
grep -q 'credentials refreshed' "$WORK/upl.log" && fail "refreshed before STS answered"
touch "$WORK/sts/release"
for _ in $(seq 1 300); do grep -q 'credentials refreshed' "$WORK/upl.log" && break; sleep 0.1; done
grep -q 'credentials refreshed' "$WORK/upl.log" || fail "no 'credentials refreshed' line"
requests sts | /usr/bin/python3 -c '
import json, sys
r = [json.loads(l) for l in sys.stdin]
assert [x["web_identity_token"] for x in r[:2]] == ["web-token-1", "web-token-2"], r
' || fail "the token was not re-read from its file: $(requests sts)"
rm -f "$WORK/sts/release" "$WORK/sts/held"
# Later answers are not held from here on.
touch "$WORK/sts/release"

log "STS refuses: refreshes fail, the keys expire, the alarm is raised"
ctl error
for _ in $(seq 1 600); do
	[ "$(it_stat '["config_alarm"]')" = True ] && break
	sleep 0.1
done
[ "$(it_stat '["config_alarm"]')" = True ] || fail "no configuration alarm after the keys expired"
grep -q 'credentials refresh failed' "$WORK/upl.log" || fail "no 'refresh failed' line"
# The refresher logs the expiry at its next wake, up to a second after the
# uploader raised the alarm for it: wait for the line, do not race it.
for _ in $(seq 1 100); do
	grep -q 'credentials expired and could not be refreshed' "$WORK/upl.log" && break
	sleep 0.1
done
grep -q 'credentials expired and could not be refreshed' "$WORK/upl.log" ||
	fail "no 'expired' line"
it_stat '["last_error"]' | grep -q ExpiredToken || fail "last_error: $(it_stat '["last_error"]')"
"$B/tests/tool_produce" "$RING" 1 30 after/ 1 1024 || fail "producer"
sleep 2
[ "$(it_stat '["dead_lettered"]')" -eq 0 ] || fail "messages dead-lettered while the keys had expired"
kill -0 "$(it_uploader_pid)" || fail "the uploader died"

log "STS answers again: the alarm clears, the waiting messages go out"
ctl ok
it_wait_uploaded 150 90
[ "$(it_stat '["config_alarm"]')" = False ] || fail "alarm still raised"
grep -q 'alarm cleared' "$WORK/upl.log" || fail "no 'alarm cleared' line"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
S3_BUCKET=bucket-refresh "$B/tests/tool_s3check" 1 30 after/ 1 1024 || fail "bucket check"
grep -q 'sts-token-[0-9]\|web-token-[0-9]' "$WORK/upl.log" && fail "a token in the log"
fails=$(grep -c 'credentials refresh failed' "$WORK/upl.log")
echo "figure: creds_refresh sts_requests=$(requests sts | wc -l) failed_refreshes=$fails"
