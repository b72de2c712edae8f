#!/usr/bin/env bash
# Cross-builds sluice for Windows (x86_64, mingw-w64) into build/windows/:
#
#   net.dll          the module (`require "net"` from a Windows Lua 5.4);
#                    exports luaopen_net only (lua/exports.map), imports Lua
#                    from lua54.dll
#   plugin/net.dll   the editor plugin (Lite XL, Pragtical): exports its
#                    entry points only (plugin/exports.map), imports no Lua
#                    symbol; mbedTLS, zlib, c-ares inside
#   sluice.dll       the C API (net/net.h), with libsluice.dll.a to link it
#   libsluice.a      the engine alone, static: link it with build/windows/deps'
#                    libmbedtls, libmbedx509, libmbedcrypto, libcares, libz,
#                    winpthread and ws2_32 iphlpapi crypt32 bcrypt advapi32
#   c_api_example.exe  the C API example, and the C test programs that are
#                    written for Windows too (tests/c_api/win_*.c)
#   lua.exe, lua54.dll, luac.exe  the Windows Lua 5.4 (scripts/win_deps.sh)
#   xl_host.exe      tests/windows/xl_host.c: a host like the Windows editors
#                    (Lua static, nothing exported) that loads plugin/net.dll
#
# The dependencies come from scripts/win_deps.sh (Debian's source packages,
# built once into build/windows/deps/). Compiling is driven by a Makefile
# this script writes (build/windows/build.mk, with header dependencies), so a
# second run rebuilds only what changed. Compiler output goes to
# build/logs/build-windows.log; every failing file is reported.
#
#   scripts/build_windows.sh         JOBS=N sets make's -j (default 2)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

JOBS=${JOBS:-2}
HOST=x86_64-w64-mingw32
WIN=build/windows
DEPS=$WIN/deps
LOGDIR=build/logs
LOG=$LOGDIR/build-windows.log
mkdir -p "$LOGDIR" "$WIN/plugin" "$WIN/gen"

bash scripts/win_deps.sh --wine

# The engine on Windows: every net/*.c but the POSIX OS layer and the POSIX
# pollers, with the Windows OS layer and the WSAPoll poller.
engine=()
for f in net/*.c; do
	case "$f" in
	net/os_posix.c | net/poll_epoll.c | net/poll_poll.c | net/poll_kqueue.c) ;;
	*) engine+=("$f") ;;
	esac
done
absent=()
for f in net/os_win.c net/poll_wsapoll.c; do
	[ -f "$f" ] || absent+=("$f")
done

# The plugin's Lua-API shim, from the headers of the Windows Lua.
if ! lua5.4 plugin/gen_shim.lua -I "$ROOT/$DEPS/lua/include" -o "$ROOT/$WIN/gen" lua/*.c lua/*.h \
	>"$LOGDIR/gen-shim-windows.log" 2>&1; then
	echo "build windows: plugin/gen_shim.lua failed:" >&2
	cat "$LOGDIR/gen-shim-windows.log" >&2
	exit 1
fi

# Only the entry points leave the DLLs: the engine's objects carry
# dllexport directives (NET_API, for sluice.dll), so the module and the
# plugin link copies stripped of them (.drectve) and export what a .def file
# lists: the `global:` names of the Linux version scripts, so both agree.
def_from_map() {   # MAP DEF
	local names
	names=$(tr '\n' ' ' <"$1" | sed -n 's/.*global:\([^}]*\)local:.*/\1/p' | tr ';' '\n' | tr -d ' \t' | grep . || true)
	[ -n "$names" ] || { echo "build windows: no global: names in $1" >&2; exit 1; }
	{ echo EXPORTS; printf '\t%s\n' $names; } >"$2.tmp"
	cmp -s "$2.tmp" "$2" && rm -f "$2.tmp" || mv "$2.tmp" "$2"
	echo $names
}
net_exports=$(def_from_map lua/exports.map "$WIN/net.def")
plugin_exports=$(def_from_map plugin/exports.map "$WIN/plugin.def")

objs() {   # DIR FILES... -> DIR/<basename>.o for each
	local d=$1 f
	shift
	for f in "$@"; do printf ' %s/%s.o' "$d" "$(basename "${f%.c}")"; done
}

lua_srcs=(lua/*.c)
cat >"$WIN/build.mk.tmp" <<EOF
# Written by scripts/build_windows.sh; do not edit.
CC := $HOST-gcc
AR := $HOST-ar
OBJCOPY := $HOST-objcopy
W := $WIN
D := $DEPS
# the same warnings and dialect as the Linux build (premake5.lua)
BASE := -std=c11 -O2 -g -Wall -Wextra -MMD -MP \\
	-D_WIN32_WINNT=0x0A00 -DWIN32_LEAN_AND_MEAN -DNOMINMAX -DCARES_STATICLIB -D__USE_MINGW_ANSI_STDIO=1
ENGINE_CFLAGS := \$(BASE) -I\$(D)/mbedtls/include -I\$(D)/cares/include -I\$(D)/zlib/include
LUA_CFLAGS := \$(BASE) -I\$(D)/lua/include
PLUGIN_CFLAGS := \$(LUA_CFLAGS) -DSLUICE_PLUGIN -Dluaopen_net=sluice_luaopen_net \\
	-include \$(W)/gen/lua_shim.h
# static dependencies, then winpthreads (mbedTLS's threading layer) and
# libgcc linked in, so the DLLs need only system DLLs (and lua54.dll)
STATIC_LIBS := \$(D)/mbedtls/lib/libmbedtls.a \$(D)/mbedtls/lib/libmbedx509.a \\
	\$(D)/mbedtls/lib/libmbedcrypto.a \$(D)/cares/lib/libcares.a \$(D)/zlib/lib/libz.a \\
	-static-libgcc -Wl,-Bstatic -lwinpthread -Wl,-Bdynamic
SYS_LIBS := -lws2_32 -liphlpapi -lcrypt32 -lbcrypt -ladvapi32 -lpsapi

C_TESTS :=$(for f in tests/c_api/c_api_example.c tests/c_api/win_*.c; do [ -f "$f" ] && printf ' $(W)/%s.exe' "$(basename "${f%.c}")"; done)
ENGINE_OBJS :=$(objs '$(W)/obj/engine' "${engine[@]}")
ENGINE_NX :=$(objs '$(W)/obj/engine-nx' "${engine[@]}")
LUA_OBJS :=$(objs '$(W)/obj/lua' "${lua_srcs[@]}")
PLUGIN_OBJS :=$(objs '$(W)/obj/plugin' "${lua_srcs[@]}") \$(W)/obj/plugin/entry.o \$(W)/obj/plugin/lua_shim.o

all: \$(W)/net.dll \$(W)/plugin/net.dll \$(W)/sluice.dll \$(W)/libsluice.a \\
	\$(C_TESTS) \$(W)/lua.exe \$(W)/luac.exe \$(W)/lua54.dll \$(W)/xl_host.exe
engine: \$(ENGINE_OBJS)
lua: \$(LUA_OBJS)

\$(W)/obj/engine/%.o: net/%.c | \$(W)/obj/engine
	\$(CC) \$(ENGINE_CFLAGS) -c \$< -o \$@
\$(W)/obj/engine-nx/%.o: \$(W)/obj/engine/%.o | \$(W)/obj/engine-nx
	\$(OBJCOPY) -R .drectve \$< \$@
\$(W)/obj/lua/%.o: lua/%.c | \$(W)/obj/lua
	\$(CC) \$(LUA_CFLAGS) -DLUA_BUILD_AS_DLL -c \$< -o \$@
\$(W)/obj/plugin/%.o: lua/%.c \$(W)/gen/lua_shim.h | \$(W)/obj/plugin
	\$(CC) \$(PLUGIN_CFLAGS) -MT \$@ -c \$< -o \$@.x && \$(OBJCOPY) -R .drectve \$@.x \$@ && rm -f \$@.x
\$(W)/obj/plugin/entry.o: plugin/entry.c \$(W)/gen/lua_shim.h | \$(W)/obj/plugin
	\$(CC) \$(PLUGIN_CFLAGS) -MT \$@ -c \$< -o \$@.x && \$(OBJCOPY) -R .drectve \$@.x \$@ && rm -f \$@.x
\$(W)/obj/plugin/lua_shim.o: \$(W)/gen/lua_shim.c | \$(W)/obj/plugin
	\$(CC) \$(LUA_CFLAGS) -I\$(W)/gen -c \$< -o \$@
\$(W)/obj/engine \$(W)/obj/engine-nx \$(W)/obj/lua \$(W)/obj/plugin \$(W)/obj/xl_host:
	mkdir -p \$@

\$(W)/net.dll: \$(LUA_OBJS) \$(ENGINE_NX) \$(W)/net.def
	\$(CC) -shared -o \$@ \$(LUA_OBJS) \$(ENGINE_NX) \$(W)/net.def \\
		\$(D)/lua/lib/liblua54.dll.a \$(STATIC_LIBS) \$(SYS_LIBS)
\$(W)/plugin/net.dll: \$(PLUGIN_OBJS) \$(ENGINE_NX) \$(W)/plugin.def
	\$(CC) -shared -o \$@ \$(PLUGIN_OBJS) \$(ENGINE_NX) \$(W)/plugin.def \$(STATIC_LIBS) \$(SYS_LIBS)
\$(W)/sluice.dll: \$(ENGINE_OBJS)
	\$(CC) -shared -o \$@ \$(ENGINE_OBJS) -Wl,--out-implib,\$(W)/libsluice.dll.a \$(STATIC_LIBS) \$(SYS_LIBS)
\$(W)/libsluice.a: \$(ENGINE_OBJS)
	rm -f \$@ && \$(AR) rcs \$@ \$(ENGINE_OBJS)
\$(C_TESTS): \$(W)/%.exe: tests/c_api/%.c \$(W)/libsluice.a
	\$(CC) \$(filter-out -MMD -MP,\$(BASE)) -Inet -o \$@ \$< \$(W)/libsluice.a \$(STATIC_LIBS) \$(SYS_LIBS)
\$(W)/%.exe: \$(D)/lua/bin/%.exe
	cp \$< \$@
\$(W)/lua54.dll: \$(D)/lua/bin/lua54.dll
	cp \$< \$@
# The editors' Lua is static and exports nothing: liblua54.a's objects were
# built for lua54.dll and carry dllexport directives, so the host links a
# copy stripped of them.
\$(W)/obj/xl_host/liblua54.a: \$(D)/lua/lib/liblua54.a | \$(W)/obj/xl_host
	\$(OBJCOPY) -R .drectve \$< \$@
\$(W)/xl_host.exe: tests/windows/xl_host.c tests/plugin/xl_loader.h \$(W)/gen/lua_names.h \$(W)/obj/xl_host/liblua54.a
	\$(CC) \$(filter-out -MMD -MP,\$(BASE)) -I\$(D)/lua/include -I\$(W)/gen -o \$@ \$< \
		\$(W)/obj/xl_host/liblua54.a -lshell32 -static-libgcc

# a change of flags or files rebuilds (this file is rewritten only then)
\$(ENGINE_OBJS) \$(LUA_OBJS) \$(PLUGIN_OBJS): \$(W)/build.mk
-include \$(wildcard \$(W)/obj/*/*.d)
.PHONY: all engine lua
EOF
cmp -s "$WIN/build.mk.tmp" "$WIN/build.mk" && rm -f "$WIN/build.mk.tmp" || mv "$WIN/build.mk.tmp" "$WIN/build.mk"

if [ ${#absent[@]} -gt 0 ]; then
	echo "build windows: missing ${absent[*]} (the Windows OS layer and poller): the engine cannot link yet" >&2
fi

status=0
built=0
if make -f "$WIN/build.mk" -j"$JOBS" -k all >"$LOG" 2>&1 && [ ${#absent[@]} -eq 0 ]; then
	built=1
	if grep -q 'warning:' "$LOG"; then
		echo "build windows: ok ($(grep -c 'warning:' "$LOG") warnings, see $LOG)"
	else
		echo "build windows: ok"
	fi
else
	status=1
	echo "build windows: FAILED (full log: $LOG)" >&2
	# which targets failed, and the first error of each file named in an error
	failed=$(sed -n 's/^make: \*\*\* \[[^]]*: \(.*\)\] Error.*/\1/p' "$LOG" | sed 's|.*/||' | sort -u | tr '\n' ' ')
	[ -n "$failed" ] && echo "failed targets: $failed" >&2
	echo "first error per file:" >&2
	grep -E ': (fatal )?error:' "$LOG" | awk -F: '!seen[$1]++' | head -n 60 >&2 || true
	grep -E 'undefined reference|cannot find' "$LOG" | head -n 20 >&2 || true
fi

# What the DLLs import and export: the plugin must import no Lua symbol and
# export only its entry points; the module only luaopen_net.
sorted() { printf '%s\n' "$@" | sort | tr '\n' ' ' | sed 's/ $//'; }
check_dll() {   # DLL "allowed exports" forbid-import-regex
	local dll=$1 allowed=$2 forbid=$3 dump exports dlls
	[ -f "$dll" ] || return 0
	dump=$("$HOST-objdump" -p "$dll")
	exports=$(awk '/\[Ordinal\/Name Pointer\] Table/ { on = 1; next } on && /^\t\[/ { print $NF; next } on { on = 0 }' <<<"$dump" | sort | tr '\n' ' ')
	dlls=$(awk '/DLL Name:/ { print $3 }' <<<"$dump" | sort -u | tr '\n' ' ')
	if [ "${exports% }" != "$allowed" ]; then
		echo "build windows: $dll exports '${exports% }', expected '$allowed'" >&2
		status=1
	fi
	if [ -n "$forbid" ] && grep -Eiq "$forbid" <<<"$dlls"; then
		echo "build windows: $dll imports from $dlls" >&2
		status=1
	fi
	exports=${exports% }
	echo "build windows: $dll: exports ${exports:-nothing}; imports from ${dlls% }"
}
# (not the DLLs of an earlier build when this one failed)
if [ "$built" -eq 1 ]; then
	check_dll "$WIN/net.dll" "$(sorted $net_exports)" "winpthread|libgcc|mbed|cares|zlib"
	check_dll "$WIN/plugin/net.dll" "$(sorted $plugin_exports)" "lua|winpthread|libgcc|mbed|cares|zlib|sdl"
	check_dll "$WIN/xl_host.exe" "" "lua|libgcc|sdl"
fi

# Under wine (its own prefix in build/windows/wineprefix; the first start
# creates it, which takes a while): the Windows Lua runs, and loads net.dll.
# Debian's wine64 package puts its loader in /usr/lib/wine (the `wine`
# package adds the /usr/bin wrappers).
wine=$(command -v wine64 || true)
[ -z "$wine" ] && [ -x /usr/lib/wine/wine64 ] && wine=/usr/lib/wine/wine64
if [ -n "$wine" ]; then
	export WINEPREFIX=$ROOT/$WIN/wineprefix WINEDEBUG=-all
	if out=$(cd "$WIN" && "$wine" lua.exe -e 'print(_VERSION)' 2>&1) && [[ "$out" == *"Lua 5.4"* ]]; then
		out=${out//$'\r'/}
		echo "build windows: wine lua.exe: ${out##*$'\n'}"
	else
		echo "build windows: wine lua.exe failed: $out" >&2
		status=1
	fi
	if [ "$built" -eq 1 ]; then
		if out=$(cd "$WIN" && "$wine" lua.exe -e 'package.cpath = ".\\?.dll"; local net = require "net"; print(type(net))' 2>&1) &&
			[[ "$out" == *table* ]]; then
			echo "build windows: wine lua.exe loads net.dll"
		else
			echo "build windows: wine lua.exe cannot load net.dll: $out" >&2
			status=1
		fi
	fi
fi
exit $status
