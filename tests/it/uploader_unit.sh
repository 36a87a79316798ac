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

# The arguments of ExecStart, with the example config (every setting and
# section line uncommented; the group one set to a group that exists)
# parse: --replay of a missing directory gets past parsing and fails with
# 1, not 64.
args=${exec_start#* }
[ "$args" != "$exec_start" ] || args=
conf=$TOP/uploader/uploader.conf.example
if [ -f "$conf" ]; then
	sed -e 's/^# *\([a-z-]* = \)/\1/' -e 's/^# *\(\[.*\]\)$/\1/' \
	    -e 's/^\(ring-group = \).*/\1root/' "$conf" >"$WORK/uploader.conf"
	# shellcheck disable=SC2086
	args=${args//\/etc\/s3ring\/uploader.conf/$WORK/uploader.conf}
	AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=y "$BIN" $args --replay "$WORK/none" \
		>"$WORK/out" 2>"$WORK/err"
	rc=$?
	[ $rc -ne 64 ] || fail "the example config or ExecStart's flags are refused: $(cat "$WORK/err")"
	[ $rc -eq 1 ] || fail "replay of a missing directory exited $rc"
fi
echo "figure: unit verify=clean Type=notify WatchdogSec=$wd TimeoutStopSec=$ts Restart=always exposure=${score:-n/a}"

# The template unit, one uploader per ring: verify it as an instance, and
# check that the ring comes from the instance name.
TUNIT=$TOP/uploader/s3ring-uploader@.service
[ -f "$TUNIT" ] || fail "no $TUNIT"
for k in Type=notify Restart=always NoNewPrivileges=yes ProtectSystem=strict; do
	grep -qx "$k" "$TUNIT" || fail "template: no $k"
done
grep -q '^ExecStart=.* --ring %i' "$TUNIT" || fail "template: ExecStart does not name the ring by %i"
grep -q '^StateDirectory=s3ring/%i' "$TUNIT" || fail "template: the spool is not per ring"
grep -q 'HOME\|home' "$TUNIT" || fail "template: no credentials advice for a user without a home"
sed "s|^ExecStart=[^ ]*|ExecStart=$BIN|" "$TUNIT" >"$WORK/unit/s3ring-uploader@demo.service"
(cd "$WORK/unit" && systemd-analyze verify --man=no s3ring-uploader@demo.service) >"$WORK/verify-t.out" 2>&1 ||
	fail "template: systemd-analyze verify: $(cat "$WORK/verify-t.out")"
[ ! -s "$WORK/verify-t.out" ] || fail "template: verify complained: $(cat "$WORK/verify-t.out")"
# --ring after --config wins over a ring named in the file.
printf 'ring = other\nbucket = b\n' >"$WORK/demo.conf"
AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=y "$BIN" --config "$WORK/demo.conf" --ring "demo-$$" \
	--endpoint http://127.0.0.1:9 --path-style --spool "$WORK/tspool" --log-level debug >"$WORK/t.out" 2>&1 &
tpid=$!
for _ in $(seq 1 50); do [ -e "/dev/shm/s3ring.demo-$$" ] && break; sleep 0.1; done
kill -TERM $tpid 2>/dev/null; wait $tpid
[ -e "/dev/shm/s3ring.demo-$$" ] || fail "template: --ring %i did not override the config's ring: $(cat "$WORK/t.out")"
[ ! -e /dev/shm/s3ring.other ] || fail "template: the config's ring was used"
"$B/tests/tool_ring" unlink "demo-$$"; rm -f "/dev/shm/s3ring.demo-$$.journal"
echo "figure: template unit verify=clean ring=%i"
