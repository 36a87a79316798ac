#!/usr/bin/env bash
# bindings_e2e.sh -- producers in Java, Kotlin (the example service,
# producer/examples/StoreMessages.kt) and Python put 10,000 messages each,
# at the same time, through one ring; s3ring-uploader sends them to s3rver,
# and every object is checked byte for byte. Meanwhile a fourth JVM putting
# into the same ring is killed with kill -9: the uploader and the other
# producers carry on, and everything it reported committed is uploaded.
set -uo pipefail
IT_NAME=bindings-e2e
. "$(dirname "$0")/lib.sh"
cd "$TOP"
. tests/helpers/bindings.sh
bindings_skip_if_sanitized
bindings_need "$S3RING_JAR" "$JNI_SO" "$KOTLIN_JAR" "$B/java/test-classes/.built" "$PY_DIR"

N=$((10000 / ${S3RING_TEST_SCALE_DIV:-1}))
jopts=(-Ds3ring.library="$PWD/$JNI_SO")
cp=$S3RING_JAR:$B/java/test-classes

it_s3rver bucket-bind
it_uploader --bucket bucket-bind --ring-size 4M --workers 16
it_wait_ready

log "Java, Kotlin and Python producers, $N messages each, and a JVM to be killed"
timeout -s KILL 600 java "${jopts[@]}" -cp "$cp" org.s3ring.E2EProducer "$RING" "java/" "$N" \
	>"$WORK/java.log" 2>&1 &
pj=$!
timeout -s KILL 600 java "${jopts[@]}" -cp "$KOTLIN_JAR:$S3RING_JAR" StoreMessagesKt \
	--ring "$RING" --count "$N" --prefix "kotlin/" --wait-ms 120000 >"$WORK/kotlin.log" 2>&1 &
pk=$!
PYTHONPATH=$PWD/$PY_DIR timeout -s KILL 600 "$PY" producer/python/tests/produce.py "$RING" "python/" "$N" \
	>"$WORK/python.log" 2>&1 &
pp=$!
timeout -s KILL 600 java "${jopts[@]}" -cp "$cp" org.s3ring.KillChild "$RING" >"$WORK/killed.log" 2>&1 &
pv=$!
for _ in $(seq 1 600); do
	[ "$(wc -l <"$WORK/killed.log")" -ge 500 ] && break
	sleep 0.1
done
# $pv is the timeout wrapper: kill the JVM itself.
jvm=$(pgrep -P "$pv" | head -n 1)
[ -n "$jvm" ] || fail "the JVM to kill is not running"
kill -KILL "$jvm"
wait "$pv" 2>/dev/null
killed=$(grep -c '^kill/' "$WORK/killed.log")
log "killed the JVM after $killed committed puts"
[ "$killed" -ge 500 ] || fail "the killed JVM committed only $killed"

wait "$pj" || { cat "$WORK/java.log"; fail "Java producer"; }
wait "$pk" || { cat "$WORK/kotlin.log"; fail "Kotlin producer"; }
grep -q "stored $N dropped 0" "$WORK/kotlin.log" || { cat "$WORK/kotlin.log"; fail "Kotlin example output"; }
wait "$pp" || { cat "$WORK/python.log"; fail "Python producer"; }

it_wait_uploaded $((3 * N + killed)) 300
[ "$(it_stat '["uploader"]["alive"]')" = True ] || fail "the uploader died"
for lang in java kotlin python; do
	S3_BUCKET=bucket-bind "$B/tests/tool_s3check" 1 "$N" "$lang/" 1 4096 || fail "bucket check of $lang/"
done
# Every key the killed JVM reported committed is in the bucket (one curl,
# a HEAD per key).
e=$(printf '' | sha256sum | cut -d' ' -f1)
grep '^kill/' "$WORK/killed.log" | while read -r k; do
	printf 'url = "%s/bucket-bind/%s"\noutput = /dev/null\n' "$S3_ENDPOINT" "$k"
done >"$WORK/heads.curl"
missing=$(curl -sS --head --max-time 120 --aws-sigv4 "aws:amz:us-east-1:s3" --user S3RVER:S3RVER \
	-H "x-amz-content-sha256: $e" -w '%{http_code}\n' -K "$WORK/heads.curl" | grep -vc '^200$')
[ "$missing" = 0 ] || fail "$missing committed keys of the killed JVM are not in the bucket"
[ "$(it_stat '["corrupt"]')" -eq 0 ] || fail "corrupt records"
[ "$(it_stat '["dead_lettered"]')" -eq 0 ] || fail "dead letters"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
echo "figure: bindings_e2e java=$N kotlin=$N python=$N killed_jvm_committed=$killed checked_byte_for_byte=$((3 * N))"
