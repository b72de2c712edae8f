/*
 * xl_loader.h: what the two test hosts (tests/plugin/xl_host.c on Linux,
 * tests/windows/xl_host.c on Windows) do alike, as the editors' loaders do:
 * the Lua API served by name (the XL argument, from the generated
 * lua_names.h), the call of a plugin's entry point, and Lite XL's
 * package.searchers. Included by each host; its main thread only.
 */
#ifndef SLUICE_XL_LOADER_H
#define SLUICE_XL_LOADER_H

#include <string.h>

#include <lauxlib.h>
#include <lua.h>

typedef void (*xl_fptr)(void);

static const struct xl_api_entry {
	const char *name;
	xl_fptr fn;
} xl_api_table[] = {
#define SLUICE_LUA_API(name) {#name, (xl_fptr)(name)},
#include "lua_names.h"
#undef SLUICE_LUA_API
};

/* The host's implementation of the Lua API function named symbol, or NULL. */
static void *xl_api_lookup(const char *symbol)
{
	size_t i;

	for (i = 0; symbol != NULL && i < sizeof xl_api_table / sizeof xl_api_table[0]; i++) {
		if (strcmp(xl_api_table[i].name, symbol) == 0) {
			void *p;
			memcpy(&p, &xl_api_table[i].fn, sizeof p);
			return p;
		}
	}
	return NULL;
}

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
