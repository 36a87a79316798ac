#!/usr/bin/env bash
# uploader_deadletter.sh -- the dead-letter spool, end to end:
# (a) a key that --key-prefix pushes past S3's 1024 bytes is dead-lettered
#     (one spool file with the key, the body and the reason), its ring space
#     is released, dead_lettered = 1, and the messages after it still flow;
# (b) `s3ring-uploader --replay DIR` without the prefix uploads it to s3rver
#     byte for byte and removes the file;
# (c) --max-attempts 3 against a server that answers every PUT with 503
#     SlowDown: the message is dead-lettered after exactly 3 attempts, with
#     a reason naming them, and retried = 3.
set -uo pipefail
IT_NAME=deadletter
. "$(dirname "$0")/lib.sh"

FAKE_PID=
trap '[ -n "$FAKE_PID" ] && kill -TERM "$FAKE_PID" 2>/dev/null; it_cleanup' EXIT

# spool_field FILE NAME: the value of a "NAME: VALUE" header line.
spool_field() { sed -n "1,8s/^$2: //p" "$1" | head -n 1; }
# spool_check FILE KEY BODYFILE: the file holds exactly KEY and BODYFILE's bytes.
spool_check() {
	python3 - "$@" <<'PY' || fail "spool file $1 does not hold the key and body"
import sys
data = open(sys.argv[1], "rb").read()
key = sys.argv[2].encode()
body = open(sys.argv[3], "rb").read()
head, sep, rest = data.partition(b"\n\n")
assert sep and head.startswith(b"s3ring-dead-letter "), "no header"
fields = dict(l.split(b": ", 1) for l in head.split(b"\n")[1:])
assert int(fields[b"key-length"]) == len(key), "key-length"
assert int(fields[b"body-length"]) == len(body), "body-length"
assert rest == key + body, "key and body bytes"
PY
}

it_s3rver bucket-dl
BUCKET=bucket-dl

# ---- (a) key too long once prefixed
# 5 components of 199 characters + 4 slashes = 999 bytes: a valid ring key
# (and a storable path for s3rver), 1,099 bytes with a 100-byte prefix.
comp=$(printf 'k%.0s' $(seq 1 199))
LONGKEY="dl/$comp/$comp/$comp/$comp/${comp:0:196}"
PREFIX=$(printf 'p%.0s' $(seq 1 99))/
[ ${#LONGKEY} -eq 999 ] || fail "key length ${#LONGKEY}"
head -c 3000 /dev/urandom >"$WORK/body.bin"

it_uploader --bucket "$BUCKET" --workers 2 --ring-size 1M --key-prefix "$PREFIX"
it_wait_ready
"$B/bin/s3ring-put" --ring "$RING" --timeout 5000 "$LONGKEY" "$WORK/body.bin" || fail "put of the long key"
echo after | "$B/bin/s3ring-put" --ring "$RING" --timeout 5000 dl/after || fail "put after"
for _ in $(seq 1 300); do
	[ "$(it_stat '["dead_lettered"]')" -ge 1 ] && [ "$(it_stat '["uploaded"]')" -ge 1 ] && break
	sleep 0.1
done
dl=$(it_stat '["dead_lettered"]')
[ "$dl" -eq 1 ] || fail "dead_lettered = $dl, want 1"
[ "$(it_stat '["uploaded"]')" -eq 1 ] || fail "the message after the dead letter was not uploaded"
nfiles=$(find "$WORK/spool" -maxdepth 1 -type f ! -name '.*' | wc -l)
[ "$nfiles" -eq 1 ] || { ls -la "$WORK/spool"; fail "$nfiles files in the spool, want 1"; }
f=$(find "$WORK/spool" -maxdepth 1 -type f ! -name '.*')
reason=$(spool_field "$f" reason)
log "spool file $(basename "$f"): reason: $reason"
grep -qi 'KeyTooLong' <<<"$reason" || fail "the reason does not say the key is too long: $reason"
spool_check "$f" "$LONGKEY" "$WORK/body.bin"
grep -q 'msg="message dead-lettered"' "$WORK/upl.log" || fail "no log line for the dead letter"
# The space is released: nothing pending, head caught up with the tail.
for _ in $(seq 1 50); do [ "$(it_stat '["used_bytes"]')" -eq 0 ] && break; sleep 0.1; done
used=$(it_stat '["used_bytes"]')
pending=$(it_stat '["pending"]')
[ "$used" -eq 0 ] && [ "$pending" -eq 0 ] || fail "ring space not released: used_bytes=$used pending=$pending"
[ "$(it_stat '["head"]')" = "$(it_stat '["tail"]')" ] || fail "head is not at the tail"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"

# ---- (b) replay without the prefix
"$B/bin/s3ring-uploader" --replay "$WORK/spool" --bucket "$BUCKET" --endpoint "$S3_ENDPOINT" \
	--path-style >"$WORK/replay.out" 2>"$WORK/replay.err"
rc=$?
cat "$WORK/replay.out"
[ $rc -eq 0 ] || { cat "$WORK/replay.err"; fail "replay exited $rc"; }
grep -q 'replayed 1, failed 0' "$WORK/replay.out" || fail "replay: $(cat "$WORK/replay.out")"
[ ! -e "$f" ] || fail "replay left the spool file"
e=$(printf '' | sha256sum | cut -d' ' -f1)
code=$(curl -sS -o "$WORK/got.bin" -w '%{http_code}' --max-time 20 --aws-sigv4 "aws:amz:us-east-1:s3" \
	--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-content-sha256: $e" \
	"$S3_ENDPOINT/$BUCKET/$LONGKEY")
[ "$code" = 200 ] || fail "GET of the replayed key: HTTP $code"
cmp -s "$WORK/got.bin" "$WORK/body.bin" || fail "the replayed object's bytes differ"
# and the dead letter was never uploaded under the prefix
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 20 --aws-sigv4 "aws:amz:us-east-1:s3" \
	--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-content-sha256: $e" \
	"$S3_ENDPOINT/$BUCKET/${PREFIX}dl/after")
[ "$code" = 200 ] || fail "the message after the dead letter is not in the bucket under the prefix (HTTP $code)"

# ---- (c) --max-attempts against a server that always answers 503 SlowDown
timeout -s KILL 120 python3 "$TOP/tests/fake_s3.py" slowdown "$WORK/port" 110 >"$WORK/fake.log" 2>&1 &
FAKE_PID=$!
for _ in $(seq 1 100); do [ -s "$WORK/port" ] && break; sleep 0.05; done
[ -s "$WORK/port" ] || fail "fake server did not start"
S3_ENDPOINT=http://127.0.0.1:$(cat "$WORK/port")
retried0=$(it_stat '["retried"]')
SPOOL2=$WORK/spool-slowdown
timeout -s KILL 120 "$B/bin/s3ring-uploader" --ring "$RING" --endpoint "$S3_ENDPOINT" --path-style \
	--bucket "$BUCKET" --spool "$SPOOL2" --workers 1 --max-attempts 3 >>"$WORK/upl.log" 2>&1 &
UPL_PID=$!
it_wait_ready
head -c 500 /dev/urandom >"$WORK/body2.bin"
"$B/bin/s3ring-put" --ring "$RING" --timeout 5000 dl/slow "$WORK/body2.bin" || fail "put"
for _ in $(seq 1 300); do [ "$(it_stat '["dead_lettered"]')" -ge 2 ] && break; sleep 0.1; done
dl=$(it_stat '["dead_lettered"]')
[ "$dl" -eq 2 ] || fail "dead_lettered = $dl after the SlowDown message, want 2"
retried=$(( $(it_stat '["retried"]') - retried0 ))
puts=$(grep -c '^PUT /bucket-dl/dl/slow 503' "$WORK/fake.log")
f2=$(find "$SPOOL2" -maxdepth 1 -type f ! -name '.*')
[ "$(echo "$f2" | grep -c .)" -eq 1 ] || fail "want one file in $SPOOL2"
reason2=$(spool_field "$f2" reason)
attempts=$(spool_field "$f2" attempts)
log "SlowDown: $puts PUTs, retried=$retried, spool reason: $reason2"
[ "$puts" -eq 3 ] || fail "$puts PUT attempts with --max-attempts 3"
[ "$retried" -eq 3 ] || fail "retried = $retried, want 3 (every failed attempt counts)"
[ "$attempts" = 3 ] || fail "the spool file says attempts: $attempts"
grep -q '3 attempts' <<<"$reason2" || fail "the reason does not name the attempts: $reason2"
grep -q 'SlowDown' <<<"$reason2" || fail "the reason does not name the error: $reason2"
spool_check "$f2" dl/slow "$WORK/body2.bin"
for _ in $(seq 1 50); do [ "$(it_stat '["used_bytes"]')" -eq 0 ] && break; sleep 0.1; done
[ "$(it_stat '["used_bytes"]')" -eq 0 ] || fail "ring space not released after the SlowDown dead letter"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
echo "figure: deadletter key_too_long dead_lettered=1 replayed=1 slowdown max_attempts=3 puts=$puts retried=$retried"
