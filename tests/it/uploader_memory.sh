#!/usr/bin/env bash
# uploader_memory.sh -- the uploader's memory is bounded by workers x
# max_message + a constant, whatever the number of uploads: 100,000
# messages of 1 KiB to 16 KiB go through nginx (it answers every PUT with
# 200; the uploader does not care what answers), and the uploader's peak RSS
# (VmHWM) after 100,000 uploads must be within 5% of the peak after 10,000.
# The peak must also stay under idle RSS + workers x (max_message + 1 MiB):
# besides its buffer, each worker has a libcurl handle with its connection
# buffers and a thread with its own malloc arena (about 0.6 MiB measured).
# Sanitizer builds run a fifth of the messages; the growth check still
# applies (with ASan's quarantine off, see below).
set -uo pipefail
IT_NAME=memory
. "$(dirname "$0")/lib.sh"

WORKERS=8
MAXMSG=32768
FIRST=${FIRST:-$([ -n "${SAN:-}" ] && echo 2000 || echo 10000)}
TOTAL=${TOTAL:-$([ -n "${SAN:-}" ] && echo 20000 || echo 100000)}
PER_WORKER_KB=1024
# ASan keeps freed memory in a quarantine (256 MiB by default) and hands out
# fresh memory meanwhile: RSS then creeps for the sanitizer's sake (3-6%
# here even with a 1 MiB quarantine), not the uploader's. Off for this
# test only; use-after-free detection is covered by the other scripts.
case ${SAN:-} in *address*)
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0" ;;
esac

# nginx: PUT /null/... is answered 200 and discarded. HEAD /null (the
# uploader's bucket check) is answered 200 because data/null is a file.
"$TOP/tests/servers/nginx.sh" start "$WORK/nginx" >/dev/null || fail "nginx did not start"
IT_SERVERS+=("nginx:$WORK/nginx")
: >"$WORK/nginx/data/null"
set -a
. "$WORK/nginx/env"
set +a

hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

it_uploader --bucket null --workers $WORKERS --ring-size 4M --max-message $MAXMSG
it_wait_ready
upid=$(it_uploader_pid)
sleep 0.5
hwm0=$(hwm_kb "$upid")

half=$((FIRST / 2))
t0=$(date +%s%N)
"$B/tests/tool_produce" "$RING" 2 "$half" m1/ 1024 16384 || fail "producers failed"
it_wait_uploaded "$FIRST" 300
hwm1=$(hwm_kb "$upid")
log "after $FIRST uploads: VmHWM $hwm1 kB (idle: $hwm0 kB)"

rest=$(( (TOTAL - FIRST) / 2 ))
"$B/tests/tool_produce" "$RING" 2 "$rest" m2/ 1024 16384 || fail "producers failed"
it_wait_uploaded "$TOTAL" 600
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
hwm2=$(hwm_kb "$upid")
rss2=$(rss_kb "$upid")
kill -0 "$upid" || fail "the uploader died"
log "after $TOTAL uploads: VmHWM $hwm2 kB, VmRSS $rss2 kB"
for c in dead_lettered corrupt retried; do
	v=$(it_stat "[\"$c\"]")
	[ "$v" -eq 0 ] || fail "$c = $v"
done
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"

growth=$(awk -v a="$hwm1" -v b="$hwm2" 'BEGIN { printf "%.2f", (b - a) * 100 / a }')
bound=$((hwm0 + WORKERS * (MAXMSG / 1024 + PER_WORKER_KB)))
rate=$((TOTAL * 1000 / (ms > 0 ? ms : 1)))
echo "figure: memory messages=$TOTAL size=1KiB-16KiB msgs_per_s=$rate vmhwm_idle_kb=$hwm0 vmhwm_${FIRST}_kb=$hwm1 vmhwm_${TOTAL}_kb=$hwm2 growth_pct=$growth"
echo "figure: memory bound_kb=$bound (idle $hwm0 + workers $WORKERS x (max_message $((MAXMSG / 1024)) KiB + $PER_WORKER_KB KiB)) peak_kb=$hwm2 per_worker_measured_kb=$(( (hwm2 - hwm0) / WORKERS ))"
awk -v g="$growth" 'BEGIN { exit !(g < 5.0) }' || fail "VmHWM grew by $growth% from $FIRST to $TOTAL uploads (limit 5%)"
if [ -z "${SAN:-}" ]; then
	[ "$hwm2" -le "$bound" ] || fail "peak $hwm2 kB over the bound $bound kB"
fi
