#!/usr/bin/env bash
# uploader_multipart.sh -- large messages go as multipart uploads, their parts
# read from the ring in place, against Swift's s3api (which verifies SigV4 and
# lists open uploads; it knows no part checksums, hence --part-checksums=false):
# (a) messages of 6 to 17 MiB (threshold and parts of 5 MiB) arrive byte for
#     byte, and so do the ones beside them that go in one PUT: small ones,
#     and ones of 1 to 4 MiB, signed over a hash made on the hasher thread;
# (b) kill -9 of the uploader while parts are in flight, several times: after
#     the last start every object is complete, byte for byte, and no
#     multipart upload is left open (ListMultipartUploads);
# (c) SIGTERM in the middle of one: it is aborted (multipart_aborted), the
#     record stays in the ring, and the next start uploads it.
set -uo pipefail
IT_NAME=multipart
. "$(dirname "$0")/lib.sh"

BUCKET=s3ring-mp
KILLS=${KILLS:-$([ -n "${SAN:-}" ] && echo 2 || echo 5)}
SDIR=$(mktemp -d /dev/shm/s3ring-mp.XXXXXX)
trap 'cp "$WORK/upl.log" /tmp/mp-upl.log 2>/dev/null; "$TOP/tests/servers/swift.sh" stop "$SDIR" >/dev/null 2>&1; rm -rf "$SDIR"; it_cleanup' EXIT
"$TOP/tests/servers/swift.sh" start "$SDIR" "$BUCKET" >/dev/null 2>"$WORK/swift-start.log" ||
	{ cat "$WORK/swift-start.log"; fail "swift did not start"; }
set -a
. "$SDIR/env"
set +a
PY=${SRV_PY:-/usr/bin/python3}

MP_ARGS=(--bucket "$BUCKET" --region "$AWS_REGION" --workers 8 --ring-size 256M
	--max-message 32M --multipart-threshold 5M --part-size 5M --multipart-parallel 3
	--part-checksums=false --stop-timeout 5)

# put KEY SIZE_BYTES: a message of random bytes, kept in $WORK/want/ to compare.
put() {
	mkdir -p "$WORK/want/$(dirname "$1")"
	head -c "$2" /dev/urandom >"$WORK/want/$1"
	"$B/bin/s3ring-put" --ring "$RING" --timeout 30000 "$1" "$WORK/want/$1" || fail "put of $1"
}

# check KEY...: each object's bytes are the ones put (read with botocore,
# which signs on its own).
check() {
	"$PY" - "$BUCKET" "$WORK/want" "$@" <<'PY' || fail "objects differ from the messages"
import os, sys
import botocore.session
from botocore.config import Config
bucket, want, keys = sys.argv[1], sys.argv[2], sys.argv[3:]
s3 = botocore.session.get_session().create_client(
    "s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name=os.environ["AWS_REGION"],
    config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
bad = 0
for k in keys:
    try:
        got = s3.get_object(Bucket=bucket, Key=k)["Body"].read()
    except Exception as e:
        print(f"missing: {k}: {e}")
        bad += 1
        continue
    if got != open(os.path.join(want, k), "rb").read():
        print(f"wrong bytes: {k} ({len(got)} bytes)")
        bad += 1
sys.exit(1 if bad else 0)
PY
}

# The multipart uploads open in the bucket, one "KEY UPLOADID" a line, as
# botocore's ListMultipartUploads sees them; fails if the listing does.
open_uploads() {
	"$PY" - "$BUCKET" <<'PY' || fail "ListMultipartUploads failed"
import os, sys
import botocore.session
from botocore.config import Config
s3 = botocore.session.get_session().create_client(
    "s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name=os.environ["AWS_REGION"],
    config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=sys.argv[1]):
    for up in page.get("Uploads", []):
        print(up["Key"], up["UploadId"])
PY
}
no_open_uploads() {
	local open; open=$(open_uploads) || exit 1
	[ -z "$open" ] || fail "$1: multipart uploads left open: $open"
}

# ---- (a) large and small messages side by side
it_uploader "${MP_ARGS[@]}"
it_wait_ready
keys=()
for i in 1 2 3 4; do
	put "big/a$i" $(( (6 + 3 * i) * 1024 * 1024 + i * 1000 ))
	put "small/a$i" $((1000 * i))
	# 1-4 MiB: one PUT, its SHA-256 (which Swift verifies) computed on
	# the hasher's thread.
	put "mid/a$i" $(( i * 1024 * 1024 + i ))
	keys+=("big/a$i" "small/a$i" "mid/a$i")
done
it_wait_uploaded ${#keys[@]} 300
check "${keys[@]}"
mp=$(it_stat '["uploader"]["multipart_completed"]')
[ "$mp" -eq 4 ] || fail "multipart_completed = $mp, want 4 (one per large message)"
[ "$(it_stat '["dead_lettered"]')" -eq 0 ] || fail "dead letters: $(it_stat '["last_error"]')"
no_open_uploads "after (a)"
log "(a) 4 multipart uploads and 8 PUTs (4 of 1-4 MiB), byte for byte"

# ---- (b) kill -9 while parts are in flight
total=$(( $(it_stat '["uploaded"]') + 12 ))
for i in $(seq 1 12); do
	put "big/b$i" $((16 * 1024 * 1024 + i))
	keys+=("big/b$i")
done
kills=0
while [ "$kills" -lt "$KILLS" ] && [ "$(it_stat '["uploaded"]')" -lt "$total" ]; do
	sleep 0.$((1 + RANDOM % 4))
	p=$(it_uploader_pid)
	[ -n "$p" ] || fail "the uploader is gone"
	kill -KILL "$p"
	wait "$UPL_PID" 2>/dev/null
	kills=$((kills + 1))
	it_uploader "${MP_ARGS[@]}"
	it_wait_ready
done
# Sanitized runs aim at 2 kills; the uploads may be done after the first.
[ "$kills" -ge $([ -n "${SAN:-}" ] && echo 1 || echo 2) ] ||
	fail "only $kills kills landed before the uploads were done"
it_wait_uploaded ${#keys[@]} 600
check "${keys[@]}"
no_open_uploads "after $kills kills"
grep -q 'msg="aborted the multipart uploads an earlier run left open"' "$WORK/upl.log" ||
	fail "no start aborted what a killed run left open"
log "(b) $kills kills -9 during multipart uploads: every object complete, none left open"

# ---- (c) SIGTERM in the middle of multipart uploads
up0=$(it_stat '["uploaded"]')
ab0=$(it_stat '["uploader"]["multipart_aborted"]')
for i in 1 2 3 4; do
	put "big/c$i" $((30 * 1024 * 1024 + i))
	keys+=("big/c$i")
done
sleep 0.1
it_stop_uploader || fail "the uploader exited non-zero on SIGTERM"
ab=$(it_stat '["uploader"]["multipart_aborted"]')
up=$(it_stat '["uploaded"]')
[ "$up" -lt $((up0 + 4)) ] || fail "120 MiB were uploaded within 0.1 s: the stop came too late to test"
[ "$ab" -gt "$ab0" ] || fail "stopped in the middle of multipart uploads, but none was aborted"
no_open_uploads "after SIGTERM"
log "(c) SIGTERM aborted $((ab - ab0)) multipart uploads under way; $((up - up0)) of 4 had finished"
it_uploader "${MP_ARGS[@]}"
it_wait_ready
it_wait_uploaded $((up0 + 4)) 300
check big/c1 big/c2 big/c3 big/c4
no_open_uploads "at the end"
it_stop_uploader || fail "the uploader exited non-zero on SIGTERM"
echo "figure: multipart objects=${#keys[@]} kills=$kills completed=$(it_stat '["uploader"]["multipart_completed"]') aborted=$(it_stat '["uploader"]["multipart_aborted"]') open_left=0"
