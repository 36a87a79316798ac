#!/usr/bin/env bash
# uploader_region.sh -- a bucket in another region. A proxy in front of
# s3rver answers like S3 does to a request signed for the wrong region:
# 301 PermanentRedirect with x-amz-bucket-region and the XML naming the
# endpoint (no body for HEAD), and forwards requests signed for the
# bucket's region (eu-test-1) to the real server.
# 1. no region set anywhere (no --region, no AWS_REGION/AWS_DEFAULT_REGION,
#    no config): the uploader switches to the bucket's region by itself,
#    says so, and every message lands;
# 2. the same with only the XML body naming the region (no header): the
#    PUT's error document is enough;
# 3. --region set explicitly to another region: no switch; the alarm's
#    error names the bucket's region, and nothing is lost or spooled.
set -uo pipefail
IT_NAME=region
. "$(dirname "$0")/lib.sh"

N=${N:-$([ -n "${SAN:-}" ] && echo 30 || echo 100)}
BUCKET=rg-bucket
WANT=eu-test-1
PROXY_PID=
stop_proxy() { [ -n "$PROXY_PID" ] && kill -TERM "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null; PROXY_PID=; }
trap 'stop_proxy; it_cleanup' EXIT

start_proxy() {  # EXTRA-ARGS...
	rm -f "$WORK/proxy.port"
	timeout -s KILL 300 python3 "$TOP/tests/fault_proxy.py" --upstream "$upstream" \
		--port-file "$WORK/proxy.port" --stats "$WORK/proxy.json" --bucket-region "$WANT" \
		"$@" 2>>"$WORK/proxy.log" &
	PROXY_PID=$!
	for _ in $(seq 1 100); do [ -s "$WORK/proxy.port" ] && break; sleep 0.05; done
	[ -s "$WORK/proxy.port" ] || fail "proxy did not start"
	S3_ENDPOINT=http://127.0.0.1:$(cat "$WORK/proxy.port")
}
proxy_stat() { sleep 1.2; python3 -c "import json; print(json.load(open('$WORK/proxy.json'))['$1'])"; }

it_s3rver "$BUCKET"
upstream=$S3_ENDPOINT
# Nothing may name a region: not the environment, not a profile.
unset AWS_REGION AWS_DEFAULT_REGION AWS_PROFILE AWS_CONFIG_FILE
export HOME=$WORK/home
mkdir -p "$HOME"

run_switch() {  # PREFIX PROXY-ARGS...
	local prefix=$1; shift
	start_proxy "$@"
	: >"$WORK/upl.log"
	it_uploader --bucket "$BUCKET" --workers 2 --ring-size 4M --recheck-interval 1
	it_wait_ready
	"$B/tests/tool_produce" "$RING" 1 "$N" "$prefix" 1 1024 || fail "producer"
	it_wait_uploaded "$((done_before + N))" 120
	done_before=$((done_before + N))
	grep 'switched to it' "$WORK/upl.log" | grep -q "region=$WANT" ||
		fail "no log line saying the uploader switched to $WANT"
	[ "$(it_stat '["dead_lettered"]')" -eq 0 ] || fail "dead letters"
	S3_ENDPOINT=$upstream S3_BUCKET=$BUCKET "$B/tests/tool_s3check" 1 "$N" "$prefix" 1 1024 ||
		fail "bucket check ($prefix)"
	redirected=$(proxy_stat redirected)
	[ "$redirected" -ge 1 ] || fail "the proxy redirected nothing: the test proves nothing"
	it_stop_uploader || fail "uploader exited non-zero"
	stop_proxy
}

done_before=0
run_switch rg1/
echo "figure: region switch header+xml messages=$N redirected=$redirected"
run_switch rg2/ --redirect-xml-only
echo "figure: region switch xml-only messages=$N redirected=$redirected"

# ---- 3. explicit region: the error names the bucket's region
start_proxy
it_uploader --bucket "$BUCKET" --workers 2 --ring-size 4M --recheck-interval 1 --region us-east-1
it_wait_ready
"$B/tests/tool_produce" "$RING" 1 10 rg3/ 1 256 || fail "producer"
for _ in $(seq 1 150); do
	[ "$(it_stat '["config_alarm"]')" = True ] && break
	sleep 0.1
done
[ "$(it_stat '["config_alarm"]')" = True ] || fail "no alarm with an explicit wrong region"
err=$(it_stat '["last_error"]')
grep -q "$WANT" <<<"$err" || fail "last_error does not name the bucket's region: $err"
grep -q 'switched to it' <(tail -n +1 "$WORK/upl.log" | grep region=us-east-1) && fail "switched despite --region"
"$B/bin/shmstat" --ring "$RING" --check >"$WORK/check.out"; rc=$?
grep -q "$WANT" "$WORK/check.out" || fail "shmstat --check does not name the region: $(cat "$WORK/check.out")"
[ "$rc" -eq 2 ] || fail "shmstat --check exits $rc, want 2"
[ "$(it_stat '["dead_lettered"]')" -eq 0 ] || fail "dead letters with a wrong region"
[ "$(it_stat '["pending"]')" -eq 10 ] || fail "the messages are not pending: $(it_stat '["pending"]')"
it_stop_uploader || fail "uploader exited non-zero"
echo "figure: region explicit error=\"$err\""
