#!/usr/bin/env bash
# sluice: build, test, demo, benchmarks.
#
#   ./run.sh test [--mode M] [--only PAT]   build everything, run the whole
#                                          suite; last line "N passed, N failed"
#   ./run.sh demo [URL | host port | chat] run data/examples/demo.lua (chat:
#                                          data/examples/ws_chat.lua)
#   ./run.sh bench                         run tests/bench/*.lua (release build)
#   ./run.sh bench peers [--quick] [--only LIB,...]
#                                          side by side with raw C, LuaSocket/LuaSec,
#                                          luv, cqueues: build/bench/results.json, PNGs
#   ./run.sh build [config...]             build (release debug asan tsan poll;
#                                          windows: the mingw-w64 cross build)
#   ./run.sh install-plugin [USERDIR...]   install the editor plugin (Lite XL,
#                                          Pragtical; default: their user folders)
#   ./run.sh deps                          install missing Debian packages
#
# Installs what it needs from Debian's packages (through sudo when not root).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$ROOT"

usage() {
	sed -n '2,15p' "$ROOT/run.sh" | sed 's/^# \{0,1\}//'
}

# Environment for running Lua against build/$1 (also used by the tests).
lua_env() {
	export SLUICE_ROOT="$ROOT"
	export SLUICE_BUILD="$ROOT/build/$1"
	export SLUICE_MODE="$1"
	export LUA_CPATH="$ROOT/build/$1/?.so;;"
	export LUA_PATH="$ROOT/tests/lua/?.lua;$ROOT/data/?.lua;;"
	export SLUICE_LUA=lua5.4
}

cmd=${1:-help}
[ $# -gt 0 ] && shift

case "$cmd" in
test)
	exec bash scripts/test.sh "$@"
	;;
demo)
	bash scripts/deps.sh
	bash scripts/build.sh release
	lua_env release
	if [ "${1:-}" = chat ]; then
		exec lua5.4 data/examples/ws_chat.lua
	fi
	exec lua5.4 data/examples/demo.lua "$@"
	;;
bench)
	if [ "${1:-}" = peers ]; then
		shift
		exec bash scripts/bench_peers.sh "$@"
	fi
	bash scripts/deps.sh
	bash scripts/build.sh release
	lua_env release
	# names resolve only from the test hosts file, as in the tests
	export SLUICE_HOSTS_FILE="$ROOT/tests/lua/hosts"
	shopt -s nullglob
	benches=(tests/bench/*.lua)
	if [ ${#benches[@]} -eq 0 ]; then
		echo "bench: no tests/bench/*.lua"
		exit 1
	fi
	failed=0
	for b in "${benches[@]}"; do
		echo "==== $b"
		if ! lua5.4 "$b"; then
			echo "==== $b FAILED"
			failed=$((failed + 1))
		fi
	done
	echo "==== ${#benches[@]} benchmarks, $failed failed"
	[ "$failed" -eq 0 ]
	;;
build)
	bash scripts/deps.sh
	exec bash scripts/build.sh "$@"
	;;
deps)
	exec bash scripts/deps.sh
	;;
install-plugin)
	bash scripts/deps.sh
	exec bash scripts/install_plugin.sh "$@"
	;;
help|-h|--help)
	usage
	;;
*)
	echo "run.sh: unknown command '$cmd'" >&2
	usage >&2
	exit 2
	;;
esac
