/* lnet.c: luaopen_net and the module-level functions of the Lua binding.
 * Runs on the thread that owns the lua_State. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "lnet.h"

int lnet_push_result(lua_State *L, net_result r) {
  static const char *const names[] = {"waiting", "success", "failure"};
  if (r.status != NET_FAILURE) return lua_pushstring(L, names[r.status]), 1;
  /* the engine's text first: pushing copies it before a collection can run a
     finalizer that frees its object */
  lua_pushstring(L, r.msg);
  lua_pushstring(L, names[r.status]);
  lua_insert(L, -2);
  lua_pushstring(L, net_errcode(r.err));
  return 3;
}

#define SCRATCH_MIN (64u << 10)
#define SCRATCH_MAX (1u << 20)
#define GATHER_STACK 16384   /* bytes across buffer pieces up to this size gather on the C stack */

/* The state's block is a userdata in its registry: it goes with the state
 * whatever thread ran it, and counts as the state's memory. */
static const char scratch_key = 's';

char *lnet_scratch(lua_State *L, size_t n) {
  if (n > SCRATCH_MAX) return NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &scratch_key);
  char *p = lua_touserdata(L, -1);
  size_t size = p ? lua_rawlen(L, -1) : 0;
  lua_pop(L, 1);   /* the registry keeps it */
  if (n <= size) return p;
  size_t want = size ? size : SCRATCH_MIN;
  while (want < n) want *= 2;
  p = lua_newuserdatauv(L, want, 0);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &scratch_key);   /* the smaller one becomes garbage */
  return p;
}

static long gather(lua_State *L, size_t n, const void *one, const lnet_source *src, unsigned at) {
  if (one) {
    lua_pushlstring(L, one, n);   /* copies before it can collect */
    return (long)n;
  }
  if (n <= GATHER_STACK) {
    char buf[GATHER_STACK];
    n = src->copy(src->ud, buf, n);
    lua_pushlstring(L, buf, n);
    return (long)n;
  }
  luaL_Buffer b;
  char *p = lnet_scratch(L, n);
  bool boxed = !p;
  if (boxed) p = luaL_buffinitsize(L, &b, n);
  if (!src->open(src->ud)) return -1;   /* closed by a finalizer the allocation ran (lnet.h) */
  if (*src->reads != at) return LNET_READ_AGAIN;   /* read by one: n may be more than is left */
  n = src->copy(src->ud, p, n);
  if (boxed) luaL_pushresultsize(&b, n);
  else lua_pushlstring(L, p, n);
  return (long)n;
}

long lnet_push_gathered(lua_State *L, size_t n, const void *one, const lnet_source *src) {
  unsigned at = *src->reads;
  long got = gather(L, n, one, src, at);
  if (got < 0 || *src->reads == at) return got;
  lua_pop(L, 1);   /* a finalizer read the bytes just copied: they are its */
  return LNET_READ_AGAIN;
}

int lnet_read_again(lua_State *L, lua_CFunction f) {
  int top = lua_gettop(L), r;
  while ((r = f(L)) == LNET_READ_AGAIN) lua_settop(L, top);
  return r;
}

const char *lnet_check_cstring(lua_State *L, int i) {
  size_t len;
  const char *s = luaL_checklstring(L, i, &len);
  if (strlen(s) != len) luaL_argerror(L, i, "string contains a NUL byte");
  return s;
}

int lnet_check_option(lua_State *L, int i, const char *def, const char *const lst[]) {
  if (def == NULL || !lua_isnoneornil(L, i)) lnet_check_cstring(L, i);   /* "nodelay\0x" is no name */
  return luaL_checkoption(L, i, def, lst);
}

int lnet_fail(lua_State *L, const char *msg, net_err code) {
  lua_pushnil(L);
  lua_pushstring(L, msg);
  lua_pushstring(L, net_errcode(code));
  return 3;
}

int lnet_opt_timeout(lua_State *L, int i) {
  lua_Integer t = luaL_optinteger(L, i, 0);
  if (t < -1) luaL_argerror(L, i, "timeout must be -1 (forever) or a number of milliseconds");
  return t > INT_MAX ? INT_MAX : (int)t;
}

void lnet_new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                    const luaL_Reg *metamethods, int nup) {
  luaL_newmetatable(L, name);
  luaL_setfuncs(L, metamethods, 0);
  lua_insert(L, -(nup + 1));       /* metatable below the upvalues */
  lua_newtable(L);
  lua_insert(L, -(nup + 1));       /* methods table below the upvalues */
  luaL_setfuncs(L, methods, nup);
  lua_setfield(L, -2, "__index");
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
}

static int l_clock(lua_State *L) {
  lua_pushnumber(L, net_clock());
  return 1;
}

/* The generation this lua_State saw last lives in an upvalue, so each state
 * gets "activity since my previous wait", never a lost wake-up. */
static int l_wait(lua_State *L) {
  int timeout = lnet_opt_timeout(L, 1);
  uint64_t *seen = lua_touserdata(L, lua_upvalueindex(1));
  lua_pushboolean(L, net_wait_activity_since(seen, timeout));
  return 1;
}

static int l_get_local_addresses(lua_State *L) {
  net_endpoint list[64];
  const char *err;
  int n = net_local_addresses(list, 64, &err);
  if (n < 0) return lnet_fail(L, err, NET_E_IO);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    net_addr **slot = lnet_new_addr(L);
    *slot = net_resolve(list[i].ip, strlen(list[i].ip), &err, NULL);   /* a literal: resolved at once */
    if (!*slot) return lnet_fail(L, err, NET_E_LIMIT);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int l_get_stats(lua_State *L) {
  net_stats s = net_get_stats();
  lua_createtable(L, 0, 8);
  lua_pushinteger(L, (lua_Integer)s.module_bytes);
  lua_setfield(L, -2, "module_bytes");
  lua_pushinteger(L, (lua_Integer)s.heap_bytes);
  lua_setfield(L, -2, "heap_bytes");
  lua_pushinteger(L, (lua_Integer)s.servers);
  lua_setfield(L, -2, "servers");
  lua_pushinteger(L, (lua_Integer)s.connections);
  lua_setfield(L, -2, "connections");
  lua_pushinteger(L, (lua_Integer)s.udp);
  lua_setfield(L, -2, "udp");
  lua_pushinteger(L, (lua_Integer)s.addresses);
  lua_setfield(L, -2, "addresses");
  lua_pushinteger(L, (lua_Integer)s.buffer_bytes);
  lua_setfield(L, -2, "buffer_bytes");
  lua_pushinteger(L, (lua_Integer)s.chunks);
  lua_setfield(L, -2, "chunks");
  lua_pushinteger(L, (lua_Integer)s.http);
  lua_setfield(L, -2, "http");
  lua_pushinteger(L, (lua_Integer)s.websockets);
  lua_setfield(L, -2, "websockets");
  return 1;
}

#define CACERT_PATH_MAX 32767   /* Windows' longest path; get_cacert_path gives it back whole */

static int l_set_cacert_path(lua_State *L) {
  const char *path = lua_isnoneornil(L, 1) ? NULL : lnet_check_cstring(L, 1);
  luaL_argcheck(L, !path || strlen(path) <= CACERT_PATH_MAX, 1, "path longer than 32767 bytes");
  /* raised, not returned: a caller that ignored it would trust what it meant not to */
  if (net_set_cacert_path(path) != 0)
    return luaL_error(L, "set_cacert_path: out of memory (the earlier setting stays)");
  return 0;
}

static int l_get_cacert_path(lua_State *L) {
  char path[4096], *p = path;
  int r = net_get_cacert_path(path, sizeof path);
  if (r < 0 && (p = lnet_scratch(L, 65536))) r = net_get_cacert_path(p, 65536);   /* a long one set */
  if (r > 0) lua_pushstring(L, p);
  else lua_pushnil(L);
  if (r <= 0 || net_get_cacert_dir(path, sizeof path) <= 0) return 1;
  lua_pushstring(L, path);   /* SSL_CERT_DIR, trusted beside SSL_CERT_FILE */
  return 2;
}

/* set_wakeup(true): SDL user events through the host's SDL (returns the
 * event type and the SDL version, 2 or 3); set_wakeup(fn_lightuserdata
 * [, ud]): a C callback `void fn(void *ud)` on a background thread, for
 * engines that hand a function pointer to Lua; set_wakeup(false): off.
 * false, reason when it cannot be done (no SDL in the process). */
static int l_set_wakeup(lua_State *L) {
  int t = lua_type(L, 1);
  const char *why = NULL;
  int r;
  if (t == LUA_TLIGHTUSERDATA) {
    void *p = lua_touserdata(L, 1);
    /* the module's own light userdata: a call through it would crash later, on the I/O thread */
    if (!p || lnet_is_json_null(L, 1)) return luaL_argerror(L, 1, "a light userdata here must be a C function");
    void (*fn)(void *);
    memcpy(&fn, &p, sizeof fn);   /* POSIX: function pointers fit a void * */
    /* a full userdata would not be anchored while the I/O thread hands it on */
    luaL_argexpected(L, lua_isnoneornil(L, 2) || lua_islightuserdata(L, 2), 2, "light userdata or nil");
    r = net_set_wakeup(NET_WAKE_CALLBACK, fn, lua_touserdata(L, 2), &why);
  } else if (t == LUA_TBOOLEAN || t == LUA_TNIL || t == LUA_TNONE) {
    r = net_set_wakeup(lua_toboolean(L, 1) ? NET_WAKE_SDL : NET_WAKE_OFF, NULL, NULL, &why);
  } else {
    return luaL_typeerror(L, 1, "boolean or light userdata (a C function)");
  }
  if (r != 0) {
    lua_pushboolean(L, 0);
    lua_pushfstring(L, "set_wakeup: %s", why);
    return 2;
  }
  if (!lua_toboolean(L, 1) || t != LUA_TBOOLEAN) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushinteger(L, (lua_Integer)net_wakeup_event_type());
  lua_pushinteger(L, net_wakeup_sdl_version());
  return 2;
}

/* Tests only (with SLUICE_TEST_HOOKS set): net._fail_allocs(after, count)
 * lets `after` more engine allocations succeed, then fails `count` in a row
 * (0: off). Process-wide, so no module in use has it. */
static int l_fail_allocs(lua_State *L) {
  lua_Integer after = luaL_checkinteger(L, 1), count = luaL_optinteger(L, 2, 1);
  net_debug_fail_allocs((long)after, (long)count);
  return 0;
}

/* Tests only: net._lookup_max(ms), net_debug_lookup_max. */
static int l_lookup_max(lua_State *L) {
  net_debug_lookup_max((int)luaL_checkinteger(L, 1));
  return 0;
}

/* Tests only: net._hold_requests(ms), net_debug_hold_requests. */
static int l_hold_requests(lua_State *L) {
  net_debug_hold_requests((int)luaL_checkinteger(L, 1));
  return 0;
}

/* The tests' hooks stay in the module table only with SLUICE_TEST_HOOKS set. */
static void drop_test_hooks(lua_State *L) {
  static const char *const hooks[] = {"_fail_allocs", "_lookup_max", "_hold_requests"};
  if (getenv("SLUICE_TEST_HOOKS")) return;
  for (size_t i = 0; i < sizeof hooks / sizeof *hooks; i++) {
    lua_pushnil(L);
    lua_setfield(L, -2, hooks[i]);
  }
}

/* One per luaopen_net: keeps the engine alive for as long as the state is. */
static int instance_gc(lua_State *L) {
  int *live = lua_touserdata(L, 1);
  if (*live) net_quit();
  *live = 0;
  return 0;
}

NET_API int luaopen_net(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"resolve_address", lnet_resolve_address},
      {"open_tcp", lnet_open_tcp_fn},
      {"open_udp", lnet_open_udp_fn},
      {"open_unix", lnet_open_unix_fn},
      {"create_server", lnet_create_server},
      {"create_resolver", lnet_create_resolver},
      {"http_request", lnet_http_request},
      {"open_websocket", lnet_open_websocket},
      {"get_local_addresses", l_get_local_addresses},
      {"clock", l_clock},
      {"wait", l_wait},
      {"get_stats", l_get_stats},
      {"set_cacert_path", l_set_cacert_path},
      {"get_cacert_path", l_get_cacert_path},
      {"set_wakeup", l_set_wakeup},
      {"_fail_allocs", l_fail_allocs},   /* dropped unless testing (drop_test_hooks) */
      {"_lookup_max", l_lookup_max},
      {"_hold_requests", l_hold_requests},
      {NULL, NULL},
  };
  int *live = lua_newuserdatauv(L, sizeof *live, 0);
  *live = 0;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, instance_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  if (net_init() != 0) return luaL_error(L, "net: cannot initialise the engine");
  *live = 1;
  /* Registry-anchored: finalised at lua_close, after every object made later. */
  luaL_ref(L, LUA_REGISTRYINDEX);

  lnet_open_addr(L);
  lnet_open_tcp(L);
  lnet_open_udp(L);
  lnet_open_server(L);
  lnet_open_json(L);
  lnet_open_resolver(L);
  lnet_open_http(L);
  lnet_open_ws(L);
  luaL_newlibtable(L, funcs);
  uint64_t *seen = lua_newuserdatauv(L, sizeof *seen, 0);
  *seen = 0;
  net_wait_activity_since(seen, 0);   /* start from now, not from process start */
  luaL_setfuncs(L, funcs, 1);
  drop_test_hooks(L);
  lnet_json_funcs(L);
  lua_pushliteral(L, "sluice " NET_VERSION);
  lua_setfield(L, -2, "_VERSION");
  lua_pushboolean(L, net_tls_has_13());
  lua_setfield(L, -2, "tls13");
  return 1;
}
