#!/usr/bin/env bash
# stage.sh: the Lua integration specs (tests/lua/*_spec.lua) with the Windows
# Lua (build/windows/lua.exe) and net.dll under wine, against peers on the
# Linux side of loopback started by the specs' helpers (tests/windows/
# unix_shell.lua runs their shell commands there). Each spec runs in
# tests/windows/spec_runner.lua, three at a time (tests/tools/specs.sh); the specs
# and tests that cannot run under wine are listed with the reason in
# tests/windows/skip.lua. Prints TAP; exits non-zero when a test failed.
#   tests/windows/stage.sh [SPEC.lua...]     (default: every spec)
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 2
W=$ROOT/build/windows
. tests/windows/wineserver.sh
export WINE WINEPREFIX=${WINEPREFIX:-$W/wineprefix} WINEDEBUG=-all LC_ALL=C.UTF-8
export SLUICE_ROOT=$ROOT SLUICE_BUILD=$ROOT/build/release SLUICE_MODE=windows
export SLUICE_HOSTS_FILE=$ROOT/tests/lua/hosts SLUICE_WIN_BUILD=$W SLUICE_UNIX_CWD=$ROOT SLUICE_TEST_HOOKS=1
export SLUICE_LUA=$ROOT/tests/windows/lua.sh   # the specs' child Lua processes: Windows ones too
export LUA_CPATH="Z:${W//\//\\}\\?.dll"
export LUA_PATH="$ROOT/tests/lua/?.lua;$ROOT/data/?.lua;/usr/share/lua/5.4/?.lua;/usr/share/lua/5.4/?/init.lua"
export LUA_INIT="@$ROOT/tests/windows/unix_shell.lua"
unset LUA_INIT_5_4 LUA_PATH_5_4 LUA_CPATH_5_4

for f in "$W/lua.exe" "$W/net.dll" "$SLUICE_BUILD/peer"; do
	[ -e "$f" ] || { echo "windows stage: $f is missing (./run.sh build windows release)"; exit 1; }
done
specs=("$@") times=()
if [ ${#specs[@]} -eq 0 ]; then
	mapfile -t specs < <(cd tests/lua && ls ./*_spec.lua | sed 's|^\./||')
	mkdir -p build/logs
	times=(-t build/logs/windows-lua.times)   # to start the longest first next time
fi

wine_server_up
trap wine_server_down EXIT

bash tests/tools/specs.sh "${times[@]}" -r tests/windows/spec_runner.lua \
	tests/windows/lua.sh -- "${specs[@]/#/tests/lua/}"
