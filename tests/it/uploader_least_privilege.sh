#!/usr/bin/env bash
# uploader_least_privilege.sh -- a writer's least-privilege policy
# (s3:PutObject only) must not stall the uploader:
# 1. behind a proxy that refuses everything but PUT with S3's real 403
#    AccessDenied document (so HEAD of the bucket is refused), the uploader
#    warns once, raises no alarm, and every message lands in the bucket;
# 2. behind a proxy that refuses PUT (a policy without s3:PutObject), the
#    refused PUT raises the configuration alarm (shmstat --check exits 2)
#    and nothing is dead-lettered: the messages stay pending.
set -uo pipefail
IT_NAME=leastpriv
. "$(dirname "$0")/lib.sh"

N=${N:-$([ -n "${SAN:-}" ] && echo 40 || echo 200)}
BUCKET=lp-bucket
PROXY_PID=
stop_proxy() { [ -n "$PROXY_PID" ] && kill -TERM "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null; PROXY_PID=; }
trap 'stop_proxy; it_cleanup' EXIT

start_proxy() {  # ALLOWED-METHODS
	rm -f "$WORK/proxy.port"
	timeout -s KILL 300 python3 "$TOP/tests/fault_proxy.py" --upstream "$upstream" \
		--port-file "$WORK/proxy.port" --stats "$WORK/proxy.json" --allow-only "$1" \
		2>>"$WORK/proxy.log" &
	PROXY_PID=$!
	for _ in $(seq 1 100); do [ -s "$WORK/proxy.port" ] && break; sleep 0.05; done
	[ -s "$WORK/proxy.port" ] || fail "proxy did not start"
	S3_ENDPOINT=http://127.0.0.1:$(cat "$WORK/proxy.port")
}
proxy_stat() { python3 -c "import json; print(json.load(open('$WORK/proxy.json'))['$1'])"; }

it_s3rver "$BUCKET"
upstream=$S3_ENDPOINT

# ---- 1. only PUT is allowed
start_proxy PUT
it_uploader --bucket "$BUCKET" --workers 4 --ring-size 4M --recheck-interval 1
it_wait_ready
"$B/tests/tool_produce" "$RING" 1 "$N" lp/ 1 2048 || fail "producer"
it_wait_uploaded "$N" 120
[ "$(it_stat '["dead_lettered"]')" -eq 0 ] || fail "dead letters under a PutObject-only policy"
[ "$(it_stat '["config_alarm"]')" = False ] || fail "configuration alarm under a PutObject-only policy"
[ "$(it_stat '["config_errors"]')" -eq 0 ] || fail "config_errors counted for a refused HEAD"
grep -q 'bucket check (HEAD) was refused' "$WORK/upl.log" || fail "no warning about the refused HEAD"
grep -q 'AccessDenied' "$WORK/upl.log" || fail "the warning does not name AccessDenied"
S3_ENDPOINT=$upstream S3_BUCKET=$BUCKET "$B/tests/tool_s3check" 1 "$N" lp/ 1 2048 ||
	fail "bucket check after the PutObject-only run"
sleep 1.2  # the proxy writes its stats every second
denied=$(proxy_stat denied)
[ "$denied" -ge 1 ] || fail "the proxy refused nothing: the test proves nothing"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
stop_proxy
echo "figure: least_privilege messages=$N head_denied=$denied"

# ---- 2. PUT is refused: the alarm, and nothing lost
start_proxy HEAD,GET
it_uploader --bucket "$BUCKET" --workers 2 --ring-size 4M --recheck-interval 1
it_wait_ready
"$B/tests/tool_produce" "$RING" 1 20 lp2/ 1 512 || fail "producer"
for _ in $(seq 1 150); do
	[ "$(it_stat '["config_alarm"]')" = True ] && break
	sleep 0.1
done
[ "$(it_stat '["config_alarm"]')" = True ] || fail "no configuration alarm when PUT is refused"
grep -q AccessDenied <<<"$(it_stat '["last_error"]')" || fail "last_error does not name AccessDenied"
"$B/bin/shmstat" --ring "$RING" --check >"$WORK/check.out"; rc=$?
[ "$rc" -eq 2 ] || fail "shmstat --check exits $rc with PUT refused: $(cat "$WORK/check.out")"
[ "$(it_stat '["dead_lettered"]')" -eq 0 ] || fail "dead letters when PUT is refused"
[ "$(it_stat '["uploaded"]')" -eq "$N" ] || fail "uploads went through a refused PUT"
it_stop_uploader || fail "uploader exited non-zero on SIGTERM"
echo "figure: least_privilege refused_put pending=$(it_stat '["pending"]') check=$(cut -c1-60 "$WORK/check.out")"
