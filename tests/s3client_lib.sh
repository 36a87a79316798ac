# s3client_lib.sh -- helpers for tests/it/s3client_*.sh (source it from bash).
#
# s3client_build OUT     compiles tests/s3client_cli.c against the uploader
#                        library of $BUILD, with the sanitizers of $SAN
# s3client_keys N SEED   prints N hex-encoded object keys, one a line: spaces,
#                        Unicode (BMP and astral), every one of
#                        + = & @ : , ; ! $ ' ( ) * ~, and deep paths
# s3client_no_secret LOG SECRET...   fails if a secret appears in LOG
# s3client_clean_log LOG              fails on a sanitizer report in LOG

s3client_build() {
	local out=$1 san=()
	[ -n "${SAN:-}" ] && san=(-fsanitize="$SAN" -fno-omit-frame-pointer)
	[ -f "$BUILD/lib/libs3ring-uploader.a" ] && [ -f "$BUILD/lib/libs3ring-internal.a" ] || {
		echo "s3client: build the libraries first (make BUILD=$BUILD)" >&2
		return 1
	}
	# shellcheck disable=SC2046
	cc -std=gnu11 -O1 -g -D_GNU_SOURCE -I. -Icommon -Iuploader \
		$(pkg-config --cflags libbsd-overlay 2>/dev/null) "${san[@]}" \
		-o "$out" tests/s3client_cli.c "$BUILD/lib/libs3ring-uploader.a" \
		"$BUILD/lib/libs3ring-internal.a" -lcurl -lssl -lcrypto -lbsd -lpthread -lrt -lm
}

s3client_keys() {
	/usr/bin/python3 - "$1" "$2" <<'PY'
import random, sys
n, seed = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(seed)
special = "+=&@:,;!$'()*~"
alphabet = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    + list(special) + [" ", " "]
    + ["\u00e9", "\u00df", "\u03a9", "\u0416", "\u05d0", "\u0627", "\u4e2d",
       "\u6587", "\u3042", "\ud55c", "\u20ac", "\u2603", "\u0301", "\ufb01",
       "\U0001F600", "\U0001F4A9", "\U00010348", "\U0001D11E", "\U00020000"])

def segment(i):
    s = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
    # "." and ".." segments are kept out: not every server stores them.
    return s if s not in (".", "..") else s + "x"

fixed = ["a b", "plus+sign", "~tilde/~", "eq=amp&at@", "colon:comma,semi;",
         "bang!dollar$quote'", "paren(star)*", "\u00fcml\u00e4ut/\U0001F600",
         "/".join(["deep"] * 40) + "/leaf", " leading and trailing "]
for i in range(n):
    if i < len(fixed):
        key = fixed[i] + "-%d" % i
    else:
        depth = rng.choice([1, 2, 3, 5, 8, 20])
        key = "/".join(segment(i) for _ in range(depth))
        key += special[i % len(special)] + "-%d" % i
    print(key.encode("utf-8").hex())
PY
}

s3client_no_secret() {
	local log=$1 s
	shift
	for s in "$@"; do
		if grep -qF -- "$s" "$log"; then
			echo "FAIL: a secret appears in $log" >&2
			return 1
		fi
	done
}

# s3client_clean_log LOG: fails if a sanitizer reported anything in LOG
# (the client's exit status is not checked for every command, its stderr is).
s3client_clean_log() {
	if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|WARNING: ThreadSanitizer|runtime error:' "$1"; then
		grep -E -A5 'Sanitizer|runtime error:' "$1" | head -40
		echo "FAIL: sanitizer report in $1" >&2
		return 1
	fi
}
