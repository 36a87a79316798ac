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
#     record stays in the ring, and the next start uploads it;
# (d) batch mode: batch objects over the part size go as multipart uploads,
#     and kill -9 while their parts are in flight, several times, leaves
#     every message in the bucket exactly once (the next start aborts the
#     killed run's upload and builds the batch again under the same key)
#     and no multipart upload open.
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
# put_round R: 12 messages of 16 MiB.
put_round() {
	for i in $(seq 1 12); do
		put "big/b$1-$i" $((16 * 1024 * 1024 + i))
		keys+=("big/b$1-$i")
	done
	total=$((total + 12))
}
total=$(it_stat '["uploaded"]') rounds=1
put_round 1
kills=0 left_open=0
while [ "$kills" -lt "$KILLS" ]; do
	# A fast host uploads a round before the next kill: then another
	# round (at most 4), so that every kill has parts in flight to hit.
	if [ "$(it_stat '["uploaded"]')" -ge "$total" ]; then
		[ "$rounds" -lt 4 ] || break
		rounds=$((rounds + 1))
		put_round $rounds
	fi
	sleep 0.$((1 + RANDOM % 4))
	p=$(it_uploader_pid)
	[ -n "$p" ] || fail "the uploader is gone"
	kill -KILL "$p"
	wait "$UPL_PID" 2>/dev/null
	kills=$((kills + 1))
	# Whether the kill found a multipart upload open is timing (on a
	# loaded machine it may land between uploads): asked of the server
	# while no uploader runs.
	open=$(open_uploads) || exit 1
	[ -z "$open" ] || left_open=$((left_open + 1))
	it_uploader "${MP_ARGS[@]}"
	it_wait_ready
done
# Sanitized runs aim at 2 kills; the uploads may be done after the first.
[ "$kills" -ge $([ -n "${SAN:-}" ] && echo 1 || echo 2) ] ||
	fail "only $kills kills landed before the uploads were done"
it_wait_uploaded ${#keys[@]} 600
check "${keys[@]}"
no_open_uploads "after $kills kills"
[ "$left_open" -eq 0 ] ||
	grep -q 'msg="aborted the multipart uploads an earlier run left open"' "$WORK/upl.log" ||
	fail "$left_open kills left multipart uploads open, and no start aborted them"
echo "figure: multipart kill9 kills=$kills rounds_of_12=$rounds kills_that_left_uploads_open=$left_open"
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

# ---- (d) batch objects as multipart uploads, with kill -9 in between
# The messages go in with no uploader running, so that each start has the
# batches to build and send, and is killed just after it has created a
# multipart upload (shmstat's multipart_started); the next start finds the
# killed run's upload open, aborts it, and builds the batch again under
# the same key.
BRULE=(--batch "bm/:compression=none,framing=length,max-bytes=12M,max-age=300")
BPROCS=2 BPER=150 BMIN=150000 BMAX=250000
ab_logged0=$(grep -c 'msg="aborted the multipart uploads an earlier run left open"' "$WORK/upl.log")
"$B/tests/tool_produce" "$RING" "$BPROCS" "$BPER" bm/ "$BMIN" "$BMAX" 30000 || fail "batch producers"
bkills=0
for i in $(seq 1 "$KILLS"); do
	it_uploader "${MP_ARGS[@]}" "${BRULE[@]}"
	it_wait_ready
	[ "$(it_stat '["used_bytes"]')" -eq 0 ] && break
	# Killed once this run has created a multipart upload (0 to 90 ms
	# after it is seen), while its parts are on their way.
	mps=$(it_stat '["uploader"]["multipart_started"]')
	for _ in $(seq 1 1000); do
		[ "$(it_stat '["uploader"]["multipart_started"]')" -gt "$mps" ] && break
		[ "$(it_stat '["used_bytes"]')" -eq 0 ] && break
		sleep 0.01
	done
	sleep "0.0$((RANDOM % 10))"

	KILLED_PID=$(it_real_pid) || fail "no uploader process to kill"
	kill -KILL "$KILLED_PID"
	wait "$UPL_PID" 2>/dev/null
	UPL_PID=
	bkills=$((bkills + 1))
done
[ -n "$UPL_PID" ] || { it_uploader "${MP_ARGS[@]}" "${BRULE[@]}"; it_wait_ready; }
for _ in $(seq 1 3000); do
	[ "$(it_stat '["used_bytes"]')" -eq 0 ] && break
	sleep 0.1
done
[ "$(it_stat '["used_bytes"]')" -eq 0 ] || fail "(d) the ring did not drain"
mpc=$(it_stat '["uploader"]["multipart_completed"]')
it_stop_uploader || fail "the uploader exited non-zero on SIGTERM"
[ "$bkills" -ge 1 ] || fail "(d) the batches were sent before the first kill"
reaborted=$(( $(grep -c 'msg="aborted the multipart uploads an earlier run left open"' "$WORK/upl.log") - ab_logged0 ))
# Whether a kill found an upload still open depends on timing (on a fast
# machine the run may have completed it first): a figure, not a check.
no_open_uploads "after $bkills kills during batch multipart uploads"
files=$("$TOP/tests/it/batch_fetch.py" "$BUCKET" bm/ "$WORK/gotd") || fail "(d) an object cannot be read"
# shellcheck disable=SC2046
res=$("$B/tests/tool_batchcheck" length "$BPROCS" "$BPER" bm/ "$BMIN" "$BMAX" $(echo "$files" | cut -d' ' -f1) 2>&1) ||
	{ echo "$res"; fail "(d) after $bkills kills the bucket does not hold every batched message exactly once"; }
# An object over the part size (5 MiB) can only have been a multipart upload.
big=$(echo "$files" | awk '$3 > 5 * 1024 * 1024' | wc -l)
[ "$big" -ge 1 ] || fail "(d) no batch object over the part size: $files"
log "(d) $bkills kills -9 during batch multipart uploads: every message once, none left open"
echo "figure: multipart_batch kills=$bkills objects=$(echo "$files" | wc -l) over_part_size=$big multipart_completed=$mpc starts_that_aborted_open_uploads=$reaborted $(echo "$res" | tail -n 1)"
echo "figure: multipart objects=${#keys[@]} kills=$kills completed=$(it_stat '["uploader"]["multipart_completed"]') aborted=$(it_stat '["uploader"]["multipart_aborted"]') open_left=0"
