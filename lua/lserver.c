/* lserver.c: the net.server object of the Lua binding (owner thread):
 * listening TCP and Unix sockets, plain or TLS, for streams or websockets. */
#include <string.h>

#include "lnet.h"

typedef struct lserver {
  net_server *s;   /* NULL once closed */
} lserver;

static lserver *check_server(lua_State *L) { return luaL_checkudata(L, 1, LNET_SERVER); }

int lnet_push_endpoint(lua_State *L, const net_endpoint *e) {
  lua_pushstring(L, e->ip);
  if (e->family) lua_pushinteger(L, e->port);
  else lua_pushnil(L);
  lua_pushstring(L, e->family == 6 ? "inet6" : e->family == 4 ? "inet" : "unix");
  return 3;
}

/* create_server([addr,] port [, options]) or create_server{unix = path, ...} */
int lnet_create_server(lua_State *L) {
  lnet_server_args opts;
  const char *err = NULL;
  net_err code;
  if (lua_istable(L, 1) && lua_isnoneornil(L, 2)) {
    lnet_check_server_opts(L, 1, &opts);
    if (opts.tls.bad) return lnet_fail(L, opts.tls.bad, NET_E_INVALID);
    if (!opts.o.unix_path) return luaL_argerror(L, 1, "a table alone must name a unix path");
    lserver *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->s = NULL;
    luaL_setmetatable(L, LNET_SERVER);
    u->s = net_server_open(NULL, 0, &opts.o, &err, &code);
    return u->s ? 1 : lnet_fail(L, err, code);
  }
  int argi = lua_type(L, 1) == LUA_TNUMBER ? 1 : 2;   /* an address first, or nil for every interface */
  net_addr *a = argi == 2 ? lnet_test_addr(L, 1) : NULL;
  size_t len = 0;
  const char *ip = NULL;
  if (argi == 2 && !a && !lua_isnil(L, 1)) {
    if (lua_type(L, 1) != LUA_TSTRING) return luaL_typeerror(L, 1, "string, net.address or nil");
    ip = lua_tolstring(L, 1, &len);
  }
  int isint = 0;
  lua_Integer port = lua_tointegerx(L, argi, &isint);
  if (!isint && lua_type(L, argi) != LUA_TNUMBER) return luaL_typeerror(L, argi, "integer");
  if (!isint || port < 0 || port > 65535) return luaL_argerror(L, argi, "port must be 0..65535");
  lnet_check_server_opts(L, argi + 1, &opts);   /* may raise: nothing is held yet */
  if (opts.o.unix_path)   /* it would bind the path and silently drop the address and port */
    return luaL_argerror(L, argi + 1, "a Unix server takes no address or port: create_server{unix = path, ...}");
  if (opts.tls.bad) return lnet_fail(L, opts.tls.bad, NET_E_INVALID);
  lserver *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->s = NULL;
  luaL_setmetatable(L, LNET_SERVER);
  if (a) a = lnet_test_addr(L, 1);   /* after the last allocation (lnet.h) */
  /* servers bind to addresses, never to names: a lookup would block or race */
  if (ip && !net_ip_family(ip, len, NULL))
    return lnet_fail(L, "create_server: the address must be an IP literal or a resolved address",
                     NET_E_INVALID);
  net_addr *made = ip ? net_parse_ip(ip, len, &err) : NULL;
  if (ip && !made) return lnet_fail(L, err, NET_E_LIMIT);
  u->s = net_server_open(made ? made : a, (uint16_t)port, &opts.o, &err, &code);
  net_addr_unref(made);
  return u->s ? 1 : lnet_fail(L, err, code);
}

static int server_accept(lua_State *L) {
  lserver *u = check_server(L);
  if (!u->s) return lnet_fail(L, "closed", NET_E_CLOSED);
  net_result why;
  /* the object first, so a memory error leaks nothing; its allocation may
   * run a finalizer that closes this server (lnet.h) */
  if (net_server_is_ws(u->s)) {
    net_ws **slot = lnet_new_ws(L);
    if (!u->s) return lnet_fail(L, "closed", NET_E_CLOSED);
    if ((*slot = net_server_accept_ws(u->s, &why))) return 1;
  } else {
    ltcp *t = lnet_new_tcp(L);
    if (!u->s) return lnet_fail(L, "closed", NET_E_CLOSED);
    net_conn *c = net_server_accept(u->s, &why);
    if (c) {
      lnet_tcp_adopt(t, c);
      return 1;
    }
  }
  if (why.status == NET_FAILURE) return lnet_fail(L, why.msg, why.err);
  lua_pushnil(L);
  return 1;
}

static int server_get_port(lua_State *L) {
  lserver *u = check_server(L);
  net_endpoint e;
  if (!u->s || !net_server_local(u->s, &e)) return lnet_fail(L, "closed", NET_E_CLOSED);
  lua_pushinteger(L, e.port);
  return 1;
}

static int server_get_local_address(lua_State *L) {
  lserver *u = check_server(L);
  net_endpoint e;
  if (!u->s || !net_server_local(u->s, &e)) return lnet_fail(L, "closed", NET_E_CLOSED);
  return lnet_push_endpoint(L, &e);
}

static int server_get_status(lua_State *L) {
  lserver *u = check_server(L);
  if (!u->s) return lnet_push_result(L, (net_result){NET_FAILURE, NET_E_CLOSED, "closed"});
  return lnet_push_result(L, net_server_status(u->s));
}

static int server_close(lua_State *L) {
  lserver *u = check_server(L);
  if (u->s) net_server_close(u->s);
  u->s = NULL;
  return 0;
}

static int server_tostring(lua_State *L) {
  lserver *u = check_server(L);
  net_endpoint e;
  if (!u->s || !net_server_local(u->s, &e)) {
    lua_pushliteral(L, "net.server(closed)");
  } else {
    const char *state = net_server_status(u->s).status == NET_FAILURE ? "failed" : "listening";
    if (!e.family) lua_pushfstring(L, "net.server(unix:%s, %s)", e.ip, state);
    else if (e.family == 6) lua_pushfstring(L, "net.server([%s]:%d, %s)", e.ip, e.port, state);
    else lua_pushfstring(L, "net.server(%s:%d, %s)", e.ip, e.port, state);
  }
  return 1;
}

void lnet_open_server(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"accept", server_accept},
      {"get_port", server_get_port},
      {"get_local_address", server_get_local_address},
      {"get_status", server_get_status},
      {"close", server_close},
      {NULL, NULL},
  };
  static const luaL_Reg meta[] = {
      {"__gc", server_close},
      {"__close", server_close},
      {"__tostring", server_tostring},
      {NULL, NULL},
  };
  lnet_new_class(L, LNET_SERVER, methods, meta, 0);
}
