/*
 * luahost: a minimal Lua 5.4 interpreter for the test runner.
 *
 *   luahost [-e stat]... script.lua [args...]
 *   luahost -e stat...
 *
 * Like lua5.4: opens the standard libraries, sets the global `arg`
 * (arg[0] = script, arg[1..n] = args, arg[-1]... = interpreter and options),
 * runs the script with its arguments as `...` under a traceback message
 * handler, and exits non-zero on error. The state is always closed with
 * lua_close (so __gc finalizers run and the sanitizers' leak check at exit
 * sees everything freed).
 *
 * Lua is linked statically and its symbols are exported (-Wl,-E), so C
 * modules loaded by `require` (net.so) resolve the Lua API from this
 * executable. The sanitizer builds use it as the host of an instrumented
 * net.so.
 *
 * LUAHOST_NO_DLCLOSE=1 keeps C modules mapped when the state closes, so that
 * leak reports printed at exit can still name functions in them.
 *
 * For fault injection, the state's allocator can be told to fail: the global
 * luahost_fail_allocs(n) lets n more allocations succeed and fails every one
 * after that (growing or new blocks; freeing always works), until
 * luahost_fail_allocs(nil). It returns how many allocations failed since the
 * previous call.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

static const char *progname = "luahost";

/* Lua's package library unloads C modules through dlclose when the state
 * is closed; this definition in the executable takes precedence. */
int dlclose(void *handle)
{
	static int (*real_dlclose)(void *);
	const char *keep = getenv("LUAHOST_NO_DLCLOSE");

	if (keep != NULL && keep[0] != '\0' && strcmp(keep, "0") != 0)
		return 0;
	if (real_dlclose == NULL) {
		void *sym = dlsym(RTLD_NEXT, "dlclose");
		if (sym == NULL)
			return 0;
		memcpy(&real_dlclose, &sym, sizeof real_dlclose);
	}
	return real_dlclose(handle);
}

/* ------------------------------------------------------ failing allocator */

static long allow_left = -1;   /* allocations still allowed; -1: no limit */
static long failed_allocs;

static void *alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	(void)ud;
	if (nsize == 0) {
		free(ptr);
		return NULL;
	}
	if (allow_left >= 0 && (ptr == NULL || nsize > osize)) {
		if (allow_left == 0) {
			failed_allocs++;
			return NULL;
		}
		allow_left--;
	}
	return realloc(ptr, nsize);
}

static int panic(lua_State *L)
{
	const char *msg = lua_tostring(L, -1);
	fprintf(stderr, "%s: PANIC: unprotected error in call to Lua API (%s)\n", progname,
		msg ? msg : "?");
	return 0;   /* then Lua aborts */
}

static int fail_allocs(lua_State *L)
{
	long failed = failed_allocs;
	allow_left = lua_isnoneornil(L, 1) ? -1 : (long)luaL_checkinteger(L, 1);
	failed_allocs = 0;
	lua_pushinteger(L, failed);
	return 1;
}

static void print_usage(void)
{
	fprintf(stderr,
		"usage: %s [-e stat]... [script [args...]]\n"
		"  -e stat  execute string 'stat'\n",
		progname);
}

static int msghandler(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);

	if (msg == NULL) {
		if (luaL_callmeta(L, 1, "__tostring") &&
		    lua_type(L, -1) == LUA_TSTRING)
			return 1;
		msg = lua_pushfstring(L, "(error object is a %s value)",
				      luaL_typename(L, 1));
	}
	luaL_traceback(L, L, msg, 1);
	return 1;
}

/* Call the function below `narg` arguments on the stack; print any error. */
static int docall(lua_State *L, int narg)
{
	int base = lua_gettop(L) - narg;
	int status;

	lua_pushcfunction(L, msghandler);
	lua_insert(L, base);
	status = lua_pcall(L, narg, 0, base);
	lua_remove(L, base);
	if (status != LUA_OK) {
		const char *msg = lua_tostring(L, -1);
		fprintf(stderr, "%s: %s\n", progname,
			msg ? msg : "(error object is not a string)");
		fflush(stderr);
		lua_pop(L, 1);
	}
	return status;
}

/* The whole run, in protected mode. Returns a boolean "success". */
static int pmain(lua_State *L)
{
	int argc = (int)lua_tointeger(L, 1);
	char **argv = (char **)lua_touserdata(L, 2);
	int script = 0;
	int i, n;

	luaL_checkversion(L);
	luaL_openlibs(L);
	lua_register(L, "luahost_fail_allocs", fail_allocs);
	lua_gc(L, LUA_GCRESTART);
	lua_gc(L, LUA_GCGEN, 0, 0);

	/* find the script: the first argument that is not an option */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-e") == 0) {
			if (i + 1 >= argc) {
				print_usage();
				lua_pushboolean(L, 0);
				return 1;
			}
			i++;
		} else if (strcmp(argv[i], "--") == 0) {
			if (i + 1 < argc)
				script = i + 1;
			break;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "%s: unrecognized option '%s'\n",
				progname, argv[i]);
			print_usage();
			lua_pushboolean(L, 0);
			return 1;
		} else {
			script = i;
			break;
		}
	}
	if (argc <= 1) {
		print_usage();
		lua_pushboolean(L, 0);
		return 1;
	}

	/* arg table, indexed relative to the script (or past the options) */
	{
		int zero = script ? script : argc;
		lua_createtable(L, argc - zero, zero + 1);
		for (i = 0; i < argc; i++) {
			lua_pushstring(L, argv[i]);
			lua_rawseti(L, -2, i - zero);
		}
		lua_setglobal(L, "arg");
	}

	/* -e statements, in order */
	for (i = 1; i < (script ? script : argc); i++) {
		if (strcmp(argv[i], "-e") == 0) {
			i++;
			if (luaL_loadbuffer(L, argv[i], strlen(argv[i]),
					    "=(command line)") != LUA_OK) {
				fprintf(stderr, "%s: %s\n", progname,
					lua_tostring(L, -1));
				lua_pushboolean(L, 0);
				return 1;
			}
			if (docall(L, 0) != LUA_OK) {
				lua_pushboolean(L, 0);
				return 1;
			}
		}
	}

	if (script) {
		const char *fname = argv[script];

		if (strcmp(fname, "-") == 0)
			fname = NULL; /* stdin */
		if (luaL_loadfile(L, fname) != LUA_OK) {
			fprintf(stderr, "%s: %s\n", progname,
				lua_tostring(L, -1));
			lua_pushboolean(L, 0);
			return 1;
		}
		n = argc - script - 1;
		luaL_checkstack(L, n + 3, "too many arguments to script");
		for (i = script + 1; i < argc; i++)
			lua_pushstring(L, argv[i]);
		if (docall(L, n) != LUA_OK) {
			lua_pushboolean(L, 0);
			return 1;
		}
	}
	lua_pushboolean(L, 1);
	return 1;
}

int main(int argc, char **argv)
{
	lua_State *L;
	int status, ok;

	if (argv[0] != NULL && argv[0][0] != '\0')
		progname = argv[0];
	L = lua_newstate(alloc, NULL);
	if (L == NULL) {
		fprintf(stderr, "%s: cannot create state: not enough memory\n",
			progname);
		return EXIT_FAILURE;
	}
	lua_atpanic(L, panic);
	lua_gc(L, LUA_GCSTOP); /* restarted in pmain, after the libraries */
	lua_pushcfunction(L, pmain);
	lua_pushinteger(L, argc);
	lua_pushlightuserdata(L, argv);
	status = lua_pcall(L, 2, 1, 0);
	ok = lua_toboolean(L, -1);
	if (status != LUA_OK) {
		const char *msg = lua_tostring(L, -1);
		fprintf(stderr, "%s: %s\n", progname, msg ? msg : "(error)");
	}
	lua_close(L);
	fflush(stdout);
	return (status == LUA_OK && ok) ? EXIT_SUCCESS : EXIT_FAILURE;
}
