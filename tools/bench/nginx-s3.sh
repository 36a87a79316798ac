#!/usr/bin/env bash
# nginx-s3.sh -- nginx as tests/servers/nginx.sh configures it, plus an
# answer to S3's bucket check, for s3ring-bench upload.
#
# Use it as NGINX_BIN for tests/servers/nginx.sh:
#   NGINX_BIN=tools/bench/nginx-s3.sh tests/servers/nginx.sh start DIR BUCKET
# The uploader checks its bucket with HEAD /BUCKET before it uploads. Plain
# WebDAV answers that with 301 (a directory without its trailing slash),
# which the uploader rightly takes for a configuration error. This wrapper
# adds one location to the generated configuration (the `-c FILE` argument):
# a path of one segment, /BUCKET, answers 200 with no body. Everything else
# (PUT /BUCKET/KEY stored in DIR/data, /null/) is unchanged. Then it execs
# the real nginx, so timeout(1), the PID file and `nginx.sh stop` see nginx
# itself.
set -euo pipefail
real=${NGINX_REAL_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}
conf=
prev=
for a in "$@"; do
	[ "$prev" = -c ] && conf=$a
	prev=$a
done
if [ -n "$conf" ] && [ -f "$conf" ] && ! grep -q 's3ring-bench bucket' "$conf"; then
	# insert before the first `location / {`
	sed -i '0,/^\t\tlocation \/ {/s//\t\t# s3ring-bench bucket check: HEAD \/BUCKET\n\t\tlocation ~ "^\/[A-Za-z0-9._-]+$" {\n\t\t\treturn 200;\n\t\t}\n\t\tlocation \/ {/' "$conf"
	grep -q 's3ring-bench bucket' "$conf" || { echo "nginx-s3.sh: could not patch $conf" >&2; exit 1; }
fi
exec "$real" "$@"
