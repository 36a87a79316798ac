#!/usr/bin/env bash
# demo.sh -- s3ring end to end against a local S3 server (make demo).
#
# Starts s3rver on 127.0.0.1 with a bucket, starts s3ring-uploader on the
# ring "demo", runs the example application (4 processes, 10,000
# messages), shows shmstat while the messages flow and afterwards, lists the
# bucket and checks the count, and stops everything it started, by PID.
# State lives in .demo/ and is cleared at the start, so the demo works twice
# in a row and after an interrupted run.
set -uo pipefail
cd "$(dirname "$0")/.."
TOP=$PWD
B=${BUILD:-build}
DIR=$TOP/.demo
RING=demo
BUCKET=demo-bucket
PROCS=4
EACH=2500
TOTAL=$((PROCS * EACH))
UPL=
APP=

# Bold only on a terminal: a pipe or a log file gets plain text.
if [ -t 1 ]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; else BOLD= PLAIN=; fi
say() { printf '%sdemo:%s %s\n' "$BOLD" "$PLAIN" "$*"; }
die() { say "FAILED: $*"; exit 1; }

stop_all() {
	if [ -n "$APP" ] && kill -0 "$APP" 2>/dev/null; then
		kill -TERM "$APP" 2>/dev/null
		wait "$APP" 2>/dev/null
	fi
	if [ -n "$UPL" ] && kill -0 "$UPL" 2>/dev/null; then
		kill -TERM "$UPL" 2>/dev/null
		wait "$UPL" 2>/dev/null
	fi
	tests/servers/s3rver.sh stop "$DIR/s3rver" >/dev/null 2>&1
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# Leftovers of an interrupted run: stop them by their recorded PIDs.
if [ -f "$DIR/uploader.pid" ]; then
	p=$(cat "$DIR/uploader.pid")
	if [ -n "$p" ] && [ "$(cat /proc/"$p"/comm 2>/dev/null)" = s3ring-uploade ]; then
		say "stopping the uploader left by an earlier run (pid $p)"
		kill -TERM "$p" 2>/dev/null
		for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	fi
fi
tests/servers/s3rver.sh stop "$DIR/s3rver" >/dev/null 2>&1
rm -rf "$DIR"
rm -f "/dev/shm/s3ring.$RING" "/dev/shm/s3ring.$RING.journal"
mkdir -p "$DIR"

say "starting s3rver on 127.0.0.1 with bucket $BUCKET"
url=$(S3RVER_QUIET=1 tests/servers/s3rver.sh start "$DIR/s3rver" "$BUCKET" 2>/dev/null) ||
	die "s3rver did not start (see $DIR/s3rver/s3rver.log)"
set -a
. "$DIR/s3rver/env"
set +a
say "s3rver is at $url"

say "starting s3ring-uploader (ring $RING, 8 workers)"
"$B/bin/s3ring-uploader" --ring "$RING" --bucket "$BUCKET" --endpoint "$url" \
	--path-style --workers 8 --ring-size 16M --spool "$DIR/spool" \
	2>"$DIR/uploader.log" &
UPL=$!
echo "$UPL" >"$DIR/uploader.pid"
for _ in $(seq 1 100); do
	"$B/bin/shmstat" --ring "$RING" --check >/dev/null 2>&1 && break
	sleep 0.1
done
"$B/bin/shmstat" --ring "$RING" --check >/dev/null 2>&1 ||
	die "the uploader did not come up (see $DIR/uploader.log)"

say "running the example app: $PROCS processes x $EACH messages (producer/examples/example.c)"
t0=$(date +%s.%N)
"$B/examples/example" -r "$RING" -p "$PROCS" -n "$EACH" -k demo/ &
APP=$!
sleep 0.5
say "shmstat while the messages flow:"
"$B/bin/shmstat" --ring "$RING"
wait "$APP" || die "the example app failed"
APP=

for _ in $(seq 1 600); do
	up=$("$B/bin/shmstat" --ring "$RING" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["uploaded"])')
	[ "$up" -ge "$TOTAL" ] && break
	sleep 0.1
done
t1=$(date +%s.%N)
say "shmstat afterwards:"
"$B/bin/shmstat" --ring "$RING"

say "listing s3://$BUCKET/demo/"
count=$(/usr/bin/python3 - "$url" "$BUCKET" <<'PY'
import sys
import botocore.session
from botocore.config import Config
s = botocore.session.get_session()
c = s.create_client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                    aws_access_key_id="S3RVER", aws_secret_access_key="S3RVER",
                    config=Config(s3={"addressing_style": "path"}))
n = 0
# ListObjects (v1, with markers): s3rver 3.7 fails to make v2 continuation
# tokens under OpenSSL 3.
for page in c.get_paginator("list_objects").paginate(Bucket=sys.argv[2], Prefix="demo/"):
    for o in page.get("Contents", []):
        if n < 3:
            print("  %s  %d bytes" % (o["Key"], o["Size"]), file=sys.stderr)
        n += 1
print(n)
PY
) || die "could not list the bucket"
secs=$(python3 -c "print('%.1f' % ($t1 - $t0))")
[ "$count" -eq "$TOTAL" ] || die "the bucket holds $count of $TOTAL objects"
stop_all
UPL=
say "OK: $TOTAL messages from $PROCS processes went through the ring to s3://$BUCKET in ${secs}s; the bucket holds $count objects"
