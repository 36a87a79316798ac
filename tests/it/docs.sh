#!/usr/bin/env bash
# docs.sh -- the documentation says what the code does, where a script can
# tell:
# - every man page's footer (.TH) names the date and "s3ring 0.1", and
#   renders without warnings;
# - every tests/ path the Makefile names exists;
# - every error s3ring.3 lists for s3ring_put (-EXXX) is in s3ring.h's list;
# - s3ring.3's example prints s3ring_strerror() with errx/warnx only (err
#   and warn would add strerror(errno) a second time);
# - demo.sh's header names the ring the script uses.
set -uo pipefail
cd "${S3RING_TOP:-$(dirname "$0")/../..}"
fail() { echo "FAIL: $*"; exit 1; }

for m in producer/*.3 tools/*.1 uploader/*.8; do
	th=$(grep -m1 '^\.TH' "$m")
	grep -Eq '^\.TH [^ ]+ [0-9] [0-9]{4}-[0-9]{2}-[0-9]{2} "s3ring 0\.1" "' <<<"$th" ||
		fail "$m: footer is not 'DATE \"s3ring 0.1\"': $th"
	man -l --warnings "$m" >/dev/null 2>/tmp/docs.$$ || fail "man -l $m"
	[ -s /tmp/docs.$$ ] && { cat /tmp/docs.$$; rm -f /tmp/docs.$$; fail "warnings rendering $m"; }
	rm -f /tmp/docs.$$
done

for p in $(grep -o 'tests/[A-Za-z0-9_./-]*\.\(sh\|py\|c\)' Makefile | sort -u); do
	[ -e "$p" ] || fail "the Makefile names $p, which does not exist"
done

for e in $(sed -n '/^\.SH RETURN VALUE/,/^\.SH /p' producer/s3ring.3 | grep -o '^\.B \\-E[A-Z]*' | sed 's/.*-//'); do
	grep -q -- "-$e " producer/s3ring.h || fail "s3ring.3 lists -$e, s3ring.h's error list does not"
done

ex=$(sed -n '/^\.SH EXAMPLES/,/^\.SH /p' producer/s3ring.3)
grep -E '\b(err|warn)\(.*s3ring_strerror' <<<"$ex" &&
	fail "s3ring.3's example prints the error twice (err/warn add strerror(errno))"
grep -q 'errx(' <<<"$ex" || fail "s3ring.3's example has no errx: the check proves nothing"

ring=$(sed -n 's/^RING=\(.*\)$/\1/p' tools/demo.sh)
[ -n "$ring" ] || fail "demo.sh sets no RING="
sed -n '2,10p' tools/demo.sh | grep -q "ring \"$ring\"" || fail "demo.sh's header does not name the ring \"$ring\""
echo "docs ok"
