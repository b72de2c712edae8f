/*
 * xl_host: a Lua 5.4 interpreter that hosts native plugins the way Lite XL
 * 2.1 does, to test build/<config>/plugin/net.so without the editor.
 *
 *   xl_host [-e stat]... script.lua [args...]
 *
 * Like lua5.4 / tests/tools/luahost: standard libraries, global `arg`, the
 * script run with its arguments under a traceback handler, a non-zero exit
 * status on error, lua_close at the end. What differs is what an editor does:
 *
 * - Lua is linked statically and its symbols are NOT exported (no -Wl,-E),
 *   like the official Lite XL and Pragtical builds: a C module that calls
 *   lua_* directly cannot load here (undefined symbol).
 * - package.searchers becomes { preload, Lua files, native } as in Lite XL's
 *   data/core/start.lua; the native searcher finds the file on package.cpath
 *   and calls xl_host.load_native_plugin(name, path), a copy of Lite XL's
 *   system.load_native_plugin: dlopen(path, RTLD_NOW | RTLD_LOCAL) (what
 *   SDL_LoadObject does), the handle kept in package.native_plugins[name]
 *   (a table whose __gc closes it: created before the module runs, so the
 *   module's own finalizers run first at lua_close), then the entry point
 *   luaopen_lite_xl_<name after the last dot>(L, XL) with the module name and
 *   path on the stack, else luaopen_<name>(L). XL is this host's lookup
 *   function: the Lua API functions by name (the list build/gen/lua_names.h
 *   generated from Lua's headers).
 *   The table in package.native_plugins also gets `entry` (the symbol used)
 *   and `path`, for the tests.
 * - busted needs three C modules (lfs, system.core, term.core) that cannot
 *   load into such a host either; small stand-ins are in package.preload.
 *
 * Environment:
 *   XL_HOST_FLAVOR=pragtical  behave like Pragtical instead: the native
 *       searcher goes first (Lua's searchers kept), and the entry points
 *       tried are luaopen_pragtical_<name>, luaopen_lite_xl_<name>,
 *       luaopen_<name>, luaopen_<full_name_with_underscores>.
 *   XL_HOST_API=FILE  serve only the names listed in FILE (one a line, '#'
 *       comments), e.g. tests/plugin/lite_xl_api.txt, what Lite XL 2.1.7
 *       serves.
 *   XL_HOST_HIDE=name[,name...]  the lookup returns NULL for these (to test
 *       that a plugin fails loudly, without crashing, on a host lacking them).
 *   XL_HOST_VERBOSE=1  print each native load to stderr.
 *   XL_HOST_PRELOAD=path[,path...]  dlopen these first with RTLD_GLOBAL, the
 *       way an editor's own shared libraries sit in the global scope (the
 *       SDL and mbedTLS stubs of tests/plugin/). With the SDL stub, Lua gets
 *       xl_host.sdl_wait(ms) (the editor's SDL_WaitEventTimeout: true when an
 *       event came; ms < 0 waits for ever) and xl_host.sdl_stats() (version,
 *       pushed, valid, invalid, last_type, last_code).
 *   XL_HOST_AFTER_CLOSE_MS=ms  with the SDL stub: after lua_close, wait ms
 *       and print "pushed after close: N" (events the host would still get).
 *   XL_HOST_QUIT_AT_EXIT_MS=ms  with the SDL stub: an exit handler, taken
 *       before any plugin loads (as SDL_Init's atexit(SDL_Quit) is), that
 *       watches the stub that long and prints "pushed while SDL quits: N".
 *   LUAHOST_NO_DLCLOSE=1  keep plugins mapped at exit (leak reports).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "xl_loader.h"

static const char *progname = "xl_host";

/* ------------------------------------------------------------------ lookup */

/* Names served (XL_HOST_API), or NULL for all; names hidden (XL_HOST_HIDE). */
static char *served_list;
static char *hidden_list;

static int in_list(const char *list, const char *name, const char *seps)
{
	size_t n = strlen(name);
	const char *p = list;

	while (*p) {
		size_t len = strcspn(p, seps);
		if (len == n && strncmp(p, name, n) == 0)
			return 1;
		p += len;
		if (*p)
			p++;
	}
	return 0;
}

/* The XL argument: the host's implementation of a Lua API function, unless
 * the test has it served not (XL_HOST_API, XL_HOST_HIDE). */
static void *api_require(const char *symbol)
{
	if (symbol == NULL)
		return NULL;
	if (hidden_list && in_list(hidden_list, symbol, ","))
		return NULL;
	if (served_list && !in_list(served_list, symbol, "\n"))
		return NULL;
	return xl_api_lookup(symbol);
}

/* Reads XL_HOST_API's file into "name\nname\n..." (comments dropped). */
static int load_served_list(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[256];
	size_t size = 0, cap = 4096;

	if (f == NULL) {
		fprintf(stderr, "%s: XL_HOST_API: cannot open %s: %s\n", progname, path,
			strerror(errno));
		return -1;
	}
	served_list = malloc(cap);
	if (served_list == NULL) {
		fclose(f);
		return -1;
	}
	served_list[0] = '\0';
	while (fgets(line, sizeof line, f) != NULL) {
		size_t len = strcspn(line, " \t\r\n#");
		if (len == 0)
			continue;
		if (size + len + 2 > cap) {
			char *bigger;
			cap *= 2;
			bigger = realloc(served_list, cap);
			if (bigger == NULL) {
				fclose(f);
				return -1;
			}
			served_list = bigger;
		}
		memcpy(served_list + size, line, len);
		size += len;
		served_list[size++] = '\n';
		served_list[size] = '\0';
	}
	fclose(f);
	return 0;
}

/* ---------------------------------------------------------- native loading */

#define NATIVE_PLUGIN_MT "xl_host.native_plugin"

static int pragtical;
static int verbose;

static int keep_mapped(void)
{
	const char *keep = getenv("LUAHOST_NO_DLCLOSE");
	return keep != NULL && keep[0] != '\0' && strcmp(keep, "0") != 0;
}

static int library_gc(lua_State *L)
{
	void *handle;

	lua_getfield(L, 1, "handle");
	handle = lua_touserdata(L, -1);
	if (handle != NULL && !keep_mapped())
		dlclose(handle);
	return 0;
}

static void *find_symbol(void *lib, const char *name)
{
	return dlsym(lib, name);
}

/* --------------------------------------------------- preloaded libraries */

static int (*stub_wait)(int ms);
static void (*stub_stats)(long out[6]);
static void report_at_exit(void);

static int preload_libraries(void)
{
	const char *env = getenv("XL_HOST_PRELOAD");
	char path[4096];

	while (env != NULL && *env) {
		size_t len = strcspn(env, ",");
		void *h;
		if (len >= sizeof path)
			return -1;
		memcpy(path, env, len);
		path[len] = '\0';
		env += len + (env[len] == ',');
		h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
		if (h == NULL) {
			fprintf(stderr, "%s: XL_HOST_PRELOAD: %s\n", progname, dlerror());
			return -1;
		}
		if (dlsym(h, "sdlstub_wait")) {
			*(void **)&stub_wait = dlsym(h, "sdlstub_wait");
			*(void **)&stub_stats = dlsym(h, "sdlstub_stats");
			if (getenv("XL_HOST_QUIT_AT_EXIT_MS"))
				atexit(report_at_exit);
		}
	}
	return 0;
}

static int sdl_wait(lua_State *L)
{
	lua_pushboolean(L, stub_wait((int)luaL_optinteger(L, 1, -1)));
	return 1;
}

static int sdl_stats(lua_State *L)
{
	static const char *const names[] = {"version", "pushed", "valid", "invalid", "last_type", "last_code"};
	long v[6];
	int i;

	stub_stats(v);
	lua_createtable(L, 0, 6);
	for (i = 0; i < 6; i++) {
		lua_pushinteger(L, v[i]);
		lua_setfield(L, -2, names[i]);
	}
	return 1;
}

/* Events pushed in ms from now. */
static long pushed_within(int ms)
{
	long before[6], after[6];

	stub_stats(before);
	usleep((useconds_t)ms * 1000);
	stub_stats(after);
	return after[1] - before[1];
}

/* XL_HOST_QUIT_AT_EXIT_MS: an exit without lua_close (os.exit) as an SDL
 * host tears down, its SDL_Quit run by exit. */
static void report_at_exit(void)
{
	printf("pushed while SDL quits: %ld\n", pushed_within(atoi(getenv("XL_HOST_QUIT_AT_EXIT_MS"))));
	fflush(stdout);
}

/* XL_HOST_AFTER_CLOSE_MS=ms: after lua_close, watch the SDL stub that long
 * and print how many events still came, as an editor tearing down its SDL
 * right after lua_close would receive them. */
static void report_after_close(void)
{
	const char *env = getenv("XL_HOST_AFTER_CLOSE_MS");

	if (env == NULL || stub_stats == NULL)
		return;
	printf("pushed after close: %ld\n", pushed_within(atoi(env)));
}

/* xl_host.load_native_plugin(name, path): Lite XL's f_load_native_plugin. */
static int load_native_plugin(lua_State *L)
{
	char entry[512];
	const char *name = luaL_checkstring(L, 1);
	const char *path = luaL_checkstring(L, 2);
	const char *basename;
	void *library, *sym;
	int ext = 1;

	library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (library == NULL) {
		const char *err = dlerror();
		lua_pushstring(L, err ? err : "dlopen failed");
		return lua_error(L);
	}

	/* package.native_plugins[name] = setmetatable({handle = lib}, mt):
	 * before the entry point runs, so its finalizer runs after the module's */
	lua_getglobal(L, "package");
	lua_getfield(L, -1, "native_plugins");
	lua_newtable(L);
	lua_pushlightuserdata(L, library);
	lua_setfield(L, -2, "handle");
	lua_pushstring(L, path);
	lua_setfield(L, -2, "path");
	luaL_setmetatable(L, NATIVE_PLUGIN_MT);
	lua_pushvalue(L, -1);
	lua_setfield(L, -3, name);
	lua_replace(L, -3);   /* keep the entry table; stack: name path entry */
	lua_pop(L, 1);
	/* stack: name, path, entry table (index 3) */

	basename = strrchr(name, '.');
	basename = basename ? basename + 1 : name;
	sym = NULL;
	if (pragtical) {
		snprintf(entry, sizeof entry, "luaopen_pragtical_%s", basename);
		sym = find_symbol(library, entry);
	}
	if (sym == NULL) {
		snprintf(entry, sizeof entry, "luaopen_lite_xl_%s", basename);
		sym = find_symbol(library, entry);
	}
	if (sym == NULL) {
		ext = 0;
		snprintf(entry, sizeof entry, "luaopen_%s", basename);
		sym = find_symbol(library, entry);
		if (sym == NULL && pragtical && basename != name) {
			char *p;
			snprintf(entry, sizeof entry, "luaopen_%s", name);
			for (p = entry; *p; p++)
				if (*p == '.')
					*p = '_';
			sym = find_symbol(library, entry);
		}
		if (sym == NULL)
			return luaL_error(L, "Unable to load %s: Can't find %s(lua_State *L, void *XL)",
					  name, entry);
	}
	lua_pushstring(L, entry);
	lua_setfield(L, 3, "entry");
	lua_settop(L, 2);   /* as in the editor: the module name and path */
	if (verbose)
		fprintf(stderr, "xl_host: %s: %s from %s\n", name, entry, path);

	return xl_call_entry(L, sym, ext, api_require, name);
}

static const char *const searcher_pragtical =
	"local load = ...\n"
	"package.native_plugins = {}\n"
	"table.insert(package.searchers, 1, function(modname)\n"
	"  local path, err = package.searchpath(modname, package.cpath)\n"
	"  if not path then return err end\n"
	"  return load, path\n"
	"end)\n";

/* ------------------------------------------ stand-ins for busted's C modules */

static int push_errno(lua_State *L, const char *what)
{
	int e = errno;
	lua_pushnil(L);
	lua_pushfstring(L, "%s: %s", what, strerror(e));
	lua_pushinteger(L, e);
	return 3;
}

static const char *mode_name(mode_t m)
{
	if (S_ISREG(m)) return "file";
	if (S_ISDIR(m)) return "directory";
	if (S_ISLNK(m)) return "link";
	if (S_ISSOCK(m)) return "socket";
	if (S_ISFIFO(m)) return "named pipe";
	if (S_ISCHR(m)) return "char device";
	if (S_ISBLK(m)) return "block device";
	return "other";
}

static void push_permissions(lua_State *L, mode_t m)
{
	char p[10];
	const char *rwx = "rwxrwxrwx";
	int i;

	for (i = 0; i < 9; i++)
		p[i] = (m & (1u << (8 - i))) ? rwx[i] : '-';
	lua_pushlstring(L, p, 9);
}

static int push_attributes(lua_State *L, int link)
{
	const char *path = luaL_checkstring(L, 1);
	struct stat st;
	static const char *const fields[] = {
		"mode", "size", "modification", "access", "change", "dev", "ino",
		"nlink", "uid", "gid", "rdev", "blocks", "blksize", "permissions", NULL,
	};
	int i;

	if ((link ? lstat(path, &st) : stat(path, &st)) != 0)
		return push_errno(L, path);
	lua_createtable(L, 0, 14);
	lua_pushstring(L, mode_name(st.st_mode));
	lua_setfield(L, -2, "mode");
	lua_pushinteger(L, (lua_Integer)st.st_size);
	lua_setfield(L, -2, "size");
	lua_pushinteger(L, (lua_Integer)st.st_mtime);
	lua_setfield(L, -2, "modification");
	lua_pushinteger(L, (lua_Integer)st.st_atime);
	lua_setfield(L, -2, "access");
	lua_pushinteger(L, (lua_Integer)st.st_ctime);
	lua_setfield(L, -2, "change");
	lua_pushinteger(L, (lua_Integer)st.st_dev);
	lua_setfield(L, -2, "dev");
	lua_pushinteger(L, (lua_Integer)st.st_ino);
	lua_setfield(L, -2, "ino");
	lua_pushinteger(L, (lua_Integer)st.st_nlink);
	lua_setfield(L, -2, "nlink");
	lua_pushinteger(L, (lua_Integer)st.st_uid);
	lua_setfield(L, -2, "uid");
	lua_pushinteger(L, (lua_Integer)st.st_gid);
	lua_setfield(L, -2, "gid");
	lua_pushinteger(L, (lua_Integer)st.st_rdev);
	lua_setfield(L, -2, "rdev");
	lua_pushinteger(L, (lua_Integer)st.st_blocks);
	lua_setfield(L, -2, "blocks");
	lua_pushinteger(L, (lua_Integer)st.st_blksize);
	lua_setfield(L, -2, "blksize");
	push_permissions(L, st.st_mode);
	lua_setfield(L, -2, "permissions");
	if (lua_type(L, 2) == LUA_TSTRING) {
		const char *want = lua_tostring(L, 2);
		for (i = 0; fields[i]; i++)
			if (strcmp(fields[i], want) == 0)
				break;
		if (fields[i] == NULL)
			return luaL_argerror(L, 2, "invalid attribute name");
		lua_getfield(L, -1, want);
	}
	return 1;
}

static int lfs_attributes(lua_State *L) { return push_attributes(L, 0); }
static int lfs_symlinkattributes(lua_State *L) { return push_attributes(L, 1); }

static int lfs_dir_iter(lua_State *L)
{
	lua_Integer i = lua_tointeger(L, lua_upvalueindex(2)) + 1;

	lua_pushinteger(L, i);
	lua_replace(L, lua_upvalueindex(2));
	lua_rawgeti(L, lua_upvalueindex(1), i);
	return 1;
}

/* lfs.dir(path): the names are read at once (no open DIR between calls). */
static int lfs_dir(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	DIR *d = opendir(path);
	struct dirent *e;
	lua_Integer n = 0;

	if (d == NULL)
		return luaL_error(L, "cannot open %s: %s", path, strerror(errno));
	lua_newtable(L);
	while ((e = readdir(d)) != NULL) {
		lua_pushstring(L, e->d_name);
		lua_rawseti(L, -2, ++n);
	}
	closedir(d);
	lua_pushinteger(L, 0);
	lua_pushcclosure(L, lfs_dir_iter, 2);
	lua_pushnil(L);
	return 2;
}

static int lfs_currentdir(lua_State *L)
{
	char buf[PATH_MAX];

	if (getcwd(buf, sizeof buf) == NULL)
		return push_errno(L, "getcwd");
	lua_pushstring(L, buf);
	return 1;
}

static int lfs_chdir(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);

	if (chdir(path) != 0)
		return push_errno(L, path);
	lua_pushboolean(L, 1);
	return 1;
}

static int lfs_mkdir(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);

	if (mkdir(path, 0777) != 0)
		return push_errno(L, path);
	lua_pushboolean(L, 1);
	return 1;
}

static int lfs_rmdir(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);

	if (rmdir(path) != 0)
		return push_errno(L, path);
	lua_pushboolean(L, 1);
	return 1;
}

static int lfs_touch(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct utimbuf t, *tp = NULL;

	if (!lua_isnoneornil(L, 2)) {
		t.actime = (time_t)luaL_checkinteger(L, 2);
		t.modtime = (time_t)luaL_optinteger(L, 3, t.actime);
		tp = &t;
	}
	if (utime(path, tp) != 0)
		return push_errno(L, path);
	lua_pushboolean(L, 1);
	return 1;
}

static int open_lfs(lua_State *L)
{
	static const luaL_Reg f[] = {
		{"attributes", lfs_attributes},
		{"symlinkattributes", lfs_symlinkattributes},
		{"dir", lfs_dir},
		{"currentdir", lfs_currentdir},
		{"chdir", lfs_chdir},
		{"mkdir", lfs_mkdir},
		{"rmdir", lfs_rmdir},
		{"touch", lfs_touch},
		{NULL, NULL},
	};
	luaL_newlib(L, f);
	lua_pushliteral(L, "LuaFileSystem (xl_host stand-in)");
	lua_setfield(L, -2, "_VERSION");
	return 1;
}

static double clock_seconds(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int sys_gettime(lua_State *L)
{
	lua_pushnumber(L, clock_seconds(CLOCK_REALTIME));
	return 1;
}

static int sys_monotime(lua_State *L)
{
	lua_pushnumber(L, clock_seconds(CLOCK_MONOTONIC));
	return 1;
}

static int sys_sleep(lua_State *L)
{
	double s = luaL_checknumber(L, 1);
	struct timespec ts;

	if (s > 0) {
		ts.tv_sec = (time_t)s;
		ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	return 0;
}

static int open_system_core(lua_State *L)
{
	static const luaL_Reg f[] = {
		{"gettime", sys_gettime},
		{"monotime", sys_monotime},
		{"sleep", sys_sleep},
		{NULL, NULL},
	};
	luaL_newlib(L, f);
	return 1;
}

static int term_isatty(lua_State *L)
{
	luaL_Stream *s = luaL_checkudata(L, 1, LUA_FILEHANDLE);

	lua_pushboolean(L, s->f != NULL && isatty(fileno(s->f)));
	return 1;
}

static int open_term_core(lua_State *L)
{
	static const luaL_Reg f[] = {
		{"isatty", term_isatty},
		{NULL, NULL},
	};
	luaL_newlib(L, f);
	return 1;
}

/* ------------------------------------------------------------- interpreter */

static void print_usage(void)
{
	fprintf(stderr, "usage: %s [-e stat]... [script [args...]]\n", progname);
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

static void setup_editor_env(lua_State *L)
{
	static const luaL_Reg preload[] = {
		{"lfs", open_lfs},
		{"system.core", open_system_core},
		{"term.core", open_term_core},
		{NULL, NULL},
	};
	const luaL_Reg *p;

	/* the stand-ins */
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	for (p = preload; p->name; p++) {
		lua_pushcfunction(L, p->func);
		lua_setfield(L, -2, p->name);
	}
	lua_pop(L, 1);

	/* the metatable of package.native_plugins entries */
	luaL_newmetatable(L, NATIVE_PLUGIN_MT);
	lua_pushcfunction(L, library_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);

	/* xl_host = {load_native_plugin = ..., flavor = ...} */
	lua_createtable(L, 0, 2);
	lua_pushcfunction(L, load_native_plugin);
	lua_setfield(L, -2, "load_native_plugin");
	lua_pushstring(L, pragtical ? "pragtical" : "lite-xl");
	lua_setfield(L, -2, "flavor");
	if (stub_wait != NULL && stub_stats != NULL) {
		lua_pushcfunction(L, sdl_wait);
		lua_setfield(L, -2, "sdl_wait");
		lua_pushcfunction(L, sdl_stats);
		lua_setfield(L, -2, "sdl_stats");
	}
	lua_setglobal(L, "xl_host");

	/* the searchers, as the editor's start.lua sets them */
	if (luaL_loadstring(L, pragtical ? searcher_pragtical : xl_searcher_lite_xl) != LUA_OK)
		lua_error(L);
	lua_pushcfunction(L, load_native_plugin);
	lua_call(L, 1, 0);
}

static int pmain(lua_State *L)
{
	int argc = (int)lua_tointeger(L, 1);
	char **argv = (char **)lua_touserdata(L, 2);
	int script = 0;
	int i, n;

	luaL_checkversion(L);
	luaL_openlibs(L);
	setup_editor_env(L);
	lua_gc(L, LUA_GCRESTART);
	lua_gc(L, LUA_GCGEN, 0, 0);

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
			fprintf(stderr, "%s: unrecognized option '%s'\n", progname, argv[i]);
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

	{
		int zero = script ? script : argc;
		lua_createtable(L, argc - zero, zero + 1);
		for (i = 0; i < argc; i++) {
			lua_pushstring(L, argv[i]);
			lua_rawseti(L, -2, i - zero);
		}
		lua_setglobal(L, "arg");
	}

	for (i = 1; i < (script ? script : argc); i++) {
		if (strcmp(argv[i], "-e") == 0) {
			i++;
			if (luaL_loadbuffer(L, argv[i], strlen(argv[i]), "=(command line)") != LUA_OK) {
				fprintf(stderr, "%s: %s\n", progname, lua_tostring(L, -1));
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
			fname = NULL;
		if (luaL_loadfile(L, fname) != LUA_OK) {
			fprintf(stderr, "%s: %s\n", progname, lua_tostring(L, -1));
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
	const char *env;

	if (argv[0] != NULL && argv[0][0] != '\0')
		progname = argv[0];
	env = getenv("XL_HOST_FLAVOR");
	pragtical = env != NULL && strcmp(env, "pragtical") == 0;
	env = getenv("XL_HOST_VERBOSE");
	verbose = env != NULL && env[0] != '\0' && strcmp(env, "0") != 0;
	env = getenv("XL_HOST_HIDE");
	if (env != NULL && env[0] != '\0')
		hidden_list = strdup(env);
	env = getenv("XL_HOST_API");
	if (env != NULL && env[0] != '\0' && load_served_list(env) != 0)
		return EXIT_FAILURE;
	if (preload_libraries() != 0)
		return EXIT_FAILURE;

	L = luaL_newstate();
	if (L == NULL) {
		fprintf(stderr, "%s: cannot create state: not enough memory\n", progname);
		return EXIT_FAILURE;
	}
	lua_gc(L, LUA_GCSTOP);
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
	report_after_close();
	free(served_list);
	free(hidden_list);
	fflush(stdout);
	return (status == LUA_OK && ok) ? EXIT_SUCCESS : EXIT_FAILURE;
}
