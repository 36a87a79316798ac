#!/usr/bin/env bash
# uploader_batch_kill9.sh -- batch mode across kill -9: while 4 producers
# stream small messages into a zstd batch rule, the uploader is SIGKILLed
# KILLS times at random moments (some right after its start) and restarted.
# A batch closed before a kill is rebuilt from the ring by the next start
# and sent again under the same key, so it overwrites rather than doubles.
# Then every object is decompressed: each committed message must be in the
# bucket exactly once (none lost, none twice), in order within its object.
set -uo pipefail
IT_NAME=batchkill
. "$(dirname "$0")/lib.sh"

PROCS=4
PER=${PER:-$([ -n "${SAN:-}" ] && echo 5000 || echo 20000)}
# Paced so that the producers stream through the kills (about 20 s of them).
RATE=${RATE:-$([ -n "${SAN:-}" ] && echo 250 || echo 1000)}
KILLS=${KILLS:-50}
MAXLEN=300
BUCKET=bucket-batchkill
MAX_MS=${MAX_MS:-$([ -n "${SAN:-}" ] && echo 1500 || echo 800)}
RULE=(--batch "bk/:compression=zstd,framing=length,max-bytes=64K,max-age=100")

it_s3rver "$BUCKET"
# A ring of 1 MiB: the producers wait for space, so they stream for as
# long as the kills go on.
it_uploader --bucket "$BUCKET" --ring-size 1M "${RULE[@]}"
it_wait_ready

log "producing $PROCS x $PER messages of 0 to $MAXLEN B, $RATE/s each"
S3RING_TEST_RATE=$RATE "$B/tests/tool_produce" "$RING" "$PROCS" "$PER" bk/ 0 "$MAXLEN" &
prod=$!

kills=0 during=0
for i in $(seq 1 "$KILLS"); do
	it_kill9_round "$i" "$MAX_MS"
	kills=$((kills + 1))
	kill -0 "$prod" 2>/dev/null && during=$((during + 1))
	it_uploader --bucket "$BUCKET" "${RULE[@]}"
done
it_wait_ready
wait $prod || fail "producers failed"
log "producers done after $during kills; waiting for the ring to drain"
for _ in $(seq 1 1800); do
	[ "$(it_stat '["used_bytes"]')" -eq 0 ] && break
	sleep 0.1
done
[ "$(it_stat '["used_bytes"]')" -eq 0 ] || fail "the ring did not drain"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
for c in dead_lettered corrupt abandoned dropped_full; do
	v=$(it_stat "[\"$c\"]")
	[ "$v" -eq 0 ] || fail "$c = $v"
done
files=$("$TOP/tests/it/batch_fetch.py" "$BUCKET" bk/ "$WORK/got") || fail "an object does not decompress"
# shellcheck disable=SC2046
res=$("$B/tests/tool_batchcheck" length "$PROCS" "$PER" bk/ 0 "$MAXLEN" $(echo "$files" | cut -d' ' -f1) 2>&1) ||
	{ echo "$res"; fail "after $kills kills the bucket does not hold every message exactly once"; }
objects=$(echo "$files" | wc -l)
epoch=$(it_stat '["uploader"]["epoch"]')
# Batches closed by a run that was killed before S3 confirmed them.
rebuilt=$(grep -c "sending again what the last run closed" "$WORK/upl.log")
echo "figure: batch_kill9 messages=$((PROCS * PER)) kills=$kills kills_while_producing=$during rebuilt=$rebuilt epoch=$epoch $(echo "$res" | tail -n 1)"
