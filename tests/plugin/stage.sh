#!/usr/bin/env bash
# The "plugin" stage of scripts/test.sh for one mode (TAP on stdout):
#
#   tests/plugin/stage.sh MODE [--filter=PAT]
#
# 1. Checks of the editor build build/MODE/plugin/net.so: it imports no Lua,
#    SDL or mbedTLS symbol, needs no library but libc, and exports only its
#    entry points; a module importing mbedTLS by name would be captured by a
#    host's own mbedTLS (the standalone net.so under the aborting stub);
#    the shim's list of required functions matches what the objects use and
#    what Lite XL 2.1.7 serves; it loads in build/MODE/xl_host (Lite XL's and
#    Pragtical's loaders, the README's install layout) while the ordinary
#    net.so cannot; a host lacking a function fails loudly without crashing;
#    a plain Lua host loads it too (luaopen_net).
# 2. The Lua integration specs (tests/lua; release and tsan only) and the
#    editor-plugin specs (tests/plugin) under build/MODE/xl_host, three
#    files at a time (tests/tools/specs.sh), with LUA_CPATH pointing at
#    build/MODE/plugin/, serving only the functions Lite XL 2.1.7 serves; then
#    the host specs again in hosts with their own libraries preloaded
#    (XL_HOST_PRELOAD): an SDL3 and an SDL2 editor, and one carrying a foreign
#    mbedTLS whose every function aborts.
# With --filter (./run.sh test --only PAT) only part 2 runs, filtered.
# SLUICE_PLUGIN_PATTERN (busted --pattern, default _spec) narrows part 2,
# e.g. to save time under ThreadSanitizer.
#
# Expects the environment scripts/test.sh sets for the mode (SLUICE_ROOT,
# SLUICE_BUILD, SLUICE_LUA, ...). Exits non-zero when anything failed.
set -u

mode=${1:?usage: stage.sh MODE [--filter=PAT]}
shift
filter=()
for a in "$@"; do
	case "$a" in
	--filter=*) filter=("$a") ;;
	*) echo "stage.sh: unknown argument '$a'" >&2; exit 2 ;;
	esac
done

ROOT=${SLUICE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
cd "$ROOT" || exit 2
B="$ROOT/build/$mode"
SO="$B/plugin/net.so"
HOST="$B/xl_host"
API="$ROOT/tests/plugin/lite_xl_api.txt"
REQUIRED="$ROOT/build/gen/lua_required.txt"
OBJDIR="$ROOT/build/obj/$mode/net_plugin"
PLAIN_LUA=${SLUICE_LUA:-lua5.4}

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
	n=$((n + 1))
	failed=1
	echo "not ok $n - $1"
	shift
	printf '%s\n' "$@" | head -n 20 | sed 's/^/# /'
}
# check STATUS DESCRIPTION DETAILS... : ok when STATUS is 0. Call it as
# `check $? ...`: $? is expanded before the $(...) in the details run.
check() {
	local rc=$1
	shift
	if [ "$rc" -eq 0 ]; then ok "$1"; else not_ok "$@"; fi
}

TMP=$(mktemp -d 2>/dev/null || mktemp -d -t sluice)
trap 'rm -rf "$TMP"' EXIT

# xl_host -e CODE with LUA_CPATH=$1, extra env before; output in $TMP/out, $TMP/err
run_host() {
	local cpath=$1
	shift
	env LUA_CPATH="$cpath" XL_HOST_API="$API" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
	local rc=$?
	cat "$TMP/err" >&2   # into the stage log, where sanitizer reports are looked for
	return $rc
}

if [ ${#filter[@]} -eq 0 ]; then
	if [ ! -e "$SO" ] || [ ! -x "$HOST" ]; then
		echo "not ok 1 - $SO and $HOST exist (build the $mode configuration)"
		echo "1..1"
		exit 1
	fi

	# --- the shared object: what it imports, needs and exports
	undef=$(nm -D --undefined-only "$SO" | awk '{print $NF}' | grep -E '^(luaL?_|SDL_|mbedtls_|psa_)')
	[ -z "$undef" ]
	check $? "plugin/net.so imports no Lua, SDL or mbedTLS symbol" "$undef"

	needed=$(readelf -d "$SO" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p')
	# (the sanitizer builds need their runtime too)
	extra=$(grep -vE '^(libc\.so\.6|ld-linux[-a-z0-9_.]*\.so\.[0-9]+|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|lib[at]san\.so\.[0-9]+|libubsan\.so\.[0-9]+)$' <<<"$needed")
	[ -z "$extra" ]
	check $? "plugin/net.so needs no library but libc ($(tr '\n' ' ' <<<"$needed"))" "needs: $extra"

	exported=$(nm -D --defined-only "$SO" | awk '{print $3}' | sort | tr '\n' ' ')
	[ "$exported" = "luaopen_lite_xl_net luaopen_net luaopen_pragtical_net " ]
	check $? "plugin/net.so exports only luaopen_lite_xl_net, luaopen_pragtical_net, luaopen_net" \
		"exported: $exported"

	glibc=$(objdump -T "$SO" | grep -o 'GLIBC_[0-9.]*' | sort -t. -k2,2n -k3,3n -u | tail -n 1)
	echo "# plugin/net.so needs glibc ${glibc#GLIBC_} or later"

	case "$mode" in
	release|poll)   # sanitizer runtimes refuse LD_PRELOAD of anything before them
		env LD_PRELOAD="$B/libmbedtls_stub.so" LUA_CPATH="$B/?.so" "$PLAIN_LUA" -e '
			local net = require "net"
			local s = net.create_server("127.0.0.1", 0)
			local c = net.open_tcp("127.0.0.1", s:get_port(), {verify = false})
			c:wait_until_connected(3000)' >"$TMP/out" 2>"$TMP/err" </dev/null
		grep -q "mbedtls_stub: the host's mbedtls_" "$TMP/err"
		check $? "control: the standalone net.so, which imports mbedTLS by name, is captured by the host's" \
			"stderr: $(cat "$TMP/err")"
		;;
	esac

	# --- the shim's required list
	used=$(for o in "$OBJDIR"/*.o; do
		case "$o" in */lua_shim.o | */entry.o) continue ;; esac
		nm --undefined-only "$o" | awk '{print $NF}' | sed -n 's/^sluice_p_//p'
	done | sort -u)
	unlisted=$(comm -13 <(sort -u "$REQUIRED") <(printf '%s\n' "$used"))
	[ -n "$used" ] && [ -z "$unlisted" ]
	check $? "every Lua API function the binding calls is checked by sluice_shim_init" \
		"used but not in $REQUIRED: $unlisted"

	not_served=$(comm -23 <(sort -u "$REQUIRED") <(grep -v '^#' "$API" | sort -u))
	[ -z "$not_served" ]
	check $? "Lite XL 2.1.7 serves every function the plugin needs" "not served: $not_served"

	# --- the generator on tricky declarations (multi-line, comments, a function
	# returning a function pointer, a variable) added to a copy of the headers
	gen_ok=1
	lua_inc=$(sed -n 's/^#include "\(.*\)\/lua\.h"$/\1/p' "$ROOT/build/gen/lua_shim.h")
	mkdir -p "$TMP/inc" && cp "$lua_inc"/*.h "$TMP/inc/" || gen_ok=0
	# shellcheck disable=SC2016
	awk -v extra='
LUA_API void (*(lua_xtest_fp) (lua_State *L,
                               int n)) (int);
LUA_API lua_CFunction
lua_xtest_multi
  (lua_State *L, /* a comment; with a semicolon */ const char *s,
   ...);
LUA_API int lua_xtest_plain (lua_State *L, int (*cb) (lua_State *L, int k));
LUA_API const char lua_xtest_var[];
' '{ lines[NR] = $0 } /^#endif/ { last = NR }
	   END { for (i = 1; i <= NR; i++) { if (i == last) print extra; print lines[i] } }' \
		"$lua_inc/lua.h" >"$TMP/inc/lua.h" || gen_ok=0
	cat >"$TMP/use.c" <<'EOC'
static int f(lua_State *L) { lua_pcall(L, 0, 0, 0); (void)lua_tostring(L, 1); return luaL_checkinteger(L, 1) > 0; }
static const luaL_Reg funcs[] = {{"f", f}, {NULL, NULL}};
int open_it(lua_State *L);
int open_it(lua_State *L) { luaL_newlib(L, funcs); return lua_xtest_plain(L, 0); }
EOC
	gen_log=$(
		lua5.4 plugin/gen_shim.lua -I "$TMP/inc" -o "$TMP/gen" "$TMP/use.c" 2>&1 &&
			cc -std=c11 -Wall -Wextra -Werror -c -include "$TMP/gen/lua_shim.h" "$TMP/gen/lua_shim.c" -o "$TMP/gen/shim.o" 2>&1 &&
			cc -std=c11 -Wall -Wextra -Werror -c -include "$TMP/gen/lua_shim.h" "$TMP/use.c" -o "$TMP/gen/use.o" 2>&1
	) || gen_ok=0
	got_required=$(sort "$TMP/gen/lua_required.txt" 2>/dev/null | tr '\n' ' ')
	want_required="luaL_checkinteger luaL_checkversion_ luaL_setfuncs lua_createtable lua_pcallk lua_tolstring lua_xtest_plain "
	direct=$(nm --undefined-only "$TMP/gen/use.o" 2>/dev/null | grep -E ' luaL?_')
	[ "$gen_ok" = 1 ] && [ "$got_required" = "$want_required" ] && [ -z "$direct" ] &&
		grep -q 'SLUICE_LUA_API(lua_xtest_fp)' "$TMP/gen/lua_names.h" &&
		grep -q 'SLUICE_LUA_API(lua_xtest_multi)' "$TMP/gen/lua_names.h" &&
		! grep -q 'lua_xtest_var' "$TMP/gen/lua_names.h"
	check $? "gen_shim: multi-line, function-pointer-returning declarations, variables, calls inside macros" \
		"$gen_log" "required: $got_required" "direct calls: $direct"

	# --- loading
	run_host "$B/?.so" "$HOST" -e 'require "net"'
	grep -q 'undefined symbol: luaL\?_' "$TMP/err"
	check $? "xl_host exports no Lua symbols: the ordinary net.so cannot load in it" \
		"stderr: $(cat "$TMP/err")"

	run_host "$B/plugin/?.so" "$HOST" -e '
		local net = require "net"
		local e = package.native_plugins.net
		assert(net.resolve_address("127.0.0.1"):get_status() == "success")
		print(e.entry, e.path)'
	[ "$(cat "$TMP/out")" = "luaopen_lite_xl_net	$SO" ]
	check $? "xl_host (Lite XL loader) loads plugin/net.so through luaopen_lite_xl_net" \
		"stdout: $(cat "$TMP/out")" "stderr: $(cat "$TMP/err")"

	run_host "$B/plugin/?.so" XL_HOST_FLAVOR=pragtical "$HOST" -e '
		local net = require "net"
		print(package.native_plugins.net.entry, net.clock() > 0)'
	[ "$(cat "$TMP/out")" = "luaopen_pragtical_net	true" ]
	check $? "xl_host (Pragtical loader) loads it through luaopen_pragtical_net" \
		"stdout: $(cat "$TMP/out")" "stderr: $(cat "$TMP/err")"

	# a second load through the plain-Lua entry, which finds no Lua API in this
	# host, fails with a message and leaves the loaded module's pointers alone
	run_host "$B/plugin/?.so" "$HOST" -e '
		local net = require "net"
		local open = assert(package.loadlib(package.native_plugins.net.path, "luaopen_net"))
		print(select("#", open()), net.clock() > 0)'
	[ "$(cat "$TMP/out")" = "0	true" ] &&
		grep -q 'sluice: the host lacks Lua API function lua_[a-z_]* (luaopen_net' "$TMP/err"
	check $? "a failed second load leaves the loaded plugin working" \
		"stdout: $(cat "$TMP/out")" "stderr: $(cat "$TMP/err")"

	SLUICE_PLUGIN_SO="$SO" bash scripts/install_plugin.sh "$TMP/user" >"$TMP/out" 2>&1
	check $? "./run.sh install-plugin USERDIR installs the plugin and its libraries" "$(cat "$TMP/out")"
	run_host "$TMP/user/?.so;$TMP/user/?/init.so" LUA_PATH="$TMP/user/?.lua;$TMP/user/?/init.lua" "$HOST" -e '
		local net = require "libraries.sluice.net"
		local http = require "libraries.sluice.http"
		local e = package.native_plugins["libraries.sluice.net"]
		local done
		http.get("http://127.0.0.1:9/", nil, { on_done = function(ok, err) done = { ok, err } end })
		local t0 = net.clock()
		while not done and net.clock() - t0 < 10 do http.update() net.wait(10) end
		print(e.entry, net.clock() > 0)
		print(done and done[1], done and tostring(done[2]):match("127%.0%.0%.1:9: .*refused") ~= nil)'
	[ "$(cat "$TMP/out")" = "luaopen_lite_xl_net	true
false	true" ]
	check $? "installed layout: USERDIR/libraries/sluice/{net.so,http.lua} as libraries.sluice.net / .http" \
		"stdout: $(cat "$TMP/out")" "stderr: $(cat "$TMP/err")"

	# the styles (data/sluice/*.lua) next to it find that net.so, not another
	run_host "$TMP/user/?.so;$TMP/user/?/init.so" LUA_PATH="$TMP/user/?.lua;$TMP/user/?/init.lua" "$HOST" -e '
		local net = require "libraries.sluice.net"
		local same = true
		for _, name in ipairs { "socket", "request", "tcpd", "packet" } do
			local m = require("libraries.sluice." .. name)
			same = same and type(m) == "table"
		end
		local rt = require "libraries.sluice.runtime"
		print(same, rt.load_net("libraries.sluice.tcpd") == net, package.loaded["sluice.runtime"] == nil)
		local r = require("libraries.sluice.request") { host = "127.0.0.1", port = 9 }
		repeat net.wait(10) until r:poll() ~= "waiting"
		print(r.code)'
	[ "$(cat "$TMP/out")" = "true	true	true
refused" ]
	check $? "installed layout: USERDIR/libraries/sluice/{socket,request,tcpd,packet}.lua use that net.so" \
		"stdout: $(cat "$TMP/out")" "stderr: $(cat "$TMP/err")"

	# --- hosts lacking functions
	run_host "$B/plugin/?.so" XL_HOST_HIDE=lua_settop "$HOST" -e '
		local ok, err = pcall(require, "net")
		print(ok, err)'
	rc=$?
	[ "$rc" -eq 0 ] &&
		grep -q '^false	sluice: the host lacks Lua API function lua_settop$' "$TMP/out" &&
		grep -q 'sluice: the host lacks Lua API function lua_settop' "$TMP/err"
	check $? "a host without lua_settop gets a Lua error and a message on stderr, no crash" \
		"exit $rc" "stdout: $(cat "$TMP/out")" "stderr: $(cat "$TMP/err")"

	run_host "$B/plugin/?.so" XL_HOST_HIDE=lua_pushfstring "$HOST" -e '
		local ok, err = pcall(require, "net")
		print(ok, err)'
	rc=$?
	[ "$rc" -eq 0 ] &&
		grep -q '^false	Unable to load net: entrypoint must return a value$' "$TMP/out" &&
		grep -q 'sluice: the host lacks Lua API function lua_pushfstring' "$TMP/err"
	check $? "a host without lua_pushfstring (no error can be raised): message on stderr, the loader reports it, no crash" \
		"exit $rc" "stdout: $(cat "$TMP/out")" "stderr: $(cat "$TMP/err")"

	unused=$(comm -23 <(grep -v '^#' "$API" | grep '^lua_' | sort -u) <(sort -u "$REQUIRED") | grep -v '^lua_\(error\|pushfstring\)$' | head -n 1)
	run_host "$B/plugin/?.so" XL_HOST_HIDE="$unused" "$HOST" -e '
		print(require "net" ~= nil)'
	[ "$(cat "$TMP/out")" = "true" ]
	check $? "a host without a function the plugin does not use ($unused) loads it" \
		"stdout: $(cat "$TMP/out")" "stderr: $(cat "$TMP/err")"

	env LUA_CPATH="$B/plugin/?.so" "$PLAIN_LUA" -e '
		local net = require "net"
		print(net.resolve_address("127.0.0.1"):get_ip())' >"$TMP/out" 2>"$TMP/err" </dev/null
	cat "$TMP/err" >&2
	[ "$(cat "$TMP/out")" = "127.0.0.1" ]
	check $? "a plain Lua host ($(basename "$PLAIN_LUA")) loads it through luaopen_net" \
		"stdout: $(cat "$TMP/out")" "stderr: $(cat "$TMP/err")"

	echo "1..$n"
fi

# --- the specs under the editor-like host
export LUA_CPATH="$B/plugin/?.so;;"
export SLUICE_LUA="$HOST"   # child Lua processes of the specs run there too
export XL_HOST_API="$API"
# tests/lua again in release and tsan only: the poll backend and the address
# sanitizer see the same engine and binding code in the lua stage
spec_dirs=(tests/lua tests/plugin)
case "$mode" in poll|asan) spec_dirs=(tests/plugin) ;; esac
pattern=${SLUICE_PLUGIN_PATTERN:-_spec}
mapfile -t specs < <(for d in "${spec_dirs[@]}"; do ls "$d"/*.lua; done | grep -E "/[^/]*$pattern[^/]*\.lua$")
times=()   # a whole run's spec times, to start the longest first next time
[ -d "$ROOT/build/logs" ] && [ ${#filter[@]} -eq 0 ] && times=(-t "$ROOT/build/logs/$mode-plugin.times")
bash tests/tools/specs.sh "${times[@]}" "$HOST" --output=TAP --verbose --pattern="$pattern" \
	"${filter[@]}" -- "${specs[@]}"
rc=$?

# --- hosts with libraries of their own
if [ ${#filter[@]} -eq 0 ]; then
	for preload in libsdl3_stub.so libsdl2_stub.so libmbedtls_stub.so; do
		specs=(tests/plugin/hosts_spec.lua)
		[ "$preload" = libsdl3_stub.so ] && specs+=(tests/plugin/editor_loop_spec.lua)
		[ "$preload" = libmbedtls_stub.so ] && specs+=(tests/lua/tls_verify_spec.lua)
		echo "# with XL_HOST_PRELOAD=$preload: ${specs[*]}"
		XL_HOST_PRELOAD="$B/$preload" "$HOST" tests/tools/busted_run.lua --output=TAP --verbose "${specs[@]}" ||
			rc=1
	done
fi
[ "$failed" -eq 0 ] && [ "$rc" -eq 0 ]
