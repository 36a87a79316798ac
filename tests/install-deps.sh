#!/usr/bin/env bash
# install-deps.sh -- installs what the build and the test suite need, idempotently.
#
# Debian packages are installed only when missing, so a second run makes no
# network request and takes well under a second. s3rver comes from npm into
# the project-local folder .deps/ (ignored by git), never into the system.
#
# Works unattended (CI=true, no stdin). Package postinst scripts are not
# allowed to start system services (nginx, swift, ...): the test servers are
# started by tests/servers/*.sh on 127.0.0.1 only, never by the init system.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
	build-essential pkg-config clang
	# libFuzzer and the sanitizer runtimes for clang (a Recommends of clang)
	libclang-rt-dev
	libcurl4-openssl-dev libssl-dev libbsd-dev libcmocka-dev
	# shmstat --listen serves /metrics with it (shmstat only)
	libmicrohttpd-dev
	# batch mode compresses with zlib and libzstd; the tests read the
	# objects back with the command-line tools
	zlib1g-dev libzstd-dev zstd gzip
	python3 python3-botocore
	nodejs
	curl procps util-linux man-db coreutils iproute2
	# systemd-analyze verify checks the unit file (no init is started)
	systemd
	# test servers (tests/servers/): Swift with s3api, nginx WebDAV, wrk, TLS
	swift swift-proxy swift-account swift-container swift-object python3-swift
	memcached nginx wrk openssl
	# s3ring-bench upload: the AWS CLI reference point, its peak RSS (GNU time)
	awscli time
	# reliability suite: clock skew (faketime), leak check (valgrind)
	faketime valgrind
	# the JVM and Python bindings (producer/java, producer/python) and their tests
	openjdk-17-jdk-headless junit5 kotlin python3-dev python3-pytest python3-numpy
)
# npm: Debian's package, unless a node distribution that ships npm is there.
command -v npm >/dev/null 2>&1 || PKGS+=(npm)

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
	# Keep services from being started by the packages' postinst scripts,
	# unless the machine already has its own policy.
	policy=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		policy=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
		$SUDO chmod 755 "$policy"
		trap '$SUDO rm -f "$policy"' EXIT
	fi
	$SUDO apt-get update -qq </dev/null
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		"${missing[@]}" </dev/null >/dev/null
fi

S3RVER_VERSION=3.7.1
if [ ! -x .deps/node_modules/.bin/s3rver ]; then
	echo "install-deps: installing s3rver $S3RVER_VERSION into .deps/"
	mkdir -p .deps
	npm install --prefix .deps --no-audit --no-fund --loglevel=error "s3rver@$S3RVER_VERSION" </dev/null >/dev/null
fi
