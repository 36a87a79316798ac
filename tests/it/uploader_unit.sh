#!/usr/bin/env bash
# uploader_unit.sh -- uploader/s3ring-uploader.service passes
# `systemd-analyze verify` (with ExecStart pointing at the built binary) and
# has the supervision and hardening settings the design asks for; the
# example config it loads parses.
set -uo pipefail
IT_NAME=unit
. "$(dirname "$0")/lib.sh"

UNIT=$TOP/uploader/s3ring-uploader.service
BIN=$(cd "$B/bin" && pwd)/s3ring-uploader
[ -f "$UNIT" ] || fail "no $UNIT"
command -v systemd-analyze >/dev/null || fail "systemd-analyze is not installed"

# value KEY: the last value of KEY= in the unit (systemd: the last one wins
# for these single-valued settings).
value() { sed -n "s/^[[:space:]]*$1=[[:space:]]*//p" "$UNIT" | tail -n 1; }

want() {  # KEY EXPECTED
	local v; v=$(value "$1")
	[ "$v" = "$2" ] || fail "$1=$v, want $1=$2"
}
want Type notify
want Restart always
want NoNewPrivileges yes
want ProtectSystem strict
want PrivateTmp yes
wd=$(value WatchdogSec)
[ -n "$wd" ] || fail "no WatchdogSec="
case $wd in *[!0-9]*|'') fail "WatchdogSec=$wd: expected whole seconds" ;; esac
[ "$wd" -gt 0 ] || fail "WatchdogSec=$wd"
# The drain on SIGTERM (--stop-timeout, 8 s by default, +1 s to abort
# transfers) must fit inside the stop timeout, or systemd KILLs a drain.
ts=$(value TimeoutStopSec)
[ -n "$ts" ] && [ "$ts" -ge 10 ] || fail "TimeoutStopSec=$ts: shorter than the drain"
# /dev/shm (the ring and the journal) stays writable under ProtectSystem.
grep -Eq '^ReadWritePaths=.*(/dev/shm)' "$UNIT" || fail "/dev/shm is not in ReadWritePaths="
grep -Eq '^PrivateDevices=(yes|true)' "$UNIT" && fail "PrivateDevices= would hide the producers' /dev/shm"
exec_start=$(value ExecStart)
[ -n "$exec_start" ] || fail "no ExecStart="

# verify, on a copy whose ExecStart is the built binary. The unit's user
# need not exist for verify; any output (unknown keys, bad values) fails.
mkdir -p "$WORK/unit"
sed "s|^ExecStart=[^ ]*|ExecStart=$BIN|" "$UNIT" >"$WORK/unit/s3ring-uploader.service"
grep -q "^ExecStart=$BIN" "$WORK/unit/s3ring-uploader.service" || fail "could not rewrite ExecStart"
(cd "$WORK/unit" && systemd-analyze verify --man=no s3ring-uploader.service) >"$WORK/verify.out" 2>&1
rc=$?
cat "$WORK/verify.out"
[ $rc -eq 0 ] || fail "systemd-analyze verify exited $rc"
[ ! -s "$WORK/verify.out" ] || fail "systemd-analyze verify complained"
score=$( (cd "$WORK/unit" && systemd-analyze security --offline=yes s3ring-uploader.service) 2>/dev/null |
	sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')

# The arguments of ExecStart, with the example config (every setting
# uncommented; the group one set to a group that exists) parse: --replay of
# a missing directory gets past parsing and fails with 1, not 64.
args=${exec_start#* }
[ "$args" != "$exec_start" ] || args=
conf=$TOP/uploader/uploader.conf.example
if [ -f "$conf" ]; then
	sed -e 's/^# *\([a-z-]* = \)/\1/' -e 's/^\(ring-group = \).*/\1root/' "$conf" >"$WORK/uploader.conf"
	# shellcheck disable=SC2086
	args=${args//\/etc\/s3ring\/uploader.conf/$WORK/uploader.conf}
	AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=y "$BIN" $args --replay "$WORK/none" \
		>"$WORK/out" 2>"$WORK/err"
	rc=$?
	[ $rc -ne 64 ] || fail "the example config or ExecStart's flags are refused: $(cat "$WORK/err")"
	[ $rc -eq 1 ] || fail "replay of a missing directory exited $rc"
fi
echo "figure: unit verify=clean Type=notify WatchdogSec=$wd TimeoutStopSec=$ts Restart=always exposure=${score:-n/a}"
