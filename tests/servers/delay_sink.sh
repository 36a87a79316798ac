#!/usr/bin/env bash
# delay_sink.sh -- the slow sink (delay_sink.c) on 127.0.0.1: every request
# is answered 200 with an ETag and no body, DELAY ms after it was fully
# received, so an uploader in front of it needs DELAY x rate requests in
# flight to keep its rate.
#
#   delay_sink.sh start DIR [BUCKET...]  prints http://127.0.0.1:PORT (buckets
#                                        are accepted and ignored: every path
#                                        answers 200)
#   delay_sink.sh stop DIR               stop it (by the PID in DIR/delay_sink.pid);
#                                        the totals go to DIR/delay_sink.log
#   delay_sink.sh env DIR                print DIR/env
#
# DIR/env (sourceable): S3_ENDPOINT, S3_PORT, SINK_DELAY_MS, dummy
# AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_REGION.
# Files: DIR/delay_sink.pid (PID of the `timeout` wrapper), DIR/delay_sink.log,
# DIR/port. Environment: SERVER_LIFETIME (s, default 3600), SINK_DELAY_MS
# (default 30), SINK_MAX_CONNS (default 4096), SINK_PORT (default: a free
# one), DELAY_SINK_BIN (default BUILD/tests/delay_sink, BUILD default build).
set -euo pipefail
SRV_NAME=delay_sink
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DELAY_SINK_BIN=${DELAY_SINK_BIN:-$SRV_TOP/${BUILD:-build}/tests/delay_sink}

start() {  # DIR BUCKET...
	local dir t0 url port i
	dir=$(srv_require_dir "${1:-}")
	[ -x "$DELAY_SINK_BIN" ] || srv_die "$DELAY_SINK_BIN not built (make)"
	srv_pidfile_alive "$dir/delay_sink.pid" && srv_die "already running in $dir (pid $(cat "$dir/delay_sink.pid"))"
	t0=$(srv_now)
	rm -f "$dir/port"
	: >"$dir/delay_sink.log"
	# The sink binds port 0 itself and reports the kernel's choice: no race.
	srv_spawn "$dir/delay_sink.pid" "$dir/delay_sink.log" "$DELAY_SINK_BIN" \
		--delay-ms "${SINK_DELAY_MS:-30}" --max-conns "${SINK_MAX_CONNS:-4096}" \
		--port "${SINK_PORT:-0}" --port-file "$dir/port" --lifetime "$SERVER_LIFETIME"
	for ((i = 0; i < 1000; i++)); do
		[ -s "$dir/port" ] && break
		srv_pidfile_alive "$dir/delay_sink.pid" || break
		sleep 0.01
	done
	port=$(cat "$dir/port" 2>/dev/null) || port=
	if [ -z "$port" ] || ! srv_wait_port "$port" 10 "$(cat "$dir/delay_sink.pid")"; then
		tail -n 20 "$dir/delay_sink.log" >&2
		srv_stop_pidfile "$dir/delay_sink.pid" 5 || true
		srv_die "did not start (log: $dir/delay_sink.log)"
	fi
	url=http://127.0.0.1:$port
	srv_write_env "$dir/env" AWS_ACCESS_KEY_ID=sink AWS_SECRET_ACCESS_KEY=sink \
		AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 S3_ENDPOINT="$url" S3_PORT="$port" \
		SINK_DELAY_MS="${SINK_DELAY_MS:-30}"
	srv_log "ready at $url after $(srv_elapsed "$t0") s (pid $(cat "$dir/delay_sink.pid"))"
	echo "$url"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
start) start "$@" ;;
stop) srv_stop_pidfile "${1:?missing DIR}/delay_sink.pid" 10 ;;
env) cat "${1:?missing DIR}/env" ;;
*) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac
