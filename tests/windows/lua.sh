#!/bin/sh
# lua.sh: the Windows lua.exe under wine, for the child Lua processes the specs start
# (helpers' SLUICE_LUA). The environment (WINEPREFIX, LUA_PATH, LUA_CPATH) is the stage's.
export SLUICE_WSH_ID=$$   # unix_shell.lua: file names of its own
exec "${WINE:-wine64}" "$SLUICE_WIN_BUILD/lua.exe" "$@"
