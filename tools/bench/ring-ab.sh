#!/usr/bin/env bash
# ring-ab.sh -- the put path of this tree against another commit's, in one
# run: `s3ring-bench ring` (s3ring only) of each, alternated ROUNDS times, and
# the median ratio this/other of msgs/s and of p50 per (size, producers).
#
#   tools/bench/ring-ab.sh [REV] [ROUNDS]     (REV: HEAD~1, ROUNDS: 5)
#
# REV is built from a temporary git worktree under build/ab/; this tree's
# build/bin/s3ring-bench must exist (make). Prints the machine and its load
# beside the figures: on a busy machine the ratio still compares like with
# like, but both sides are noisy.
set -euo pipefail
cd "$(dirname "$0")/../.."
rev=${1:-HEAD~1}
rounds=${2:-5}
sha=$(git rev-parse --short "$rev")
other=build/ab/$sha
if [ ! -x "$other/build/bin/s3ring-bench" ]; then
	rm -rf "$other"
	git worktree add -q --detach "$other" "$sha"
	make -C "$other" -j2 build/bin/s3ring-bench >/dev/null
fi
args=(ring --json --transports s3ring --sizes 64,1024 --producers 1,4 --repeat 3
	--msgs 200000 --wake-samples 50 --full-tries 50000)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for i in $(seq 1 "$rounds"); do
	S3RING_RING=ab-new-$$ build/bin/s3ring-bench "${args[@]}" 2>/dev/null >"$out/new.$i"
	S3RING_RING=ab-old-$$ "$other/build/bin/s3ring-bench" "${args[@]}" 2>/dev/null >"$out/old.$i"
done
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "this tree ($(git rev-parse --short HEAD)) against $sha, $rounds rounds alternated"
/usr/bin/python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
d, rounds = sys.argv[1], int(sys.argv[2])
def load(side):
    rows = {}
    for i in range(1, rounds + 1):
        for line in open(f"{d}/{side}.{i}"):
            r = json.loads(line)
            if r.get("transport") != "s3ring" or "measure" in r or "msgs_per_s" not in r or "producers" not in r:
                continue
            rows.setdefault((r["size"], r["producers"]), []).append(r)
    return rows
new, old = load("new"), load("old")
print(f"{'size':>6} {'prod':>4} {'new msgs/s':>12} {'old msgs/s':>12} {'ratio':>6} {'new p50':>8} {'old p50':>8}")
for k in sorted(new):
    nm = statistics.median(r["msgs_per_s"] for r in new[k])
    om = statistics.median(r["msgs_per_s"] for r in old[k])
    np50 = statistics.median(r["p50_ns"] for r in new[k])
    op50 = statistics.median(r["p50_ns"] for r in old[k])
    print(f"{k[0]:>6} {k[1]:>4} {nm:>12.0f} {om:>12.0f} {nm/om:>6.3f} {np50:>8.0f} {op50:>8.0f}")
PY
