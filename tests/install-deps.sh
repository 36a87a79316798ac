#!/usr/bin/env bash
# install-deps.sh -- installs what the build and the test suite need, idempotently.
#
# Debian packages are installed only when missing, so a second run makes no
# network request and takes well under a second. s3rver comes from npm into
# the project-local folder .deps/ (ignored by git), never into the system.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
	build-essential pkg-config clang
	libcurl4-openssl-dev libssl-dev libbsd-dev libcmocka-dev
	python3 python3-botocore
	nodejs npm
	curl procps util-linux man-db
)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -gt 0 ]; then
	echo "install-deps: installing ${missing[*]}"
	SUDO=
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

S3RVER_VERSION=3.7.1
if [ ! -x .deps/node_modules/.bin/s3rver ]; then
	echo "install-deps: installing s3rver $S3RVER_VERSION into .deps/"
	mkdir -p .deps
	npm install --prefix .deps --no-audit --no-fund --loglevel=error "s3rver@$S3RVER_VERSION" >/dev/null
fi
