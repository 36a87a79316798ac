#!/usr/bin/env bash
# servers_smoke.sh -- the test servers of tests/servers/ work: each starts on
# 127.0.0.1 only, answers a signed PUT and GET round trip, Swift rejects a
# wrong secret (403 SignatureDoesNotMatch), nginx serves HTTPS with its
# self-signed certificate, the delay sink answers D ms after a request
# (whose body arrives in several reads) on 2048 connections at once, and
# stop leaves no process behind.
# Prints "figure: <server>_start_s=..." lines.
set -euo pipefail
cd "$(dirname "$0")/../.."
SRV=tests/servers
. "$SRV/lib.sh"
PY=/usr/bin/python3   # Debian's, with python3-botocore
S3REQ="$SRV/s3req.py"

base=/dev/shm
[ -d "$base" ] && [ -w "$base" ] || base=${TMPDIR:-/tmp}
W=$(mktemp -d "$base/s3ring-servers-smoke.XXXXXX")
fails=0
cleanup() {
	"$SRV/s3rver.sh" stop "$W/s3rver" >/dev/null 2>&1 || true
	"$SRV/swift.sh" stop "$W/swift" >/dev/null 2>&1 || true
	"$SRV/nginx.sh" stop "$W/nginx" >/dev/null 2>&1 || true
	"$SRV/nginx.sh" stop "$W/nginx-tls" >/dev/null 2>&1 || true
	"$SRV/s3rver.sh" stop "$W/short" >/dev/null 2>&1 || true
	"$SRV/delay_sink.sh" stop "$W/sink" >/dev/null 2>&1 || true
	rm -rf "$W"
}
trap cleanup EXIT

ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
check() {  # NAME GOT WANT
	if [ "$2" = "$3" ]; then ok "$1 ($2)"; else bad "$1: got '$2', want '$3'"; fi
}

# pids_of PIDFILE...: the recorded processes and all their descendants
pids_of() {
	local f
	for f in "$@"; do [ -s "$f" ] && srv_tree "$(cat "$f")"; done | sort -u | tr '\n' ' '
}
# check_gone NAME PIDS: none of PIDS runs any more
check_gone() {
	local p left=
	for p in $2; do srv_alive "$p" && left="$left $p"; done
	if [ -z "$left" ]; then ok "$1: all of $(echo $2 | wc -w) processes gone"; else bad "$1: still running:$left"; fi
}
# check_loopback NAME PORT: every listener on PORT is bound to 127.0.0.1
check_loopback() {
	local addrs
	addrs=$(ss -Hltn "sport = :$2" | awk '{print $4}' | sed 's/:[0-9]*$//' | sort -u | tr '\n' ' ')
	check "$1 listens on loopback only" "$addrs" "127.0.0.1 "
}
# timed_start VAR SCRIPT ARGS...: runs SCRIPT ARGS, the URL into VAR,
# prints the figure line
timed_start() {
	local _var=$1 _name=$2 _t0 _url
	shift 2
	_t0=$(srv_now)
	_url=$("$@") || { bad "$_name start"; return 1; }
	echo "figure: ${_name}_start_s=$(srv_elapsed "$_t0")"
	printf -v "$_var" '%s' "$_url"
}

body=$W/body
head -c 100000 /dev/urandom >"$W/body"
printf 'a different body\n' >"$W/other"

# ---------------------------------------------------------------- s3rver
echo "== s3rver"
timed_start url s3rver "$SRV/s3rver.sh" start "$W/s3rver" smoke-bucket
(
	. "$W/s3rver/env"
	check "s3rver endpoint" "$S3_ENDPOINT" "$url"
	check_loopback s3rver "$S3_PORT"
	h=$(sha256sum "$body" | cut -d' ' -f1)
	check "s3rver curl sigv4 PUT" "$(curl -sS -o /dev/null -w '%{http_code}' --aws-sigv4 aws:amz:us-east-1:s3 \
		--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-content-sha256: $h" \
		-T "$body" "$S3_ENDPOINT/smoke-bucket/dir/obj1")" 200
	curl -sS -o "$W/got1" --aws-sigv4 aws:amz:us-east-1:s3 --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$S3_ENDPOINT/smoke-bucket/dir/obj1"
	cmp -s "$body" "$W/got1" && ok "s3rver curl GET returns the body" || bad "s3rver curl GET body differs"
	"$SRV/s3rver.sh" mkbucket "$W/s3rver" smoke-bucket-2 && ok "s3rver mkbucket" || bad "s3rver mkbucket"
	check "s3rver botocore PUT" "$($PY "$S3REQ" PUT "$S3_ENDPOINT/smoke-bucket-2/obj2" "$body" | head -n1)" "200 -"
	$PY "$S3REQ" GET "$S3_ENDPOINT/smoke-bucket-2/obj2" -o "$W/got2" >/dev/null
	cmp -s "$body" "$W/got2" && ok "s3rver botocore GET returns the body" || bad "s3rver botocore GET body differs"
) || bad "s3rver checks"
pids=$(pids_of "$W/s3rver/s3rver.pid")
"$SRV/s3rver.sh" stop "$W/s3rver" && ok "s3rver stop" || bad "s3rver stop"
check_gone s3rver "$pids"

# bounded lifetime: a server started with SERVER_LIFETIME=2 ends by itself
t0=$(srv_now)
SERVER_LIFETIME=2 S3RVER_QUIET=1 "$SRV/s3rver.sh" start "$W/short" >/dev/null
pids=$(pids_of "$W/short/s3rver.pid")
for _ in $(seq 1 200); do
	left=
	for p in $pids; do srv_alive "$p" && left=1; done
	[ -z "$left" ] && break
	sleep 0.1
done
check_gone "s3rver with SERVER_LIFETIME=2, ended by itself after $(srv_elapsed "$t0") s" "$pids"

# ---------------------------------------------------------------- Swift
# SWIFT_MODE=single (the default: one Python process) and multi (the four
# swift-*-server programs)
for mode in single multi; do
echo "== swift ($mode)"
fig=swift; [ $mode = single ] || fig=swift_$mode
SWIFT_MODE=$mode timed_start url $fig "$SRV/swift.sh" start "$W/swift" smoke-bucket
(
	. "$W/swift/env"
	check "swift endpoint" "$S3_ENDPOINT" "$url"
	for f in "$W"/swift/etc/*-server.conf; do
		check_loopback "swift $(basename "$f" .conf)" "$(awk '$1 == "bind_port" {print $3}' "$f")"
	done
	check "swift PUT, right secret" "$($PY "$S3REQ" PUT "$S3_ENDPOINT/smoke-bucket/dir/obj1" "$body" | head -n1)" "200 -"
	$PY "$S3REQ" GET "$S3_ENDPOINT/smoke-bucket/dir/obj1" -o "$W/got3" >/dev/null
	cmp -s "$body" "$W/got3" && ok "swift GET returns the body" || bad "swift GET body differs"
	check "swift PUT, wrong secret" \
		"$($PY "$S3REQ" PUT "$S3_ENDPOINT/smoke-bucket/obj2" "$body" --secret wrong-secret | head -n1)" \
		"403 SignatureDoesNotMatch"
	check "swift GET, wrong secret" \
		"$($PY "$S3REQ" GET "$S3_ENDPOINT/smoke-bucket/dir/obj1" --secret wrong-secret | head -n1)" \
		"403 SignatureDoesNotMatch"
	check "swift PUT, body not matching x-amz-content-sha256" \
		"$($PY "$S3REQ" PUT "$S3_ENDPOINT/smoke-bucket/obj3" "$body" --sign-body "$W/other" | head -n1)" \
		"400 BadDigest"
	check "swift object of the refused PUT does not exist" \
		"$($PY "$S3REQ" GET "$S3_ENDPOINT/smoke-bucket/obj3" | head -n1)" "404 NoSuchKey"
	check "swift PUT, second account" \
		"$($PY "$S3REQ" PUT "$S3_ENDPOINT/smoke-bucket-alt" --key "$S3_ALT_ACCESS_KEY_ID" --secret "$S3_ALT_SECRET_ACCESS_KEY" | head -n1)" \
		"200 -"
	# curl's own SigV4 signer agrees (the colon in the key goes into the URL)
	h=$(sha256sum "$body" | cut -d' ' -f1)
	check "swift curl sigv4 PUT" "$(curl -sS -o /dev/null -w '%{http_code}' --aws-sigv4 aws:amz:us-east-1:s3 \
		-H "x-amz-content-sha256: $h" -T "$body" \
		"http://${AWS_ACCESS_KEY_ID/:/%3A}:$AWS_SECRET_ACCESS_KEY@127.0.0.1:$S3_PORT/smoke-bucket/obj4")" 200
) || bad "swift checks"
pids=$(pids_of "$W"/swift/run/*.pid)
"$SRV/swift.sh" stop "$W/swift" && ok "swift stop" || bad "swift stop"
check_gone "swift ($mode)" "$pids"
rm -rf "$W/swift"
done

# ---------------------------------------------------------------- nginx
echo "== nginx"
timed_start url nginx "$SRV/nginx.sh" start "$W/nginx"
(
	. "$W/nginx/env"
	check "nginx endpoint" "$S3_ENDPOINT" "$url"
	check_loopback nginx "$S3_PORT"
	check "nginx PUT (new)" "$(curl -sS -o /dev/null -w '%{http_code}' -T "$body" "$S3_ENDPOINT/b/deep/dir/obj1")" 201
	check "nginx PUT (replace)" "$(curl -sS -o /dev/null -w '%{http_code}' -T "$body" "$S3_ENDPOINT/b/deep/dir/obj1")" 204
	cmp -s "$body" "$W/nginx/data/b/deep/dir/obj1" && ok "nginx stored the body" || bad "nginx stored body differs"
	curl -sS -o "$W/got4" "$S3_ENDPOINT/b/deep/dir/obj1"
	cmp -s "$body" "$W/got4" && ok "nginx GET returns the body" || bad "nginx GET body differs"
	check "nginx PUT /null/" "$(curl -sS -o /dev/null -w '%{http_code}' -T "$body" "$S3_ENDPOINT/null/x")" 200
	# a SigV4-signed PUT as the uploader sends it (the signature is ignored)
	check "nginx botocore PUT" "$($PY "$S3REQ" PUT "$S3_ENDPOINT/b/obj2" "$body" | head -n1)" "201 -"
) || bad "nginx checks"
pids=$(pids_of "$W/nginx/nginx.pid")
"$SRV/nginx.sh" stop "$W/nginx" && ok "nginx stop" || bad "nginx stop"
check_gone nginx "$pids"

timed_start url nginx_tls "$SRV/nginx.sh" start-tls "$W/nginx-tls"
(
	. "$W/nginx-tls/env"
	check "nginx-tls endpoint" "$S3_ENDPOINT" "$url"
	check_loopback nginx-tls "$S3_PORT"
	rc=0
	curl -sS -o /dev/null -T "$body" "$S3_ENDPOINT/b/obj1" 2>/dev/null || rc=$?
	check "nginx-tls refused without the CA (curl exit 60)" "$rc" 60
	check "nginx-tls PUT with --cacert" "$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$S3_CA_FILE" \
		-T "$body" "$S3_ENDPOINT/b/obj1")" 201
	check "nginx-tls by name localhost" "$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$S3_CA_FILE" \
		"https://localhost:$S3_PORT/b/obj1")" 200
) || bad "nginx-tls checks"
pids=$(pids_of "$W/nginx-tls/nginx.pid")
"$SRV/nginx.sh" stop "$W/nginx-tls" && ok "nginx-tls stop" || bad "nginx-tls stop"
check_gone nginx-tls "$pids"

# ---------------------------------------------------------------- delay sink
echo "== delay_sink"
SINK_DELAY_MS=50 timed_start url delay_sink "$SRV/delay_sink.sh" start "$W/sink"
(
	. "$W/sink/env"
	check "delay_sink endpoint" "$S3_ENDPOINT" "$url"
	check_loopback delay_sink "$S3_PORT"
	out=$(curl -sS -o /dev/null -D "$W/sink-headers" -w '%{http_code} %{time_total}' -T "$body" "$S3_ENDPOINT/b/obj1")
	check "delay_sink PUT" "${out% *}" 200
	awk -v t="${out#* }" 'BEGIN { exit !(t >= 0.050) }' && ok "delay_sink answered after ${out#* } s (>= 50 ms)" ||
		bad "delay_sink answered after ${out#* } s (< 50 ms)"
	grep -qi '^ETag: "' "$W/sink-headers" && ok "delay_sink ETag" || bad "delay_sink: no ETag: $(cat "$W/sink-headers")"
	check "delay_sink HEAD" "$(curl -sS -o /dev/null -I -w '%{http_code}' "$S3_ENDPOINT/b")" 200
	check "delay_sink GET" "$(curl -sS -o /dev/null -w '%{http_code}' "$S3_ENDPOINT/b/obj1")" 200
	# 2048 keep-alive connections, each a PUT whose body comes in two writes
	# 20 ms apart and then a second request on the same connection.
	check "delay_sink 2048 connections, body in pieces, keep-alive" "$(/usr/bin/python3 - "$S3_PORT" <<'PY'
import selectors, socket, sys, time
port, n = int(sys.argv[1]), 2048
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
req = b"PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
for c in conns:
    c.sendall(req + b"hello")
time.sleep(0.02)
t0 = time.monotonic()
for c in conns:
    c.sendall(b"world")
ok = 0
for c in conns:
    c.settimeout(30)
    got = b""
    while b"\r\n\r\n" not in got:
        got += c.recv(4096)
    ok += got.startswith(b"HTTP/1.1 200 OK\r\n")
for c in conns:
    c.sendall(b"HEAD /b HTTP/1.1\r\nHost: x\r\n\r\n")
for c in conns:
    got = b""
    while b"\r\n\r\n" not in got:
        got += c.recv(4096)
    ok += got.startswith(b"HTTP/1.1 200 OK\r\n")
print(ok)
PY
)" 4096
) || bad "delay_sink checks"
pids=$(pids_of "$W/sink/delay_sink.pid")
"$SRV/delay_sink.sh" stop "$W/sink" && ok "delay_sink stop" || bad "delay_sink stop"
check_gone delay_sink "$pids"
# 1 curl PUT + HEAD + GET, then 2048 PUTs and 2048 HEADs
grep -q 'requests 4099 put 2049 get 1 head 2049' "$W/sink/delay_sink.log" && ok "delay_sink counted the requests" ||
	bad "delay_sink totals: $(tail -n 1 "$W/sink/delay_sink.log")"

echo
if [ "$fails" -ne 0 ]; then
	echo "servers_smoke: $fails failed"
	exit 1
fi
echo "servers_smoke: all passed"
