#!/usr/bin/env bash
# reliability_backpressure.sh -- a slow server and a backlog: every worker
# is busy for a while (each PUT stalls 0.5 s in the fault proxy) and the
# ring holds records that wait for a free worker. The dispatcher must sleep
# meanwhile (workers x max_message memory, and no CPU burnt): the uploader
# uses less than 25% of a core, and every message arrives.
set -uo pipefail
IT_NAME=backpressure
. "$(dirname "$0")/lib.sh"

N=300
it_s3rver bucket-bp
upstream=$S3_ENDPOINT
timeout -s KILL 300 python3 "$TOP/tests/fault_proxy.py" --upstream "$upstream" \
	--port-file "$WORK/proxy.port" --faults stall=1.0 --stall-seconds 0.5 2>"$WORK/proxy.log" &
PROXY_PID=$!
trap 'kill -TERM $PROXY_PID 2>/dev/null; it_cleanup' EXIT
for _ in $(seq 1 100); do [ -s "$WORK/proxy.port" ] && break; sleep 0.05; done
[ -s "$WORK/proxy.port" ] || fail "proxy did not start"
S3_ENDPOINT=http://127.0.0.1:$(cat "$WORK/proxy.port")
it_uploader --bucket bucket-bp --ring-size 1M --workers 4
it_wait_ready
"$B/tests/tool_produce" "$RING" 1 $N bp/ 1 1024 || fail "producer"
sleep 1
p=$(it_uploader_pid)
hz=$(getconf CLK_TCK)
t0=$(awk '{ print $14 + $15 }' "/proc/$p/stat")
sleep 4
t1=$(awk '{ print $14 + $15 }' "/proc/$p/stat")
pending=$(it_stat '["pending"]')
cpu=$(( (t1 - t0) * 100 / hz / 4 ))
it_wait_uploaded $N 300
S3_ENDPOINT=$upstream S3_BUCKET=bucket-bp "$B/tests/tool_s3check" 1 $N bp/ 1 1024 || fail "bucket check"
echo "figure: backpressure messages=$N workers=4 pending_during_measure=$pending uploader_cpu_pct=$cpu"
[ "$pending" -gt 0 ] || fail "no backlog during the measurement"
[ "$cpu" -lt 25 ] || fail "the dispatcher spins while every worker is busy: ${cpu}% of a core"
