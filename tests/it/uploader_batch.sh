#!/usr/bin/env bash
# uploader_batch.sh -- batch mode against s3rver: every framing with every
# compression round-trips (each object decompressed and compared with what
# was put, in order within an object); a batch is sent when its oldest
# message reaches max-age; a message larger than max-bytes goes alone under
# its own key; SIGTERM sends the open batches; an outage in the middle of
# batches loses nothing; bad rules are refused at start with one line and
# exit 64.
set -uo pipefail
IT_NAME=batch
. "$(dirname "$0")/lib.sh"

SRV=$TOP/tests/servers/s3rver.sh
BUCKET=bucket-batch
N=${N:-$([ -n "${SAN:-}" ] && echo 100 || echo 400)}   # messages per rule

it_s3rver "$BUCKET"

# check FRAMING PROCS MSGS PREFIX MINLEN MAXLEN: fetch, decompress, compare.
# Prints the number of objects.
check() {
	local f=$1 procs=$2 msgs=$3 prefix=$4 lo=$5 hi=$6 dir=$WORK/got-${4//\//_} files
	files=$("$TOP/tests/it/batch_fetch.py" "$BUCKET" "$prefix" "$dir") || fail "$prefix: an object does not decompress"
	[ -n "$files" ] || fail "$prefix: no object in the bucket"
	# shellcheck disable=SC2046
	"$B/tests/tool_batchcheck" "$f" "$procs" "$msgs" "$prefix" "$lo" "$hi" $(echo "$files" | cut -d' ' -f1) >"$dir.out" 2>&1 ||
		{ cat "$dir.out"; fail "$prefix: the objects do not hold the messages exactly once"; }
	echo "$files" | wc -l
}

# ---- (a) every framing x every compression, several objects each
rules=()
for c in none gzip zstd; do
	for f in lines length; do
		rules+=(--batch "rt-$c-$f/:compression=$c,framing=$f,max-bytes=64K,max-age=200")
	done
done
it_uploader --bucket "$BUCKET" --ring-size 64M "${rules[@]}"
it_wait_ready
for c in none gzip zstd; do
	S3RING_TEST_TEXT=1 "$B/tests/tool_produce" "$RING" 1 "$N" "rt-$c-lines/" 1 2000 || fail "producing rt-$c-lines"
	"$B/tests/tool_produce" "$RING" 1 "$N" "rt-$c-length/" 0 2000 || fail "producing rt-$c-length"
done
it_wait_uploaded $((6 * N)) 120
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
round=""
for c in none gzip zstd; do
	for f in lines length; do
		lo=1; [ "$f" = length ] && lo=0
		objs=$(check "$f" 1 "$N" "rt-$c-$f/" "$lo" 2000) || { echo "$objs"; exit 1; }
		[ "$objs" -ge 2 ] || fail "rt-$c-$f/: $objs object(s) for $N messages of up to 2000 bytes in batches of 64K"
		# The key template's default: the prefix, the hour, host, ring and position.
		listing=$("$TOP/tests/it/batch_fetch.py" "$BUCKET" "rt-$c-$f/" "$WORK/keys")
		first=$(echo "$listing" | head -n 1 | cut -d' ' -f2)
		case $c in zstd) ext=.zst ;; gzip) ext=.gz ;; *) ext= ;; esac
		[[ $first =~ ^rt-$c-$f/[0-9]{4}/[0-9]{2}/[0-9]{2}/[0-9]{2}/[^/]+-[0-9a-f]{16}-[0-9a-f]{16}$ext$ ]] ||
			fail "key $first does not follow the default template"
		round+=" $c-$f=$objs"
	done
done
echo "figure: batch round_trip messages_per_rule=$N objects:$round"
[ "$(it_stat '["uploaded"]')" -eq $((6 * N)) ] || fail "uploaded $(it_stat '["uploaded"]') != $((6 * N))"

# ---- (b) max-age, (c) a message larger than max-bytes, (d) SIGTERM
# (The ring made above, 64 MiB, stays: max-bytes must fit a quarter of it.)
it_uploader --bucket "$BUCKET" --batch "age/:max-age=300,max-bytes=512K" \
	--batch "big/:max-bytes=1K" --batch "term/:max-age=600000,max-bytes=512K"
it_wait_ready
t0=$(date +%s%N)
S3RING_TEST_TEXT=1 "$B/tests/tool_produce" "$RING" 1 5 age/ 10 50 || fail "producing age/"
for _ in $(seq 1 300); do
	[ -n "$("$TOP/tests/it/batch_fetch.py" "$BUCKET" age/ "$WORK/age")" ] && break
	sleep 0.1
done
age_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
objs=$(check lines 1 5 age/ 10 50) || { echo "$objs"; exit 1; }
[ "$objs" -eq 1 ] || fail "age/: $objs objects, not one"
"$B/tests/tool_produce" "$RING" 1 3 big/ 3000 5000 || fail "producing big/"
S3RING_TEST_TEXT=1 "$B/tests/tool_produce" "$RING" 1 3 term/ 10 50 || fail "producing term/"
it_wait_uploaded $((6 * N + 5 + 3)) 60
S3_BUCKET=$BUCKET "$B/tests/tool_s3check" 1 3 big/ 3000 5000 || fail "big/: the messages over max-bytes are not in the bucket alone"
[ -z "$("$TOP/tests/it/batch_fetch.py" "$BUCKET" term/ "$WORK/term0")" ] || fail "term/: sent before its max-age or SIGTERM"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
objs=$(check lines 1 3 term/ 10 50) || { echo "$objs"; exit 1; }
[ "$objs" -eq 1 ] || fail "term/: SIGTERM did not send the open batch as one object ($objs)"
echo "figure: batch age_flush_ms=$age_ms (max-age 300) alone=3 sigterm_flush=yes"

# ---- (e) an outage in the middle of batches: wave A flows as the server
# stops, wave B is put while it is down; both arrive once it is back.
it_uploader --bucket "$BUCKET" --ring-size 4M --max-attempts 2 --batch "outa/:max-bytes=32K,max-age=200,framing=length" --batch "outb/:max-bytes=32K,max-age=200,framing=length"
it_wait_ready
"$B/tests/tool_produce" "$RING" 2 "$N" outa/ 0 1000 &
prod=$!
sleep 0.2
"$SRV" stop "$WORK/s3rver" >/dev/null 2>&1 || fail "stopping s3rver"
wait $prod || fail "producers failed during the outage"
"$B/tests/tool_produce" "$RING" 2 "$N" outb/ 0 1000 0 || fail "a put failed while the server was down"
sleep 2
kill -0 "$(it_uploader_pid)" || fail "the uploader died during the outage"
retried=$(it_stat '["retried"]')
held=$(it_stat '["used_bytes"]')
[ "$retried" -gt 0 ] || fail "no retries while the server was down"
[ "$held" -gt 0 ] || fail "nothing held in the ring while the server was down"
S3RVER_PORT=$S3_PORT S3RVER_QUIET=1 "$SRV" start "$WORK/s3rver" "$BUCKET" >/dev/null ||
	fail "s3rver did not start again on port $S3_PORT"
it_wait_uploaded $((10 * N + 11)) 120
[ "$(it_stat '["dead_lettered"]')" -eq 0 ] || fail "dead-lettered during the outage"
objs_a=$(check length 2 "$N" outa/ 0 1000) || { echo "$objs_a"; exit 1; }
objs_b=$(check length 2 "$N" outb/ 0 1000) || { echo "$objs_b"; exit 1; }
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
echo "figure: batch outage objects=$((objs_a + objs_b)) ring_bytes_during_outage=$held retried_during_outage=$retried dead_lettered=0"

# ---- (g) a batch whose compressed bytes pass the part size goes as a
# multipart upload (random bodies do not compress: about 12 MiB in parts
# of 5 MiB), and arrives whole
it_uploader --bucket "$BUCKET" --part-size 5M \
	--batch "mp/:compression=zstd,framing=length,max-bytes=16M,max-age=1000"
it_wait_ready
mp0=$(it_stat '["uploader"]["multipart_completed"]')
"$B/tests/tool_produce" "$RING" 2 2000 mp/ 0 6000 || fail "producing mp/"
it_wait_uploaded $((10 * N + 11 + 4000)) 120
mp1=$(it_stat '["uploader"]["multipart_completed"]')
[ "$mp1" -gt "$mp0" ] || fail "no multipart upload completed for a batch over the part size"
objs=$(check length 2 2000 mp/ 0 6000) || { echo "$objs"; exit 1; }
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
echo "figure: batch multipart objects=$objs multipart_completed=$((mp1 - mp0))"

# ---- (h) SIGHUP re-reads the rules: the open batch is sent under the old
# rule, the new rule applies to what comes next
cat >"$WORK/u.conf" <<CONF
bucket = $BUCKET
[batch "hup/"]
max-age = 600000
max-bytes = 1M
framing = length
CONF
it_uploader --config "$WORK/u.conf"
it_wait_ready
"$B/tests/tool_produce" "$RING" 1 3 hup/ 0 100 || fail "producing hup/"
sleep 0.5
[ -z "$("$TOP/tests/it/batch_fetch.py" "$BUCKET" hup/ "$WORK/hup0")" ] || fail "hup/: sent before its max-age"
sed -i 's/^framing = length/framing = lines\ncompression = gzip/' "$WORK/u.conf"
kill -HUP "$(it_uploader_pid)"
for _ in $(seq 1 100); do
	grep -q 'SIGHUP: configuration re-read' "$WORK/upl.log" && break
	sleep 0.1
done
grep 'SIGHUP: configuration re-read' "$WORK/upl.log" | grep -q 'applied=[^ ]*batch' || fail "SIGHUP did not apply the batch rule"
it_wait_uploaded $((10 * N + 11 + 4000 + 3)) 60
objs=$(check length 1 3 hup/ 0 100) || { echo "$objs"; exit 1; }
[ "$objs" -eq 1 ] || fail "hup/: the open batch was not sent as one object on SIGHUP ($objs)"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
echo "figure: batch sighup open_batch_sent=yes"

# ---- (f) bad rules: one line each, exit 64
bad() {
	local want=$1; shift
	out=$(timeout 30 "$B/bin/s3ring-uploader" --ring "$RING" --bucket "$BUCKET" --endpoint "$S3_ENDPOINT" \
		--path-style --spool "$WORK/spool" --log-level warn "$@" 2>&1)
	rc=$?
	[ $rc -eq 64 ] || fail "$* exited $rc, not 64: $out"
	[ "$(echo "$out" | grep -c .)" -eq 1 ] || fail "$*: not one line: $out"
	echo "$out" | grep -q -- "$want" || fail "$*: the line does not say '$want': $out"
}
bad "quarter of the ring" --batch "q/:max-bytes=1G"
bad "nest" --batch "a/:" --batch "a/b/:"
bad "compression" --batch "c/:compression=lz4"
bad "unknown" --batch "u/:colour=blue"
bad "{pos}" --batch "k/:key=k/{ring}.zst"
echo "figure: batch bad_rules=5 exit=64"
