/* ludp.c: the net.udp socket and net.datagram objects of the Lua binding
 * (owner thread). Methods poll the engine's rings or make one quick
 * setsockopt, and return at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lnet.h"

typedef struct ludp {
  net_udp *u;                      /* NULL once closed */
  net_udp_counts last;             /* the counters when it was closed */
  char where[NET_IP_MAX + 8];      /* bound endpoint, kept for __tostring */
  int port;
} ludp;

/* A received datagram. User values: 1 the payload, 2 the sender's
 * net.address once get_address made it. It holds no engine resource. */
typedef struct ldgram {
  char ip[NET_IP_MAX];
  int port;
} ldgram;

static ludp *check_udp(lua_State *L) { return luaL_checkudata(L, 1, LNET_UDP); }

static int closed(lua_State *L) { return lnet_fail(L, "closed", NET_E_CLOSED); }

/* A port argument: an integer in lo..65535. */
static uint16_t check_port(lua_State *L, int i, lua_Integer lo) {
  int isint = 0;
  lua_Integer port = lua_tointegerx(L, i, &isint);
  if (!isint && lua_type(L, i) != LUA_TNUMBER) luaL_typeerror(L, i, "integer");
  if (!isint || port < lo || port > 65535)
    luaL_argerror(L, i, lo ? "port must be 1..65535" : "port must be 0..65535");
  return (uint16_t)port;
}

static void check_open_opts(lua_State *L, int i, net_udp_opts *o) {
  memset(o, 0, sizeof *o);
  if (lua_isnoneornil(L, i)) return;
  luaL_checktype(L, i, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, i)) {   /* a misspelt option must not pass silently */
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
    if (strcmp(k, "reuseaddr") == 0) {
      if (!lua_isboolean(L, -1)) luaL_argerror(L, i, "option 'reuseaddr' must be a boolean");
      o->reuseaddr = lua_toboolean(L, -1);
    } else if (strcmp(k, "buffer_size") == 0) {
      int isint = 0;
      lua_Integer n = lua_tointegerx(L, -1, &isint);
      if (!isint || n < 1 || (lua_Unsigned)n > NET_BUFFER_MAX)
        luaL_argerror(L, i, "option 'buffer_size' must be 1..1073741824 bytes");
      o->buffer_size = (size_t)n;
    } else {
      luaL_argerror(L, i, lua_pushfstring(L, "unknown UDP option '%s'", k));
    }
    lua_pop(L, 1);
  }
}

/* net.open_udp(addr_or_nil, port [, options]) */
int lnet_open_udp_fn(lua_State *L) {
  int t = lua_type(L, 1);
  net_addr *a = t == LUA_TUSERDATA ? lnet_check_addr(L, 1) : NULL;
  if (t != LUA_TNIL && t != LUA_TNONE && t != LUA_TSTRING && !a)
    return luaL_typeerror(L, 1, "nil, string or net.address");
  uint16_t port = check_port(L, 2, 0);
  net_udp_opts opts;
  check_open_opts(L, 3, &opts);

  ludp *u = lua_newuserdatauv(L, sizeof *u, 0);
  memset(u, 0, sizeof *u);
  luaL_setmetatable(L, LNET_UDP);
  if (a) a = lnet_check_addr(L, 1);   /* after the last allocation (lnet.h) */
  net_addr *tmp = NULL;   /* an IP literal's address, released before anything can raise */
  const char *err = NULL;
  net_err code = NET_E_INVALID;
  if (t == LUA_TSTRING) {
    size_t len;
    const char *ip = lua_tolstring(L, 1, &len);
    if (!net_ip_family(ip, len, NULL))   /* never a DNS lookup on this thread */
      return lnet_fail(L, lua_pushfstring(L, "bind %s: not an IP address (resolve names with "
                                             "net.resolve_address)", ip), NET_E_INVALID);
    if (!(a = tmp = net_parse_ip(ip, len, &err))) return lnet_fail(L, err, NET_E_LIMIT);
  }
  u->u = net_udp_open(a, port, &opts, &err, &code);
  net_addr_unref(tmp);   /* err never points into a resolved literal */
  if (!u->u) return lnet_fail(L, err, code);
  u->port = net_udp_port(u->u);
  net_endpoint e;
  net_udp_local(u->u, &e);
  snprintf(u->where, sizeof u->where, e.family == 6 ? "[%s]:%d" : "%s:%d", e.ip, e.port);
  return 1;
}

static int send_fail(lua_State *L, const char *msg, net_err code) {
  lua_pushboolean(L, 0);
  lua_pushstring(L, msg);
  lua_pushstring(L, net_errcode(code));
  return 3;
}

static int udp_send(lua_State *L) {
  ludp *u = check_udp(L);
  net_addr *a = lua_type(L, 2) == LUA_TUSERDATA ? lnet_check_addr(L, 2) : NULL;
  if (!a && lua_type(L, 2) != LUA_TSTRING) return luaL_typeerror(L, 2, "string or net.address");
  uint16_t port = check_port(L, 3, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 4, &len);
  if (a) a = lnet_check_addr(L, 2);   /* after the last allocation (lnet.h) */
  if (!u->u) return send_fail(L, "closed", NET_E_CLOSED);
  const char *err = NULL;
  net_err code;
  if (a) {
    code = net_udp_send(u->u, a, port, data, len, &err);
  } else {
    size_t hlen;
    const char *host = lua_tolstring(L, 2, &hlen);
    if (!net_ip_family(host, hlen, NULL))   /* never a DNS lookup on this thread */
      return send_fail(L, lua_pushfstring(L, "send to %s: not an IP address (resolve names "
                                             "with net.resolve_address)", host), NET_E_INVALID);
    code = net_udp_send_to(u->u, host, hlen, port, data, len, &err);
  }
  if (code != NET_E_NONE) return send_fail(L, err, code);
  lua_pushboolean(L, 1);
  return 1;
}

static int udp_receive(lua_State *L) {
  ludp *u = check_udp(L);
  for (;;) {
    if (!u->u) return closed(L);   /* also after a finalizer closed it (below) */
    long n = net_udp_next_size(u->u);
    if (n == NET_UDP_NONE) {
      lua_pushnil(L);
      return 1;
    }
    if (n < 0) {
      net_result r = net_udp_status(u->u);
      return lnet_fail(L, r.msg, r.err);
    }
    ldgram *d = lua_newuserdatauv(L, sizeof *d, 2);
    memset(d, 0, sizeof *d);
    luaL_setmetatable(L, LNET_DGRAM);
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, (size_t)n);
    /* Allocating may have run a finalizer that closed this socket (lnet.h) or
     * received on it: take the datagram only if it is still the one sized
     * above. Nothing allocates between here and the copy. */
    net_endpoint from;
    if (!u->u || net_udp_take(u->u, p, (size_t)n, n, &from) != n) {
      lua_settop(L, 1);
      continue;
    }
    snprintf(d->ip, sizeof d->ip, "%.63s", from.ip);
    d->port = from.port;
    luaL_pushresultsize(&b, (size_t)n);   /* out of memory here loses it, as UDP may */
    lua_setiuservalue(L, -2, 1);
    return 1;
  }
}

static int udp_get_port(lua_State *L) {
  lua_pushinteger(L, check_udp(L)->port);
  return 1;
}

static int udp_get_stats(lua_State *L) {
  ludp *u = check_udp(L);
  net_udp_counts c = u->u ? net_udp_stats(u->u) : u->last;
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, (lua_Integer)c.received);
  lua_setfield(L, -2, "received");
  lua_pushinteger(L, (lua_Integer)c.sent);
  lua_setfield(L, -2, "sent");
  lua_pushinteger(L, (lua_Integer)c.dropped);
  lua_setfield(L, -2, "dropped");
  lua_pushinteger(L, (lua_Integer)c.send_errors);
  lua_setfield(L, -2, "send_errors");
  return 1;
}

/* An interface argument: a name or address string, or an index (as text for
 * the engine), or nil; `optional` also allows it to be absent. */
static const char *check_iface(lua_State *L, int i, bool optional) {
  if (lua_type(L, i) == LUA_TNUMBER) {
    lua_Integer n = luaL_checkinteger(L, i);
    if (n < 0 || n > 0x7fffffff) luaL_argerror(L, i, "interface index must be 0 or more");
    return lua_pushfstring(L, "%I", (LUAI_UACINT)n);
  }
  if (lua_isnil(L, i) || (optional && lua_isnone(L, i))) return NULL;
  return lnet_check_cstring(L, i);
}

static const char *const option_names[] = {"broadcast", "reuseaddr", "multicast_loop",
                                           "multicast_ttl", "multicast_interface", NULL};
#define OPT_MULTICAST_IF 4   /* after the net_udp_option values, in the same order */

static int udp_set_option(lua_State *L) {
  ludp *u = check_udp(L);
  int opt = lnet_check_option(L, 2, NULL, option_names);
  const char *err = NULL;
  net_err code;
  if (opt == OPT_MULTICAST_IF) {
    const char *iface = check_iface(L, 3, false);
    if (!u->u) return closed(L);
    code = net_udp_set_multicast_if(u->u, iface, &err);
  } else {
    int v;
    if (opt == NET_UDP_MULTICAST_TTL) {
      lua_Integer ttl = luaL_checkinteger(L, 3);
      if (ttl < 0 || ttl > 255) luaL_argerror(L, 3, "multicast_ttl must be 0..255");
      v = (int)ttl;
    } else {
      luaL_checktype(L, 3, LUA_TBOOLEAN);
      v = lua_toboolean(L, 3);
    }
    if (!u->u) return closed(L);
    code = net_udp_set_option(u->u, (net_udp_option)opt, v, &err);
  }
  if (code != NET_E_NONE) return lnet_fail(L, err, code);
  lua_pushboolean(L, 1);
  return 1;
}

static int udp_get_option(lua_State *L) {
  ludp *u = check_udp(L);
  int opt = lnet_check_option(L, 2, NULL, option_names);
  if (!u->u) return closed(L);
  if (opt == OPT_MULTICAST_IF) {
    char buf[NET_IP_MAX];
    int fam = net_udp_get_multicast_if(u->u, buf, sizeof buf);
    if (fam < 0) return lnet_fail(L, "get_option multicast_interface failed", NET_E_IO);
    if (fam == 6) lua_pushinteger(L, (lua_Integer)strtol(buf, NULL, 10));
    else lua_pushstring(L, buf);
    return 1;
  }
  const char *err = NULL;
  int v = 0;
  net_err code = net_udp_get_option(u->u, (net_udp_option)opt, &v, &err);
  if (code != NET_E_NONE) return lnet_fail(L, err, code);
  if (opt == NET_UDP_MULTICAST_TTL) lua_pushinteger(L, v);
  else lua_pushboolean(L, v);
  return 1;
}

/* join/leave(group [, interface]): a malformed group raises; what the system
 * refuses comes back as nil, message, code. */
static int membership(lua_State *L, bool join) {
  ludp *u = check_udp(L);
  size_t len;
  const char *group = luaL_checklstring(L, 2, &len);
  int mc = 0;
  if (!net_ip_family(group, len, &mc) || !mc)
    luaL_argerror(L, 2, "group must be an IPv4 or IPv6 multicast address");
  const char *iface = check_iface(L, 3, true);
  if (!u->u) return closed(L);
  const char *err = NULL;
  net_err code = join ? net_udp_join(u->u, group, iface, &err)
                      : net_udp_leave(u->u, group, iface, &err);
  if (code != NET_E_NONE) return lnet_fail(L, err, code);
  lua_pushboolean(L, 1);
  return 1;
}

static int udp_join(lua_State *L) { return membership(L, true); }
static int udp_leave(lua_State *L) { return membership(L, false); }

static int udp_close(lua_State *L) {
  ludp *u = check_udp(L);
  if (u->u) {
    u->last = net_udp_stats(u->u);
    net_udp_close(u->u);
  }
  u->u = NULL;
  return 0;
}

static int udp_tostring(lua_State *L) {
  ludp *u = check_udp(L);
  const char *state = !u->u                                          ? "closed"
                      : net_udp_status(u->u).status == NET_FAILURE ? "failure"
                                                                   : "open";
  lua_pushfstring(L, "net.udp(%s, %s)", u->where[0] ? u->where : "?", state);
  return 1;
}

/* ---- datagrams ------------------------------------------------------------ */

static ldgram *check_dgram(lua_State *L) { return luaL_checkudata(L, 1, LNET_DGRAM); }

static int dgram_get_data(lua_State *L) {
  check_dgram(L);
  lua_getiuservalue(L, 1, 1);
  return 1;
}

static int dgram_get_address(lua_State *L) {
  ldgram *d = check_dgram(L);
  if (lua_getiuservalue(L, 1, 2) != LUA_TNIL) return 1;
  net_addr **slot = lnet_new_addr(L);
  const char *err;
  *slot = net_parse_ip(d->ip, strlen(d->ip), &err);   /* the sender's IP: never a lookup */
  if (!*slot) return luaL_error(L, "get_address: %s", err);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, 1, 2);   /* the same object every time */
  return 1;
}

static int dgram_get_port(lua_State *L) {
  lua_pushinteger(L, check_dgram(L)->port);
  return 1;
}

/* It holds no engine resource: <close> has nothing to end, as a closed file's would not. */
static int dgram_close(lua_State *L) {
  check_dgram(L);
  return 0;
}

static int dgram_tostring(lua_State *L) {
  ldgram *d = check_dgram(L);
  lua_getiuservalue(L, 1, 1);
  size_t len = lua_rawlen(L, -1);
  lua_pushfstring(L, strchr(d->ip, ':') ? "net.datagram([%s]:%d, %I bytes)" : "net.datagram(%s:%d, %I bytes)",
                  d->ip, d->port, (LUAI_UACINT)len);
  return 1;
}

void lnet_open_udp(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"send", udp_send},
      {"receive", udp_receive},
      {"get_port", udp_get_port},
      {"get_stats", udp_get_stats},
      {"set_option", udp_set_option},
      {"get_option", udp_get_option},
      {"join", udp_join},
      {"leave", udp_leave},
      {"close", udp_close},
      {NULL, NULL},
  };
  static const luaL_Reg meta[] = {
      {"__gc", udp_close},
      {"__close", udp_close},
      {"__tostring", udp_tostring},
      {NULL, NULL},
  };
  static const luaL_Reg dmethods[] = {
      {"get_data", dgram_get_data},
      {"get_address", dgram_get_address},
      {"get_port", dgram_get_port},
      {NULL, NULL},
  };
  static const luaL_Reg dmeta[] = {
      {"__close", dgram_close},
      {"__tostring", dgram_tostring},
      {NULL, NULL},
  };
  lnet_new_class(L, LNET_UDP, methods, meta, 0);
  lnet_new_class(L, LNET_DGRAM, dmethods, dmeta, 0);
}
