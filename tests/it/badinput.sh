#!/usr/bin/env bash
# badinput.sh -- bad input gets one clear line, and nothing is lost.
#
# Producer side (s3ring-put, i.e. the library): an oversized message, bad
# keys (empty, control character, over 1,024 bytes), an unknown ring, a
# ring of a newer layout version. Uploader side: a config file with bad
# lines, a missing credentials file with no keys in the environment, a
# credentials file readable by others (a warning, as ssh does), a ring of a
# newer layout version. Clock skew: Swift's s3api answers
# RequestTimeTooSkewed to a request signed 20 minutes off (libfaketime,
# switched on while the uploader runs); it must be classified (a
# configuration error: alarm, message kept) and logged, and once the clock
# is right again the message is delivered.
# Throughout, a message put before the bad input reaches the bucket.
set -uo pipefail
IT_NAME=badinput
. "$(dirname "$0")/lib.sh"

one_line() {  # WHAT OUTPUT: exactly one non-empty line
	[ -n "$2" ] && [ "$(printf '%s\n' "$2" | wc -l)" -eq 1 ] || fail "$1: not one line: $2"
	echo "figure: badinput $1: $2"
}

it_s3rver bucket-bad
it_uploader --bucket bucket-bad --ring-size 1M --max-message 64K
it_wait_ready
"$B/tests/tool_produce" "$RING" 1 10 before/ 1 1000 || fail "producer"
PUT="$B/bin/s3ring-put --ring $RING --timeout 1000"

# ---- producer side
head -c 70000 /dev/urandom >"$WORK/big"
out=$($PUT big/1 "$WORK/big" 2>&1); rc=$?
[ $rc -eq 1 ] || fail "oversized: exit $rc"
one_line oversized "$out"
echo "$out" | grep -qi 'larger\|too large\|too long\|EMSGSIZE' || fail "oversized: unclear: $out"
for k in "" $'a\001b' "$(head -c 1100 /dev/zero | tr '\0' k)"; do
	out=$(echo x | $PUT "$k" 2>&1); rc=$?
	[ $rc -eq 1 ] || fail "bad key (${#k} bytes): exit $rc"
	one_line "bad_key_${#k}_bytes" "$out"
done
out=$(echo x | "$B/bin/s3ring-put" --ring "no-such-ring-$$" k 2>&1); rc=$?
[ $rc -eq 1 ] || fail "unknown ring: exit $rc"
one_line unknown_ring "$out"
echo "$out" | grep -qi 'no such' || fail "unknown ring: unclear: $out"

# ---- a newer layout version (producer and uploader)
VRING=test-bad-ver-$$
trap '"$B/tests/tool_ring" unlink "$VRING" 2>/dev/null; it_cleanup' EXIT
"$B/tests/tool_ring" create "$VRING" 65536 && "$B/tests/tool_ring" set-version "$VRING" 99 ||
	fail "tool_ring"
out=$(echo x | "$B/bin/s3ring-put" --ring "$VRING" k 2>&1); rc=$?
[ $rc -eq 1 ] || fail "newer layout: exit $rc"
one_line newer_layout_put "$out"
echo "$out" | grep -qi 'version' || fail "newer layout: unclear: $out"
out=$(timeout 20 "$B/bin/s3ring-uploader" --ring "$VRING" --bucket bucket-bad --endpoint "$S3_ENDPOINT" \
	--path-style --spool "$WORK/spool" 2>&1); rc=$?
[ $rc -ne 0 ] || fail "the uploader accepted a newer layout"
one_line newer_layout_uploader "$(echo "$out" | grep -v '^ts=')"
[ "$(stat -c %s "/dev/shm/s3ring.$VRING")" -gt 0 ] || fail "the ring of a newer layout was damaged"

# ---- uploader configuration
printf 'bucket = b\nworkers = lots\n' >"$WORK/bad.conf"
out=$(timeout 20 "$B/bin/s3ring-uploader" --config "$WORK/bad.conf" 2>&1); rc=$?
[ $rc -eq 64 ] || fail "bad config: exit $rc"
one_line config_bad_value "$out"
echo "$out" | grep -q 'bad.conf' && echo "$out" | grep -q ':2' || fail "bad config: no file and line: $out"
printf 'bucket = b\n\nthis is not a setting\n' >"$WORK/bad2.conf"
out=$(timeout 20 "$B/bin/s3ring-uploader" --config "$WORK/bad2.conf" 2>&1); rc=$?
[ $rc -eq 64 ] || fail "bad config line: exit $rc"
one_line config_bad_line "$out"
printf 'bucket = b\nno-such-setting = 1\n' >"$WORK/bad3.conf"
out=$(timeout 20 "$B/bin/s3ring-uploader" --config "$WORK/bad3.conf" 2>&1); rc=$?
[ $rc -eq 64 ] || fail "unknown setting: exit $rc"
one_line config_unknown_setting "$out"

out=$(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
	AWS_SHARED_CREDENTIALS_FILE="$WORK/nowhere/credentials" HOME="$WORK/nohome" \
	timeout 20 "$B/bin/s3ring-uploader" --ring "$RING-creds" --bucket bucket-bad --endpoint "$S3_ENDPOINT" \
	--path-style --spool "$WORK/spool" 2>&1); rc=$?
"$B/tests/tool_ring" unlink "$RING-creds" 2>/dev/null; rm -f "/dev/shm/s3ring.$RING-creds.journal"
[ $rc -ne 0 ] || fail "started without credentials"
# Reported, not failed: three error lines (two log lines, then the
# summary, whose "~/.aws/credentials" is not the file that was looked for).
one_line missing_credentials "$(echo "$out" | tail -n 1)"
echo "figure: badinput missing_credentials error_lines=$(echo "$out" | grep -c 'level=error\|^s3ring-uploader:')"
echo "$out" | grep -q "$WORK/nowhere/credentials" || fail "missing credentials: the file is not named: $out"

printf '[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n' >"$WORK/creds"
chmod 644 "$WORK/creds"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_SHARED_CREDENTIALS_FILE="$WORK/creds" \
	timeout -s KILL 20 "$B/bin/s3ring-uploader" --ring "$RING-perm" --bucket bucket-bad \
	--endpoint "$S3_ENDPOINT" --path-style --spool "$WORK/spool" >"$WORK/perm.log" 2>&1 &
pp=$!
for _ in $(seq 1 100); do grep -q 'msg="started"' "$WORK/perm.log" && break; sleep 0.05; done
kill -TERM $pp; wait $pp
"$B/tests/tool_ring" unlink "$RING-perm" 2>/dev/null; rm -f "/dev/shm/s3ring.$RING-perm.journal"
w=$(grep 'level=warn' "$WORK/perm.log" | grep -i 'credentials' | head -n 1)
[ -n "$w" ] || fail "no warning for a credentials file readable by others: $(cat "$WORK/perm.log")"
echo "$w" | grep -q 'chmod 600' || fail "the warning does not say what to do: $w"
one_line credentials_mode_644 "$w"

# The messages put before all this are delivered.
it_wait_uploaded 10 60
S3_BUCKET=bucket-bad "$B/tests/tool_s3check" 1 10 before/ 1 1000 || fail "bucket check"
[ "$(it_stat '["produced"]')" -eq 10 ] || fail "a rejected put was counted as produced"
it_stop_uploader || fail "uploader exit"

# ---- clock skew against Swift (signature verified, time checked)
if ! command -v faketime >/dev/null; then
	# tests/install-deps.sh installs it: missing where it ran is a failure.
	fail "clock skew: faketime missing (tests/install-deps.sh installs it)"
fi
LIBFT=$(dirname "$(readlink -f "$(command -v faketime)")")/../lib/x86_64-linux-gnu/faketime/libfaketime.so.1
[ -f "$LIBFT" ] || LIBFT=$(find /usr/lib -name libfaketime.so.1 2>/dev/null | head -n 1)
[ -f "$LIBFT" ] || fail "clock skew: libfaketime.so.1 not found although faketime is installed"
# libfaketime and the ASan runtime cannot share a process: ASan must come
# first in the library list, and preloaded first it deadlocks inside
# libfaketime's clock_gettime initialisation. The plain and TSan runs cover
# the skew.
# (grep without -q reads all of ldd's output: with pipefail, -q's early
# exit could fail ldd with SIGPIPE and hide the match.)
if ldd "$B/bin/s3ring-uploader" | grep 'libasan\.' >/dev/null; then
	echo "badinput ok up to the clock skew"
	echo "SKIP: clock skew: libfaketime cannot be preloaded into an ASan build"
	exit 77
fi
SW=$(mktemp -d /dev/shm/s3ring-badinput-swift.XXXXXX)
trap '"$TOP/tests/servers/swift.sh" stop "$SW" >/dev/null 2>&1; rm -rf "$SW"; "$B/tests/tool_ring" unlink "$VRING" 2>/dev/null; it_cleanup' EXIT
"$TOP/tests/servers/swift.sh" start "$SW" bucket-skew >/dev/null 2>"$WORK/swift.err" || fail "swift: $(tail -n 5 "$WORK/swift.err")"
SRING=$RING-skew
(
	set -a
	. "$SW/env"
	set +a
	# The offset is read from a file on every call, so it can change while
	# the uploader runs: 0 for the bucket check, then 20 minutes back.
	echo "+0" >"$WORK/faketime"
	# libfaketime re-reads its offset file from every thread without a
	# lock; under TSan that is its own race, not ours, so it alone is
	# suppressed.
	echo "race:libfaketime.so.1" >"$WORK/faketime.supp"
	export TSAN_OPTIONS="${TSAN_OPTIONS:-}:suppressions=$WORK/faketime.supp"
	LD_PRELOAD=$LIBFT FAKETIME_TIMESTAMP_FILE=$WORK/faketime FAKETIME_NO_CACHE=1 \
		FAKETIME_DONT_FAKE_MONOTONIC=1 \
		exec timeout -s KILL 120 "$B/bin/s3ring-uploader" --ring "$SRING" --bucket bucket-skew \
		--endpoint "$S3_ENDPOINT" --path-style --spool "$WORK/spool" --ring-size 1M \
		--recheck-interval 1 --log-level debug
) >"$WORK/skew.log" 2>&1 &
sp=$!
# $sp is the `timeout` wrapper (it runs under faketime too): kill the
# uploader below it by its own pid first, then the wrapper.
trap 'kill -KILL $(pgrep -P $sp) $sp 2>/dev/null; "$TOP/tests/servers/swift.sh" stop "$SW" >/dev/null 2>&1; rm -rf "$SW"; "$B/tests/tool_ring" unlink "$VRING" 2>/dev/null; "$B/tests/tool_ring" unlink "$SRING" 2>/dev/null; rm -f "/dev/shm/s3ring.$SRING.journal"; it_cleanup' EXIT
for _ in $(seq 1 200); do grep -q 'msg="started"' "$WORK/skew.log" && break; sleep 0.05; done
grep -q 'msg="started"' "$WORK/skew.log" || fail "the uploader under faketime did not start: $(tail -n 5 "$WORK/skew.log")"
sleep 1
grep -q 'alarm raised' "$WORK/skew.log" && fail "alarm before the skew: $(grep 'alarm raised' "$WORK/skew.log")"
echo "-20m" >"$WORK/faketime"
sleep 0.5
echo "skewed message" | "$B/bin/s3ring-put" --ring "$SRING" skew/1 ||
	fail "put to the skewed uploader's ring: $(tail -n 5 "$WORK/skew.log")"
for _ in $(seq 1 100); do grep -q 'RequestTimeTooSkewed' "$WORK/skew.log" && break; sleep 0.1; done
line=$(grep 'alarm raised' "$WORK/skew.log" | head -n 1)
dbg=$(grep 's3 request failed' "$WORK/skew.log" | grep 'RequestTimeTooSkewed' | head -n 1)
[ -n "$dbg" ] || fail "no RequestTimeTooSkewed answer logged: $(grep -v 'level=debug msg=\"uploaded' "$WORK/skew.log" | tail -n 5)"
echo "$dbg" | grep -q 'class=config' || fail "RequestTimeTooSkewed not classified as a configuration error: $dbg"
echo "$line" | grep -q 'RequestTimeTooSkewed' || fail "the alarm does not name the skew: $line"
echo "figure: badinput clock_skew_20min: $(echo "$line" | grep -o 'alarm=.*')"
echo "+0" >"$WORK/faketime"
for _ in $(seq 1 100); do
	"$B/bin/shmstat" --ring "$SRING" --json | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["uploaded"] >= 1 else 1)' && break
	sleep 0.1
done
"$B/bin/shmstat" --ring "$SRING" --json | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["uploaded"] >= 1 else 1)' ||
	fail "the skewed message was not delivered once the clock was right"
grep -q 'alarm cleared' "$WORK/skew.log" || fail "the alarm was not cleared"
echo "figure: badinput clock_skew: message kept and delivered after the clock was fixed, alarm cleared"
p=$(pgrep -P $sp); kill -TERM $p 2>/dev/null
for _ in $(seq 1 100); do kill -0 $p 2>/dev/null || break; sleep 0.1; done
kill -0 $p 2>/dev/null && fail "the skewed uploader did not stop on SIGTERM"
grep -h -A3 "ThreadSanitizer: Matched" "$WORK/skew.log" || true
echo "badinput ok"
