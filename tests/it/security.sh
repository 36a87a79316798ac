#!/usr/bin/env bash
# security.sh -- permissions, TLS verification and secrets.
#
# 1. The uploader creates the ring and its journal 0600; another uid
#    (nobody, through setpriv) cannot open the ring: s3ring-put fails with
#    EACCES and a one-line message.
# 2. A ring owned by another uid is refused by the uploader unless
#    --allow-foreign-ring.
# 3. TLS: an HTTPS endpoint with a self-signed certificate (the fault proxy
#    in TLS mode, with no faults, in front of s3rver) is refused with a clear
#    error (configuration alarm, log line naming the certificate problem);
#    with --ca-file it is accepted and messages arrive.
# 4. Secrets (an access key secret and a session token from the environment,
#    another secret from a credentials file) never appear in the logs (at
#    debug level, including failed requests and a SIGHUP reload), in shmstat
#    output in any mode, or in /proc/PID/cmdline.
set -uo pipefail
IT_NAME=security
. "$(dirname "$0")/lib.sh"

id nobody >/dev/null 2>&1 || fail "no user nobody"
NOGRP=$(id -gn nobody)

it_s3rver bucket-sec
S3RVER_ENDPOINT=$S3_ENDPOINT

# ---- 1. modes and other uids
it_uploader --bucket bucket-sec --ring-size 1M
it_wait_ready
mode=$(stat -c %a "/dev/shm/s3ring.$RING")
jmode=$(stat -c %a "/dev/shm/s3ring.$RING.journal")
[ "$mode" = 600 ] || fail "ring mode $mode, want 600"
[ "$jmode" = 600 ] || fail "journal mode $jmode, want 600"
# A copy of s3ring-put that nobody can execute (the build tree may not be
# reachable by other users).
BIN=$(mktemp -d /tmp/s3ring-sec-bin.XXXXXX)
chmod 755 "$BIN"
cp "$B/bin/s3ring-put" "$B/tests/tool_ring" "$BIN/"
chmod 755 "$BIN"/*
trap 'rm -rf "$BIN"; it_cleanup' EXIT
out=$(echo hi | setpriv --reuid=nobody --regid="$NOGRP" --clear-groups "$BIN/s3ring-put" --ring "$RING" sec/x 2>&1)
rc=$?
[ $rc -ne 0 ] || fail "nobody could put into a 0600 ring"
[ "$(echo "$out" | wc -l)" -eq 1 ] || fail "more than one line: $out"
echo "$out" | grep -qi 'permission denied\|EACCES' || fail "no EACCES in: $out"
echo "figure: security ring_mode=$mode journal_mode=$jmode other_uid=\"$out\" exit=$rc"
it_stop_uploader || fail "uploader exit"

# ---- 2. a ring owned by another uid
FRING=test-sec-foreign-$$
setpriv --reuid=nobody --regid="$NOGRP" --clear-groups "$BIN/tool_ring" create "$FRING" 65536 ||
	fail "nobody cannot create a ring"
trap 'rm -rf "$BIN"; "$B/tests/tool_ring" unlink "$FRING" 2>/dev/null; rm -f "/dev/shm/s3ring.$FRING.journal"; it_cleanup' EXIT
out=$(timeout 20 "$B/bin/s3ring-uploader" --ring "$FRING" --bucket bucket-sec --endpoint "$S3_ENDPOINT" \
	--path-style --spool "$WORK/spool" 2>&1)
rc=$?
[ $rc -ne 0 ] || fail "the uploader accepted a ring of another uid"
echo "$out" | grep -q 'owned by uid' || fail "unclear refusal: $out"
echo "$out" | grep -q 'allow-foreign-ring' || fail "the refusal does not name --allow-foreign-ring: $out"
timeout -s KILL 60 "$B/bin/s3ring-uploader" --ring "$FRING" --bucket bucket-sec --endpoint "$S3_ENDPOINT" \
	--path-style --spool "$WORK/spool" --allow-foreign-ring >"$WORK/foreign.log" 2>&1 &
fp=$!
for _ in $(seq 1 100); do
	grep -q 'msg="started"' "$WORK/foreign.log" && break
	sleep 0.05
done
grep -q 'msg="started"' "$WORK/foreign.log" || fail "--allow-foreign-ring: $(cat "$WORK/foreign.log")"
it_term $fp
wait $fp || fail "foreign-ring uploader exit"
echo "figure: security foreign_ring_refused=\"$(echo "$out" | tail -n 1)\" allowed_with_flag=yes"

# ---- 3. TLS with a self-signed certificate
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-keyout "$WORK/key.pem" -out "$WORK/cert.pem" -subj "/CN=127.0.0.1" \
	-addext "subjectAltName=IP:127.0.0.1,DNS:localhost" 2>"$WORK/openssl.log" ||
	fail "openssl: $(cat "$WORK/openssl.log")"
timeout -s KILL 300 python3 "$TOP/tests/fault_proxy.py" --upstream "$S3RVER_ENDPOINT" \
	--port-file "$WORK/tls.port" --tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem" \
	2>"$WORK/tls-proxy.log" &
TLS_PID=$!
trap 'kill -TERM $TLS_PID 2>/dev/null; rm -rf "$BIN"; "$B/tests/tool_ring" unlink "$FRING" 2>/dev/null; rm -f "/dev/shm/s3ring.$FRING.journal"; it_cleanup' EXIT
for _ in $(seq 1 100); do [ -s "$WORK/tls.port" ] && break; sleep 0.05; done
[ -s "$WORK/tls.port" ] || fail "TLS proxy did not start: $(cat "$WORK/tls-proxy.log")"
S3_ENDPOINT=https://127.0.0.1:$(cat "$WORK/tls.port")
: >"$WORK/upl.log"
it_uploader --bucket bucket-sec --recheck-interval 1
it_wait_ready
for _ in $(seq 1 100); do
	[ "$(it_stat '["config_alarm"]')" = True ] && break
	sleep 0.1
done
[ "$(it_stat '["config_alarm"]')" = True ] || fail "no configuration alarm with a self-signed certificate"
tlserr=$(grep 'alarm raised' "$WORK/upl.log" | head -n 1)
echo "$tlserr" | grep -qi 'certificate\|SSL\|TLS' || fail "the alarm does not name the certificate problem: $tlserr"
last=$(it_stat '["last_error"]')
it_stop_uploader || fail "uploader exit"
echo "figure: security tls_self_signed_refused: $(echo "$tlserr" | grep -o 'error=.*')"

: >"$WORK/upl.log"
it_uploader --bucket bucket-sec --ca-file "$WORK/cert.pem"
it_wait_ready
"$B/tests/tool_produce" "$RING" 1 50 tls/ 1 1024 || fail "producer"
it_wait_uploaded 50 60
[ "$(it_stat '["config_alarm"]')" = False ] || fail "configuration alarm with --ca-file: $(it_stat '["last_error"]')"
it_stop_uploader || fail "uploader exit"
S3_ENDPOINT=$S3RVER_ENDPOINT S3_BUCKET=bucket-sec "$B/tests/tool_s3check" 1 50 tls/ 1 1024 || fail "bucket check (TLS)"
echo "figure: security tls_with_ca_file=accepted messages=50 shmstat_last_error_before=\"$last\""
S3_ENDPOINT=$S3RVER_ENDPOINT

# ---- 4. secrets
SECRET_ENV=envSecretZ9q8w7e6r5t4y3u2i1o0pAAA
TOKEN_ENV=envTokenQ1w2e3r4t5y6u7i8o9p0BBB
SECRET_FILE=fileSecretM1n2b3v4c5x6z7l8k9jCCC
check_secrets() {  # WHAT PID
	local where
	for s in "$SECRET_ENV" "$TOKEN_ENV" "$SECRET_FILE"; do
		for where in "$WORK/upl.log" "$WORK/shmstat.out"; do
			grep -q "$s" "$where" && fail "$1: a secret is in $(basename "$where")"
		done
		tr '\0' ' ' <"/proc/$2/cmdline" | grep -q "$s" && fail "$1: a secret is in the command line"
	done
	return 0
}
shmstat_all() {
	{
		"$B/bin/shmstat" --ring "$RING"
		"$B/bin/shmstat" --ring "$RING" --json
		"$B/bin/shmstat" --ring "$RING" --prometheus
		"$B/bin/shmstat" --ring "$RING" --check
	} >"$WORK/shmstat.out" 2>&1
}

: >"$WORK/upl.log"
AWS_SECRET_ACCESS_KEY=$SECRET_ENV AWS_SESSION_TOKEN=$TOKEN_ENV it_uploader --bucket bucket-sec --log-level debug
it_wait_ready
"$B/tests/tool_produce" "$RING" 1 20 sec/ 1 100 || fail "producer"
it_wait_uploaded 20 60
shmstat_all
check_secrets "environment secrets" "$(it_uploader_pid)"
grep -q 'session_token=yes' "$WORK/upl.log" || fail "the session token was not used: $(grep credentials "$WORK/upl.log")"
it_stop_uploader || fail "uploader exit"

: >"$WORK/upl.log"
printf '[default]\naws_access_key_id = S3RVER\naws_secret_access_key = %s\n' "$SECRET_FILE" >"$WORK/creds"
chmod 600 "$WORK/creds"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_SHARED_CREDENTIALS_FILE="$WORK/creds" \
	timeout -s KILL 120 "$B/bin/s3ring-uploader" --ring "$RING" --endpoint http://127.0.0.1:1 \
	--path-style --spool "$WORK/spool" --bucket bucket-sec --log-level debug --connect-timeout 1 \
	>>"$WORK/upl.log" 2>&1 &
UPL_PID=$!
it_wait_ready
sleep 2   # failed bucket checks, logged at debug level
p=$(it_uploader_pid)
kill -HUP "$p"
sleep 0.5
shmstat_all
check_secrets "credentials file" "$p"
grep -q 'source=file\|credentials file\|source=profile\|shared' "$WORK/upl.log" || log "note: $(grep -m1 credentials "$WORK/upl.log")"
# SIGHUP is acted on in the main loop only, not during a failing bucket
# check: reported, not required here.
hup=$(grep -c 'SIGHUP' "$WORK/upl.log")
it_stop_uploader || fail "uploader exit"
lines=$(wc -l <"$WORK/upl.log")
echo "figure: security secrets_in_logs=0 secrets_in_shmstat=0 secrets_in_cmdline=0 debug_log_lines_checked=$lines sighup_lines_during_bucket_check=$hup"
