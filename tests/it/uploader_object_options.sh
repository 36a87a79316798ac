#!/usr/bin/env bash
# uploader_object_options.sh -- object options, global and per key prefix,
# reach the server, signed:
# 1. s3rver behind a recording proxy: every option is on the wire and in
#    SignedHeaders (tags URL-encoded, SSE-KMS with key id and bucket key,
#    ACL, storage class), and s3rver gives back Content-Type (the built-in
#    table's for .json, octet-stream for an unknown extension, the prefix
#    rule's for logs/), Cache-Control, Content-Encoding, the storage class
#    and the metadata, with the prefix rule winning over the global one;
# 2. Swift's s3api, which verifies every signature: the same headers
#    (without what it does not implement) are accepted and read back; a tag,
#    which it answers 501 NotImplemented, raises the configuration alarm and
#    loses nothing.
set -uo pipefail
IT_NAME=objopts
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
PROXY_PID=
SDIR=
cleanup() {
	[ -n "$PROXY_PID" ] && kill -TERM "$PROXY_PID" 2>/dev/null
	[ -n "$SDIR" ] && { "$TOP/tests/servers/swift.sh" stop "$SDIR" >/dev/null 2>&1; rm -rf "$SDIR"; }
	it_cleanup
}
trap cleanup EXIT
head_of() {  # BUCKET KEY -> $WORK/h
	$PY "$TOP/tests/servers/s3req.py" HEAD "$S3_ENDPOINT/$1/$2" -D "$WORK/h" >"$WORK/status" ||
		fail "HEAD $2"
	grep -q '^200' "$WORK/status" || fail "HEAD $2: $(cat "$WORK/status")"
}
has() {  # HEADER-LINE
	grep -qixF "$1" "$WORK/h" || fail "$key: no '$1' in: $(tr '\n' '|' <"$WORK/h")"
}

# ---- 1. s3rver behind a recording proxy
it_s3rver oo-bucket
upstream=$S3_ENDPOINT
timeout -s KILL 300 python3 "$TOP/tests/fault_proxy.py" --upstream "$upstream" \
	--port-file "$WORK/proxy.port" --record "$WORK/wire.jsonl" 2>"$WORK/proxy.log" &
PROXY_PID=$!
for _ in $(seq 1 100); do [ -s "$WORK/proxy.port" ] && break; sleep 0.05; done
[ -s "$WORK/proxy.port" ] || fail "proxy did not start"
S3_ENDPOINT=http://127.0.0.1:$(cat "$WORK/proxy.port")
cat >"$WORK/u.conf" <<'CONF'
cache-control = max-age=60
meta = team=platform
tag = env=test
storage-class = STANDARD_IA
sse = aws:kms
sse-kms-key-id = arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab
sse-bucket-key = true
acl = bucket-owner-full-control

[prefix "logs/"]
content-type = text/plain; charset=utf-8
content-encoding = gzip
meta = source=app one
tag = env=prod & more
tag = team=a/b
CONF
it_uploader --bucket oo-bucket --config "$WORK/u.conf" --workers 2 --ring-size 1M
it_wait_ready
echo '{"a":1}' | "$B/bin/s3ring-put" --ring "$RING" data/a.json || fail "put"
echo 'x' | "$B/bin/s3ring-put" --ring "$RING" data/b.weird || fail "put"
echo 'hi' | "$B/bin/s3ring-put" --ring "$RING" logs/x.log || fail "put"
it_wait_uploaded 3 30
[ "$(it_stat '["dead_lettered"]')" -eq 0 ] || fail "dead letters"
it_stop_uploader || fail "uploader exit"
S3_ENDPOINT=$upstream

$PY - "$WORK/wire.jsonl" <<'PYEOF' || fail "the wire check failed"
import json, sys
want = {
    "data/a.json": {
        "content-type": "application/json", "cache-control": "max-age=60",
        "x-amz-meta-team": "platform", "x-amz-tagging": "env=test",
        "x-amz-storage-class": "STANDARD_IA", "x-amz-server-side-encryption": "aws:kms",
        "x-amz-server-side-encryption-aws-kms-key-id":
            "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "x-amz-server-side-encryption-bucket-key-enabled": "true",
        "x-amz-acl": "bucket-owner-full-control"},
    "data/b.weird": {"content-type": "application/octet-stream"},
    "logs/x.log": {
        "content-type": "text/plain; charset=utf-8", "content-encoding": "gzip",
        "cache-control": "max-age=60", "x-amz-meta-source": "app one",
        "x-amz-tagging": "env=prod%20%26%20more&team=a%2Fb",
        "x-amz-acl": "bucket-owner-full-control"},
}
absent = {"logs/x.log": ["x-amz-meta-team"]}
seen = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["method"] != "PUT":
        continue
    key = r["path"].split("/", 2)[2]
    seen[key] = r["headers"]
bad = 0
for key, hs in want.items():
    h = seen.get(key)
    if h is None:
        print("no PUT of", key); bad += 1; continue
    signed = h["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    for name, value in hs.items():
        if h.get(name) != value:
            print(key, name, "is", repr(h.get(name)), "want", repr(value)); bad += 1
        if name not in signed:
            print(key, name, "is not signed:", signed); bad += 1
    for name in absent.get(key, []):
        if name in h:
            print(key, name, "sent, but the prefix rule's metadata replaces the global"); bad += 1
print("wire: %d PUTs checked, %d problems" % (len(want), bad))
sys.exit(1 if bad else 0)
PYEOF

key=data/a.json; head_of oo-bucket "$key"
has "content-type: application/json"; has "cache-control: max-age=60"
has "x-amz-meta-team: platform"; has "x-amz-storage-class: STANDARD_IA"
key=data/b.weird; head_of oo-bucket "$key"
has "content-type: application/octet-stream"
key=logs/x.log; head_of oo-bucket "$key"
has "content-type: text/plain; charset=utf-8"; has "content-encoding: gzip"
has "x-amz-meta-source: app one"; has "cache-control: max-age=60"
echo "figure: object options s3rver: wire and read-back checked for 3 keys"

# ---- 2. Swift s3api (verifies SigV4)
"$B/tests/tool_ring" unlink "$RING" 2>/dev/null; rm -f "/dev/shm/s3ring.$RING.journal"
SDIR=$(mktemp -d /dev/shm/s3ring-swift.XXXXXX)
"$TOP/tests/servers/swift.sh" start "$SDIR" oo-swift >/dev/null 2>"$WORK/swift-start.log" ||
	{ cat "$WORK/swift-start.log"; fail "swift did not start"; }
set -a; . "$SDIR/env"; set +a
cat >"$WORK/sw.conf" <<'CONF'
cache-control = no-cache, max-age=0
meta = team=platform
acl = bucket-owner-full-control
[prefix "gz/"]
content-encoding = gzip
meta = Source-App=app  two
CONF
it_uploader --bucket oo-swift --config "$WORK/sw.conf" --workers 2 --ring-size 1M --region "$AWS_REGION"
it_wait_ready
echo '{"a":1}' | "$B/bin/s3ring-put" --ring "$RING" data/a.json || fail "put"
echo 'a,b' | "$B/bin/s3ring-put" --ring "$RING" gz/t.csv || fail "put"
it_wait_uploaded 2 60
[ "$(it_stat '["config_alarm"]')" = False ] || fail "Swift refused the signed options: $(it_stat '["last_error"]')"
key=data/a.json; head_of oo-swift "$key"
has "content-type: application/json"; has "cache-control: no-cache, max-age=0"
has "x-amz-meta-team: platform"
key=gz/t.csv; head_of oo-swift "$key"
has "content-type: text/csv"; has "content-encoding: gzip"; has "x-amz-meta-source-app: app  two"  # sent as written; only the signature folds the spaces
it_stop_uploader || fail "uploader exit"

it_uploader --bucket oo-swift --config "$WORK/sw.conf" --workers 2 --ring-size 1M --region "$AWS_REGION" \
	--recheck-interval 1 --tag env=test
it_wait_ready
echo 'tagged' | "$B/bin/s3ring-put" --ring "$RING" data/tagged.txt || fail "put"
for _ in $(seq 1 100); do [ "$(it_stat '["config_alarm"]')" = True ] && break; sleep 0.1; done
[ "$(it_stat '["config_alarm"]')" = True ] || fail "no alarm when Swift refuses tags"
grep -q NotImplemented <<<"$(it_stat '["last_error"]')" || fail "last_error: $(it_stat '["last_error"]')"
[ "$(it_stat '["dead_lettered"]')" -eq 0 ] || fail "a refused option dead-lettered the message"
it_stop_uploader || fail "uploader exit"
echo "figure: object options swift: signed headers accepted and read back; tags refused with $(it_stat '["last_error"]')"
