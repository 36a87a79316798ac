# creds_lib.bash -- shared by the tests/it/creds_*.sh scripts (sourced after lib.sh;
# not named *.sh, so that tests/run.sh does not run it as a test).
#
# A clean AWS environment in $WORK/home (no keys, no profile, IMDS off
# unless a test turns it on), the credential stand-ins of
# tests/servers/aws_creds.sh, and a short uploader run that reports the
# start-up line.

unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE \
	AWS_SHARED_CREDENTIALS_FILE AWS_CONFIG_FILE AWS_WEB_IDENTITY_TOKEN_FILE \
	AWS_ROLE_ARN AWS_ROLE_SESSION_NAME AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
	AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_AUTHORIZATION_TOKEN \
	AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE AWS_EC2_METADATA_SERVICE_ENDPOINT \
	AWS_ENDPOINT_URL_STS AWS_ENDPOINT_URL_SSO AWS_ENDPOINT_URL
export HOME=$WORK/home AWS_EC2_METADATA_DISABLED=true
mkdir -p "$HOME/.aws"

# standin VAR NAME SERVICE OPTION...: starts a stand-in in $WORK/NAME and
# sets VAR to its URL; it is stopped by PID at exit. (Not called as $(...):
# the registration for the cleanup must happen in this shell.)
standin() {
	local var=$1 name=$2 svc=$3 url
	shift 3
	mkdir -p "$WORK/$name"
	url=$("$TOP/tests/servers/aws_creds.sh" start "$WORK/$name" "$svc" "$@" 2>>"$WORK/$name.err")
	IT_SERVERS+=("aws_creds:$WORK/$name")
	[ -n "$url" ] || fail "stand-in $svc did not start: $(cat "$WORK/$name.err")"
	printf -v "$var" '%s' "$url"
}

# requests NAME: the stand-in's request log.
requests() { cat "$WORK/$1/requests.log" 2>/dev/null; }

# count NAME FIELD VALUE: how many logged requests have FIELD == VALUE.
count() {
	requests "$1" | /usr/bin/python3 -c '
import json, sys
f, v = sys.argv[1], sys.argv[2]
print(sum(1 for l in sys.stdin if str(json.loads(l).get(f)) == v))' "$2" "$3"
}

# try_start [VAR=VALUE...]: runs the uploader with the extra environment
# until it has started (then stops it) or exited; prints its log and
# returns its exit status (0 when it started and stopped cleanly).
try_start() {
	local log=$WORK/try.log pid rc
	: >"$log"
	env "$@" timeout -s KILL 60 "$B/bin/s3ring-uploader" --ring "$RING-try" \
		--bucket bucket-creds --endpoint "$S3_ENDPOINT" --path-style \
		--spool "$WORK/spool" >"$log" 2>&1 &
	pid=$!
	for _ in $(seq 1 600); do
		grep -q 'msg="started"' "$log" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if grep -q 'msg="started"' "$log"; then
		kill -TERM "$(pgrep -P "$pid" | head -n 1)" 2>/dev/null
	fi
	wait "$pid"
	rc=$?
	"$B/tests/tool_ring" unlink "$RING-try" 2>/dev/null
	rm -f "/dev/shm/s3ring.$RING-try.journal"
	cat "$log" >>"$WORK/all-try.log"
	cat "$log"
	return $rc
}

# source_of LOG: the credentials= field of the start-up line.
source_of() {
	echo "$1" | grep 'msg="started"' | grep -o 'credentials=[^ ]*' | cut -d= -f2 | tr -d '"'
}

# expect_source WANT [VAR=VALUE...]: the uploader starts with that source.
expect_source() {
	local want=$1 out got
	shift
	out=$(try_start "$@") || fail "uploader did not start for $want: $(echo "$out" | tail -n 3)"
	got=$(source_of "$out")
	[ "$got" = "$want" ] || fail "source $got, expected $want: $(echo "$out" | grep -i cred)"
	log "source $want: ok"
}

# expect_refusal PATTERN [VAR=VALUE...]: the uploader refuses to start,
# with one error line matching PATTERN.
expect_refusal() {
	local pat=$1 out
	shift
	if out=$(try_start "$@"); then
		fail "uploader started, expected a refusal matching '$pat'"
	fi
	echo "$out" | grep -q -- "$pat" || fail "refusal without '$pat': $out"
	log "refused ($pat): ok"
}
