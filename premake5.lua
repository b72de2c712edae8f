-- premake5.lua: build description for sluice.
--
--   premake5 gmake && make config=release           (premake 5; the 5.0
--                                                    betas call it gmake2)
--   premake4 --file=premake5.lua gmake && make config=release
--                                                    (Debian 12's premake 4.3,
--                                                    through scripts/premake4_shim.lua)
--
-- Configurations (make config=NAME): release, debug, asan, tsan, poll.
-- Outputs go to build/<config>/, objects to build/obj/<config>/<project>/.
-- `./run.sh test` drives all of this; see scripts/build.sh.
--
-- Layering is enforced here: no project gets an include path into net/ or
-- lua/ but the tests. net/ files include their neighbours by name, lua/
-- includes "../net/net.h" and nothing else of net/, plugin/ includes
-- "../lua/lnet.h": a reach across a layer does not compile.

if (_PREMAKE_VERSION or ""):sub(1, 1) == "4" then
	dofile "scripts/premake4_shim.lua"
end

------------------------------------------------------------------------------
-- helpers
------------------------------------------------------------------------------

-- Output of a shell command ("" when it fails).
local function shell(cmd)
	local out
	if os.outputof then
		out = os.outputof(cmd)
	else
		local f = io.popen(cmd)
		if f then
			out = f:read("*a")
			f:close()
		end
	end
	return out or ""
end

local function words(s)
	local t = {}
	for w in s:gmatch("%S+") do
		table.insert(t, w)
	end
	return t
end

-- Flags of a pkg-config package, or `fallback` (a string) when pkg-config
-- or the package is missing.
local function pkgconfig(what, pkg, fallback)
	local out = shell("pkg-config --" .. what .. " " .. pkg .. " 2>/dev/null")
	if out:match("%S") == nil then
		if fallback == nil then
			print("warning: pkg-config --" .. what .. " " .. pkg .. " gave nothing")
			return {}
		end
		out = fallback
	end
	return words(out)
end

local function file_exists(p)
	local f = io.open(p, "rb")
	if f then
		f:close()
		return true
	end
	return false
end

-- Where the C compiler finds a library file (the name itself when it does not).
local function libfile(name)
	local p = shell("cc -print-file-name=" .. name .. " 2>/dev/null"):gsub("%s+$", "")
	return p ~= "" and p or name
end

local SDL2_CFLAGS = pkgconfig("cflags", "sdl2", "-I/usr/include/SDL2 -D_REENTRANT")
local SDL2_LIBS = pkgconfig("libs", "sdl2", "-lSDL2")
local LUA_CFLAGS = pkgconfig("cflags", "lua5.4", "-I/usr/include/lua5.4")
local LUA_INCDIR = (LUA_CFLAGS[1] or "-I/usr/include/lua5.4"):gsub("^%-I", "")
local LUA_LIBDIR = shell("pkg-config --variable=libdir lua5.4 2>/dev/null"):gsub("%s+", "")
local LUA_STATIC = (LUA_LIBDIR ~= "" and LUA_LIBDIR or "/usr/lib/x86_64-linux-gnu") .. "/liblua5.4.a"
-- mbedTLS has no .pc file on Debian 12; the plugin links its static
-- libraries (position-independent on Debian) into itself
local MBEDTLS_LIBS = { "mbedtls", "mbedx509", "mbedcrypto" }
local MBEDTLS_STATIC = { libfile("libmbedtls.a"), libfile("libmbedx509.a"), libfile("libmbedcrypto.a") }
-- c-ares (custom resolvers): shared for net.so, linked into the plugin like mbedTLS
local CARES_STATIC = libfile("libcares.a")
-- zlib (HTTP gzip/deflate, permessage-deflate): shared for net.so, linked into the
-- plugin like mbedTLS
local ZLIB_LIBS = pkgconfig("libs", "zlib", "-lz")
local ZLIB_STATIC = libfile("libz.a")

-- Apply linker flags from pkg-config: -lfoo -> links, -Lx -> libdirs.
local function uselibs(list)
	for _, w in ipairs(list) do
		if w:sub(1, 2) == "-l" then
			links { w:sub(3) }
		elseif w:sub(1, 2) == "-L" then
			libdirs { w:sub(3) }
		else
			linkoptions { w }
		end
	end
end

-- The editor plugin's Lua-API shim (build/gen/), generated from the Lua 5.4
-- headers the plugin is compiled against, by premake itself (its own Lua
-- runs the generator), before any Makefile exists. Files are rewritten only
-- when they change.
local function generate_shim()
	local sources = {}
	for _, pattern in ipairs { "lua/*.c", "lua/*.h" } do
		for _, f in ipairs(os.matchfiles(pattern)) do
			table.insert(sources, path.getabsolute(f))   -- premake4's dofile changes directory
		end
	end
	table.sort(sources)
	local saved = arg
	arg = { "-I", LUA_INCDIR, "-o", path.getabsolute("build/gen") }
	for _, f in ipairs(sources) do
		table.insert(arg, f)
	end
	dofile(path.getabsolute("plugin/gen_shim.lua"))
	arg = saved
end
generate_shim()

------------------------------------------------------------------------------
-- workspace
------------------------------------------------------------------------------
local CONFIGS = { "release", "debug", "asan", "tsan", "poll" }

workspace "sluice"
	configurations(CONFIGS)
	-- `make` without config= builds release (premake4: the first configuration)
	if defaultconfiguration then
		defaultconfiguration "release"
	end
	location "."
	language "C"

	cdialect "C11"
	warnings "Extra"
	symbols "On"
	defines { "_GNU_SOURCE" }
	buildoptions { "-pthread" }
	linkoptions { "-pthread" }
	objdir "build/obj" -- premake appends <config>/<project>

	for _, c in ipairs(CONFIGS) do
		filter { "configurations:" .. c }
			targetdir("build/" .. c)
	end

	filter { "configurations:release or poll" }
		optimize "On"                               -- -O2 -g

	filter { "configurations:debug" }
		optimize "Off"                              -- -O0 -g

	filter { "configurations:asan" }
		buildoptions {
			"-O1",
			"-fsanitize=address,undefined",
			"-fno-omit-frame-pointer",
			"-fno-sanitize-recover=undefined",
		}
		linkoptions { "-fsanitize=address,undefined" }

	filter { "configurations:tsan" }
		-- our seq_cst fences only order flag atomics, never plain data, so
		-- TSan not modelling fences cannot hide a race from it
		buildoptions { "-O1", "-fsanitize=thread", "-Wno-tsan" }
		linkoptions { "-fsanitize=thread" }

	filter { "configurations:poll" }
		defines { "NET_POLLER_POLL" }

	filter {}

------------------------------------------------------------------------------
-- The engine's files. Exactly one poller backend is compiled per
-- configuration: epoll on Linux, poll(2) for the `poll` configuration and for
-- other systems (net/poll_kqueue.c, for BSD/macOS, gets a filter of its own
-- when it exists). Call inside a project.
------------------------------------------------------------------------------
local POLLERS = { "net/poll_epoll.c", "net/poll_poll.c", "net/poll_kqueue.c" }
local function poller(file)
	local others = {}
	for _, f in ipairs(POLLERS) do
		if f ~= file then
			table.insert(others, f)
		end
	end
	removefiles(others)
end

local function engine_files()
	files { "net/*.c" }
	filter { "configurations:poll" }
		poller "net/poll_poll.c"
	filter { "configurations:not poll", "system:linux" }
		poller "net/poll_epoll.c"
	filter { "configurations:not poll", "system:not linux" }
		poller "net/poll_poll.c"
	filter {}
end

-- A program linked with the whole engine (libsluice.a): the C tests and
-- benchmarks; sdl: an SDL2 host too.
local function engine_program(name, file, sdl)
	project(name)
	kind "ConsoleApp"
	files { file }
	includedirs { "net" }
	if sdl then buildoptions(SDL2_CFLAGS) end
	links { "sluice" }
	if sdl then uselibs(SDL2_LIBS) end
	links(MBEDTLS_LIBS)
	links { "cares" }
	uselibs(ZLIB_LIBS)
	links { "pthread", "dl", "m" }
end

------------------------------------------------------------------------------
-- net.so: the Lua module (engine + binding) for Debian's lua5.4 and other
-- Lua hosts that export the Lua API. Lua's symbols come from the host, so
-- liblua is not linked; mbedTLS is Debian's shared library (security updates
-- reach it with the system's). Exports luaopen_net only.
------------------------------------------------------------------------------
project "net"
	kind "SharedLib"
	targetname "net"
	targetprefix ""
	pic "On"
	visibility "Hidden"
	engine_files()
	files { "lua/*.c" }
	buildoptions(LUA_CFLAGS)
	links(MBEDTLS_LIBS)
	links { "cares" }
	uselibs(ZLIB_LIBS)
	links { "pthread", "dl" }
	linkoptions { "-Wl,--version-script=lua/exports.map" }

------------------------------------------------------------------------------
-- libsluice.a: the engine alone, for hosts that use the C API (net/net.h)
-- without Lua. Link it with mbedtls, mbedx509, mbedcrypto, cares, z, pthread and dl.
------------------------------------------------------------------------------
project "sluice"
	kind "StaticLib"
	targetname "sluice"
	pic "On"
	engine_files()

------------------------------------------------------------------------------
-- net_plugin: build/<config>/plugin/net.so, the editor build of the module
-- (Lite XL, Pragtical). The same engine and binding, with every Lua API call
-- going through pointers that plugin/entry.c fills from the host's lookup
-- function (the editors link Lua statically and export no Lua symbol), and
-- mbedTLS linked in with its symbols hidden: the plugin imports no Lua, SDL
-- or mbedTLS symbol and exports only its entry points (plugin/exports.map).
------------------------------------------------------------------------------
project "net_plugin"
	kind "SharedLib"
	targetname "net"
	targetprefix ""
	pic "On"
	visibility "Hidden"
	engine_files()
	files { "lua/*.c", "plugin/entry.c", "build/gen/lua_shim.c" }
	defines { "SLUICE_PLUGIN", "luaopen_net=sluice_luaopen_net" }
	buildoptions(LUA_CFLAGS)
	-- after Lua's headers (it includes them), before any source line
	buildoptions { "-include build/gen/lua_shim.h" }
	linkoptions { "-Wl,--version-script=plugin/exports.map", "-Wl,--exclude-libs,ALL" }
	linkoptions(MBEDTLS_STATIC)
	linkoptions { CARES_STATIC, ZLIB_STATIC }
	links { "pthread", "dl" }
	for _, c in ipairs(CONFIGS) do
		filter { "configurations:" .. c }
			targetdir("build/" .. c .. "/plugin")
	end
	filter {}

------------------------------------------------------------------------------
-- Test programs. Tests may see every layer.
------------------------------------------------------------------------------

-- luahost: a Lua 5.4 interpreter with Lua linked statically and its symbols
-- exported (-Wl,-E), so the sanitizer builds can load the instrumented
-- net.so into an instrumented executable.
project "luahost"
	kind "ConsoleApp"
	files { "tests/tools/luahost.c" }
	buildoptions(LUA_CFLAGS)
	if file_exists(LUA_STATIC) then
		linkoptions { "-Wl,-E", "-Wl,--whole-archive", LUA_STATIC, "-Wl,--no-whole-archive" }
	else
		print("warning: " .. LUA_STATIC .. " not found; luahost links liblua dynamically")
		linkoptions { "-Wl,-E" }
		links { "lua5.4" }
	end
	links { "m", "dl" }

-- xl_host: a Lua 5.4 interpreter that loads native modules the way Lite XL
-- 2.1 does (dlopen RTLD_NOW|RTLD_LOCAL, luaopen_lite_xl_<name>(L, XL)), with
-- Lua linked statically and its symbols NOT exported (no -Wl,-E), like the
-- official editor builds. Tests the plugin (tests/plugin/).
project "xl_host"
	kind "ConsoleApp"
	files { "tests/plugin/xl_host.c" }
	includedirs { "build/gen" }
	buildoptions(LUA_CFLAGS)
	if file_exists(LUA_STATIC) then
		linkoptions { LUA_STATIC }
	else
		print("warning: " .. LUA_STATIC .. " not found; xl_host links liblua dynamically (and so exports it)")
		links { "lua5.4" }
	end
	links { "m", "dl" }

-- Stand-ins for an editor's own libraries, for xl_host (XL_HOST_PRELOAD):
-- an SDL3 and an SDL2 with the event layouts the plugin must produce, and a
-- foreign mbedTLS whose every function aborts.
for _, v in ipairs { "3", "2" } do
	project("sdl" .. v .. "_stub")
		kind "SharedLib"
		targetprefix "lib"
		pic "On"
		files { "tests/plugin/sdl_stub.c" }
		defines { "SDL_STUB_MAJOR=" .. v }
		links { "pthread" }
end

-- fault_io: an LD_PRELOAD library that makes sends and receives stingy.
project "fault_io"
	kind "SharedLib"
	targetprefix "lib"
	pic "On"
	files { "tests/tools/fault_io.c" }
	links { "dl" }

project "mbedtls_stub"
	kind "SharedLib"
	targetprefix "lib"
	pic "On"
	files { "tests/plugin/mbedtls_stub.c" }

-- test_ring: C unit tests for the SPSC byte rings.
project "test_ring"
	kind "ConsoleApp"
	files { "tests/unit/test_ring.c", "net/ring.c", "net/alloc.c", "net/pages.c", "net/os_posix.c", "net/os_common.c" }
	includedirs { "net" }
	links { "pthread", "dl" }

-- tests/unit/test_<name>.c: C unit tests of one engine part each (TAP on
-- stdout), linked with the whole engine; the "unit" stage runs them all.
for _, f in ipairs(os.matchfiles("tests/unit/test_*.c")) do
	local name = path.getbasename(f)
	if name ~= "test_ring" then
		engine_program(name, f)
		if name == "test_engine" then
			-- news right after a wait's unlock; a user arriving as the last
			-- leaves; the wake-up signals and the waits that slept counted
			linkoptions { "-Wl,--wrap=net__mutex_unlock", "-Wl,--wrap=net__wake_stop", "-Wl,--wrap=write",
				"-Wl,--wrap=net__cond_wait_us" }
		end
	end
end

-- peer: loopback test server used by the Lua specs (libc only).
project "peer"
	kind "ConsoleApp"
	files { "tests/tools/peer.c" }

-- raw_recv: blocking recv() baseline for the throughput benchmark.
project "raw_recv"
	kind "ConsoleApp"
	files { "tests/bench/raw_recv.c" }

-- bench_http_parse: MB/s of the HTTP parsers and inflate (tests/bench/http_parse.lua).
engine_program("bench_http_parse", "tests/bench/http_parse.c")

-- mbedtls_recv: blocking mbedTLS client baseline for the TLS benchmark.
project "mbedtls_recv"
	kind "ConsoleApp"
	files { "tests/bench/mbedtls_recv.c" }
	links(MBEDTLS_LIBS)

-- bench_ws_proto: speed of the WebSocket protocol core (UTF-8, masking, parsing).
engine_program("bench_ws_proto", "tests/bench/ws_proto.c")

-- C API programs: an example, the close that never waits, and the host
-- wake-up tests (an SDL2 host, and one that loads SDL2 itself).
engine_program("c_api_example", "tests/c_api/c_api_example.c")
engine_program("close_nowait", "tests/c_api/close_nowait.c")
engine_program("wakeup_race", "tests/c_api/wakeup_race.c")
engine_program("sdl_local", "tests/c_api/sdl_local.c")
engine_program("wakeup_test", "tests/c_api/wakeup_test.c", true)
