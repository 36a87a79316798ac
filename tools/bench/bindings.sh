#!/usr/bin/env bash
# bindings.sh -- the bindings benchmarks (`s3ring-bench bindings` runs it):
# the JVM binding against ArrayBlockingQueue.offer of a Pair(key, bytes), the
# Python binding against socket.send on a Unix datagram socket, each baseline
# measured in the same run. Prints the machine and its load first, because
# the figures mean nothing without them.
#
#   tools/bench/bindings.sh [--json] [--puts N] [--reps R]
#
# Needs a plain build with the bindings (make), run from the source tree;
# BUILD selects the build directory (default build).
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
case $B in /*) ;; *) B=$PWD/$B ;; esac
PY=${PYTHON3:-/usr/bin/python3}
for f in "$B/lib/s3ring.jar" "$B/lib/libs3ring_jni.so" "$B/java/test-classes/.built" \
	"$B/tests/tool_consume" "$B/python" "$B/bin/s3ring-bench"; do
	[ -e "$f" ] || { echo "bindings.sh: $f is missing: run make (with the JDK, JUnit 5 and python3-dev installed)" >&2; exit 1; }
done
json=0
for a in "$@"; do [ "$a" = --json ] && json=1; done
if [ $json = 0 ]; then
	echo "machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)"
	echo "load: $(uptime)"
	echo
fi
java -Ds3ring.library="$B/lib/libs3ring_jni.so" -cp "$B/lib/s3ring.jar:$B/java/test-classes" \
	org.s3ring.Bench "$B/tests" "$@"
[ $json = 1 ] || echo
PYTHONPATH=$B/python S3RING_BENCH=$B/bin/s3ring-bench "$PY" producer/python/bench.py "$B/tests" "$@"
[ $json = 1 ] || echo "load after: $(uptime)"
