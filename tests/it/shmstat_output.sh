#!/usr/bin/env bash
# shmstat_output.sh -- shmstat on real rings: the summary, --json (valid and
# complete, even with a hostile last_error or batch prefix), --prometheus
# (checked by tests/promcheck.py), batch rules in all three, --watch rates
# and a clean stop on SIGINT, --output.
set -uo pipefail
B=${BUILD:-build}
stat=$B/bin/shmstat
helper=$B/tests/test_shmstat
ring=test-shmstat-out-$$
tmp=$(mktemp -d)
trap 'rm -f /dev/shm/s3ring.$ring; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

$helper ring create $ring || fail "create"
$helper ring put $ring 25 1000 $$ || fail "put"
$helper ring uploader $ring $$ 1 || fail "uploader"
$helper ring counter $ring uploaded 7 || fail "counter"

# The summary: sizes humanized, the uploader and the producer line.
$stat --ring $ring >"$tmp/text" || fail "text: exit $?"
grep -q '1.0M' "$tmp/text" || fail "capacity not humanized: $(cat "$tmp/text")"
grep -q "pid $$ alive, epoch 3, 4 workers" "$tmp/text" || fail "uploader line: $(cat "$tmp/text")"
# The helper that put has exited, so its slot lock is gone: not alive,
# whatever process now has its pid (liveness is the lock, not the pid).
grep -Eq "^ +0 +$$ +no +25 +0$" "$tmp/text" || fail "producer line: $(cat "$tmp/text")"

# --json: valid, every contract key, the right figures.
$stat --ring $ring --json >"$tmp/json" || fail "json: exit $?"
python3 -m json.tool "$tmp/json" >/dev/null || fail "invalid JSON: $(cat "$tmp/json")"
python3 - "$tmp/json" $ring $$ <<'PY' || fail "JSON content: $(cat "$tmp/json")"
import json, sys
d = json.load(open(sys.argv[1]))
ring, pid = sys.argv[2], int(sys.argv[3])
for k in ("ring layout_version capacity_bytes used_bytes max_message_bytes produced "
          "dropped_full pending in_flight uploaded retried dead_lettered abandoned "
          "corrupt oldest_pending_age_ms uploader producers").split():
    assert k in d, k
for k in ("pid", "alive", "epoch", "workers", "concurrency_limit", "slowdowns", "multipart_started", "multipart_completed", "multipart_aborted", "heartbeat_age_ms"):
    assert k in d["uploader"], k
for k in ("pid", "alive", "produced", "dropped_full"):
    assert k in d["producers"][0], k
assert d["ring"] == ring
assert d["capacity_bytes"] == 1 << 20
assert d["produced"] == 25 and d["pending"] == 25 and d["uploaded"] == 7
assert d["used_bytes"] == 25 * 1088, d["used_bytes"]
assert d["uploader"]["pid"] == pid and d["uploader"]["alive"] is True
assert 900 <= d["uploader"]["heartbeat_age_ms"] < 10000
assert d["producers"][0]["pid"] == pid and d["producers"][0]["produced"] == 25
assert d["oldest_pending_age_ms"] >= 0
# Batch mode is always described, empty without rules.
assert d["uploader"]["batch"] == {"rules": 0, "objects": 0, "messages": 0, "by_rule": []}, d["uploader"]["batch"]
PY
grep -q 'batch' "$tmp/text" && fail "batch section without batch rules: $(cat "$tmp/text")"

# A last_error of hostile bytes with no NUL: still valid JSON, still a
# valid exposition, and the summary stays printable.
$helper ring alarm $ring hostile || fail "alarm"
$stat --ring $ring --json >"$tmp/json" || fail "hostile json: exit $?"
python3 -m json.tool "$tmp/json" >/dev/null || fail "hostile: invalid JSON: $(cat -v "$tmp/json")"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["config_alarm"] is True; assert d["last_error"].startswith("\"\\\n"), d["last_error"]' "$tmp/json" \
    || fail "hostile last_error content"
$stat --ring $ring >"$tmp/text" || fail "hostile text"
LC_ALL=C grep -q '[^[:print:]]' "$tmp/text" && fail "unprintable bytes in summary: $(cat -v "$tmp/text")"
grep -q "ALARM: configuration error" "$tmp/text" || fail "no alarm line"

# Batch rules, one with a hostile prefix (quotes, a backslash, a newline,
# an escape sequence, invalid UTF-8, no NUL): each in all three outputs.
$helper ring batch $ring logs/ 100000 9961472 10 9800000 1000000 1250 0 || fail "batch logs/"
$helper ring batch $ring hostile 3 300 0 0 0 0 1 || fail "batch hostile"
$stat --ring $ring >"$tmp/text" || fail "batch text"
grep -q '^batch rules: 2, objects 10, messages 100003$' "$tmp/text" || fail "batch line: $(cat "$tmp/text")"
grep -Eq '^logs/ +100000 +9\.5M +10 +9\.8x +1\.[2-9]s +0$' "$tmp/text" || fail "batch rule line: $(cat "$tmp/text")"
LC_ALL=C grep -q '[^[:print:]]' "$tmp/text" && fail "unprintable batch prefix in summary: $(cat -v "$tmp/text")"
$stat --ring $ring --json >"$tmp/json" || fail "batch json"
python3 - "$tmp/json" <<'PY' || fail "batch JSON content: $(cat "$tmp/json")"
import json, sys
b = json.load(open(sys.argv[1]))["uploader"]["batch"]
assert (b["rules"], b["objects"], b["messages"]) == (2, 10, 100003), b
r = b["by_rule"][0]
assert r["prefix"] == "logs/" and r["messages"] == 100000 and r["bytes"] == 9961472, r
assert r["objects"] == 10 and r["uploaded_bytes"] == 9800000 and r["stored_bytes"] == 1000000, r
assert r["compression_ratio"] == 9.8 and 1.2 <= r["oldest_unflushed_age_s"] < 10 and r["alone"] == 0, r
h = b["by_rule"][1]
assert h["prefix"].startswith('h"\\\n\x1b[0m\ufffd/') and len(h["prefix"]) == 72, h["prefix"]
assert h["compression_ratio"] is None and h["oldest_unflushed_age_s"] is None and h["alone"] == 1, h
PY

# --prometheus: valid by the format's grammar, s3ring_ names, ring label,
# counters ending in _total.
$stat --ring $ring --prometheus >"$tmp/prom" || fail "prometheus: exit $?"
python3 tests/promcheck.py --s3ring <"$tmp/prom" || fail "exposition invalid: $(cat "$tmp/prom")"
grep -q "^s3ring_produced_total{ring=\"$ring\"} 25$" "$tmp/prom" || fail "produced_total"
grep -q "^s3ring_uploader_config_alarm{ring=\"$ring\"} 1$" "$tmp/prom" || fail "alarm gauge"
grep -q "^s3ring_batch_objects_total{ring=\"$ring\"} 10$" "$tmp/prom" || fail "batch_objects_total"
grep -q "^s3ring_batch_rule_stored_bytes_total{ring=\"$ring\",prefix=\"logs/\"} 1000000$" "$tmp/prom" ||
	fail "batch_rule_stored_bytes_total"
grep -q "^s3ring_batch_rule_alone_total{ring=\"$ring\",prefix=\"h\\\\\"" "$tmp/prom" ||
	fail "hostile batch prefix label: $(grep batch_rule_alone "$tmp/prom")"
# The checker itself rejects what it should.
printf 's3ring_x{ring="a} 1\n' | python3 tests/promcheck.py 2>/dev/null && fail "promcheck accepted a bad label"
printf '# TYPE s3ring_x counter\ns3ring_x{ring="a"} 1\n' | python3 tests/promcheck.py --s3ring 2>/dev/null \
    && fail "promcheck accepted a counter without _total"

# --output writes the file atomically (the textfile collector's way).
$stat --ring $ring --prometheus --output "$tmp/s3ring.prom" || fail "--output"
cmp -s "$tmp/prom" "$tmp/s3ring.prom" || diff "$tmp/prom" "$tmp/s3ring.prom" | grep -v heartbeat | grep -q '^[<>]' \
    && fail "--output differs"

# --watch: a header, one line per interval with rates; SIGINT stops it with
# exit 0. Puts made while it runs show up as put/s.
$stat --ring $ring --watch 0.2 >"$tmp/watch" 2>&1 &
wpid=$!
sleep 0.5
$helper ring put $ring 100 100 || fail "put during watch"
sleep 0.6
kill -INT $wpid
wait $wpid; rc=$?
[ $rc -eq 0 ] || fail "watch exit $rc after SIGINT: $(cat "$tmp/watch")"
head -1 "$tmp/watch" | grep -q 'put/s' || fail "watch header: $(cat "$tmp/watch")"
[ "$(wc -l <"$tmp/watch")" -ge 4 ] || fail "watch lines: $(cat "$tmp/watch")"
awk 'NR>2 && $4+0 >= 100 {found=1} END {exit !found}' "$tmp/watch" \
    || fail "no put/s rate seen: $(cat "$tmp/watch")"

# --watch --json: one valid object per line, with rates.
timeout -k 10 --preserve-status -s INT 1 $stat --ring $ring --watch 0.3 --json >"$tmp/wjson"; rc=$?
[ $rc -eq 0 ] || fail "watch json exit $rc"
while read -r line; do
	printf '%s' "$line" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert "put_per_s" in d["rates"]' \
	    || fail "watch json line: $line"
done <"$tmp/wjson"

# Usage errors.
$stat --ring $ring --json --check >/dev/null 2>&1; rc=$?
[ $rc -eq 3 ] || fail "--json --check: exit $rc (want 3)"
$stat --ring $ring --watch nope >/dev/null 2>&1; rc=$?
[ $rc -eq 64 ] || fail "--watch nope: exit $rc (want 64)"
echo "figure: shmstat text/json/prometheus/watch ok"
