/* laddr.c: the net.address object of the Lua binding (owner thread). */
#include <string.h>

#include "lnet.h"

typedef struct laddr {
  net_addr *a;   /* NULL until filled, so a failed allocation leaks nothing */
} laddr;

net_addr **lnet_new_addr(lua_State *L) {
  laddr *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->a = NULL;
  luaL_setmetatable(L, LNET_ADDR);
  return &u->a;
}

/* A released address (collected, or closed by <close>) handed to another
 * call is a mistake in the program: it raises, saying so. */
net_addr *lnet_test_addr(lua_State *L, int i) {
  laddr *u = luaL_testudata(L, i, LNET_ADDR);
  if (u && !u->a) luaL_argerror(L, i, "net.address was released");
  return u ? u->a : NULL;
}

net_addr *lnet_check_addr(lua_State *L, int i) {
  luaL_checkudata(L, i, LNET_ADDR);
  return lnet_test_addr(L, i);
}

int lnet_resolve_address(lua_State *L) {
  size_t len;
  luaL_checktype(L, 1, LUA_TSTRING);   /* a number is no host name (127 is not 0.0.0.127) */
  const char *host = lua_tolstring(L, 1, &len);
  net_addr **slot = lnet_new_addr(L);
  const char *err;
  net_err code;
  *slot = net_resolve(host, len, &err, &code);
  if (!*slot) return lnet_fail(L, err, code);
  return 1;
}

/* Its own methods treat a released address as any closed object: a
 * failure, or nil. */
static net_addr *self(lua_State *L) { return ((laddr *)luaL_checkudata(L, 1, LNET_ADDR))->a; }

static const net_result released = {NET_FAILURE, NET_E_CLOSED, "address was released"};

static int addr_get_status(lua_State *L) {
  net_addr *a = self(L);
  return lnet_push_result(L, a ? net_addr_status(a) : released);
}

static int addr_wait_until_resolved(lua_State *L) {
  net_addr *a = self(L);
  int timeout = lnet_opt_timeout(L, 2);
  return lnet_push_result(L, a ? net_addr_wait(a, timeout) : released);
}

static int addr_get_ip(lua_State *L) {
  net_addr *a = self(L);
  const char *ip = a ? net_addr_ip(a) : NULL;
  if (ip) lua_pushstring(L, ip);
  else lua_pushnil(L);
  return 1;
}

static int addr_get_hostname(lua_State *L) {
  net_addr *a = self(L);
  if (a) lua_pushstring(L, net_addr_hostname(a));
  else lua_pushnil(L);
  return 1;
}

static int addr_gc(lua_State *L) {
  laddr *u = luaL_checkudata(L, 1, LNET_ADDR);
  net_addr_unref(u->a);
  u->a = NULL;
  return 0;
}

static int addr_tostring(lua_State *L) {
  laddr *u = luaL_checkudata(L, 1, LNET_ADDR);
  if (!u->a) {
    lua_pushliteral(L, "net.address(released)");
    return 1;
  }
  static const char *const names[] = {"waiting", "success", "failure"};
  net_result r = net_addr_status(u->a);
  const char *ip = net_addr_ip(u->a), *host = net_addr_hostname(u->a);
  if (ip && strcmp(ip, host) != 0) lua_pushfstring(L, "net.address(%s %s, %s)", host, ip, names[r.status]);
  else lua_pushfstring(L, "net.address(%s, %s)", host, names[r.status]);
  return 1;
}

void lnet_open_addr(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"get_status", addr_get_status},
      {"wait_until_resolved", addr_wait_until_resolved},
      {"get_ip", addr_get_ip},
      {"get_hostname", addr_get_hostname},
      {NULL, NULL},
  };
  static const luaL_Reg meta[] = {
      {"__gc", addr_gc},
      {"__close", addr_gc},
      {"__tostring", addr_tostring},
      {NULL, NULL},
  };
  lnet_new_class(L, LNET_ADDR, methods, meta, 0);
}
