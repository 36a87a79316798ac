#!/usr/bin/env bash
# creds_swift.sh -- the keys a credential source hands out are the keys the
# uploader signs with, proven against a server that verifies SigV4: Swift's
# s3api (it accepts, and ignores, x-amz-security-token). The STS stand-in
# gives web identity keys of Swift's first account (30 s), and from the
# refresh on, keys of its second account; each account has its own bucket
# of the same name. Messages produced before the refresh must land in the
# first account's bucket, those produced after it in the second's: a
# request signed with anything else would be refused (SignatureDoesNotMatch).
set -uo pipefail
IT_NAME=creds-swift
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/creds_lib.bash"

BUCKET=s3ring-creds
PY=/usr/bin/python3
SDIR=$(mktemp -d /dev/shm/s3ring-creds-swift.XXXXXX)   # tmpfs: object PUTs fsync
trap '"$TOP/tests/servers/swift.sh" stop "$SDIR" >/dev/null 2>&1; rm -rf "$SDIR"; it_cleanup' EXIT
"$TOP/tests/servers/swift.sh" start "$SDIR" "$BUCKET" >/dev/null 2>"$WORK/swift-start.log" ||
	{ cat "$WORK/swift-start.log"; fail "swift did not start"; }
set -a
. "$SDIR/env"
set +a
KEY1=$AWS_ACCESS_KEY_ID SECRET1=$AWS_SECRET_ACCESS_KEY
KEY2=$S3_ALT_ACCESS_KEY_ID SECRET2=$S3_ALT_SECRET_ACCESS_KEY
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
out=$("$PY" "$TOP/tests/servers/s3req.py" PUT "$S3_ENDPOINT/$BUCKET" --key "$KEY2" --secret "$SECRET2")
case $out in 200*) ;; *) fail "creating the second account's bucket: $out" ;; esac

# keys_in KEY SECRET PREFIX: how many objects under PREFIX that account sees
# (the prefix without its slash: s3req.py does not encode one in a query).
keys_in() {
	"$PY" "$TOP/tests/servers/s3req.py" GET "$S3_ENDPOINT/$BUCKET?prefix=${3%/}" \
		--key "$1" --secret "$2" -o "$WORK/list.xml" >/dev/null
	grep -o '<Key>' "$WORK/list.xml" | wc -l
}

standin STS sts sts --ttl 30 --access-key "$KEY1" --secret-key "$SECRET1" \
	--next-access-key "$KEY2" --next-secret-key "$SECRET2"
echo web-token >"$WORK/web-token"
AWS_WEB_IDENTITY_TOKEN_FILE="$WORK/web-token" \
AWS_ROLE_ARN=arn:aws:iam::111122223333:role/s3ring-writer \
AWS_ENDPOINT_URL_STS="$STS" \
	it_uploader --bucket "$BUCKET" --region "$AWS_REGION"
it_wait_ready
grep -q 'credentials=web-identity' "$WORK/upl.log" || fail "not started with web identity"
"$B/tests/tool_produce" "$RING" 1 20 first/ 1 2048 || fail "producer"
it_wait_uploaded 20 60
[ "$(it_stat '["config_alarm"]')" = False ] || fail "alarm: $(it_stat '["last_error"]')"

log "waiting for the refresh (due 15 s after start)"
for _ in $(seq 1 900); do grep -q 'credentials refreshed' "$WORK/upl.log" && break; sleep 0.1; done
grep -q 'credentials refreshed' "$WORK/upl.log" || fail "no refresh within 90 s"
"$B/tests/tool_produce" "$RING" 1 20 second/ 1 2048 || fail "producer"
it_wait_uploaded 40 60
[ "$(it_stat '["dead_lettered"]')" -eq 0 ] || fail "dead letters"
[ "$(it_stat '["config_alarm"]')" = False ] || fail "alarm: $(it_stat '["last_error"]')"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"

a1=$(keys_in "$KEY1" "$SECRET1" first/) b1=$(keys_in "$KEY1" "$SECRET1" second/)
a2=$(keys_in "$KEY2" "$SECRET2" first/) b2=$(keys_in "$KEY2" "$SECRET2" second/)
[ "$a1" -eq 20 ] && [ "$a2" -eq 0 ] || fail "before the refresh: $a1 objects in account 1, $a2 in account 2"
[ "$b2" -eq 20 ] && [ "$b1" -eq 0 ] || fail "after the refresh: $b1 objects in account 1, $b2 in account 2"
{ grep -q 'sts-token-[0-9]' "$WORK/upl.log" || grep -qw 'testing2\?' "$WORK/upl.log"; } && fail "a secret in the log"
echo "figure: creds_swift account1=$a1 account2=$b2 sts_requests=$(requests sts | wc -l)"
