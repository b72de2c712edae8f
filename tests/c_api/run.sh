#!/usr/bin/env bash
# The C API stage: the example against a loopback echo peer, the host wake-up
# tests (SDL linked, and SDL2 loaded RTLD_LOCAL), and the close that never waits. TAP on stdout. Usage: tests/c_api/run.sh BUILD_DIR
set -u
bin=${1:?usage: $0 BUILD_DIR}
rounds=1000
[ "${SLUICE_MODE:-}" = tsan ] && rounds=200
out=$(mktemp)
"$bin/peer" echo >"$out" &
peer=$!
trap 'kill $peer 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 50); do [ -s "$out" ] && break; sleep 0.1; done
if "$bin/c_api_example" 127.0.0.1 "$(head -n 1 "$out")"; then
	echo "ok - c_api_example echoes through the C API"
else
	echo "not ok - c_api_example echoes through the C API"
fi
"$bin/wakeup_test" "$rounds"
"$bin/wakeup_race" 3
"$bin/sdl_local" libSDL2-2.0.so.0
"$bin/sdl_local" libSDL2-2.0.so   # the development link: another name of the same file
"$bin/close_nowait"
