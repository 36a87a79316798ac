#!/usr/bin/env bash
# uploader_notify.sh -- the uploader speaks sd_notify as systemd expects:
# this script plays systemd with an AF_UNIX datagram socket as
# $NOTIFY_SOCKET and WATCHDOG_USEC=1000000. Checks READY=1, STATUS=...,
# WATCHDOG=1 more often than the watchdog timeout (from the main pid),
# STOPPING=1 after SIGTERM and exit 0 within 10 s; and that the watchdog
# keeps being fed while the bucket check fails at start (configuration
# alarm), which under systemd would otherwise end in a kill and restart
# every WatchdogSec.
set -uo pipefail
IT_NAME=notify
. "$(dirname "$0")/lib.sh"

# A watchdog of 1 s, pinged every 500 ms: a gap past it is a real fault,
# while a busy machine's scheduling delays (300 ms were seen at a load of 9
# on 2 cores, with a 200 ms watchdog) are not.
WD_USEC=1000000
FAKE_PID= LISTEN_PID=
stop_helpers() {
	[ -n "$FAKE_PID" ] && kill -TERM "$FAKE_PID" 2>/dev/null
	[ -n "$LISTEN_PID" ] && kill -TERM "$LISTEN_PID" 2>/dev/null
	FAKE_PID= LISTEN_PID=
}
trap 'stop_helpers; it_cleanup' EXIT

# fake_s3 MODE: starts tests/fake_s3.py, exports S3_ENDPOINT.
fake_s3() {
	rm -f "$WORK/port"
	timeout -s KILL 200 python3 "$TOP/tests/fake_s3.py" "$1" "$WORK/port" 190 >"$WORK/fake-$1.log" 2>&1 &
	FAKE_PID=$!
	for _ in $(seq 1 100); do [ -s "$WORK/port" ] && break; sleep 0.05; done
	[ -s "$WORK/port" ] || fail "fake server did not start"
	export S3_ENDPOINT=http://127.0.0.1:$(cat "$WORK/port")
}

# The notify socket: one line per datagram, "MS PID TEXT" (MS on the
# monotonic clock, PID from SCM_CREDENTIALS, newlines in TEXT as '|').
cat >"$WORK/listen.py" <<'PY'
import os, socket, struct, sys, time
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.settimeout(0.2)
end = time.monotonic() + float(sys.argv[3])
with open(out, "a", buffering=1) as f:
    f.write("0 0 LISTENING\n")
    while time.monotonic() < end:
        try:
            data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            continue
        pid = 0
        for lvl, typ, d in anc:
            if lvl == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", d[:12])[0]
        text = data.decode("utf-8", "replace").replace("\n", "|")
        f.write(f"{time.monotonic() * 1000:.1f} {pid} {text}\n")
PY

# listen FILE: starts a listener on a fresh socket, exports NOTIFY_SOCKET.
listen() {
	rm -f "$WORK/notify.sock"
	timeout -s KILL 200 python3 "$WORK/listen.py" "$WORK/notify.sock" "$1" 190 &
	LISTEN_PID=$!
	for _ in $(seq 1 100); do [ -s "$1" ] && break; sleep 0.05; done
	[ -S "$WORK/notify.sock" ] || fail "notify listener did not start"
	export NOTIFY_SOCKET=$WORK/notify.sock WATCHDOG_USEC=$WD_USEC
}

# watchdog_stats FILE PID FROM_MS: "COUNT MAXGAP_MS" of WATCHDOG=1 from PID
# after FROM_MS, the gap counted from the first one.
watchdog_stats() {
	awk -v pid="$2" -v from="$3" '$2 == pid && $1 >= from && $3 ~ /(^|\|)WATCHDOG=1(\||$)/ {
		if (n > 0 && $1 - last > gap) gap = $1 - last
		last = $1; n++
	} END { printf "%d %.0f\n", n, gap }' "$1"
}

export AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=secret AWS_REGION=us-east-1
max_gap_ms=$((WD_USEC / 1000))
# Sanitizer builds run several times slower on a shared machine: a late
# ping is reported, and only a gap past 5 x the timeout fails there.
[ -n "${SAN:-}" ] && max_gap_ms=$((5 * WD_USEC / 1000))

# ---- 1. a healthy start: READY, STATUS, a steady watchdog
fake_s3 ok
N=$WORK/notify.log
listen "$N"
it_uploader --bucket b --workers 2 --ring-size 1M
it_wait_ready
upid=$(it_uploader_pid)
for _ in $(seq 1 100); do grep -q ' READY=1' "$N" && break; sleep 0.05; done
grep -q ' READY=1' "$N" || fail "no READY=1"
sleep 0.5  # the first STATUS comes right after READY
echo hello | "$B/bin/s3ring-put" --ring "$RING" --timeout 5000 notify/one || fail "put"
it_wait_uploaded 1 30
t0=$(awk '/ READY=1/ { print $1; exit }' "$N")
sleep 3
read -r wd gap < <(watchdog_stats "$N" "$upid" "$t0")
log "healthy: $wd WATCHDOG=1 in about 3 s, largest gap $gap ms"
grep -q "^[0-9.]* $upid .*STATUS=" "$N" || fail "no STATUS= from the uploader's pid"
[ "$wd" -ge 3 ] || fail "only $wd WATCHDOG=1 in 3 s with WATCHDOG_USEC=$WD_USEC"
[ "$gap" -lt "$max_gap_ms" ] || fail "WATCHDOG=1 gap of $gap ms, over the $max_gap_ms ms limit"
others=$(awk -v pid="$upid" '$2 != pid && $2 != 0' "$N" | wc -l)
[ "$others" -eq 0 ] || fail "$others notifications from another pid (NotifyAccess=main would drop them)"
status_line=$(grep -o 'STATUS=[^|]*' "$N" | tail -n 1)

# ---- 2. SIGTERM: STOPPING=1, exit 0 within 10 s
t_term=$(date +%s%N)
kill -TERM "$upid"
wait "$UPL_PID"
rc=$?
UPL_PID=
stop_ms=$(( ($(date +%s%N) - t_term) / 1000000 ))
[ $rc -eq 0 ] || fail "exit status $rc after SIGTERM"
[ $stop_ms -lt 10000 ] || fail "SIGTERM took $stop_ms ms"
sleep 0.3
grep -q "^[0-9.]* $upid .*STOPPING=1" "$N" || fail "no STOPPING=1 after SIGTERM"
order=$(awk '/ READY=1/ { r = NR } / STOPPING=1/ { s = NR } END { print (r && s > r) ? "ok" : "bad" }' "$N")
[ "$order" = ok ] || fail "STOPPING=1 came before READY=1"
echo "figure: notify healthy watchdog_pings=$wd max_gap_ms=$gap sigterm_exit=0 stop_ms=$stop_ms"
echo "figure: notify last_status=\"${status_line#STATUS=}\""
stop_helpers

# ---- 3. the bucket check fails at start: the watchdog must still be fed
fake_s3 nobucket
N2=$WORK/notify2.log
listen "$N2"
it_uploader --bucket missing --workers 2 --recheck-interval 1
it_wait_ready
upid=$(it_uploader_pid)
for _ in $(seq 1 100); do grep -q ' READY=1' "$N2" && break; sleep 0.05; done
grep -q ' READY=1' "$N2" || fail "no READY=1 with a missing bucket"
t0=$(awk '/ READY=1/ { print $1; exit }' "$N2")
sleep 3
[ "$(it_stat '["config_alarm"]')" = True ] || fail "no configuration alarm with a missing bucket"
read -r wd2 gap2 < <(watchdog_stats "$N2" "$upid" "$t0")
log "bucket missing: $wd2 WATCHDOG=1 in about 3 s, largest gap $gap2 ms"
echo "figure: notify bucket_missing watchdog_pings=$wd2 max_gap_ms=$gap2"
[ "$wd2" -ge 5 ] || fail "only $wd2 WATCHDOG=1 in 3 s while the bucket check fails: systemd would kill and restart the uploader every WatchdogSec"
[ "$gap2" -lt "$max_gap_ms" ] || fail "WATCHDOG=1 gap of $gap2 ms while the bucket check fails"
grep -o 'STATUS=[^|]*' "$N2" | tail -n 1 | grep -qi 'alarm\|bucket' ||
	fail "STATUS= does not mention the failing bucket check"
it_stop_uploader || fail "exit non-zero on SIGTERM during the bucket check"
