# lib.sh -- helpers shared by the test-server scripts in tests/servers/.
# Source it from bash:  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Every server is started by srv_spawn under `timeout` (bounded lifetime,
# SERVER_LIFETIME seconds, default 3600), with stdin from /dev/null, listening
# on 127.0.0.1 only, and stopped by srv_stop_pidfile from the PID it recorded:
# TERM, bounded wait, then KILL, for the recorded process and everything that
# descended from it (a server that calls setsid() leaves timeout's process
# group, so the descendants are collected before any signal is sent).

SERVER_LIFETIME=${SERVER_LIFETIME:-3600}
SRV_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Debian's interpreter: the one that has python3-botocore and python3-swift.
SRV_PY=${SRV_PY:-/usr/bin/python3}

srv_die() { echo "${SRV_NAME:-servers}: $*" >&2; exit 1; }
srv_log() { echo "${SRV_NAME:-servers}: $*" >&2; }

# srv_now: seconds since the epoch, with nanoseconds.
srv_now() { date +%s.%N; }
# srv_elapsed T0: seconds since T0 (from srv_now), 2 decimals.
srv_elapsed() { awk -v a="$1" -v b="$(srv_now)" 'BEGIN { printf "%.2f", b - a }'; }

# srv_port_open PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
srv_port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# srv_free_port: prints a TCP port on 127.0.0.1 that is free right now
# (the kernel's choice for an ephemeral bind; the caller retries on a race).
srv_free_port() {
	local p
	if p=$("$SRV_PY" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null); then
		echo "$p"; return 0
	fi
	for _ in $(seq 1 100); do
		p=$((20000 + RANDOM % 30000))
		srv_port_open "$p" || { echo "$p"; return 0; }
	done
	return 1
}

# srv_alive PID: true if PID exists and is not a zombie.
srv_alive() {
	local st
	[ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# srv_wait_port PORT [SECONDS] [PID]: waits until PORT accepts connections.
# Fails after SECONDS (default 30) or as soon as PID (if given) is gone.
srv_wait_port() {
	local port=$1 secs=${2:-30} pid=${3:-} i
	for ((i = 0; i < secs * 50; i++)); do
		srv_port_open "$port" && return 0
		[ -z "$pid" ] || srv_alive "$pid" || return 1
		sleep 0.02
	done
	return 1
}

# srv_tree PID: prints PID and all its descendants, one a line.
srv_tree() {
	local p c
	echo "$1"
	for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		srv_tree "$c"
	done
}

# srv_spawn PIDFILE LOGFILE CMD...: starts CMD in the background under
# `timeout SERVER_LIFETIME`, stdin from /dev/null, output to LOGFILE, and
# writes the PID of the timeout process to PIDFILE. timeout forwards TERM to
# CMD and puts itself and CMD in a process group of their own.
srv_spawn() {
	local pidfile=$1 log=$2; shift 2
	timeout -k 10 "$SERVER_LIFETIME" "$@" </dev/null >>"$log" 2>&1 &
	echo $! >"$pidfile"
}

# srv_pidfile_alive PIDFILE: true if the PID recorded in PIDFILE runs.
srv_pidfile_alive() {
	[ -s "$1" ] && srv_alive "$(head -n1 "$1")"
}

# srv_stop_pidfile PIDFILE [GRACE_SECONDS]: stops the process recorded in
# PIDFILE and all its descendants: TERM, wait up to GRACE (default 10 s), then
# KILL and wait again. Removes PIDFILE. Fails if anything survives.
srv_stop_pidfile() {
	local pidfile=$1 grace=${2:-10} pid pids p left i
	[ -s "$pidfile" ] || return 0
	pid=$(head -n1 "$pidfile")
	case $pid in '' | *[!0-9]*) rm -f "$pidfile"; return 0 ;; esac
	if ! srv_alive "$pid"; then
		rm -f "$pidfile"
		return 0
	fi
	pids=$(srv_tree "$pid" | sort -u)
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < grace * 20; i++)); do
		left=
		for p in $pids; do srv_alive "$p" && left="$left $p"; done
		[ -z "$left" ] && break
		# the recorded process is gone but something of it remains: TERM it too
		if ! srv_alive "$pid" && [ "$i" -gt 0 ] && [ $((i % 20)) -eq 0 ]; then
			kill -TERM $left 2>/dev/null || true
		fi
		sleep 0.05
	done
	if [ -n "$left" ]; then
		srv_log "still running after ${grace}s:$left; sending KILL"
		# KILL parents first would orphan children; collect again, then KILL all
		for p in $left; do pids="$pids $(srv_tree "$p")"; done
		kill -KILL $pids 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			left=
			for p in $pids; do srv_alive "$p" && left="$left $p"; done
			[ -z "$left" ] && break
			sleep 0.05
		done
	fi
	rm -f "$pidfile"
	if [ -n "$left" ]; then
		srv_log "could not stop:$left"
		return 1
	fi
	return 0
}

# srv_write_env FILE NAME=VALUE...: writes a sourceable file of export lines.
srv_write_env() {
	local f=$1; shift
	: >"$f.tmp"
	for kv in "$@"; do
		printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}" >>"$f.tmp"
	done
	mv "$f.tmp" "$f"
}

# srv_require_dir DIR: DIR given; created if missing; prints its absolute path.
srv_require_dir() {
	[ -n "${1:-}" ] || srv_die "missing DIR argument"
	mkdir -p "$1" && (cd "$1" && pwd)
}
