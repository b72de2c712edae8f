#!/usr/bin/env bash
# Makes sure the Debian packages needed to build and test sluice are
# installed. Quiet when they all are; otherwise runs `apt-get update` once and
# installs the missing ones (through sudo when not root).
set -euo pipefail

PACKAGES=(
	build-essential   # gcc, make, libc headers
	pkg-config
	premake4
	libsdl2-dev
	libmbedtls-dev
	liblua5.4-dev     # headers, liblua5.4.a for tests/tools/luahost
	lua5.4
	lua-busted
	lua-socket        # LuaSocket, the reference sluice.socket is compared with (socket_spec)
	openssl           # TLS peers and certificates made at test time
	python3           # http.server for the HTTP tests
	procps            # ps, pkill
	iproute2          # ss and ip, used by the socket-option and multicast tests
	strace            # the audit of the caller's system calls (tests/layout)
	binutils          # nm and readelf, for the plugin's import and export checks
	libc-ares-dev     # custom resolvers (net.create_resolver): c-ares on the I/O thread
	zlib1g-dev        # gzip/deflate HTTP bodies and permessage-deflate (net/inflate.c)
	lua-cjson         # the baseline of the JSON benchmark (tests/bench/json.lua)
	clang             # libFuzzer for the fuzz targets (scripts/fuzz.sh)
	python3-websockets  # a WebSocket peer: frames and permessage-deflate offers to check ours against
	wrk               # the request-rate peer of tests/bench/http.lua
	nginx-light       # a real HTTP server for http_nginx_spec (run in the foreground by the test)
	tinyproxy         # an HTTP CONNECT proxy peer for proxy_spec (run in the foreground by the test)
	microsocks        # a SOCKS5 proxy peer for proxy_spec
	# the peers of the side-by-side benchmarks (scripts/bench_peers.sh)
	lua-sec           # LuaSec: LuaSocket's TLS
	lua-luv           # libuv for Lua
	lua-cqueues       # cqueues, with lua-luaossl for its TLS
	lua-luaossl
	libssl-dev        # the C TLS servers and the raw C TLS client (OpenSSL)
	gnuplot-nox       # the PNG charts of the benchmark results
)

missing=()
for pkg in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	case "$status" in
	*" installed") ;;
	*) missing+=("$pkg") ;;
	esac
done

[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
	SUDO=()
elif command -v sudo >/dev/null 2>&1; then
	SUDO=(sudo)
else
	echo "deps: missing packages (${missing[*]}) and not root, and sudo is not available" >&2
	exit 1
fi
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# The test servers (nginx, tinyproxy) are started by the tests, on loopback,
# in the foreground: their packages must not start system services. A
# policy-rc.d that refuses is in place for the install only, unless one exists.
policy=/usr/sbin/policy-rc.d
ours=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null && "${SUDO[@]}" chmod 755 "$policy" && ours=1
fi
rc=0
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || rc=$?
if [ "$ours" -eq 1 ]; then "${SUDO[@]}" rm -f "$policy"; fi
exit $rc
