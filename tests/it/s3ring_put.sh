#!/usr/bin/env bash
# s3ring_put.sh -- the s3ring-put command: bodies from files and stdin,
# --lines, and its exit codes (0, 75 when full, 1 on errors, 64 on usage).
set -uo pipefail
B=${BUILD:-build}
put=$B/bin/s3ring-put
tool=$B/tests/tool_ring
ring=test-put-$$
tmp=$(mktemp -d)
trap '$tool unlink $ring 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# No ring: exit 1 and one line on stderr.
$put --ring $ring k </dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] || fail "missing ring: exit $rc"
[ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "missing ring: more than one line"
grep -q "no such ring" "$tmp/err" || fail "missing ring: $(cat "$tmp/err")"

# A bad ring name is reported as such, not as a bad key.
$put --ring ../x k </dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] || fail "bad ring name: exit $rc"
grep -q "ring ../x: not a valid ring name" "$tmp/err" || fail "bad ring name: $(cat "$tmp/err")"
grep -qi "key" "$tmp/err" && fail "bad ring name reported as a key problem: $(cat "$tmp/err")"

$tool create $ring 65536 8192 || fail "create"

# A body from a file, from stdin, and an empty one.
head -c 5000 /dev/urandom >"$tmp/body"
$put --ring $ring some/key "$tmp/body" || fail "put file"
printf 'from stdin' | $put --ring $ring std/in || fail "put stdin"
S3RING_RING=$ring $put empty/body </dev/null || fail "put empty via S3RING_RING"
printf 'one\ntwo\n\nfour' | $put --ring $ring --lines logs/a- || fail "put --lines"
$tool drain $ring 7 >"$tmp/out" || fail "drain: $(cat "$tmp/out")"
crc=$(python3 -c 'import sys
def crc32c(b):
    c = 0xffffffff
    for x in b:
        c ^= x
        for _ in range(8):
            c = (c >> 1) ^ 0x82f63b78 if c & 1 else c >> 1
    return c ^ 0xffffffff
print("%08x" % crc32c(open(sys.argv[1], "rb").read()))' "$tmp/body")
expect=$(printf 'some/key\t5000\t%s\nstd/in\t10\nempty/body\t0\nlogs/a-1\t3\nlogs/a-2\t3\nlogs/a-3\t0\nlogs/a-4\t4' "$crc")
got=$(awk -F'\t' 'NR==1{print $1"\t"$2"\t"$3; next}{print $1"\t"$2}' "$tmp/out")
[ "$got" = "$expect" ] || fail "drained records differ:\n$got\n--- expected:\n$expect"

# Oversized body: exit 1, nothing put.
head -c 9000 /dev/zero >"$tmp/big"
$put --ring $ring big "$tmp/big" 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] || fail "oversized: exit $rc"
grep -q "larger than" "$tmp/err" || fail "oversized: $(cat "$tmp/err")"

# Invalid key: exit 1.
printf 'x' | $put --ring $ring $'bad\x01key' 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] || fail "bad key: exit $rc"

# Usage errors: exit 64.
$put 2>/dev/null; rc=$?
[ $rc -eq 64 ] || fail "no args: exit $rc"
$put --timeout abc k 2>/dev/null; rc=$?
[ $rc -eq 64 ] || fail "bad timeout: exit $rc"

# Full ring: exit 75 once the timeout passes, and the lines before it stay.
head -c 4000 /dev/zero >"$tmp/chunk"
n=0 rc=0
while [ $n -lt 100 ]; do
	$put --ring $ring --timeout 0 fill/$n "$tmp/chunk" 2>"$tmp/err" || { rc=$?; break; }
	n=$((n + 1))
done
[ $rc -eq 75 ] || fail "full ring: exit $rc ($(cat "$tmp/err"))"
[ $n -eq 15 ] || fail "expected 15 4000-byte records in 64 KiB, got $n"
start=$(date +%s%N)
$put --ring $ring --timeout 200 late "$tmp/chunk" 2>/dev/null; rc=$?
el=$(( ($(date +%s%N) - start) / 1000000 ))
[ $rc -eq 75 ] || fail "full ring with timeout: exit $rc"
[ $el -ge 200 ] || fail "returned after $el ms, before the 200 ms timeout"

# Version mismatch: exit 1 with the reason.
$tool set-version $ring 99
printf 'x' | $put --ring $ring k 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] || fail "version: exit $rc"
grep -q "layout version" "$tmp/err" || fail "version: $(cat "$tmp/err")"
echo "s3ring-put ok"
