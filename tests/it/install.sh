#!/usr/bin/env bash
# install.sh -- make install into a temporary DESTDIR installs the library,
# header, s3ring.pc, binaries, man pages, unit and example config; the
# example application builds against it with pkg-config and runs.
set -uo pipefail
if [ -n "${SAN:-}" ]; then
	echo "SKIP: install: runs in the plain suite (an installed library is not sanitized)"
	exit 77
fi
B=${BUILD:-build}
dest=$(mktemp -d /tmp/s3ring-install.XXXXXX)
ring=test-install-$$
trap 'rm -rf "$dest"; $B/tests/tool_ring unlink $ring 2>/dev/null' EXIT
fail() { echo "FAIL: $*"; exit 1; }

make --no-print-directory BUILD="$B" install PREFIX=/usr/local DESTDIR="$dest" >"$dest.log" 2>&1 ||
	{ cat "$dest.log"; rm -f "$dest.log"; fail "make install"; }
rm -f "$dest.log"
p=$dest/usr/local
for f in lib/libs3ring.a lib/libs3ring.so lib/libs3ring.so.1 include/s3ring.h \
	lib/pkgconfig/s3ring.pc sbin/s3ring-uploader bin/shmstat bin/s3ring-put \
	share/man/man3/s3ring.3 share/man/man8/s3ring-uploader.8 share/man/man1/shmstat.1 \
	share/man/man1/s3ring-put.1 share/s3ring/s3ring-uploader.service \
	share/s3ring/uploader.conf.example share/s3ring/example.c; do
	[ -e "$p/$f" ] || fail "missing $f"
done
for f in bin/s3ring-uploader bin/s3ring-bench sbin/s3ring-bench; do
	[ ! -e "$p/$f" ] || fail "$f is installed"
done
grep -q '^ExecStart=/usr/local/sbin/s3ring-uploader ' "$p/share/s3ring/s3ring-uploader.service" ||
	fail "unit's ExecStart does not point at the installed binary"
for m in "$p"/share/man/man*/*; do
	man -l --warnings "$m" >/dev/null 2>"$dest/man.err" || fail "man -l $m"
	[ -s "$dest/man.err" ] && { cat "$dest/man.err"; fail "warnings rendering $m"; }
done

# Build the example the way an application would.
export PKG_CONFIG_PATH=$p/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
flags=$(pkg-config --cflags --libs s3ring) || fail "pkg-config s3ring"
echo "pkg-config: $flags"
cc -o "$dest/example" "$p/share/s3ring/example.c" $flags || fail "building the example"
"$B/tests/tool_ring" create $ring 1048576 || fail "creating a ring"
LD_LIBRARY_PATH=$p/lib "$dest/example" -r $ring -p 2 -n 100 || fail "running the example"
ldd "$dest/example" | grep "$p/lib/libs3ring.so.1" >/dev/null ||
	LD_LIBRARY_PATH=$p/lib ldd "$dest/example" | grep "libs3ring.so.1 => $p/lib" >/dev/null ||
	fail "the example did not link the installed shared library"
n=$("$B/tests/tool_ring" drain $ring 200 2000 | wc -l)
[ "$n" -eq 200 ] || fail "drained $n of 200 messages"

# install builds no test: from a clean build directory, nothing it would
# run compiles or links a test or cmocka.
fresh=$(mktemp -d /tmp/s3ring-install-build.XXXXXX)
make --no-print-directory -n BUILD="$fresh" install PREFIX=/usr/local DESTDIR="$dest" >"$dest/dry.log" 2>&1 ||
	{ rm -rf "$fresh"; fail "make -n install: $(tail -n 3 "$dest/dry.log")"; }
rm -rf "$fresh"
pat='-lcmocka|tests/test_|tests/tool_|s3ring-bench'
! grep -Eq -- "$pat" "$dest/dry.log" || fail "make install builds tests or the bench: $(grep -Em1 -- "$pat" "$dest/dry.log")"
grep -q 's3ring-uploader' "$dest/dry.log" || fail "the dry run is empty: the check proves nothing"

# uninstall removes everything install put there.
make --no-print-directory BUILD="$B" uninstall PREFIX=/usr/local DESTDIR="$dest" >/dev/null 2>&1 ||
	fail "make uninstall"
left=$(cd "$p" && find . -type f -o -type l | sort)
[ -z "$left" ] || fail "make uninstall left: $left"
echo "install ok: example built with pkg-config put 200 messages; uninstall removed every file"
