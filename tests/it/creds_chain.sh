#!/usr/bin/env bash
# creds_chain.sh -- every source of the credential chain, against s3rver and
# the stand-ins for STS, SSO, ECS and IMDS: the chain's order (the first
# configured source wins), that each source's keys upload messages, what
# each stand-in received (a signed AssumeRole, the web identity token, the
# SSO bearer token, the ECS authorization, an IMDSv2 session token), and
# the failure paths, each a refusal to start with one line naming the cause:
# an STS error, a bad AssumeRole signature, IMDS down, malformed JSON, an
# expired SSO login, a wrong ECS token, credential_process exiting 1.
set -uo pipefail
IT_NAME=creds-chain
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/creds_lib.bash"

it_s3rver bucket-creds
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY

standin STS sts sts --ttl 3600 --web-token web-token-A \
	--source-key AKIABASEBASEBASE --source-secret base-secret-value
standin SSO sso sso --sso-token sso-access-token-1
standin ECS ecs ecs --auth ecs-auth-token
standin IMDS imds imds
# A second instance role whose keys are the AssumeRole source STS expects.
standin IMDS_BASE imds-base imds --access-key AKIABASEBASEBASE --secret-key base-secret-value
echo web-token-A >"$WORK/web-token"
echo ecs-auth-token >"$WORK/ecs-token"
ENV_KEYS=(AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER)
WEB=(AWS_WEB_IDENTITY_TOKEN_FILE="$WORK/web-token"
	AWS_ROLE_ARN=arn:aws:iam::111122223333:role/s3ring-writer
	AWS_ROLE_SESSION_NAME=it-session AWS_ENDPOINT_URL_STS="$STS")
ECS_ENV=(AWS_CONTAINER_CREDENTIALS_FULL_URI="$ECS/v2/credentials/task"
	AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="$WORK/ecs-token")
IMDS_ENV=(AWS_EC2_METADATA_DISABLED=false AWS_EC2_METADATA_SERVICE_ENDPOINT="$IMDS")

cat >"$HOME/.aws/credentials" <<EOF
[default]
aws_access_key_id = S3RVER
aws_secret_access_key = S3RVER

[base]
aws_access_key_id = AKIABASEBASEBASE
aws_secret_access_key = base-secret-value

[wrongbase]
aws_access_key_id = AKIABASEBASEBASE
aws_secret_access_key = not-the-secret
EOF
chmod 600 "$HOME/.aws/credentials"
cat >"$WORK/proc.sh" <<'EOF'
#!/bin/sh
echo run >>"$(dirname "$0")/proc.runs"
printf '{"Version": 1, "AccessKeyId": "S3RVER", "SecretAccessKey": "S3RVER", "SessionToken": "process-token", "Expiration": "%s"}\n' \
	"$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)"
EOF
chmod 700 "$WORK/proc.sh"
printf '#!/bin/sh\necho "cannot reach the vault" >&2\nexit 1\n' >"$WORK/fail.sh"
chmod 700 "$WORK/fail.sh"
printf '#!/bin/sh\necho "{\\"Version\\": 1, \\"AccessKeyId\\": "\n' >"$WORK/bad.sh"
chmod 700 "$WORK/bad.sh"
cat >"$HOME/.aws/config" <<EOF
[profile app]
role_arn = arn:aws:iam::111122223333:role/s3ring-app
source_profile = base
role_session_name = app-session
external_id = ext-123

[profile viaimds]
role_arn = arn:aws:iam::111122223333:role/s3ring-from-instance
credential_source = Ec2InstanceMetadata

[profile badsig]
role_arn = arn:aws:iam::111122223333:role/s3ring-app
source_profile = wrongbase

[profile proc]
credential_process = $WORK/proc.sh

[profile procfail]
credential_process = $WORK/fail.sh

[profile procbad]
credential_process = $WORK/bad.sh

[profile webprofile]
role_arn = arn:aws:iam::111122223333:role/s3ring-web
web_identity_token_file = $WORK/web-token

[profile corp]
sso_session = corp
sso_account_id = 111122223333
sso_role_name = S3RingWriter
region = us-east-1

[profile legacy]
sso_start_url = https://legacy.awsapps.com/start
sso_region = eu-west-1
sso_account_id = 444455556666
sso_role_name = Legacy

[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = eu-west-1
EOF
mkdir -p "$HOME/.aws/sso/cache"
# The AWS CLI names the cache file after the SHA-1 of the session name.
cache="$HOME/.aws/sso/cache/$(printf corp | sha1sum | cut -d' ' -f1).json"
printf '{"startUrl": "https://corp.awsapps.com/start", "region": "eu-west-1", "accessToken": "sso-access-token-1", "expiresAt": "%s"}\n' \
	"$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)" >"$cache"
# A legacy SSO profile: the cache is named after the start URL.
printf '{"startUrl": "https://legacy.awsapps.com/start", "region": "eu-west-1", "accessToken": "sso-access-token-1", "expiresAt": "%s"}\n' \
	"$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)" \
	>"$HOME/.aws/sso/cache/$(printf https://legacy.awsapps.com/start | sha1sum | cut -d' ' -f1).json"

log "the chain's order"
expect_source env "${ENV_KEYS[@]}" "${WEB[@]}" "${ECS_ENV[@]}" "${IMDS_ENV[@]}"
[ "$(count sts action AssumeRoleWithWebIdentity)" -eq 0 ] || fail "env keys set, yet STS was called"
expect_source web-identity "${WEB[@]}" "${ECS_ENV[@]}" "${IMDS_ENV[@]}"
[ "$(count sts action AssumeRoleWithWebIdentity)" -eq 1 ] || fail "STS not called once for web identity"
expect_source profile:default "${ECS_ENV[@]}" "${IMDS_ENV[@]}"
mv "$HOME/.aws/credentials" "$WORK/credentials.saved"
mv "$HOME/.aws/config" "$WORK/config.saved"
expect_source ecs "${ECS_ENV[@]}" "${IMDS_ENV[@]}"
[ "$(count imds method PUT)" -eq 0 ] || fail "ECS configured, yet IMDS was asked"
expect_source imds "${IMDS_ENV[@]}"
expect_refusal "no credentials: set AWS_ACCESS_KEY_ID"
# AWS_EC2_METADATA_DISABLED=true (lib.sh's default) skips IMDS entirely.
puts=$(count imds method PUT)
expect_refusal "no credentials: set AWS_ACCESS_KEY_ID" AWS_EC2_METADATA_SERVICE_ENDPOINT="$IMDS"
[ "$(count imds method PUT)" -eq "$puts" ] || fail "IMDS asked although disabled"
mv "$WORK/credentials.saved" "$HOME/.aws/credentials"
mv "$WORK/config.saved" "$HOME/.aws/config"

log "what each source sent"
requests sts | /usr/bin/python3 -c '
import json, sys
r = [json.loads(l) for l in sys.stdin][-1]
assert r["action"] == "AssumeRoleWithWebIdentity", r
assert r["web_identity_token"] == "web-token-A", r
assert r["role_arn"] == "arn:aws:iam::111122223333:role/s3ring-writer", r
assert r["session_name"] == "it-session", r
assert r["signed"] is False, "AssumeRoleWithWebIdentity must not be signed"
' || fail "web identity request: $(requests sts | tail -n 1)"
[ "$(count ecs auth_ok True)" -ge 1 ] && [ "$(count ecs auth_ok False)" -eq 0 ] ||
	fail "ECS requests without the token: $(requests ecs)"
requests imds | /usr/bin/python3 -c '
import json, sys
r = [json.loads(l) for l in sys.stdin]
assert r[0]["method"] == "PUT" and r[0]["path"] == "/latest/api/token" and r[0]["ttl"], r[0]
gets = [x for x in r if x["method"] == "GET"]
assert gets and all(x["token_ok"] for x in gets), gets
assert gets[-1]["path"].endswith("/security-credentials/s3ring-instance-role"), gets[-1]
' || fail "IMDS requests: $(requests imds)"
# IMDSv2 itself: a GET without a session token is refused.
code=$(curl -s -o /dev/null -w '%{http_code}' "$IMDS/latest/meta-data/iam/security-credentials/")
[ "$code" = 401 ] || fail "the IMDS stand-in answered $code without a token"

log "profiles: assume-role, process, sso, web identity"
expect_source assume-role AWS_PROFILE=app AWS_ENDPOINT_URL_STS="$STS"
requests sts | /usr/bin/python3 -c '
import json, sys
r = [json.loads(l) for l in sys.stdin][-1]
assert r["action"] == "AssumeRole", r
assert r["signature"].startswith("signature ok"), r
assert r["role_arn"] == "arn:aws:iam::111122223333:role/s3ring-app", r
assert r["session_name"] == "app-session" and r["external_id"] == "ext-123", r
' || fail "AssumeRole request: $(requests sts | tail -n 1)"
expect_refusal "SignatureDoesNotMatch" AWS_PROFILE=badsig AWS_ENDPOINT_URL_STS="$STS"
expect_source assume-role AWS_PROFILE=viaimds AWS_ENDPOINT_URL_STS="$STS" \
	AWS_EC2_METADATA_DISABLED=false AWS_EC2_METADATA_SERVICE_ENDPOINT="$IMDS_BASE"
requests sts | /usr/bin/python3 -c '
import json, sys
r = [json.loads(l) for l in sys.stdin][-1]
assert r["action"] == "AssumeRole" and r["signature"].startswith("signature ok"), r
assert r["role_arn"].endswith("/s3ring-from-instance"), r
' || fail "AssumeRole from instance keys: $(requests sts | tail -n 1)"
[ "$(count imds-base issued_token imds-token-1)" -eq 1 ] || fail "IMDS was not the source"
expect_source process AWS_PROFILE=proc
[ -s "$WORK/proc.runs" ] || fail "credential_process did not run"
expect_refusal "credential_process exited with status 1" AWS_PROFILE=procfail
expect_refusal "credential_process: malformed output" AWS_PROFILE=procbad
expect_source web-identity AWS_PROFILE=webprofile AWS_ENDPOINT_URL_STS="$STS"
expect_source sso AWS_PROFILE=corp AWS_ENDPOINT_URL_SSO="$SSO"
requests sso | /usr/bin/python3 -c '
import json, sys
r = [json.loads(l) for l in sys.stdin][-1]
assert r["path"].startswith("/federation/credentials?"), r
assert r["account_id"] == "111122223333" and r["role_name"] == "S3RingWriter", r
assert r["bearer_ok"] is True, r
' || fail "SSO request: $(requests sso | tail -n 1)"
expect_source sso AWS_PROFILE=legacy AWS_ENDPOINT_URL_SSO="$SSO"
[ "$(count sso account_id 444455556666)" -eq 1 ] || fail "legacy SSO profile: $(requests sso | tail -n 1)"

log "failure paths"
"$TOP/tests/servers/aws_creds.sh" mode "$WORK/sts" error
expect_refusal "AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity" "${WEB[@]}"
"$TOP/tests/servers/aws_creds.sh" mode "$WORK/sts" ok
echo wrong-token >"$WORK/web-token-bad"
expect_refusal "InvalidIdentityToken" "${WEB[@]}" AWS_WEB_IDENTITY_TOKEN_FILE="$WORK/web-token-bad"
"$TOP/tests/servers/aws_creds.sh" mode "$WORK/ecs" malformed
mv "$HOME/.aws/credentials" "$WORK/credentials.saved"
expect_refusal "ECS: malformed answer" "${ECS_ENV[@]}"
"$TOP/tests/servers/aws_creds.sh" mode "$WORK/ecs" ok
echo not-the-token >"$WORK/ecs-token-bad"
expect_refusal "HTTP 401" "${ECS_ENV[@]}" AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="$WORK/ecs-token-bad"
"$TOP/tests/servers/aws_creds.sh" mode "$WORK/imds" expired
expect_refusal "already expired" "${IMDS_ENV[@]}"
"$TOP/tests/servers/aws_creds.sh" mode "$WORK/imds" ok
down=$(/usr/bin/python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
expect_refusal "no credentials.*IMDS" AWS_EC2_METADATA_DISABLED=false \
	AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:$down"
mv "$WORK/credentials.saved" "$HOME/.aws/credentials"
printf '{"accessToken": "sso-access-token-1", "expiresAt": "%s"}\n' \
	"$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)" >"$cache"
expect_refusal "expired at .*; run aws sso login" AWS_PROFILE=corp AWS_ENDPOINT_URL_SSO="$SSO"
rm -f "$cache"
expect_refusal "no SSO token cache .*run aws sso login" AWS_PROFILE=corp AWS_ENDPOINT_URL_SSO="$SSO"

log "messages upload with keys from a stand-in"
mv "$HOME/.aws/credentials" "$WORK/credentials.saved"
AWS_EC2_METADATA_DISABLED=false AWS_EC2_METADATA_SERVICE_ENDPOINT="$IMDS" \
	it_uploader --bucket bucket-creds
it_wait_ready
grep -q 'credentials=imds' "$WORK/upl.log" || fail "not started with IMDS keys"
"$B/tests/tool_produce" "$RING" 1 50 imds/ 1 2048 || fail "producer"
it_wait_uploaded 50 60
it_stop_uploader || fail "uploader exited non-zero"
grep -q 'level=error' "$WORK/upl.log" && fail "errors with IMDS keys: $(grep level=error "$WORK/upl.log")"
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
S3_BUCKET=bucket-creds "$B/tests/tool_s3check" 1 50 imds/ 1 2048 || fail "bucket check"
# No stand-in's secret or token reached a log.
for f in "$WORK"/all-try.log "$WORK"/upl.log; do
	grep -q 'base-secret-value\|sso-access-token-1\|ecs-auth-token\|web-token-A\|-token-[0-9]' "$f" &&
		fail "a secret in $f: $(grep 'base-secret-value\|sso-access-token-1\|ecs-auth-token\|web-token-A\|-token-[0-9]' "$f")"
done
echo "figure: creds_chain sts_requests=$(requests sts | wc -l) imds_requests=$(requests imds | wc -l)"
