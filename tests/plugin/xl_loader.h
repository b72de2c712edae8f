/*
 * xl_loader.h: what the two test hosts (tests/plugin/xl_host.c on Linux,
 * tests/windows/xl_host.c on Windows) do alike once they have a plugin's
 * entry point, as the editors' loaders do: the call, and Lite XL's
 * package.searchers. Included by each host; its main thread only.
 */
#ifndef SLUICE_XL_LOADER_H
#define SLUICE_XL_LOADER_H

#include <string.h>

#include <lauxlib.h>
#include <lua.h>

typedef int (*xl_entry)(lua_State *L, void *(*)(const char *));
typedef int (*plain_entry)(lua_State *L);

/* Calls sym, found for module name: an editor entry point (luaopen_lite_xl_*,
 * luaopen_pragtical_*) with (L, api), a plain luaopen_* with L alone. The
 * stack holds what the editors give it: the module name and path. */
static int xl_call_entry(lua_State *L, void *sym, int editor_entry, void *(*api)(const char *),
			 const char *name)
{
	int result;

	if (editor_entry) {
		xl_entry f;
		memcpy(&f, &sym, sizeof f);
		result = f(L, api);
	} else {
		plain_entry f;
		memcpy(&f, &sym, sizeof f);
		result = f(L);
	}
	if (!result)
		return luaL_error(L, "Unable to load %s: entrypoint must return a value", name);
	return result;
}

/* Lite XL's start.lua: { preload, Lua files, native }; run with the native
 * loader as its argument. */
static const char *const xl_searcher_lite_xl =
	"local load = ...\n"
	"package.native_plugins = {}\n"
	"package.searchers = { package.searchers[1], package.searchers[2], function(modname)\n"
	"  local path, err = package.searchpath(modname, package.cpath)\n"
	"  if not path then return err end\n"
	"  return load, path\n"
	"end }\n";

#endif
