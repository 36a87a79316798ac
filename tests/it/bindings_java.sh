#!/usr/bin/env bash
# bindings_java.sh -- the JUnit 5 suite of the JVM binding (producer/java/test):
# every result code, keys outside the BMP as real UTF-8, many threads on one
# handle, 0 bytes allocated per put over 1,000,000 puts, a JVM killed with
# kill -9 mid-stream. The class files target Java 11 (checked here).
set -uo pipefail
cd "${S3RING_TOP:-$(dirname "$0")/../..}"
. tests/helpers/bindings.sh
bindings_skip_if_sanitized
bindings_need "$S3RING_JAR" "$JNI_SO" "$JUNIT_JAR" "$B/java/test-classes/.built" "$B/tests/tool_consume"

fail() { echo "FAIL: $*"; exit 1; }

# Java 11 bytecode is class file version 55.
v=$(javap -v -cp "$S3RING_JAR" org.s3ring.S3Ring | sed -n 's/^ *major version: //p')
[ "$v" = 55 ] || fail "s3ring.jar has class file version $v, not 55 (Java 11)"

cp=$S3RING_JAR:$B/java/test-classes
timeout -s KILL 600 java -Ds3ring.library="$PWD/$JNI_SO" -Ds3ring.tools="$B/tests" \
	-Ds3ring.test.classpath="$cp" -jar "$JUNIT_JAR" --disable-banner --disable-ansi-colors \
	--details=tree --fail-if-no-tests -cp "$cp" --select-package org.s3ring ||
	fail "JUnit suite"
