#!/usr/bin/env bash
# bench_upload_smoke.sh -- s3ring-bench upload runs end to end on a tiny
# workload against nginx (started by the bench): its --json lines parse, each
# names its "measure", and the figures are sane (every message uploaded,
# rates and memory positive, latency samples present and ordered). When the
# run is interrupted it stops everything it started and removes its ring,
# its journal and its work directory. The sink and nginx-https endpoints
# and a large message run too, and batch mode (--batch zstd: log lines
# into one batch rule, against zstd on the same lines). No timing is asserted (only that the sink
# cannot be faster than connections / delay): speed is for the benchmark to
# report, not for a test.
# Skipped in sanitizer builds: the bench measures the real uploader, and
# there every figure would be the sanitizer's.
set -uo pipefail
if [ -n "${SAN:-}" ]; then
	echo "SKIP: bench_upload_smoke: runs in the plain build only (it measures)"
	exit 77
fi
B=${BUILD:-build}
bench=$B/bin/s3ring-bench
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

[ -x "$bench" ] || fail "$bench not built"
[ -x "$B/bin/s3ring-uploader" ] || fail "$B/bin/s3ring-uploader not built"
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || fail "nginx missing (tests/install-deps.sh)"
command -v wrk >/dev/null || fail "wrk missing (tests/install-deps.sh)"
[ -x /usr/bin/aws ] || fail "the AWS CLI (/usr/bin/aws) missing (tests/install-deps.sh)"

# Usage errors exit 64 (EX_USAGE).
$bench upload --endpoint ftp://x >/dev/null 2>&1; [ $? -eq 64 ] || fail "--endpoint ftp:// not refused"
$bench upload --count 0 >/dev/null 2>&1; [ $? -eq 64 ] || fail "--count 0 not refused"
$bench upload --batch lz4 >/dev/null 2>&1; [ $? -eq 64 ] || fail "--batch lz4 not refused"

# left_behind PID: the rings and journals of a bench run that was PID.
left_behind() {
	ls /dev/shm/s3ring.bench-upload-"$1"-* 2>/dev/null
}

timeout 300 $bench upload --json --endpoint nginx --count 2000 --workers 4 \
    --ref-seconds 1 --aws-count 50 --paced 0.5 --paced-seconds 1 >"$tmp/out" 2>"$tmp/err" &
pid=$!
wait $pid || fail "bench exited $?: $(tail -n 5 "$tmp/err")"
[ -z "$(left_behind $pid)" ] || fail "left behind: $(left_behind $pid)"

python3 - "$tmp/out" <<'PY' || fail "JSON: $(cat "$tmp/out")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for d in lines:
    assert "measure" in d, d
    by.setdefault(d["measure"], []).append(d)
for m in ("upload", "latency", "wrk", "aws_cli", "config", "target"):
    assert m in by, f"no {m} line"
up = by["upload"][0]
assert up["endpoint"] == "nginx" and up["count"] == 2000 and up["size"] == 1024, up
assert up["workers"] == 4, up
assert up["uploads_per_s"] > 0 and up["mb_per_s"] > 0, up
assert abs(up["mb_per_s"] - up["uploads_per_s"] * 1024 / 1e6) < 0.01 * up["mb_per_s"] + 0.01, up
assert up["cpu_s_per_1k"] is None or up["cpu_s_per_1k"] >= 0, up
assert up["peak_rss_kib"] > 0 and 0 < up["peak_private_kib"] <= up["peak_rss_kib"] + 4096, up
# the primary memory figure: the peak of RssAnon, without the shared ring
assert 0 < up["uploader_private_kib"] <= up["peak_rss_kib"], up
assert up["uploader_private_kib"] == up["peak_private_kib"], up
# one message in 64 is timed: 2000 / 64 rounded up
assert up["lat_samples"] + up["lat_missing"] == 32, up
assert up["lat_samples"] > 0 and 0 <= up["p50_ms"] <= up["p99_ms"] <= up["max_ms"], up
lat = by["latency"][0]
assert lat["offered_per_s"] > 0 and lat["uploads_per_s"] > 0, lat
assert lat["lat_samples"] > 0 and 0 <= lat["p50_ms"] <= lat["p99_ms"], lat
w = by["wrk"][0]
assert w["requests_per_s"] > 0 and w["connections"] == 4, w
c = by["config"][0]
assert c["nproc"] >= 1 and c["cpu"], c
names = {t["name"] for t in by["target"]}
assert {"nginx_vs_wrk_ratio", "nginx_peak_private_kib", "nginx_vmhwm_kib"} <= names, names
for t in by["target"]:
    assert isinstance(t["pass"], bool) and t["value"] is not None, t
print("figure: nginx %.0f uploads/s (wrk %.0f requests/s), private RSS %d KiB"
      % (up["uploads_per_s"], w["requests_per_s"], up["uploader_private_kib"]))
PY
[ $? -eq 0 ] || exit 1

# The sink and nginx over TLS, each with wrk at --workers connections as the
# reference; then a large message (over 1 MiB): the ring's geometry is
# chosen to fit, and curl --parallel is the reference.
timeout 300 $bench upload --json --endpoint sink,nginx-https --sink-delay-ms 20 --count 500 \
    --workers 8 --ref-seconds 1 --aws-count 0 --paced 0 >"$tmp/out2" 2>"$tmp/err" ||
	fail "sink,nginx-https: bench exited $?: $(tail -n 5 "$tmp/err")"
timeout 300 $bench upload --json --endpoint nginx --size 3000000 --count 6 --workers 2 \
    --aws-count 0 --paced 0 >"$tmp/out3" 2>"$tmp/err" ||
	fail "large: bench exited $?: $(tail -n 5 "$tmp/err")"
python3 - "$tmp/out2" "$tmp/out3" <<'PY' || fail "JSON: $(cat "$tmp/out2" "$tmp/out3")"
import json, sys
def lines(path):
    by = {}
    for d in (json.loads(l) for l in open(path)):
        by.setdefault((d["measure"], d.get("endpoint")), []).append(d)
    return by
by = lines(sys.argv[1])
for ep in ("sink", "nginx-https"):
    up = by[("upload", ep)][0]
    assert up["count"] == 500 and up["workers"] == 8 and up["uploads_per_s"] > 0, up
    assert up["uploader_private_kib"] > 0, up
    w = by[("wrk", ep)][0]
    assert w["connections"] == 8 and w["requests_per_s"] > 0 and w["errors"] == 0, w
# the sink stores nothing: no latency samples, and it cannot be faster
# than 8 connections over 20 ms allow (400/s), plus slack for rounding
up = by[("upload", "sink")][0]
assert up["lat_samples"] == 0 and up["uploads_per_s"] <= 8 / 0.020 * 1.05, up
assert by[("config", None)][0]["sink_delay_ms"] == 20
names = {d["name"] for d in by[("target", None)]}
assert {"sink_vs_ceiling_ratio", "nginx_https_vs_wrk_ratio"} <= names, names
by = lines(sys.argv[2])
up = by[("upload", "nginx")][0]
assert up["size"] == 3000000 and up["count"] == 6, up
assert up["max_message"] >= 3000000 and up["ring_capacity"] >= 8 * up["max_message"], up
c = by[("curl", "nginx")][0]
assert c["count"] == 6 and c["failed"] == 0 and c["parallel"] == 2 and c["uploads_per_s"] > 0, c
assert ("wrk", "nginx") not in by, "wrk ran for a large message"
print("figure: 3 MB messages to nginx %.1f uploads/s (curl %.1f)"
      % (up["uploads_per_s"], c["uploads_per_s"]))
PY
[ $? -eq 0 ] || exit 1

# Batch mode: 200,000 log lines into one zstd rule on nginx. The run
# completes and prints its figures; the baseline file holds the very lines
# of the run, framed as the rule frames them, so its size is the rule's
# uploaded bytes to the byte.
timeout 300 $bench upload --json --batch zstd --count 200000 >"$tmp/out4" 2>"$tmp/err" &
pid=$!
wait $pid || fail "batch: bench exited $?: $(tail -n 5 "$tmp/err")"
[ -z "$(left_behind $pid)" ] || fail "batch: left behind: $(left_behind $pid)"
python3 - "$tmp/out4" <<'PY' || fail "batch JSON: $(cat "$tmp/out4")"
import json, sys
by = {}
for d in (json.loads(l) for l in open(sys.argv[1])):
    assert "measure" in d, d
    by.setdefault(d["measure"], []).append(d)
b = by["batch"][0]
assert b["compression"] == "zstd" and b["count"] == 200000 and b["producers"] == 4, b
assert b["lines_per_s"] > 0 and b["raw_mb_per_s"] > 0 and b["seconds"] > 0, b
assert b["objects"] >= 1 and b["puts_per_million"] > 0, b
assert 200000 * 60 < b["uploaded_bytes"] < 200000 * 200, b
assert 0 < b["stored_bytes"] < b["uploaded_bytes"] and b["compression_ratio"] > 1, b
assert b["uploader_cpu_s"] is None or b["uploader_cpu_s"] >= 0, b
assert b["uploader_private_kib_10pct"] > 0 and b["uploader_private_kib_100pct"] > 0, b
assert b["uploader_private_kib"] >= b["uploader_private_kib_100pct"], b
base = by["batch_baseline"][0]
assert base["tool"] == "zstd" and base["lines"] == 200000, base
assert base["bytes"] == b["uploaded_bytes"], (base, b)
assert base["mb_per_s"] > 0 and base["mb_per_cpu_s"] > 0 and base["generator_ns_per_line"] > 0, base
names = {t["name"] for t in by["target"]}
assert {"batch_zstd_lines_per_s", "batch_zstd_vs_tool_per_cpu_s", "batch_zstd_private_kib",
        "batch_zstd_private_growth_pct"} <= names, names
c = by["config"][0]
assert c["nproc"] >= 1 and c["cpu"], c
print("figure: batch zstd %.0f lines/s, %.1f MB/s raw, ratio %.2f, %.1f PUTs per million; zstd -3 %.1f MB/s"
      % (b["lines_per_s"], b["raw_mb_per_s"], b["compression_ratio"], b["puts_per_million"],
         base["mb_per_s"]))
PY
[ $? -eq 0 ] || exit 1

# Interrupted mid-run: it stops, says so, and leaves nothing behind.
timeout 300 $bench upload --endpoint nginx --count 100000000 --workers 2 --no-refs \
    >/dev/null 2>"$tmp/err2" &
pid=$!
for _ in $(seq 1 100); do
	[ -n "$(left_behind $pid)" ] && break
	sleep 0.1
done
sleep 1
kill -INT $pid
wait $pid
rc=$?
[ $rc -ne 0 ] || fail "interrupted run exited 0"
grep -q interrupted "$tmp/err2" || fail "no 'interrupted' message: $(cat "$tmp/err2")"
work=$(sed -n 's/.*work dir \(.*\)$/\1/p' "$tmp/err2" | head -n 1)
[ -n "$work" ] || fail "no work dir named: $(cat "$tmp/err2")"
[ ! -e "$work" ] || fail "$work left behind"
[ -z "$(left_behind $pid)" ] || fail "left behind after SIGINT: $(left_behind $pid)"
# Nothing it started still runs: no process mentions its work directory.
for c in /proc/[0-9]*/cmdline; do
	if tr "\0" " " 2>/dev/null <"$c" | grep -qF "$work"; then
		fail "still running after SIGINT: $(tr '\0' ' ' <"$c")"
	fi
done
echo "ok"
