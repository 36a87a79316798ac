# bindings.sh -- shared by tests/it/bindings_*.sh (sourced): where the built
# bindings are, and the rule for a missing toolchain.
#
# The bindings are not built under a sanitizer (SAN non-empty): an ASan or
# TSan module cannot be loaded into the unsanitized java and python3, so
# those runs skip with that reason and the plain build runs the tests. A
# missing toolchain or binding is a FAILURE (make test installs the
# toolchains), unless S3RING_SKIP_BINDINGS=1 says to skip.
B=${BUILD:-build}
PY=${PYTHON3:-/usr/bin/python3}
JUNIT_JAR=${JUNIT_JAR:-/usr/share/java/junit-platform-console-standalone.jar}
S3RING_JAR=$B/lib/s3ring.jar
JNI_SO=$B/lib/libs3ring_jni.so
KOTLIN_JAR=$B/examples/StoreMessages.jar
PY_DIR=$B/python

bindings_skip_if_sanitized() {
	if [ -n "${SAN:-}" ]; then
		echo "SKIP: the bindings are not built under SAN=$SAN (a sanitized module cannot be loaded into the unsanitized java/python3); the plain build runs this test"
		exit 77
	fi
}

# bindings_need FILE...: each must exist, else fail (or skip, when asked).
bindings_need() {
	local f
	for f in "$@"; do
		[ -e "$f" ] && continue
		if [ "${S3RING_SKIP_BINDINGS:-0}" = 1 ]; then
			echo "SKIP: $f was not built (S3RING_SKIP_BINDINGS=1)"
			exit 77
		fi
		echo "FAIL: $f was not built: is the toolchain installed? (tests/install-deps.sh installs it; S3RING_SKIP_BINDINGS=1 skips)"
		exit 1
	done
}
