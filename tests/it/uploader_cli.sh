#!/usr/bin/env bash
# uploader_cli.sh -- the uploader's command line: every bad flag or value is
# one line on stderr and exit 64; --help exits 0; a ring owned by another
# uid is refused with one clear line unless --allow-foreign-ring; SIGHUP
# re-reads the credentials and the uploader keeps running.
set -uo pipefail
IT_NAME=cli
. "$(dirname "$0")/lib.sh"

U=$B/bin/s3ring-uploader
FAKE_PID=
trap '[ -n "$FAKE_PID" ] && kill -TERM "$FAKE_PID" 2>/dev/null; it_cleanup' EXIT

# usage_case NAME ARGS...: must exit 64 with exactly one stderr line that
# starts "s3ring-uploader: ", and nothing on stdout.
cases=0
usage_case() {
	local name=$1 rc n; shift
	"$U" "$@" >"$WORK/out" 2>"$WORK/err" </dev/null
	rc=$?
	n=$(wc -l <"$WORK/err")
	[ $rc -eq 64 ] || fail "$name: exit $rc, want 64 ($(head -c 300 "$WORK/err"))"
	[ "$n" -eq 1 ] || { cat "$WORK/err"; fail "$name: $n lines on stderr, want 1"; }
	grep -q '^s3ring-uploader: ' "$WORK/err" || fail "$name: stderr line not prefixed: $(cat "$WORK/err")"
	[ ! -s "$WORK/out" ] || fail "$name: wrote to stdout"
	log "$name: $(cat "$WORK/err")"
	cases=$((cases + 1))
}

usage_case "unknown flag" --bucket b --no-such-flag
usage_case "workers 0" --bucket b --workers 0
usage_case "ring-size 3M" --bucket b --ring-size 3M
usage_case "missing --bucket" --ring "$RING"
printf 'bucket = b\n# a comment\nworkers = 4\nthis line has no equals sign\n' >"$WORK/bad.conf"
usage_case "bad --config line" --config "$WORK/bad.conf"
grep -q 'bad.conf:4' "$WORK/err" || fail "bad --config line: the line number is not named"
printf 'bucket = b\nworkers = many\n' >"$WORK/bad2.conf"
usage_case "bad --config value" --config "$WORK/bad2.conf"
usage_case "missing config file" --config "$WORK/no-such.conf"
usage_case "flag without value" --bucket
usage_case "recheck-interval 0" --bucket b --recheck-interval 0
usage_case "max-attempts x" --bucket b --max-attempts x
usage_case "max-message over ring-size/8" --bucket b --ring-size 64K --max-message 64K
usage_case "endpoint without scheme" --bucket b --endpoint 127.0.0.1:9
usage_case "stray argument" --bucket b extra
# None of those may have created the ring.
[ ! -e "/dev/shm/s3ring.$RING" ] || fail "a refused command line created the ring"

"$U" --help >"$WORK/out" 2>"$WORK/err"
rc=$?
[ $rc -eq 0 ] || fail "--help exited $rc"
[ ! -s "$WORK/err" ] || fail "--help wrote to stderr"
for f in bucket recheck-interval max-attempts allow-foreign-ring stop-timeout; do
	grep -q -- "--$f" "$WORK/out" || fail "--help does not list --$f"
done

# A ring owned by another uid. The tool runs as nobody, so it must be
# reachable by nobody: a copy in a world-readable directory.
[ "$(id -u)" -eq 0 ] || fail "this test needs root (to create a ring as another user)"
mkdir -p "$WORK/pub" && chmod 755 "$WORK" "$WORK/pub"
cp "$B/tests/tool_ring" "$WORK/pub/" && chmod 755 "$WORK/pub/tool_ring"
setpriv --reuid=nobody --regid=nogroup --clear-groups "$WORK/pub/tool_ring" create "$RING" 1048576 ||
	fail "cannot create a ring as nobody"
owner=$(stat -c %u "/dev/shm/s3ring.$RING")
[ "$owner" != "$(id -u)" ] || fail "the ring is owned by us"

# A server that answers 200 to everything, so the uploader has a bucket.
timeout -s KILL 120 python3 "$TOP/tests/fake_s3.py" ok "$WORK/port" 110 >"$WORK/fake.log" 2>&1 &
FAKE_PID=$!
for _ in $(seq 1 100); do [ -s "$WORK/port" ] && break; sleep 0.05; done
[ -s "$WORK/port" ] || fail "fake server did not start"
export S3_ENDPOINT=http://127.0.0.1:$(cat "$WORK/port")
export AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=secret AWS_REGION=us-east-1

timeout 20 "$U" --ring "$RING" --bucket b --endpoint "$S3_ENDPOINT" --path-style \
	--spool "$WORK/spool" >"$WORK/out" 2>"$WORK/err"
rc=$?
n=$(wc -l <"$WORK/err")
log "foreign ring: exit $rc: $(cat "$WORK/err")"
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "foreign ring: exit $rc, want a refusal"
[ "$n" -eq 1 ] || { cat "$WORK/err"; fail "foreign ring: $n lines on stderr, want 1"; }
grep -q "owned by uid $owner" "$WORK/err" || fail "foreign ring: the line does not name the owner"
grep -q -- '--allow-foreign-ring' "$WORK/err" || fail "foreign ring: the line does not name --allow-foreign-ring"
[ ! -e "/dev/shm/s3ring.$RING.journal" ] || fail "foreign ring: a journal was created although refused"

it_uploader --bucket b --allow-foreign-ring --workers 2
it_wait_ready
[ "$(it_stat '["uploader"]["pid"]')" = "$(it_uploader_pid)" ] || fail "another pid in the ring"

# SIGHUP: logged, and the uploader keeps running and serving.
upid=$(it_uploader_pid)
kill -HUP "$upid"
for _ in $(seq 1 50); do grep -q 'credentials re-read' "$WORK/upl.log" && break; sleep 0.1; done
grep -q 'credentials re-read' "$WORK/upl.log" || fail "SIGHUP: no 'credentials re-read' line"
kill -HUP "$upid"
sleep 1
kill -0 "$upid" 2>/dev/null || fail "the uploader died after SIGHUP"
hups=$(grep -c 'credentials re-read' "$WORK/upl.log")
[ "$hups" -eq 2 ] || fail "$hups 'credentials re-read' lines after 2 SIGHUPs"
echo hello | "$B/bin/s3ring-put" --ring "$RING" --timeout 5000 cli/after-hup ||
	fail "put after SIGHUP"
it_wait_uploaded 1 30
grep -q "PUT /b/cli/after-hup 200" "$WORK/fake.log" || fail "the message after SIGHUP did not reach the server"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
echo "figure: cli usage_errors=$cases all_exit_64_one_line=yes foreign_ring_refused=yes sighup_reloads=$hups"

# An endpoint with a path is a bad value like any other: refused while the
# flags are parsed (64, one line), not later as a failure to start workers.
rm -f "/dev/shm/s3ring.$RING.journal"
"$B/tests/tool_ring" unlink "$RING" 2>/dev/null
usage_case "endpoint with a path" --ring "$RING" --bucket b --endpoint "$S3_ENDPOINT/some/path"

# An unwritable dead-letter spool is a start-up error (exit 1, one line
# naming it), not a surprise at the first dead letter. A regular file is
# unwritable as a directory for root too.
: >"$WORK/not-a-dir"
for spool in "$WORK/not-a-dir" "$WORK/not-a-dir/sub"; do
	timeout 20 "$U" --ring "$RING" --bucket b --endpoint "$S3_ENDPOINT" --path-style \
		--spool "$spool" >"$WORK/out" 2>"$WORK/err" </dev/null
	rc=$?
	[ $rc -eq 1 ] || fail "spool $spool: exit $rc, want 1 ($(cat "$WORK/err"))"
	grep -v '^ts=' "$WORK/err" >"$WORK/err1"
	[ "$(wc -l <"$WORK/err1")" -eq 1 ] || fail "spool $spool: $(cat "$WORK/err1")"
	grep -q "dead-letter spool $spool is not writable" "$WORK/err1" ||
		fail "spool $spool: the error does not name the spool: $(cat "$WORK/err1")"
done
if [ "$(id -u)" -ne 0 ]; then
	mkdir -p "$WORK/ro" && chmod 500 "$WORK/ro"
	timeout 20 "$U" --ring "$RING" --bucket b --endpoint "$S3_ENDPOINT" --path-style \
		--spool "$WORK/ro" >/dev/null 2>"$WORK/err" </dev/null && fail "a read-only spool was accepted"
fi
"$B/tests/tool_ring" unlink "$RING" 2>/dev/null
rm -f "/dev/shm/s3ring.$RING.journal"
echo "figure: cli unwritable_spool_refused=yes"
