#!/usr/bin/env bash
# bindings_install.sh -- make install into a temporary DESTDIR installs the
# jar, the JNI library, the Kotlin example and the Python module; the
# README's Java, Kotlin and Python quick starts (taken from README.md
# itself) build and run against the installed files only, as a new user's
# would, and their messages are in the ring.
set -uo pipefail
cd "${S3RING_TOP:-$(dirname "$0")/../..}"
. tests/helpers/bindings.sh
bindings_skip_if_sanitized
bindings_need "$S3RING_JAR" "$JNI_SO" "$KOTLIN_JAR" "$PY_DIR" "$B/tests/tool_consume"

dest=$(mktemp -d /tmp/s3ring-bindinst.XXXXXX)
export S3RING_RING=test-bindinst-$$
trap 'rm -rf "$dest"; rm -f /dev/shm/s3ring.$S3RING_RING' EXIT
fail() { echo "FAIL: $*"; exit 1; }

make --no-print-directory BUILD="$B" install-bindings PREFIX=/usr/local DESTDIR="$dest" >"$dest/make.log" 2>&1 ||
	{ cat "$dest/make.log"; fail "make install-bindings"; }
cat "$dest/make.log"
pyver=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
p=$dest/usr/local
site=$p/lib/python$pyver/dist-packages
for f in share/java/s3ring.jar lib/libs3ring_jni.so share/s3ring/StoreMessages.kt; do
	[ -e "$p/$f" ] || fail "missing $f"
done
ls "$site"/s3ring*.so >/dev/null 2>&1 || fail "no Python module in $site"
grep -q "installed /usr/local/share/java/s3ring.jar /usr/local/lib/libs3ring_jni.so" "$dest/make.log" ||
	fail "make install did not print the installed paths"
# Debian's python3 looks in PREFIX/lib/pythonX.Y/dist-packages for PREFIX=/usr/local.
"$PY" -c 'import sys; sys.exit(0 if "/usr/local/lib/python'"$pyver"'/dist-packages" in sys.path else 1)' ||
	fail "$PY does not search /usr/local/lib/python$pyver/dist-packages"

# block LANG: the first fenced LANG block of README.md's Bindings section.
block() {
	awk -v lang="$1" '/^## /{ inb = ($0 == "## Bindings") } inb && $0 == "```" lang { f = 1; next }
		f && /^```/ { exit } f { print }' "$top/README.md"
}
top=$PWD
"$B/tests/tool_ring" create "$S3RING_RING" 1048576 || fail "creating the ring"
mkdir -p "$dest/app" && cd "$dest/app" || exit 1

block java >QuickStart.java
[ -s QuickStart.java ] || fail "no java quick start in README.md"
javac -cp "$p/share/java/s3ring.jar" QuickStart.java || fail "javac QuickStart.java"
java -Djava.library.path="$p/lib" -cp "$p/share/java/s3ring.jar:." QuickStart || fail "Java quick start"

block kotlin >QuickStart.kt
[ -s QuickStart.kt ] || fail "no kotlin quick start in README.md"
kotlinc -nowarn -cp "$p/share/java/s3ring.jar" -include-runtime -d quickstart.jar QuickStart.kt 2>&1 |
	grep -v 'Xverify:none' ; [ -s quickstart.jar ] || fail "kotlinc QuickStart.kt"
java -Djava.library.path="$p/lib" -cp "quickstart.jar:$p/share/java/s3ring.jar" QuickStartKt ||
	fail "Kotlin quick start"
kotlinc -nowarn -cp "$p/share/java/s3ring.jar" -include-runtime -d store.jar "$p/share/s3ring/StoreMessages.kt" 2>&1 |
	grep -v 'Xverify:none' ; [ -s store.jar ] || fail "kotlinc of the installed StoreMessages.kt"
java -Djava.library.path="$p/lib" -cp "store.jar:$p/share/java/s3ring.jar" StoreMessagesKt --count 100 \
	--prefix inst/ || fail "the installed Kotlin example"

block python >quickstart.py
[ -s quickstart.py ] || fail "no python quick start in README.md"
PYTHONPATH=$site "$PY" quickstart.py || fail "Python quick start"

cd "$top" || exit 1
out=$("$B/tests/tool_consume" "$S3RING_RING" 103 5000) || fail "the ring does not hold the 103 messages"
for k in logs/java/hello-1 logs/kotlin/hello-1 logs/python/hello-1 inst/p0/100; do
	grep -q "^$k	" <<<"$out" || fail "$k is not in the ring"
done
echo "bindings install ok: quick starts from the installed files put their messages"
