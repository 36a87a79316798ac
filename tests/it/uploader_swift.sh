#!/usr/bin/env bash
# uploader_swift.sh -- the uploader against OpenStack Swift with s3api, a
# real S3 front end that verifies SigV4 (tests/servers/swift.sh): a few
# thousand messages from 4 producers arrive byte for byte, and so do keys
# full of characters that SigV4 canonicalization gets wrong easily (spaces,
# reserved characters, percent signs, UTF-8), read back with botocore.
set -uo pipefail
IT_NAME=swift
. "$(dirname "$0")/lib.sh"

PER=${PER:-$([ -n "${SAN:-}" ] && echo 100 || echo 750)}
PROCS=4
BUCKET=s3ring-swift
PY=${SRV_PY:-/usr/bin/python3}
SDIR=$(mktemp -d /dev/shm/s3ring-swift.XXXXXX)   # tmpfs: object PUTs fsync
trap '"$TOP/tests/servers/swift.sh" stop "$SDIR" >/dev/null 2>&1; rm -rf "$SDIR"; it_cleanup' EXIT

t0=$(date +%s%N)
"$TOP/tests/servers/swift.sh" start "$SDIR" "$BUCKET" >/dev/null 2>"$WORK/swift-start.log" ||
	{ cat "$WORK/swift-start.log"; fail "swift did not start"; }
log "swift ready after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
set -a
. "$SDIR/env"
set +a

it_uploader --bucket "$BUCKET" --workers 8 --ring-size 4M --region "$AWS_REGION"
it_wait_ready

# Keys that exercise the canonical URI: every one must be signed as S3
# expects (a mismatch is a SignatureDoesNotMatch, the configuration alarm).
KEYS=(
	"odd/a b+c=d~e!f(g)h*i'j&k\$l,m;n:o@p"
	"odd/percent%20literal%2Fand%"
	"odd/ünïcödé/ключ/鍵"
	"odd/question?mark#hash"
	"odd/brackets[]{}^|\`<>\""
	"odd/tilde~dash-under_dot.end."
)
for i in "${!KEYS[@]}"; do
	printf 'body %d of %s\n' "$i" "${KEYS[$i]}" >"$WORK/odd-$i"
	"$B/bin/s3ring-put" --ring "$RING" --timeout 10000 "${KEYS[$i]}" "$WORK/odd-$i" ||
		fail "put of key ${KEYS[$i]}"
done

t1=$(date +%s%N)
"$B/tests/tool_produce" "$RING" $PROCS "$PER" sw/ 1 8192 || fail "producers failed"
total=$((PROCS * PER + ${#KEYS[@]}))
it_wait_uploaded "$total" 300
up_ms=$(( ($(date +%s%N) - t1) / 1000000 ))
[ "$(it_stat '["config_alarm"]')" = False ] || fail "configuration alarm: $(it_stat '["last_error"]')"
[ "$(it_stat '["dead_lettered"]')" -eq 0 ] || fail "dead letters: $(it_stat '["last_error"]')"
[ "$(it_stat '["config_errors"]')" -eq 0 ] || fail "configuration errors: $(it_stat '["last_error"]')"

S3_BUCKET=$BUCKET "$B/tests/tool_s3check" $PROCS "$PER" sw/ 1 8192 || fail "bucket check"

# The odd keys, read back with botocore (its own, independent signing).
"$PY" - "$BUCKET" "$WORK" "${KEYS[@]}" <<'PY' || fail "odd keys are not in the bucket as put"
import os, sys
import botocore.session
from botocore.config import Config
bucket, work, keys = sys.argv[1], sys.argv[2], sys.argv[3:]
s3 = botocore.session.get_session().create_client(
    "s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name=os.environ["AWS_REGION"],
    config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
bad = 0
for i, k in enumerate(keys):
    want = open(os.path.join(work, f"odd-{i}"), "rb").read()
    try:
        got = s3.get_object(Bucket=bucket, Key=k)["Body"].read()
    except Exception as e:
        print(f"missing: {k!r}: {e}")
        bad += 1
        continue
    if got != want:
        print(f"wrong bytes: {k!r}")
        bad += 1
listed = s3.list_objects_v2(Bucket=bucket, Prefix="odd/")
names = sorted(o["Key"] for o in listed.get("Contents", []))
if names != sorted(keys):
    print(f"listing differs: {names!r}")
    bad += 1
print(f"odd keys: {len(keys) - bad} of {len(keys)} right")
sys.exit(1 if bad else 0)
PY
up=$(it_stat '["uploaded"]')
retried=$(it_stat '["retried"]')
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
rate=$(( (total - ${#KEYS[@]}) * 1000 / (up_ms > 0 ? up_ms : 1) ))
echo "figure: swift messages=$((PROCS * PER)) odd_keys=${#KEYS[@]} uploaded=$up retried=$retried puts_per_s=$rate"
