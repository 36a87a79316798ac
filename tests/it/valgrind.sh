#!/usr/bin/env bash
# valgrind.sh -- the uploader end to end under valgrind memcheck: 300
# messages through s3rver, and 100 more through a zstd batch rule (one of
# them a multipart upload), then SIGTERM. It must exit 0, deliver every
# message byte for byte, and leak nothing (0 bytes definitely or indirectly
# lost; no invalid reads or writes, no use of uninitialised values).
# Skipped under the sanitizers (they do not mix with valgrind).
set -uo pipefail
IT_NAME=valgrind
if [ -n "${SAN:-}" ]; then
	echo "SKIP: valgrind: runs in the plain build only"
	exit 77
fi
command -v valgrind >/dev/null || { echo "FAIL: valgrind missing (tests/install-deps.sh)"; exit 1; }
. "$(dirname "$0")/lib.sh"

N=300
it_s3rver bucket-vg
# lib.sh's it_uploader, with valgrind in front (slow start: longer waits).
timeout -s KILL 600 valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect \
	--errors-for-leak-kinds=definite,indirect --error-exitcode=99 --track-origins=yes \
	--log-file="$WORK/vg.log" \
	"$B/bin/s3ring-uploader" --ring "$RING" --endpoint "$S3_ENDPOINT" --path-style \
	--spool "$WORK/spool" --bucket bucket-vg --ring-size 32M --workers 4 --stop-timeout 20 \
	--part-size 5M --batch "vgb/:compression=zstd,framing=length,max-bytes=6M,max-age=300" \
	>>"$WORK/upl.log" 2>&1 &
UPL_PID=$!
for _ in $(seq 1 600); do
	"$B/bin/shmstat" --ring "$RING" --json 2>/dev/null |
		python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d["uploader"]["alive"] else 1)' 2>/dev/null && break
	sleep 0.1
done
"$B/tests/tool_produce" "$RING" 2 $((N / 2)) vg/ 1 8192 || fail "producers"
# Random bodies do not compress: the first 6 MiB of them pass the part size.
"$B/tests/tool_produce" "$RING" 2 50 vgb/ 60000 65000 || fail "batch producers"
it_wait_uploaded $((N + 100)) 300
t0=$(date +%s%N)
it_stop_uploader
rc=$?
stop_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $rc -eq 0 ] || { tail -n 40 "$WORK/vg.log"; fail "uploader under valgrind exited $rc (99: memcheck errors)"; }
S3_BUCKET=bucket-vg "$B/tests/tool_s3check" 2 $((N / 2)) vg/ 1 8192 || fail "bucket check"
files=$("$TOP/tests/it/batch_fetch.py" bucket-vg vgb/ "$WORK/vgb") || fail "a batch object does not decompress"
# shellcheck disable=SC2046
"$B/tests/tool_batchcheck" length 2 50 vgb/ 60000 65000 $(echo "$files" | cut -d' ' -f1) ||
	fail "the batch objects do not hold the messages exactly once"
[ "$(it_stat '["uploader"]["multipart_completed"]')" -ge 1 ] || fail "no batch went as a multipart upload"
grep -q 'ERROR SUMMARY: 0 errors' "$WORK/vg.log" || { tail -n 40 "$WORK/vg.log"; fail "memcheck errors"; }
def=$(grep -o 'definitely lost: [0-9,]* bytes' "$WORK/vg.log" | grep -o '[0-9,]* bytes' | tr -d ,)
ind=$(grep -o 'indirectly lost: [0-9,]* bytes' "$WORK/vg.log" | grep -o '[0-9,]* bytes' | tr -d ,)
reach=$(grep -o 'still reachable: [0-9,]* bytes' "$WORK/vg.log" | grep -o '[0-9,]* bytes' | tr -d ,)
grep -q 'All heap blocks were freed' "$WORK/vg.log" && def="0 bytes" ind="0 bytes" reach="0 bytes"
[ "${def:-0 bytes}" = "0 bytes" ] || fail "definitely lost: $def"
[ "${ind:-0 bytes}" = "0 bytes" ] || fail "indirectly lost: $ind"
echo "figure: valgrind messages=$N definitely_lost=${def:-0 bytes} indirectly_lost=${ind:-0 bytes} still_reachable=${reach:-0 bytes} errors=0 sigterm_stop_ms=$stop_ms"
