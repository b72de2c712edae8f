-- premake5.lua: build description for sluice.
--
--   premake5 gmake && make config=release           (premake 5; the 5.0
--                                                    betas call it gmake2)
--   premake4 --file=premake5.lua gmake && make config=release
--                                                    (Debian 12's premake 4.3)
--
-- Configurations (make config=NAME): release, debug, asan, tsan, poll.
-- Outputs go to build/<config>/, objects to build/obj/<config>/<project>/.
-- `./run.sh test` drives all of this; see scripts/build.sh.
--
-- The script is written for premake5. The block below is a small shim that
-- maps the premake5 calls used here onto premake 4.3, so that Debian's
-- premake4 generates the same Makefiles. Keep to those calls (or extend the
-- shim) when editing this file.

------------------------------------------------------------------------------
-- premake4 compatibility shim
------------------------------------------------------------------------------
local PREMAKE4 = (_PREMAKE_VERSION or ""):sub(1, 1) == "4"

if PREMAKE4 then
	workspace = solution

	-- filter { "configurations:asan or tsan", "system:not linux" }
	--   -> configuration { "asan or tsan", "not linux" }
	-- Field prefixes are dropped (4.3 matches bare terms: configuration
	-- names, os names, the action); "not" may stand before or after the
	-- prefix, as in premake5, but only in front of a whole term.
	local function split_or(s)
		local t, from = {}, 1
		while true do
			local i, j = s:find(" or ", from, true)
			if not i then
				table.insert(t, s:sub(from))
				return t
			end
			table.insert(t, s:sub(from, i - 1))
			from = j + 1
		end
	end

	local function translate(term)
		local words, negated = {}, false
		for _, word in ipairs(split_or(term:lower())) do
			word = word:gsub("^%s+", ""):gsub("%s+$", "")
			local neg = false
			while true do
				if word:sub(1, 4) == "not " then
					neg = not neg
					word = word:sub(5)
				elseif word:find(":", 1, true) then
					word = word:sub(word:find(":", 1, true) + 1)
				else
					break
				end
			end
			negated = negated or neg
			table.insert(words, word)
		end
		if negated then
			if #words > 1 then
				error("premake4 shim: 'not' inside an 'or' term is not supported: " .. term)
			end
			return "not " .. words[1]
		end
		return table.concat(words, " or ")
	end

	function filter(terms)
		if type(terms) == "string" then
			terms = { terms }
		end
		local out = {}
		for _, t in ipairs(terms) do
			table.insert(out, translate(t))
		end
		configuration(out)
	end

	function symbols(v)
		if v == "On" or v == "Full" or v == "FastLink" then
			flags { "Symbols" }
		end
	end

	local OPT = { On = "Optimize", Size = "OptimizeSize", Speed = "OptimizeSpeed", Full = "OptimizeSpeed" }
	function optimize(v)
		if v == "Debug" then
			buildoptions { "-Og" }
		elseif OPT[v] then
			flags { OPT[v] }
		end -- "Off": 4.3 passes no -O at all, which is gcc's -O0
	end

	function cdialect(v)
		buildoptions { "-std=" .. v:lower() }
	end

	function warnings(v)
		if v == "Extra" then
			buildoptions { "-Wall", "-Wextra" }
		elseif v == "High" then
			buildoptions { "-Wall" }
		elseif v == "Off" then
			buildoptions { "-w" }
		end
	end

	function visibility(v)
		buildoptions { "-fvisibility=" .. v:lower() }
	end

	function pic(v)
		if v == "On" then
			buildoptions { "-fPIC" }
		end
	end

	removefiles = excludes

	-- premake 4.3's gmake generator writes one object list per project: the
	-- project-level file list, ignoring files added or excluded inside
	-- configuration blocks. Patch it so that a file used by only some
	-- configurations is linked only in those, as premake5 does (needed for
	-- the poller backends). Also add order-only dependencies on the output
	-- directories, which 4.3 lacks (a race under make -j).
	local make_cpp = premake.make_cpp
	premake.make_cpp = function(prj)
		local cfgs = {}
		for cfg in premake.eachconfig(prj) do
			table.insert(cfgs, cfg)
		end
		local union, users = {}, {}
		for _, cfg in ipairs(cfgs) do
			for _, f in ipairs(cfg.files) do
				if not users[f] then
					users[f] = {}
					table.insert(union, f)
				end
				table.insert(users[f], cfg.shortname)
			end
		end
		local partial = {} -- escaped object basename -> configs that use it
		local partial_order = {}
		for _, f in ipairs(union) do
			if path.iscppfile(f) and #users[f] < #cfgs then
				local base = _MAKE.esc(path.getbasename(f))
				partial[base] = users[f]
				table.insert(partial_order, base)
			end
		end

		local function var(base)
			return "SLUICE_OBJ_" .. base:gsub("[^%w_]", "_")
		end

		local p = _p
		_p = function(msg, ...)
			if msg == "OBJECTS := \\" then
				for _, base in ipairs(partial_order) do
					p("%s :=", var(base))
					p("ifneq (,$(filter %s,$(config)))", table.concat(partial[base], " "))
					p("  %s := $(OBJDIR)/%s.o", var(base), base)
					p("endif")
				end
				if #partial_order > 0 then
					p("")
				end
			elseif msg == "\t$(OBJDIR)/%s.o \\" and partial[(...)] then
				return p("\t$(%s) \\", var((...)))
			elseif type(msg) == "string" and msg:find("^%$%(TARGET%): ") then
				p("$(OBJECTS) $(RESOURCES): | $(OBJDIR)")
				p("$(TARGET): | $(TARGETDIR)")
				p("")
			end
			return p(msg, ...)
		end

		local files = prj.files
		prj.files = union
		local ok, err = pcall(make_cpp, prj)
		prj.files = files
		_p = p
		if not ok then
			error(err, 0)
		end
	end
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

local SDL2_CFLAGS = pkgconfig("cflags", "sdl2", "-I/usr/include/SDL2 -D_REENTRANT")
local SDL2_LIBS = pkgconfig("libs", "sdl2", "-lSDL2")
local LUA_CFLAGS = pkgconfig("cflags", "lua5.4", "-I/usr/include/lua5.4")
local LUA_LIBDIR = shell("pkg-config --variable=libdir lua5.4 2>/dev/null"):gsub("%s+", "")
local LUA_STATIC = (LUA_LIBDIR ~= "" and LUA_LIBDIR or "/usr/lib/x86_64-linux-gnu") .. "/liblua5.4.a"

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
	includedirs { "net", "lua" }
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
-- Exactly one poller backend is compiled per configuration: epoll on Linux,
-- poll(2) for the `poll` configuration and for other systems. (net/poll_kqueue.c,
-- for BSD/macOS, is excluded until it exists; then give it a
-- `system:macosx or bsd` filter of its own below.) Call inside a project.
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

function select_poller()
	filter { "configurations:poll" }
		poller "net/poll_poll.c"
	filter { "configurations:not poll", "system:linux" }
		poller "net/poll_epoll.c"
	filter { "configurations:not poll", "system:not linux" }
		poller "net/poll_poll.c"
	filter {}
end

------------------------------------------------------------------------------
-- net.so: the Lua module (engine + binding). Lua's symbols come from the
-- host that loads it, so liblua is deliberately not linked.
------------------------------------------------------------------------------
project "net"
	kind "SharedLib"
	targetname "net"
	targetprefix ""
	pic "On"
	visibility "Hidden"
	files { "net/*.c", "lua/*.c" }
	buildoptions(SDL2_CFLAGS)
	buildoptions(LUA_CFLAGS)
	uselibs(SDL2_LIBS)
	-- mbedTLS has no .pc file on Debian 12
	links { "mbedtls", "mbedx509", "mbedcrypto", "pthread" }

	select_poller()

------------------------------------------------------------------------------
-- luahost: minimal Lua 5.4 interpreter with Lua linked statically and its
-- symbols exported (-Wl,-E), so that the sanitizer builds can load the
-- instrumented net.so into an instrumented executable.
------------------------------------------------------------------------------
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

------------------------------------------------------------------------------
-- test_ring: C unit tests for the SPSC byte rings.
------------------------------------------------------------------------------
project "test_ring"
	kind "ConsoleApp"
	files { "tests/unit/test_ring.c", "net/ring.c" }
	buildoptions(SDL2_CFLAGS)
	uselibs(SDL2_LIBS)

------------------------------------------------------------------------------
-- peer: loopback test server used by the Lua specs (libc only).
------------------------------------------------------------------------------
project "peer"
	kind "ConsoleApp"
	files { "tests/tools/peer.c" }

------------------------------------------------------------------------------
-- raw_recv: blocking recv() baseline for the throughput benchmark.
------------------------------------------------------------------------------
project "raw_recv"
	kind "ConsoleApp"
	files { "tests/bench/raw_recv.c" }

------------------------------------------------------------------------------
-- libsluice.a: the engine alone, for hosts that use the C API (net/net.h)
-- without Lua.
------------------------------------------------------------------------------
project "sluice"
	kind "StaticLib"
	targetname "sluice"
	pic "On"
	files { "net/*.c" }
	buildoptions(SDL2_CFLAGS)
	select_poller()

------------------------------------------------------------------------------
-- C API programs: a small example and the host wake-up test.
------------------------------------------------------------------------------
for _, name in ipairs { "c_api_example", "wakeup_test" } do
	project(name)
		kind "ConsoleApp"
		files { "tests/c_api/" .. name .. ".c" }
		includedirs { "net" }
		buildoptions(SDL2_CFLAGS)
		links { "sluice" }
		uselibs(SDL2_LIBS)
		links { "mbedtls", "mbedx509", "mbedcrypto", "pthread", "dl", "m" }
end

------------------------------------------------------------------------------
-- mbedtls_recv: blocking mbedTLS client baseline for the TLS throughput
-- benchmark.
------------------------------------------------------------------------------
project "mbedtls_recv"
	kind "ConsoleApp"
	files { "tests/bench/mbedtls_recv.c" }
	links { "mbedtls", "mbedx509", "mbedcrypto" }

------------------------------------------------------------------------------
-- net_plugin: build/<config>/plugin/net.so, the editor build of the module
-- (Lite XL, Pragtical). The same engine and binding, with every Lua API call
-- going through pointers that plugin/entry.c fills from the host's lookup
-- function: the editors link Lua statically and export no Lua symbol. The
-- shim (build/gen/lua_shim.[ch]) is generated from Lua's headers by
-- plugin/gen_shim.lua, which scripts/build.sh runs before premake; by hand:
--   lua5.4 plugin/gen_shim.lua -I /usr/include/lua5.4 -o build/gen lua/*.c lua/*.h
-- liblua is not linked.
------------------------------------------------------------------------------
local function plugin_poller(file)
	local others = {}
	for _, f in ipairs { "net/poll_epoll.c", "net/poll_poll.c", "net/poll_kqueue.c" } do
		if f ~= file then
			table.insert(others, f)
		end
	end
	removefiles(others)
end

project "net_plugin"
	kind "SharedLib"
	targetname "net"
	targetprefix ""
	pic "On"
	visibility "Hidden"
	files { "net/*.c", "lua/*.c", "plugin/entry.c", "build/gen/lua_shim.c" }
	includedirs { "build/gen" }
	defines { "SLUICE_PLUGIN", "luaopen_net=sluice_luaopen_net" }
	buildoptions(SDL2_CFLAGS)
	buildoptions(LUA_CFLAGS)
	-- after Lua's headers (it includes them), before any source line
	buildoptions { "-include build/gen/lua_shim.h" }
	uselibs(SDL2_LIBS)
	links { "mbedtls", "mbedx509", "mbedcrypto", "pthread", "dl" }
	for _, c in ipairs(CONFIGS) do
		filter { "configurations:" .. c }
			targetdir("build/" .. c .. "/plugin")
	end
	-- the poller selection of the `net` project
	filter { "configurations:poll" }
		plugin_poller "net/poll_poll.c"
	filter { "configurations:not poll", "system:linux" }
		plugin_poller "net/poll_epoll.c"
	filter { "configurations:not poll", "system:not linux" }
		plugin_poller "net/poll_poll.c"
	filter {}

------------------------------------------------------------------------------
-- xl_host: a Lua 5.4 interpreter that loads native modules the way Lite XL
-- 2.1 does (dlopen RTLD_NOW|RTLD_LOCAL, luaopen_lite_xl_<name>(L, XL)), with
-- Lua linked statically and its symbols NOT exported (no -Wl,-E), like the
-- official editor builds. Tests the plugin (tests/plugin/).
------------------------------------------------------------------------------
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
