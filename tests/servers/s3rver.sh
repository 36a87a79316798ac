#!/usr/bin/env bash
# s3rver.sh -- the s3rver S3 emulator (npm, installed into .deps/ by
# tests/install-deps.sh) on 127.0.0.1, on a free port, for functional tests.
# It accepts only the access key S3RVER / secret S3RVER and does NOT verify
# SigV4 signatures (use swift.sh for that).
#
#   s3rver.sh start DIR [BUCKET...]   start; data in DIR/data, create BUCKETs;
#                                     prints http://127.0.0.1:PORT
#   s3rver.sh mkbucket DIR BUCKET...  create buckets on a running server
#   s3rver.sh stop DIR                stop it (by the PID in DIR/s3rver.pid)
#   s3rver.sh env DIR                 print DIR/env
#
# Files: DIR/s3rver.pid (PID of the `timeout` wrapper), DIR/s3rver.log,
# DIR/env (sourceable: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
# AWS_DEFAULT_REGION, S3_ENDPOINT, S3_PORT).
# Environment: SERVER_LIFETIME (s, default 3600), S3RVER_PORT (default: a
# free one), S3RVER_QUIET=1 (no per-request log lines), S3RVER_BIN.
set -euo pipefail
SRV_NAME=s3rver
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

S3RVER_BIN=${S3RVER_BIN:-$SRV_TOP/.deps/node_modules/.bin/s3rver}
KEY=S3RVER
REGION=us-east-1

mkbucket() {  # DIR BUCKET...
	local dir=$1 b code e
	shift
	[ -s "$dir/env" ] || srv_die "no $dir/env: not started"
	# shellcheck disable=SC1091
	. "$dir/env"
	e=$(printf '' | sha256sum | cut -d' ' -f1)
	for b in "$@"; do
		code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 \
			--aws-sigv4 "aws:amz:$REGION:s3" --user "$KEY:$KEY" \
			-H "x-amz-content-sha256: $e" -X PUT "$S3_ENDPOINT/$b")
		case $code in
		200) ;;
		409) ;;  # already exists (BucketAlreadyOwnedByYou)
		*) srv_die "creating bucket $b: HTTP $code" ;;
		esac
	done
}

start() {  # DIR BUCKET...
	local dir port attempt t0 args=() b url
	dir=$(srv_require_dir "${1:-}")
	shift
	[ -x "$S3RVER_BIN" ] || srv_die "$S3RVER_BIN missing (run tests/install-deps.sh)"
	srv_pidfile_alive "$dir/s3rver.pid" && srv_die "already running in $dir (pid $(cat "$dir/s3rver.pid"))"
	mkdir -p "$dir/data"
	for b in "$@"; do args+=(--configure-bucket "$b"); done
	[ "${S3RVER_QUIET:-0}" = 1 ] && args+=(--silent)
	t0=$(srv_now)
	for attempt in 1 2 3; do
		port=${S3RVER_PORT:-$(srv_free_port)} || srv_die "no free port"
		srv_spawn "$dir/s3rver.pid" "$dir/s3rver.log" \
			"$S3RVER_BIN" --directory "$dir/data" --address 127.0.0.1 --port "$port" \
			--no-vhost-buckets "${args[@]}"
		if srv_wait_port "$port" 30 "$(cat "$dir/s3rver.pid")"; then
			break
		fi
		srv_stop_pidfile "$dir/s3rver.pid" 5 || true
		# lost a race for the port? try another one, unless it was fixed
		if [ -n "${S3RVER_PORT:-}" ] || [ "$attempt" = 3 ] ||
			! grep -q EADDRINUSE "$dir/s3rver.log"; then
			tail -n 20 "$dir/s3rver.log" >&2
			srv_die "did not start (log: $dir/s3rver.log)"
		fi
	done
	url=http://127.0.0.1:$port
	srv_write_env "$dir/env" AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$KEY \
		AWS_REGION=$REGION AWS_DEFAULT_REGION=$REGION S3_ENDPOINT="$url" S3_PORT="$port"
	srv_log "ready at $url after $(srv_elapsed "$t0") s (pid $(cat "$dir/s3rver.pid"))"
	echo "$url"
}

stop() {  # DIR
	[ -n "${1:-}" ] || srv_die "missing DIR argument"
	srv_stop_pidfile "$1/s3rver.pid" 10
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
start) start "$@" ;;
stop) stop "$@" ;;
mkbucket)
	[ $# -ge 2 ] || srv_die "usage: s3rver.sh mkbucket DIR BUCKET..."
	mkbucket "$@" ;;
env) cat "${1:?missing DIR}/env" ;;
*) sed -n '2,18p' "$0" >&2; exit 2 ;;
esac
