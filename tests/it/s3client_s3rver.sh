#!/usr/bin/env bash
# s3client_s3rver.sh -- the S3 client against s3rver: 250 objects with
# hostile keys PUT and read back byte for byte, HEAD bucket, multipart with
# and without CRC-32C part checksums (blocking and through the prepare-only
# calls), the CONFIG class for an unknown access key, and no secret in any
# log line. s3rver verifies neither signatures nor checksums, so those cases
# are only reported as figures here; the Swift test asserts them. s3rver
# implements neither ListMultipartUploads nor AbortMultipartUpload: the
# orphan-upload checks run against Swift.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/s3client_lib.sh

tmp=$(mktemp -d)
cleanup() {
	bash tests/servers/s3rver.sh stop "$tmp/s3rver" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

SERVER_LIFETIME=600 S3RVER_QUIET=1 bash tests/servers/s3rver.sh start "$tmp/s3rver" s3ring-test >"$tmp/url"
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_SHARED_CREDENTIALS_FILE AWS_ENDPOINT_URL
set -a
# shellcheck disable=SC1091
. "$tmp/s3rver/env"
set +a
export AWS_ENDPOINT_URL_S3=$S3_ENDPOINT
SECRET=$AWS_SECRET_ACCESS_KEY

s3client_build "$tmp/s3client"
log=$tmp/client.log
run() {
	"$tmp/s3client" "$@" 2>>"$log" | grep '^result=\|^figure:' || true
}
expect() {  # PATTERN OUTPUT WHAT
	if [[ $2 != *"$1"* ]]; then
		echo "FAIL: $3: expected '$1', got: $2"
		exit 1
	fi
	echo "ok: $3 -> ${2//$'\n'/ }"
}

expect "result=ok" "$(run head-bucket)" "HEAD bucket"
expect "result=error class=config status=404" "$(run --bucket no-such-bucket head-bucket)" \
	"HEAD of a missing bucket"

s3client_keys 250 "${S3CLIENT_SEED:-4242}" >"$tmp/keys"
out=$(run roundtrip "$tmp/keys")
expect "result=ok op=roundtrip objects=250" "$out" "250 objects PUT and read back"
expect "put_connections=1"$'\n' "$out" "one keep-alive connection for 250 PUTs"
grep '^figure:' <<<"$out"

expect "result=error class=config status=403 code=InvalidAccessKeyId" \
	"$(AWS_ACCESS_KEY_ID=NOT-S3RVER run put "unknown key/k")" "unknown access key id"
expect "result=ok op=multipart" "$(run multipart "multi part/obj" 5242880 2)" \
	"multipart upload of 2 x 5 MiB, read back"
expect "result=ok op=multipart" "$(run multipart "multi part/crc" 1048576 3 crc)" \
	"multipart upload with CRC-32C part checksums, read back"

expect "result=ok op=multipart_prepared" "$(run multipart-prepared "multi part/prepared" 1048576 3 crc)" \
	"multipart upload of 3 parts with CRC-32C through the prepare-only calls, read back"
expect "result=error class=config status=501 code=NotImplemented" "$(run list-uploads)" \
	"ListMultipartUploads is not implemented by s3rver"
expect "result=error class=config status=405 code=MethodNotAllowed" \
	"$(run abort-id "multi part/obj" no-such-upload)" "AbortMultipartUpload is not allowed by s3rver"

for c in put-bad-sha256 put-bad-crc; do
	out=$(run "$c" "bad/$c")
	echo "figure: s3rver $c -> ${out%% op=*}"
done

s3client_clean_log "$log"
s3client_no_secret "$log" "$SECRET"
echo "ok: no secret in $(wc -l <"$log") log lines"
