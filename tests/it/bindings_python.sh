#!/usr/bin/env bash
# bindings_python.sh -- the pytest suite of the Python module s3ring
# (producer/python/tests), with Debian's /usr/bin/python3.
set -uo pipefail
cd "${S3RING_TOP:-$(dirname "$0")/../..}"
. tests/helpers/bindings.sh
bindings_skip_if_sanitized
bindings_need "$PY_DIR" "$B/tests/tool_consume"
ls "$PY_DIR"/s3ring*.so >/dev/null 2>&1 || bindings_need "$PY_DIR/s3ring.so"
"$PY" -c 'import pytest' 2>/dev/null || { echo "FAIL: $PY has no pytest (python3-pytest)"; exit 1; }

PYTHONPATH=$PWD/$PY_DIR S3RING_TOOLS=$PWD/$B/tests timeout -s KILL 600 \
	"$PY" -m pytest -q -p no:cacheprovider producer/python/tests || { echo "FAIL: pytest"; exit 1; }
