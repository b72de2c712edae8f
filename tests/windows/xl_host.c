/*
 * xl_host.exe: the Windows counterpart of tests/plugin/xl_host.c, a Lua 5.4
 * host built the way the Windows editors are, to load
 * build/windows/plugin/net.dll without them. Runs on the main thread only.
 *
 *   xl_host.exe script.lua [args...]
 *
 * - Lua is linked statically and the exe exports nothing: a plugin can reach
 *   the Lua API only through the XL lookup function it is given.
 * - xl_host.load_native_plugin(name, path [, flavor]) does what the editors'
 *   loader does: LoadLibraryW(path, UTF-8 -> UTF-16), then the entry point
 *   luaopen_lite_xl_<name after the last dot>(L, XL) with the module name
 *   and path on the stack, else luaopen_<name>(L). flavor "pragtical" tries
 *   luaopen_pragtical_<name> first. The library sits in
 *   package.native_plugins[name] = {path =, entry = the symbol used}, whose
 *   __gc frees it (made before the module runs, so the module's own
 *   finalizers run first at lua_close).
 * - package.searchers is { preload, Lua files, native } as in Lite XL's
 *   start.lua: `require "net"` finds net.dll on package.cpath.
 * - The script gets its arguments in `arg` and as `...`; an error prints a
 *   traceback and makes the exit status 1.
 */
#include <windows.h>
#include <shellapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "../plugin/xl_loader.h"

/* ---------------------------------------------------------- native loading */

#define NATIVE_PLUGIN_MT "xl_host.native_plugin"

static int library_gc(lua_State *L)
{
	HMODULE lib;

	lua_getfield(L, 1, "handle");
	lib = (HMODULE)lua_touserdata(L, -1);
	if (lib != NULL)
		FreeLibrary(lib);
	return 0;
}

/* Loads the DLL at a UTF-8 path; NULL with the system's message pushed. */
static HMODULE load_library(lua_State *L, const char *path)
{
	wchar_t wpath[MAX_PATH * 4];
	char msg[256];
	HMODULE lib = NULL;
	DWORD err = ERROR_INVALID_NAME;

	if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, wpath, MAX_PATH * 4) > 0) {
		lib = LoadLibraryW(wpath);
		err = GetLastError();
	}
	if (lib != NULL)
		return lib;
	if (!FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, err,
			    0, msg, sizeof msg, NULL))
		snprintf(msg, sizeof msg, "error %lu", (unsigned long)err);
	msg[strcspn(msg, "\r\n")] = '\0';
	lua_pushfstring(L, "LoadLibraryW %s: %s", path, msg);
	return NULL;
}

static void *find_entry(HMODULE lib, const char *prefix, const char *base, char *entry, size_t size)
{
	FARPROC f;
	void *p;

	snprintf(entry, size, "%s%s", prefix, base);
	f = GetProcAddress(lib, entry);
	memcpy(&p, &f, sizeof p);
	return p;
}

/* xl_host.load_native_plugin(name, path [, flavor]): the editors' loader. */
static int load_native_plugin(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	const char *path = luaL_checkstring(L, 2);
	int pragtical = strcmp(luaL_optstring(L, 3, "lite-xl"), "pragtical") == 0;
	const char *base = strrchr(name, '.') ? strrchr(name, '.') + 1 : name;
	char entry[256];
	void *sym = NULL;
	HMODULE lib = load_library(L, path);

	if (lib == NULL)
		return lua_error(L);
	/* package.native_plugins[name] = setmetatable({handle =, path =}, mt) */
	lua_getglobal(L, "package");
	lua_getfield(L, -1, "native_plugins");
	lua_createtable(L, 0, 3);
	lua_pushlightuserdata(L, lib);
	lua_setfield(L, -2, "handle");
	lua_pushvalue(L, 2);
	lua_setfield(L, -2, "path");
	luaL_setmetatable(L, NATIVE_PLUGIN_MT);
	lua_pushvalue(L, -1);
	lua_setfield(L, -3, name);

	if (pragtical)
		sym = find_entry(lib, "luaopen_pragtical_", base, entry, sizeof entry);
	if (sym == NULL)
		sym = find_entry(lib, "luaopen_lite_xl_", base, entry, sizeof entry);
	if (sym == NULL && (sym = find_entry(lib, "luaopen_", base, entry, sizeof entry)) == NULL)
		return luaL_error(L, "Unable to load %s: Can't find %s(lua_State *L, void *XL)", name, entry);
	lua_pushstring(L, entry);
	lua_setfield(L, -2, "entry");
	lua_settop(L, 2);   /* as in the editors: the module name and path */

	return xl_call_entry(L, sym, strncmp(entry, "luaopen_lite_xl_", 16) == 0 ||
				       strncmp(entry, "luaopen_pragtical_", 18) == 0,
			     xl_api_lookup, name);
}

static void setup_editor_env(lua_State *L)
{
	luaL_newmetatable(L, NATIVE_PLUGIN_MT);
	lua_pushcfunction(L, library_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);

	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, load_native_plugin);
	lua_setfield(L, -2, "load_native_plugin");
	lua_setglobal(L, "xl_host");

	if (luaL_loadstring(L, xl_searcher_lite_xl) != LUA_OK)
		lua_error(L);
	lua_pushcfunction(L, load_native_plugin);
	lua_call(L, 1, 0);
}

/* ------------------------------------------------------------- interpreter */

static int msghandler(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);

	if (msg == NULL)
		msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	luaL_traceback(L, L, msg, 1);
	return 1;
}

/* pmain(argc, argv): argv in UTF-8; arg[0] is the script. */
static int pmain(lua_State *L)
{
	int argc = (int)lua_tointeger(L, 1);
	char **argv = (char **)lua_touserdata(L, 2);
	int i;

	luaL_openlibs(L);
	setup_editor_env(L);
	lua_createtable(L, argc - 2, 2);
	for (i = 0; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i - 1);
	}
	lua_setglobal(L, "arg");

	lua_pushcfunction(L, msghandler);
	if (luaL_loadfile(L, argv[1]) != LUA_OK)
		return lua_error(L);
	for (i = 2; i < argc; i++)
		lua_pushstring(L, argv[i]);
	if (lua_pcall(L, argc - 2, 0, 3) != LUA_OK)
		return lua_error(L);
	return 0;
}

/* The command line in UTF-8, whatever the console's code page. */
static char **utf8_argv(int *argc)
{
	wchar_t **wargv = CommandLineToArgvW(GetCommandLineW(), argc);
	char **argv;
	int i, n;

	if (wargv == NULL || (argv = calloc((size_t)*argc + 1, sizeof *argv)) == NULL)
		return NULL;
	for (i = 0; i < *argc; i++) {
		n = WideCharToMultiByte(CP_UTF8, 0, wargv[i], -1, NULL, 0, NULL, NULL);
		if (n <= 0 || (argv[i] = malloc((size_t)n)) == NULL)
			return NULL;
		WideCharToMultiByte(CP_UTF8, 0, wargv[i], -1, argv[i], n, NULL, NULL);
	}
	LocalFree(wargv);
	return argv;
}

int main(void)
{
	int argc = 0, status;
	char **argv = utf8_argv(&argc);
	lua_State *L;

	if (argv == NULL || argc < 2) {
		fprintf(stderr, "usage: xl_host.exe script.lua [args...]\n");
		return 2;
	}
	L = luaL_newstate();
	if (L == NULL) {
		fprintf(stderr, "xl_host: cannot create state: not enough memory\n");
		return 1;
	}
	lua_pushcfunction(L, pmain);
	lua_pushinteger(L, argc);
	lua_pushlightuserdata(L, argv);
	status = lua_pcall(L, 2, 0, 0);
	if (status != LUA_OK) {
		const char *msg = lua_tostring(L, -1);
		fprintf(stderr, "xl_host: %s\n", msg ? msg : "(error object is not a string)");
	}
	lua_close(L);
	fflush(stdout);
	fflush(stderr);
	return status == LUA_OK ? 0 : 1;
}
