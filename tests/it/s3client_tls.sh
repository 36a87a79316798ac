#!/usr/bin/env bash
# s3client_tls.sh -- TLS verification of the S3 client against a local
# HTTPS server with a self-signed certificate: refused by default (a CONFIG
# error, curl 60), accepted with --ca-file, refused with the wrong CA file
# or a missing one, and accepted with --insecure, which logs a warning.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/s3client_lib.sh

command -v openssl >/dev/null || {
	echo "FAIL: the openssl command is missing (Debian package openssl)"; exit 1; }
tmp=$(mktemp -d)
srv_pid=
cleanup() {
	if [ -n "$srv_pid" ]; then
		kill "$srv_pid" 2>/dev/null || true
		wait "$srv_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

mkcert() {  # NAME
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-subj /CN=127.0.0.1 -addext "subjectAltName=IP:127.0.0.1" -days 2 \
		-keyout "$tmp/$1.key" -out "$tmp/$1.pem" 2>/dev/null
}
mkcert server
mkcert other

# A minimal HTTPS/1.1 server that answers 200 to everything, on 127.0.0.1,
# with a bounded lifetime; stopped by its PID.
timeout 120 /usr/bin/python3 - "$tmp/server.pem" "$tmp/server.key" >"$tmp/port" 2>"$tmp/server.log" <<'PY' &
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def ok(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    do_HEAD = do_GET = do_PUT = ok
    def log_message(self, *args):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
PY
srv_pid=$!
for _ in $(seq 1 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
[ -s "$tmp/port" ] || { cat "$tmp/server.log"; echo "FAIL: no HTTPS server"; exit 1; }

export AWS_ACCESS_KEY_ID=AKIATLSTESTTLSTEST00 AWS_SECRET_ACCESS_KEY=tls-secret-9d2b7
export AWS_ENDPOINT_URL_S3=https://127.0.0.1:$(cat "$tmp/port") AWS_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_SHARED_CREDENTIALS_FILE AWS_ENDPOINT_URL
s3client_build "$tmp/s3client"
log=$tmp/client.log
run() {
	"$tmp/s3client" "$@" 2>>"$log" | grep '^result=' || true
}
expect() {  # PATTERN OUTPUT WHAT
	if [[ $2 != *"$1"* ]]; then
		echo "FAIL: $3: expected '$1', got: $2"
		exit 1
	fi
	echo "ok: $3 -> $2"
}

expect "result=error class=config status=0 code=- curl=60" "$(run put k)" \
	"self-signed certificate refused by default"
expect "result=ok" "$(run --ca-file "$tmp/server.pem" put k)" "accepted with --ca-file"
expect "result=ok" "$(run --ca-file "$tmp/server.pem" head-bucket)" "HEAD with --ca-file"
expect "result=error class=config status=0 code=- curl=60" \
	"$(run --ca-file "$tmp/other.pem" put k)" "refused with another CA file"
expect "result=error class=config status=0 code=- curl=77" \
	"$(run --ca-file "$tmp/missing.pem" put k)" "refused with a missing CA file"
: >"$log.insecure"
out=$("$tmp/s3client" --insecure put k 2>"$log.insecure" | grep '^result=' || true)
expect "result=ok" "$out" "accepted with --insecure"
grep -q 'level=warn msg="TLS certificate verification is OFF' "$log.insecure" || {
	echo "FAIL: --insecure did not log a warning"; exit 1; }
echo "ok: --insecure logs a warning"
cat "$log.insecure" >>"$log"
s3client_clean_log "$log"
s3client_no_secret "$log" "$AWS_SECRET_ACCESS_KEY"
echo "ok: no secret in the log"
