#!/usr/bin/env bash
# runner_skips.sh -- tests/run.sh counts skips apart: a script that exits 77
# after "SKIP: why" is skipped (not passed), one that prints SKIP and exits
# 0 is a failure, and the summary line is "N passed, N failed, N skipped".
set -uo pipefail
TOP=${S3RING_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=$(mktemp -d /tmp/s3ring-runner.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; cat "$tmp/out" 2>/dev/null; exit 1; }

mkdir -p "$tmp/tests/it" "$tmp/build/tests"
cp "$TOP/tests/run.sh" "$tmp/tests/"
printf '#!/usr/bin/env bash\necho fine\n' >"$tmp/tests/it/a_pass.sh"
printf '#!/usr/bin/env bash\necho "SKIP: needs a thing"\nexit 77\n' >"$tmp/tests/it/b_skip.sh"
printf '#!/usr/bin/env bash\necho "SKIP: pretends"\nexit 0\n' >"$tmp/tests/it/c_fake_skip.sh"
printf '#!/usr/bin/env bash\nexit 1\n' >"$tmp/tests/it/d_fail.sh"

(cd "$tmp" && BUILD=build SAN= ONLY= bash tests/run.sh) >"$tmp/out" 2>&1; rc=$?
[ $rc -ne 0 ] || fail "run.sh exited 0 with failures"
tail -n 1 "$tmp/out" | grep -qx '1 passed, 2 failed, 1 skipped' || fail "summary: $(tail -n 1 "$tmp/out")"
grep -q '^b_skip .*skipped.*SKIP: needs a thing' "$tmp/out" || fail "the skip and its reason are not shown"
grep -q '^c_fake_skip .*FAILED.*printed SKIP but exited 0' "$tmp/out" || fail "a SKIP with exit 0 was not failed"
grep -q '^skipped: b_skip$' "$tmp/out" || fail "no list of skipped scripts"

rm "$tmp/tests/it/c_fake_skip.sh" "$tmp/tests/it/d_fail.sh"
(cd "$tmp" && BUILD=build SAN= ONLY= bash tests/run.sh) >"$tmp/out" 2>&1; rc=$?
[ $rc -eq 0 ] || fail "run.sh exited $rc with only a pass and a skip"
tail -n 1 "$tmp/out" | grep -qx '1 passed, 0 failed, 1 skipped' || fail "summary: $(tail -n 1 "$tmp/out")"
echo "runner skips ok"
