#!/usr/bin/env bash
# swift.sh -- a single-node OpenStack Swift (Debian packages) with the s3api
# middleware and tempauth, on 127.0.0.1: a real S3 front end that verifies
# SigV4 signatures. Use it for correctness, not speed.
#
#   swift.sh start DIR [BUCKET...]   set up and start; all state under DIR;
#                                    create BUCKETs; prints http://127.0.0.1:PORT
#   swift.sh mkbucket DIR BUCKET...  create buckets on a running server
#   swift.sh stop DIR                stop it (by the PIDs in DIR/run/*.pid)
#   swift.sh env DIR                 print DIR/env
#
# Credentials (tempauth): access key "test:tester", secret "testing"; a second
# account "test2:tester2" / "testing2". Region us-east-1, path-style only.
# Bucket names must follow the S3 rules (3 to 63 characters).
# DIR/env (sourceable): AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
# AWS_DEFAULT_REGION, S3_ENDPOINT, S3_PORT, and the second account as
# S3_ALT_ACCESS_KEY_ID / S3_ALT_SECRET_ACCESS_KEY.
#
# DIR should be on a filesystem with user xattrs; tmpfs (/dev/shm) is fastest
# (object PUTs fsync). Ports are free ones chosen at start. Logs: DIR/log/.
# Environment: SERVER_LIFETIME (s, default 3600), SWIFT_MODE (single: the
# account, container, object and proxy servers in one Python process, fastest
# start, the default; multi: the four swift-*-server programs, more
# throughput), SWIFT_MEMCACHED (auto: run memcached if installed; 0: never),
# SWIFT_PROXY_WORKERS (multi only; default 0: no forked worker),
# SWIFT_LOG_LEVEL (default WARNING).
set -euo pipefail
SRV_NAME=swift
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/swift
REGION=us-east-1
KEY=test:tester
SECRET=testing
SERVERS=(account container object proxy)

render() {  # TEMPLATE OUT
	sed -e "s|@DIR@|$DIR|g" -e "s|@USER@|$(id -un)|g" \
		-e "s|@ACCOUNT_PORT@|${PORT[account]}|g" \
		-e "s|@CONTAINER_PORT@|${PORT[container]}|g" \
		-e "s|@OBJECT_PORT@|${PORT[object]}|g" \
		-e "s|@PROXY_PORT@|${PORT[proxy]}|g" \
		-e "s|@MEMCACHE_PORT@|${PORT[memcached]}|g" \
		-e "s|@WORKERS@|0|g" \
		-e "s|@PROXY_WORKERS@|${SWIFT_PROXY_WORKERS:-0}|g" \
		-e "s|@LOG_LEVEL@|${SWIFT_LOG_LEVEL:-WARNING}|g" \
		-e "s|@REGION@|$REGION|g" \
		"$1" >"$2"
}

stop_all() {  # DIR
	local rc=0 f
	for f in "$1"/run/*.pid; do
		[ -e "$f" ] || continue
		srv_stop_pidfile "$f" 10 || rc=1
	done
	return $rc
}

# s3curl URL-PATH CURL-ARGS...: a request signed with the test credentials.
# The access key contains a colon, so it goes into the URL, colon encoded
# (curl --user would split it at the first colon).
s3curl() {
	local path=$1; shift
	curl -sS --max-time 20 --aws-sigv4 "aws:amz:$REGION:s3" "$@" \
		"http://${KEY/:/%3A}:$SECRET@127.0.0.1:${S3_PORT}$path"
}

mkbucket() {  # DIR BUCKET...
	local dir=$1 b code e
	shift
	[ -s "$dir/env" ] || srv_die "no $dir/env: not started"
	# shellcheck disable=SC1091
	. "$dir/env"
	e=$(printf '' | sha256sum | cut -d' ' -f1)
	for b in "$@"; do
		code=$(s3curl "/$b" -o /dev/null -w '%{http_code}' -H "x-amz-content-sha256: $e" -X PUT)
		case $code in
		200 | 409) ;;  # 409: exists already
		*) srv_die "creating bucket $b: HTTP $code" ;;
		esac
	done
}

start() {  # DIR BUCKET...
	local t0 s p pidf used url rings memcached=
	DIR=$(srv_require_dir "${1:-}")
	shift
	command -v swift-proxy-server >/dev/null || srv_die "swift not installed (run tests/install-deps.sh)"
	for p in "$DIR"/run/*.pid; do
		srv_pidfile_alive "$p" && srv_die "already running in $DIR ($p)"
	done
	t0=$(srv_now)
	rm -rf "$DIR/etc" "$DIR/srv" "$DIR/run" "$DIR/env"
	mkdir -p "$DIR/etc" "$DIR/srv/d1" "$DIR/log" "$DIR/run"
	# Swift keeps object metadata in user xattrs.
	"$SRV_PY" -c 'import os, sys; os.setxattr(sys.argv[1], "user.t", b"1")' "$DIR/srv/d1" 2>/dev/null ||
		srv_die "no user xattrs on the filesystem of $DIR (use tmpfs, ext4 or xfs)"

	declare -gA PORT=()
	used=" "
	for s in "${SERVERS[@]}" memcached; do
		p=$(srv_free_port) || srv_die "no free port"
		while [[ $used == *" $p "* ]]; do p=$(srv_free_port); done
		PORT[$s]=$p
		used="$used$p "
	done
	render "$HERE/swift.conf.in" "$DIR/etc/swift.conf"
	for s in "${SERVERS[@]}"; do
		render "$HERE/$s-server.conf.in" "$DIR/etc/$s-server.conf"
	done
	# The rings are built while the storage servers start (they do not read
	# them at startup); the proxy starts once they are there.
	"$SRV_PY" "$HERE/mkrings.py" "$DIR/etc" "${PORT[account]}" "${PORT[container]}" "${PORT[object]}" &
	rings=$!

	if [ "${SWIFT_MEMCACHED:-auto}" != 0 ] && command -v memcached >/dev/null; then
		memcached=1
		srv_spawn "$DIR/run/memcached.pid" "$DIR/log/memcached.log" \
			memcached -l 127.0.0.1 -p "${PORT[memcached]}" -U 0 -m 64 -t 1 -u "$(id -un)"
	fi
	case ${SWIFT_MODE:-single} in
	single)
		# the four servers in one Python process (swift/allinone.py)
		wait "$rings" || { stop_all "$DIR" || true; srv_die "building the rings failed"; }
		srv_spawn "$DIR/run/swift.pid" "$DIR/log/swift.log" \
			"$SRV_PY" "$HERE/allinone.py" "$DIR/etc"
		;;
	multi)
		for s in "${SERVERS[@]}"; do
			if [ "$s" = proxy ] && ! wait "$rings"; then
				stop_all "$DIR" || true
				srv_die "building the rings failed"
			fi
			srv_spawn "$DIR/run/$s.pid" "$DIR/log/$s.log" \
				"swift-$s-server" "$DIR/etc/$s-server.conf" --verbose
		done
		;;
	*) srv_die "SWIFT_MODE must be single or multi" ;;
	esac
	for s in "${SERVERS[@]}" ${memcached:+memcached}; do
		pidf=$DIR/run/$s.pid
		[ -e "$pidf" ] || pidf=$DIR/run/swift.pid
		if ! srv_wait_port "${PORT[$s]}" 60 "$(cat "$pidf")"; then
			tail -n 20 "$DIR"/log/*.log >&2
			stop_all "$DIR" || true
			srv_die "$s did not start (logs: $DIR/log/)"
		fi
	done
	url=http://127.0.0.1:${PORT[proxy]}
	if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$url/healthcheck")" != 200 ]; then
		stop_all "$DIR" || true
		srv_die "proxy healthcheck failed (logs: $DIR/log/)"
	fi
	srv_write_env "$DIR/env" AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$SECRET \
		AWS_REGION=$REGION AWS_DEFAULT_REGION=$REGION S3_ENDPOINT="$url" S3_PORT="${PORT[proxy]}" \
		S3_ALT_ACCESS_KEY_ID=test2:tester2 S3_ALT_SECRET_ACCESS_KEY=testing2
	if [ $# -gt 0 ]; then
		mkbucket "$DIR" "$@" || { stop_all "$DIR" || true; exit 1; }
	fi
	srv_log "ready at $url after $(srv_elapsed "$t0") s"
	echo "$url"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
start) start "$@" ;;
stop) stop_all "${1:?missing DIR}" ;;
mkbucket)
	[ $# -ge 2 ] || srv_die "usage: swift.sh mkbucket DIR BUCKET..."
	mkbucket "$@" ;;
env) cat "${1:?missing DIR}/env" ;;
*) sed -n '2,26p' "$0" >&2; exit 2 ;;
esac
