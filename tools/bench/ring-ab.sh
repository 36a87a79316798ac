#!/usr/bin/env bash
# ring-ab.sh -- the put path of this tree against another commit's, in one
# run: `s3ring-bench ring` (s3ring only) of each, alternated ROUNDS times, and
# the median ratio this/other of msgs/s and of p50 per (size, producers).
#
#   tools/bench/ring-ab.sh [REV] [ROUNDS]     (REV: HEAD~1, ROUNDS: 5)
#   tools/bench/ring-ab.sh --instructions [REV]
#
# --instructions counts, with callgrind, the instructions of one
# s3ring_put() and of one ring_consume() (tools/bench/put_loop.c and
# consume_loop.c, built against each tree's library): a figure that does not
# depend on the machine's load.
#
# REV is built from a temporary git worktree under build/ab/; this tree's
# build/bin/s3ring-bench must exist (make). Prints the machine and its load
# beside the figures: on a busy machine the ratio still compares like with
# like, but both sides are noisy.
set -euo pipefail
cd "$(dirname "$0")/../.."
instr=
if [ "${1:-}" = --instructions ]; then instr=1; shift; fi
rev=${1:-HEAD~1}
rounds=${2:-5}
sha=$(git rev-parse --short "$rev")
other=build/ab/$sha
if [ ! -x "$other/build/bin/s3ring-bench" ]; then
	rm -rf "$other"
	git worktree add -q --detach "$other" "$sha"
	make -C "$other" -j2 build/bin/s3ring-bench >/dev/null
fi
if [ -n "$instr" ]; then
	make -C "$other" -j2 build/lib/libs3ring.a >/dev/null
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	# An internal archive where this tree has one; the old tree's archive
	# was not localized.
	new_int=build/lib/libs3ring-internal.a
	old_int=$other/build/lib/libs3ring-internal.a
	[ -f "$old_int" ] || old_int=$other/build/lib/libs3ring.a
	for side in new old; do
		top=.; lib=$new_int
		[ $side = old ] && { top=$other; lib=$old_int; }
		if [ $side = new ]; then
			cc -O2 -D_GNU_SOURCE -DRING_HEARTBEAT -I"$top" -I"$top/common" -I"$top/producer" \
			    -o "$tmp/put_$side" tools/bench/put_loop.c "$lib" -lpthread -lrt
		else
			cc -O2 -I"$top/producer" -o "$tmp/put_$side" tools/bench/put_loop.c "$top/build/lib/libs3ring.a" -lpthread -lrt
		fi
		cc -O2 -D_GNU_SOURCE -I"$top" -I"$top/common" -o "$tmp/cons_$side" tools/bench/consume_loop.c "$lib" -lpthread -lrt
	done
	echo "instructions per call (callgrind), this tree ($(git rev-parse --short HEAD)) against $sha"
	printf '%-8s %6s %8s %8s %6s\n' call size new old ratio
	for sz in 64 1024; do
		for call in put cons; do
			fn=s3ring_put; [ $call = cons ] && fn=ring_consume
			for side in new old; do
				ring=ab-ic-$side-$$-$sz
				n=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect=$fn \
				    "$tmp/${call}_$side" "$ring" 20000 "$sz" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
				rm -f "/dev/shm/s3ring.$ring"
				eval "ic_$side=\$((n / 20000))"
			done
			printf '%-8s %6s %8s %8s %6.3f\n' "$fn" "$sz" "$ic_new" "$ic_old" \
			    "$(awk -v a="$ic_new" -v b="$ic_old" 'BEGIN { print a / b }')"
		done
	done
	exit 0
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
