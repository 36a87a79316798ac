#!/usr/bin/env bash
# exports.sh -- libs3ring.so exports only s3ring_* symbols and needs nothing
# beyond libc, and libs3ring.a defines no global symbol but s3ring_*, so
# either links into any program without clashing.
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
# It needs only libc (plus the sanitizer runtimes in a sanitized build).
needed=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
extra=$(echo "$needed" | grep -v -E '^(libc\.so\.6|ld-linux-x86-64\.so\.2|libasan\.so\.[0-9]+|libubsan\.so\.[0-9]+|libtsan\.so\.[0-9]+)$' || true)
if [ -n "$extra" ]; then
	echo "FAIL: libs3ring.so needs libraries beyond libc: $extra"
	exit 1
fi
# Every undefined symbol is versioned by glibc, or -- in a sanitized build,
# whose runtime intercepts libc calls and so binds them unversioned --
# defined by that runtime.
runtime_defs=
for lib in $(echo "$needed" | grep -E '^lib(asan|ubsan|tsan)\.' || true); do
	path=$(ldd "$so" | awk -v l="$lib" '$1 == l {print $3}')
	[ -n "$path" ] || { echo "FAIL: cannot find $lib"; exit 1; }
	runtime_defs="$runtime_defs $(nm -D --defined-only "$path" | awk '{print $3}' | sed 's/@.*//' | tr '\n' ' ')"
done
undef=$(nm -D --undefined-only "$so" | awk '{print $2}' | grep -v -E '@GLIBC_|^_ITM_|^__gmon_start__' || true)
stray=
for sym in $undef; do
	case " $runtime_defs " in *" $sym "*) ;; *) stray="$stray $sym" ;; esac
done
if [ -n "$stray" ]; then
	echo "FAIL: undefined symbols that neither glibc nor a sanitizer runtime provides:$stray"
	exit 1
fi
echo "exports ok: $(echo "$defined" | wc -l) symbols"

# The archive: every global it defines is s3ring_* (a sanitized build adds
# its runtime's instrumentation globals), and an application with its own
# crc32c, log_msg and ring_open links against it and gets its own.
a=${BUILD:-build}/lib/libs3ring.a
globals=$(nm -g --defined-only "$a" | awk 'NF == 3 {print $3}')
stray=$(echo "$globals" | grep -v -E '^s3ring_|^__(odr_)?asan|^___asan|^__tsan|^__ubsan|^__sancov' || true)
if [ -n "$stray" ]; then
	echo "FAIL: libs3ring.a defines globals outside the s3ring_ prefix: $stray"
	exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/app.c" <<'EOC'
#include <stdio.h>
#include <s3ring.h>
unsigned crc32c(unsigned crc, const void *p, unsigned long n) { (void)p; return crc + (unsigned)n + 1000; }
void log_msg(int lv, const char *m) { (void)lv; (void)m; }
int ring_open(void) { return 42; }
int main(void) { printf("%u %d %s\n", crc32c(0, "", 1), ring_open(), s3ring_strerror(0)); return 0; }
EOC
cc ${SAN:+-fsanitize=$SAN} -Iproducer -o "$work/app" "$work/app.c" "$a" -lpthread -lrt
out=$("$work/app")
[ "$out" = "1001 42 success" ] || { echo "FAIL: the application's own symbols lost to the archive's: $out"; exit 1; }
echo "archive ok: $(echo "$globals" | wc -l) globals, an application's own crc32c/log_msg/ring_open kept"
