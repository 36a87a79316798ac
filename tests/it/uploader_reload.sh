#!/usr/bin/env bash
# uploader_reload.sh -- SIGHUP (systemctl reload) re-reads the config file:
# the log level and object options change at once, a changed worker count
# is named as needing a restart (and the uploader keeps its workers), and
# a config file with an error changes nothing: the uploader runs on with
# the previous settings. The flags still win over the file.
set -uo pipefail
IT_NAME=reload
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
BUCKET=rl-bucket
head_of() {  # KEY -> $WORK/h
	$PY "$TOP/tests/servers/s3req.py" HEAD "$S3_ENDPOINT/$BUCKET/$1" -D "$WORK/h" >"$WORK/status" ||
		fail "HEAD $1"
	grep -q '^200' "$WORK/status" || fail "HEAD $1: $(cat "$WORK/status")"
}
put() { echo "$2" | "$B/bin/s3ring-put" --ring "$RING" "$1" || fail "put $1"; }
hup_and_wait() {  # N: wait for the Nth "SIGHUP: credentials re-read"
	kill -HUP "$(it_uploader_pid)"
	for _ in $(seq 1 100); do
		[ "$(grep -c 'SIGHUP: credentials re-read' "$WORK/upl.log")" -ge "$1" ] && return 0
		sleep 0.1
	done
	fail "SIGHUP $1 was not handled"
}

it_s3rver "$BUCKET"
cat >"$WORK/u.conf" <<CONF
bucket = $BUCKET
log-level = info
workers = 2
cache-control = max-age=1
stop-timeout = 5
CONF
it_uploader --config "$WORK/u.conf" --ring-size 1M --recheck-interval 1
it_wait_ready
put a.txt one
it_wait_uploaded 1 30
head_of a.txt
grep -qix 'cache-control: max-age=1' "$WORK/h" || fail "before SIGHUP: $(cat "$WORK/h")"
grep -q 'level=debug' "$WORK/upl.log" && fail "debug lines at log-level info"

# ---- a good change
cat >"$WORK/u.conf" <<CONF
bucket = $BUCKET
log-level = debug
workers = 4
cache-control = max-age=99
meta = reloaded=yes
recheck-interval = 7
CONF
hup_and_wait 1
line=$(grep 'SIGHUP: configuration re-read' "$WORK/upl.log" | tail -n 1)
grep -q 'applied="log-level,object options,stop-timeout"' <<<"$line" || fail "applied: $line"
grep -q 'needs_restart=workers' <<<"$line" || fail "needs_restart: $line"
grep -q 'level=warn msg="SIGHUP: some changed settings take effect only after a restart" settings=workers' \
	"$WORK/upl.log" || fail "no warning naming the settings that need a restart"
[ "$(it_stat '["uploader"]["workers"]')" -eq 2 ] || fail "the worker count changed without a restart"
put b.txt two
it_wait_uploaded 2 30
head_of b.txt
grep -qix 'cache-control: max-age=99' "$WORK/h" || fail "after SIGHUP, cache-control: $(cat "$WORK/h")"
grep -qix 'x-amz-meta-reloaded: yes' "$WORK/h" || fail "after SIGHUP, metadata: $(cat "$WORK/h")"
for _ in $(seq 1 50); do grep -q 'level=debug' "$WORK/upl.log" && break; sleep 0.1; done
grep -q 'level=debug' "$WORK/upl.log" || fail "log-level debug was not applied"

# ---- a broken file changes nothing
printf 'bucket = %s\nworkers = many\ncache-control = max-age=5\n' "$BUCKET" >"$WORK/u.conf"
hup_and_wait 2
grep -q 'level=error msg="SIGHUP: the configuration has an error; running on with the previous settings"' \
	"$WORK/upl.log" || fail "no error line for a broken config file"
put c.txt three
it_wait_uploaded 3 30
head_of c.txt
grep -qix 'cache-control: max-age=99' "$WORK/h" || fail "a broken file changed the settings: $(cat "$WORK/h")"
kill -0 "$(it_uploader_pid)" || fail "the uploader died"
it_stop_uploader || fail "uploader exited non-zero"
echo "figure: reload applied=\"$(sed -n 's/.*applied="\([^"]*\)".*/\1/p' <<<"$line")\" needs_restart=workers broken_file_kept_settings=yes"
