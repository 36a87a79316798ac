#!/usr/bin/env bash
# aws_creds.sh -- the stand-ins for STS, the SSO portal, ECS container
# credentials and EC2 IMDSv2 (aws_creds.py) on 127.0.0.1, on a free port.
#
#   aws_creds.sh start DIR SERVICE [OPTION...]  start sts|sso|ecs|imds;
#                                    prints http://127.0.0.1:PORT
#   aws_creds.sh stop DIR            stop it (by the PID in DIR/aws_creds.pid)
#   aws_creds.sh mode DIR WORD       switch it: ok|error|malformed|expired
#
# OPTIONs are aws_creds.py's (--ttl S, --access-key K, --secret-key S,
# --source-key/--source-secret/--source-token for AssumeRole, --web-token,
# --sso-token, --auth, --role). Files: DIR/aws_creds.pid, DIR/aws_creds.log,
# DIR/requests.log (one JSON object per request), DIR/port, DIR/mode.
# Environment: SERVER_LIFETIME (s, default 3600).
set -euo pipefail
SRV_NAME=aws_creds
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cmd=${1:-}
dir=$(srv_require_dir "${2:-}")
case $cmd in
start)
	svc=${3:?SERVICE}
	shift 3
	rm -f "$dir/port"
	t0=$(srv_now)
	srv_spawn "$dir/aws_creds.pid" "$dir/aws_creds.log" \
		"$SRV_PY" "$SRV_TOP/tests/servers/aws_creds.py" "$svc" --dir "$dir" "$@"
	pid=$(head -n1 "$dir/aws_creds.pid")
	for _ in $(seq 1 1500); do
		[ -s "$dir/port" ] && break
		srv_alive "$pid" || break
		sleep 0.02
	done
	[ -s "$dir/port" ] || { cat "$dir/aws_creds.log" >&2; srv_die "$svc did not start"; }
	port=$(cat "$dir/port")
	srv_wait_port "$port" 30 "$pid" || srv_die "$svc does not accept connections"
	srv_log "$svc ready at http://127.0.0.1:$port after $(srv_elapsed "$t0") s"
	echo "http://127.0.0.1:$port"
	;;
stop)
	srv_stop_pidfile "$dir/aws_creds.pid"
	;;
mode)
	echo "${3:?WORD}" >"$dir/mode.tmp" && mv "$dir/mode.tmp" "$dir/mode"
	;;
*)
	srv_die "usage: aws_creds.sh start|stop|mode DIR ..."
	;;
esac
