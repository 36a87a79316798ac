#!/usr/bin/env bash
# exports.sh -- libs3ring.so exports only s3ring_* symbols and needs nothing
# beyond libc, so it links into any program without clashing.
set -euo pipefail
so=${BUILD:-build}/lib/libs3ring.so
[ -f "$so" ] || { echo "missing $so"; exit 1; }

defined=$(nm -D --defined-only "$so" | awk '{print $3}')
echo "$defined" | sed 's/^/exported: /'
stray=$(echo "$defined" | grep -v '^s3ring_' || true)
if [ -n "$stray" ]; then
	echo "FAIL: symbols outside the s3ring_ prefix: $stray"
	exit 1
fi
for f in s3ring_open s3ring_put s3ring_reserve s3ring_commit s3ring_abort s3ring_close s3ring_strerror; do
	echo "$defined" | grep -qx "$f" || { echo "FAIL: $f is not exported"; exit 1; }
done
# Undefined symbols must all come from glibc (or the sanitizer runtimes).
undef=$(nm -D --undefined-only "$so" | awk '{print $2}' | grep -v -E '@GLIBC_|^_ITM_|^__gmon_start__|^__(asan|ubsan|tsan|sanitizer)|^_?_?(tsan|asan)' || true)
if [ -n "$undef" ]; then
	echo "FAIL: undefined symbols outside libc: $undef"
	exit 1
fi
echo "exports ok: $(echo "$defined" | wc -l) symbols"
