/* lresolver.c: the net.resolver object of the Lua binding (owner thread): a
 * resolver with its own nameservers, made by net.create_resolver. */
#include <string.h>

#include "lnet.h"

typedef struct lresolver {
  net_resolver *r;   /* NULL once closed */
} lresolver;

net_resolver **lnet_resolver_slot(lua_State *L, int i) {
  lresolver *u = luaL_checkudata(L, i, LNET_RESOLVER);
  return &u->r;
}

/* Option `field` of the table at 1: 0 when absent, else an integer 1..max. */
static lua_Integer opt_count(lua_State *L, const char *field, lua_Integer max, const char *why) {
  int isint = 0;
  lua_getfield(L, 1, field);
  lua_Integer v = lua_tointegerx(L, -1, &isint);
  bool absent = lua_isnil(L, -1);
  lua_pop(L, 1);
  if (absent) return 0;
  if (!isint || v < 1 || v > max) luaL_argerror(L, 1, why);
  return v;
}

/* net.create_resolver{nameservers = {...}, timeout = ms, tries = n} */
int lnet_create_resolver(lua_State *L) {
  static const char *const keys[] = {"nameservers", "timeout", "tries", NULL};
  const char *list[NET_RESOLVER_MAX_SERVERS];
  net_resolver_opts o = {list, 0, 0, 0};
  luaL_checktype(L, 1, LUA_TTABLE);
  lnet_options(L, 1, 1, keys, "resolver");
  if (lua_getfield(L, 1, "nameservers") != LUA_TTABLE) luaL_argerror(L, 1, "nameservers must be a list of \"ip[:port]\"");
  lnet_snapshot_list(L, -1);   /* stays on the stack: it holds the names */
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);   /* raw, as read below */
  if (n < 1 || n > NET_RESOLVER_MAX_SERVERS) luaL_argerror(L, 1, "1..8 nameservers are required");
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, -1, i) != LUA_TSTRING) luaL_argerror(L, 1, "nameservers must be a list of \"ip[:port]\"");
    size_t len;
    list[i - 1] = lua_tolstring(L, -1, &len);
    /* the engine takes C strings: "127.0.0.1\0:5353" would be 127.0.0.1:53 */
    if (strlen(list[i - 1]) != len) luaL_argerror(L, 1, lua_pushfstring(L, "nameserver %I contains a NUL byte", i));
    lua_pop(L, 1);   /* the list's copy keeps it */
  }
  o.count = (int)n;
  o.timeout_ms = (int)opt_count(L, "timeout", 600000, "timeout must be 1..600000 ms");
  o.tries = (int)opt_count(L, "tries", 20, "tries must be 1..20");
  lresolver *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->r = NULL;
  luaL_setmetatable(L, LNET_RESOLVER);
  const char *err;
  net_err code;
  u->r = net_resolver_new(&o, &err, &code);
  if (!u->r && code == NET_E_INVALID) luaL_argerror(L, 1, err);   /* a nameserver that is not ip[:port] */
  if (!u->r) return lnet_fail(L, err, code);
  return 1;
}

static int resolver_resolve(lua_State *L) {
  luaL_checkudata(L, 1, LNET_RESOLVER);
  size_t len;
  luaL_checktype(L, 2, LUA_TSTRING);   /* a number is no host name (127 is not 0.0.0.127) */
  const char *host = lua_tolstring(L, 2, &len);
  net_addr **slot = lnet_new_addr(L);
  net_resolver *r = ((lresolver *)lua_touserdata(L, 1))->r;   /* after the allocation (lnet.h) */
  if (!r) return lnet_fail(L, "closed", NET_E_CLOSED);   /* closed before, or by a finalizer (lnet.h) */
  const char *err;
  net_err code;
  *slot = net_resolver_resolve(r, host, len, &err, &code);
  if (!*slot) return lnet_fail(L, err, code);
  return 1;
}

static int resolver_close(lua_State *L) {
  lresolver *u = luaL_checkudata(L, 1, LNET_RESOLVER);
  net_resolver_free(u->r);
  u->r = NULL;
  return 0;
}

static int resolver_tostring(lua_State *L) {
  lresolver *u = luaL_checkudata(L, 1, LNET_RESOLVER);
  char desc[256];
  if (u->r) net_resolver_describe(u->r, desc, sizeof desc);
  lua_pushfstring(L, "net.resolver(%s)", u->r ? desc : "closed");
  return 1;
}

void lnet_open_resolver(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"resolve", resolver_resolve},
      {"close", resolver_close},
      {NULL, NULL},
  };
  static const luaL_Reg meta[] = {
      {"__gc", resolver_close},
      {"__close", resolver_close},
      {"__tostring", resolver_tostring},
      {NULL, NULL},
  };
  lnet_new_class(L, LNET_RESOLVER, methods, meta, 0);
}
