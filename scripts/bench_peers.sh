#!/usr/bin/env bash
# The side-by-side benchmarks against the other Lua networking modules and raw C
# (tests/bench/peers/run.lua). Called as `./run.sh bench peers [--quick] [--only LIB,...]`;
# the test stage runs `--quick --only net --tap`.
#
# Installs the peers (scripts/deps.sh: lua-socket, lua-sec, lua-luv, lua-cqueues,
# lua-luaossl, gnuplot-nox, libssl-dev) unless --no-deps, builds the release net.so and
# the C servers and client, makes a test PKI (an RSA-4096 certificate for the handshake
# workloads), raises the open-file limit for the 10,000 idle connections, and writes
# build/bench/results.json and build/bench/*.png. Figures only: it fails only when
# something could not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

deps=1
build=1
args=()
for a in "$@"; do
	case "$a" in
	--no-deps) deps=0 ;;
	--no-build) build=0 ;;
	*) args+=("$a") ;;
	esac
done

[ "$deps" = 1 ] && bash scripts/deps.sh
[ "$build" = 1 ] && bash scripts/build.sh release

OUT=$ROOT/build/bench
BIN=$OUT/bin
mkdir -p "$BIN"
CFLAGS=(-O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra)
cc "${CFLAGS[@]}" -o "$BIN/bench_server" tests/bench/peers/bench_server.c -lssl -lcrypto -lpthread
cc "${CFLAGS[@]}" -o "$BIN/bench_client" tests/bench/peers/bench_client.c -lssl -lcrypto

# A fresh PKI per run (certificates are made at run time, never stored).
PKI=$(mktemp -d)
trap 'rm -rf "$PKI"' EXIT
if ! bash tests/tools/mkcerts.sh "$PKI" >"$PKI.log" 2>&1; then
	cat "$PKI.log" >&2
	rm -f "$PKI.log"
	exit 1
fi
rm -f "$PKI.log"

# 10,000 idle connections need more descriptors than the usual soft limit; run.lua
# scales down (and says so) when even the hard limit is too low.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

export SLUICE_ROOT=$ROOT SLUICE_BUILD=$ROOT/build/release SLUICE_MODE=release
export LUA_CPATH="$ROOT/build/release/?.so;;"
export LUA_PATH="$ROOT/tests/lua/?.lua;$ROOT/data/?.lua;;"
export SLUICE_HOSTS_FILE=$ROOT/tests/lua/hosts
export SLUICE_LUA=${SLUICE_LUA:-lua5.4}
export BENCH_BIN=$BIN BENCH_PKI=$PKI
"$SLUICE_LUA" tests/bench/peers/run.lua --out "$OUT" "${args[@]}"
