#!/usr/bin/env bash
# sigv4_botocore.sh -- the S3 signer against botocore's S3SigV4Auth.
#
# tests/sigv4_botocore_oracle.py generates random S3 requests (keys from all
# of Unicode and every reserved ASCII character, query parameters, x-amz-meta
# headers, session tokens) and signs them with botocore; test_sigv4 signs the
# same requests and must agree on every Authorization header. The oracle's
# --mutate mode signs with a wrong path encoding, and test_sigv4 must reject
# that file: it proves that the comparison can fail.
#
# Debian's /usr/bin/python3 is used on purpose: the python3 on PATH may be
# another interpreter without python3-botocore.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PY=/usr/bin/python3
COUNT=${SIGV4_ORACLE_COUNT:-1500}
SEED=${SIGV4_ORACLE_SEED:-$(date +%s)}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "seed $SEED (SIGV4_ORACLE_SEED=$SEED reproduces this run)"
$PY tests/sigv4_botocore_oracle.py --count "$COUNT" --seed "$SEED" >"$tmp/specs"
$PY tests/sigv4_botocore_oracle.py --count 100 --seed "$SEED" --mutate >"$tmp/mutant"

SIGV4_ORACLE_FILE=$tmp/specs "$BUILD/tests/test_sigv4" >"$tmp/good.log" 2>&1 || {
	cat "$tmp/good.log"
	echo "FAIL: the signer disagrees with botocore"
	exit 1
}
grep '^figure:' "$tmp/good.log"
grep -q "comparisons=$COUNT mismatches=0" "$tmp/good.log"

if SIGV4_ORACLE_FILE=$tmp/mutant "$BUILD/tests/test_sigv4" >"$tmp/mutant.log" 2>&1; then
	cat "$tmp/mutant.log"
	echo "FAIL: a wrongly encoded oracle file was accepted"
	exit 1
fi
echo "mutant oracle rejected as expected"
