#!/usr/bin/env bash
# s3client_swift.sh -- the S3 client against OpenStack Swift's s3api, which
# verifies SigV4: 250 objects with hostile keys PUT and read back byte for
# byte, error classes for a wrong secret, an unknown key, a body that does
# not match its signed SHA-256, a missing bucket; multipart, blocking and
# through the prepare-only calls; ListMultipartUploads over several pages,
# abort by id and by listing, and no multipart upload left open at the
# end; credentials from a file; and no secret in any log line.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/s3client_lib.sh

command -v swift-proxy-server >/dev/null || { echo "swift not installed (tests/install-deps.sh)"; exit 1; }
tmp=$(mktemp -d /dev/shm/s3client_swift.XXXXXX)
cleanup() {
	bash tests/servers/swift.sh stop "$tmp/swift" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

SERVER_LIFETIME=900 bash tests/servers/swift.sh start "$tmp/swift" s3ring-test >"$tmp/url"
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_SHARED_CREDENTIALS_FILE AWS_ENDPOINT_URL
set -a
# shellcheck disable=SC1091
. "$tmp/swift/env"
set +a
export AWS_ENDPOINT_URL_S3=$S3_ENDPOINT
SECRET=$AWS_SECRET_ACCESS_KEY
WRONG=wrong-secret-3f9c1e

s3client_build "$tmp/s3client"
log=$tmp/client.log
run() {  # ARGS...: prints the result line
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

expect "result=error class=config status=403 code=SignatureDoesNotMatch" \
	"$(AWS_SECRET_ACCESS_KEY=$WRONG run put "wrong secret/k")" "wrong secret"
out=$(AWS_ACCESS_KEY_ID=nobody:nobody run put "unknown key/k")
expect "result=error class=config status=403" "$out" "unknown access key id"

# The body no longer matches the signed x-amz-content-sha256.
out=$(run put-bad-sha256 "bad sha/k")
expect "result=error class=message status=400" "$out" "body not matching its SHA-256"
code=${out#*code=}
echo "figure: swift answers a SHA-256 mismatch with ${code%% *} (class message)"

# This s3api does not check x-amz-checksum-crc32c; S3 answers BadDigest.
out=$(run put-bad-crc "bad crc/k")
case $out in
*result=ok*) echo "figure: swift ignores a wrong x-amz-checksum-crc32c (accepted)" ;;
*class=message*) code=${out#*code=}; echo "figure: swift rejects a wrong x-amz-checksum-crc32c with ${code%% *}" ;;
*) echo "FAIL: wrong CRC: $out"; exit 1 ;;
esac

expect "result=ok op=multipart" "$(run multipart "multi part/obj" 5242880 2)" \
	"multipart upload of 2 x 5 MiB, read back"
expect "result=ok op=abort" "$(run abort "multi part/aborted")" "abort multipart"

# The prepare-only calls, each performed by s3_perform, as the engine's
# event loop drives them. No part CRCs: this s3api answers MalformedXML to
# them in the completion (see s3.h).
expect "result=ok op=multipart_prepared" "$(run multipart-prepared "multi part/prepared" 5242880 3)" \
	"multipart upload of 3 parts through the prepare-only calls, read back"

# ListMultipartUploads: an upload left open is listed under its key (XML
# entities decoded), aborted by its id, and gone from the next listing.
runall() {  # like run, with the listing's upload lines
	"$tmp/s3client" "$@" 2>>"$log" | grep '^result=\|^upload' || true
}
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
k="open uploads/a&b <1> 'q\""
id=$("$tmp/s3client" create-only "$k" 2>>"$log" | sed -n 's/^upload_id=//p')
[ -n "$id" ] || { echo "FAIL: no UploadId from create"; exit 1; }
out=$(runall list-uploads "open uploads/")
expect "upload key=$(hex "$k") id=$id"$'\n'"result=ok op=list_uploads count=1" "$out" \
	"an open upload is listed with its key and id"
expect "result=ok op=abort" "$(run abort-id "$k" "$id")" "abort of the listed upload by its id"
expect "result=ok op=list_uploads count=0" "$(run list-uploads "open uploads/")" \
	"no upload listed after the abort"
# 25 uploads: three pages of at most ten, each upload aborted from inside
# the listing with the same client.
expect "result=ok op=create_only" "$(run create-only "open uploads/many" 25)" "25 uploads left open"
expect "result=ok op=list_uploads count=25" "$(run list-uploads "open uploads/")" \
	"25 uploads listed, over more than one page of ten"
expect "result=ok op=abort_listed count=25" "$(run abort-listed "open uploads/")" \
	"25 uploads aborted as they are listed"
expect "result=ok op=list_uploads count=0" "$(run list-uploads)" \
	"no multipart upload left open in the bucket"

# Credentials from a shared credentials file instead of the environment.
mkdir -p "$tmp/aws"
printf '[default]\naws_access_key_id = nobody\naws_secret_access_key = x\n\n[swift]\n# comment\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
	"$AWS_ACCESS_KEY_ID" "$SECRET" >"$tmp/aws/credentials"
chmod 600 "$tmp/aws/credentials"
out=$(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_PROFILE=swift \
	AWS_SHARED_CREDENTIALS_FILE="$tmp/aws/credentials" "$tmp/s3client" head-bucket 2>"$tmp/file.log" || true)
expect "result=ok" "$out" "credentials from a profile of a shared credentials file"
cat "$tmp/file.log" >>"$log"
chmod 644 "$tmp/aws/credentials"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_PROFILE=swift \
	AWS_SHARED_CREDENTIALS_FILE="$tmp/aws/credentials" "$tmp/s3client" head-bucket >/dev/null 2>"$tmp/file.log" || true
grep -q 'level=warn.*accessible by group or others' "$tmp/file.log" || {
	echo "FAIL: no warning for a credentials file readable by others"; exit 1; }
echo "ok: warning for a credentials file readable by others"
cat "$tmp/file.log" >>"$log"

s3client_clean_log "$log"
s3client_no_secret "$log" "$SECRET" "$WRONG"
echo "ok: no secret in $(wc -l <"$log") log lines"
