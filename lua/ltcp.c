/* ltcp.c: the net.tcp connection object of the Lua binding (owner thread).
 * Every method polls the engine's rings and atomics and returns at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "lnet.h"

typedef struct ltcp {
  net_conn *c;        /* NULL once closed */
  net_addr *target;   /* what was asked for, kept for __tostring */
  int port;
} ltcp;

static ltcp *check_tcp(lua_State *L) { return luaL_checkudata(L, 1, LNET_TCP); }

static int closed(lua_State *L) { return lnet_fail(L, "closed", NET_E_CLOSED); }

/* TLS options as the engine wants them; the strings stay owned by the Lua
 * table at `arg`, which is on the stack until the engine has copied them. */
typedef struct tls_args {
  net_tls_opts o;
  const char *alpn[17];
} tls_args;

static const char *opt_string(lua_State *L, int arg, const char *field) {
  int t = lua_getfield(L, arg, field);
  const char *v = NULL;
  if (t == LUA_TSTRING) v = lua_tostring(L, -1);
  else if (t != LUA_TNIL)
    luaL_argerror(L, arg, lua_pushfstring(L, "TLS option '%s' must be a string", field));
  lua_pop(L, 1);   /* the table keeps the string alive */
  return v;
}

static void opt_alpn(lua_State *L, int arg, tls_args *a) {
  int t = lua_getfield(L, arg, "alpn");
  if (t == LUA_TTABLE) {
    lua_Integer n = luaL_len(L, -1);
    if (n > 16) luaL_argerror(L, arg, "at most 16 alpn names");
    for (lua_Integer i = 1; i <= n; i++) {
      if (lua_rawgeti(L, -1, i) != LUA_TSTRING)
        luaL_argerror(L, arg, "alpn must be a list of strings");
      a->alpn[i - 1] = lua_tostring(L, -1);
      lua_pop(L, 1);
    }
    a->alpn[n] = NULL;
    a->o.alpn = n ? a->alpn : NULL;
  } else if (t != LUA_TNIL) {
    luaL_argerror(L, arg, "alpn must be a list of strings");
  }
  lua_pop(L, 1);
}

static void check_tls_table(lua_State *L, int arg, tls_args *a) {
  static const char *const known[] = {"verify", "server_name", "ca_file", "ca_path", "cert_file",
                                      "key_file", "key_password", "alpn", "min_version", NULL};
  memset(a, 0, sizeof *a);
  lua_pushnil(L);
  while (lua_next(L, arg)) {   /* a misspelt option must not pass silently */
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    int i = 0;
    while (k && known[i] && strcmp(known[i], k) != 0) i++;
    if (!k || !known[i])
      luaL_argerror(L, arg, lua_pushfstring(L, "unknown TLS option '%s'", k ? k : "?"));
    lua_pop(L, 1);
  }
  int t = lua_getfield(L, arg, "verify");
  if (t != LUA_TNIL && t != LUA_TBOOLEAN) luaL_argerror(L, arg, "TLS option 'verify' must be a boolean");
  a->o.no_verify = t == LUA_TBOOLEAN && !lua_toboolean(L, -1);
  lua_pop(L, 1);
  a->o.server_name = opt_string(L, arg, "server_name");
  a->o.ca_file = opt_string(L, arg, "ca_file");
  a->o.ca_path = opt_string(L, arg, "ca_path");
  a->o.cert_file = opt_string(L, arg, "cert_file");
  a->o.key_file = opt_string(L, arg, "key_file");
  a->o.key_password = opt_string(L, arg, "key_password");
  const char *v = opt_string(L, arg, "min_version");
  if (v && strcmp(v, "tls1.2") == 0) a->o.min_version = 12;
  else if (v && strcmp(v, "tls1.3") == 0) a->o.min_version = 13;
  else if (v) luaL_argerror(L, arg, "min_version must be \"tls1.2\" or \"tls1.3\"");
  opt_alpn(L, arg, a);
}

/* The third argument of open_tcp: nil/false (plain), true (TLS with defaults),
 * a TLS options table, or a connection options table whose `ssl` is either. */
static const net_tls_opts *check_ssl_arg(lua_State *L, int arg, tls_args *a) {
  int t = lua_type(L, arg);
  if (t == LUA_TTABLE && lua_getfield(L, arg, "ssl") != LUA_TNIL) {
    lua_pushnil(L);
    while (lua_next(L, arg)) {
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
      if (strcmp(k, "ssl") != 0)
        luaL_argerror(L, arg, lua_pushfstring(L, "unknown connection option '%s'", k));
      lua_pop(L, 1);
    }
    lua_replace(L, arg);   /* judge the ssl field itself */
    t = lua_type(L, arg);
  } else if (t == LUA_TTABLE) {
    lua_pop(L, 1);
  }
  if (t == LUA_TNONE || t == LUA_TNIL || (t == LUA_TBOOLEAN && !lua_toboolean(L, arg))) return NULL;
  if (t == LUA_TBOOLEAN) {
    memset(a, 0, sizeof *a);
    return &a->o;
  }
  if (t != LUA_TTABLE) luaL_typeerror(L, arg, "boolean or table");
  check_tls_table(L, arg, a);
  return &a->o;
}

int lnet_open_tcp_fn(lua_State *L) {
  net_addr *a = lnet_test_addr(L, 1);
  size_t len = 0;
  const char *host = NULL;
  if (!a) {
    if (lua_type(L, 1) != LUA_TSTRING) return luaL_typeerror(L, 1, "string or net.address");
    host = lua_tolstring(L, 1, &len);
  }
  int isint = 0;
  lua_Integer port = lua_tointegerx(L, 2, &isint);
  if (!isint && lua_type(L, 2) != LUA_TNUMBER) return luaL_typeerror(L, 2, "integer");
  if (!isint || port < 1 || port > 65535) return luaL_argerror(L, 2, "port must be 1..65535");
  tls_args tls;
  net_conn_opts opts = {.linger_ms = -1, .tls = check_ssl_arg(L, 3, &tls)};

  ltcp *u = lua_newuserdatauv(L, sizeof *u, 0);
  memset(u, 0, sizeof *u);
  luaL_setmetatable(L, LNET_TCP);
  const char *err = NULL;
  u->target = a ? net_addr_ref(a) : net_resolve(host, len, &err);
  if (!u->target) return lnet_fail(L, err, NET_E_INVALID);
  u->port = (int)port;
  u->c = net_tcp_open(u->target, (uint16_t)port, &opts, &err);
  if (!u->c) return lnet_fail(L, err, opts.tls ? NET_E_TLS : NET_E_LIMIT);
  return 1;
}

static int tcp_get_status(lua_State *L) {
  ltcp *u = check_tcp(L);
  if (!u->c) return lnet_push_result(L, (net_result){NET_FAILURE, NET_E_CLOSED, "closed"});
  return lnet_push_result(L, net_conn_status(u->c));
}

static int tcp_wait_until_connected(lua_State *L) {
  ltcp *u = check_tcp(L);
  int timeout = lnet_opt_timeout(L, 2);
  if (!u->c) return lnet_push_result(L, (net_result){NET_FAILURE, NET_E_CLOSED, "closed"});
  return lnet_push_result(L, net_conn_wait_connected(u->c, timeout));
}

static int tcp_write(lua_State *L) {
  ltcp *u = check_tcp(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  if (!u->c) return closed(L);
  long n = net_conn_write(u->c, data, len);
  if (n < 0) {
    net_result r = net_conn_status(u->c);
    return lnet_fail(L, r.msg, r.err);
  }
  lua_pushinteger(L, n);
  return 1;
}

#define READ_MAX (1u << 20)   /* per call: bounds the time one read can take */
#define READ_SPANS (READ_MAX / NET_CHUNK_SIZE + 2)

/* A per-state buffer that gathers bytes spread over several chunks, so a read
 * costs one Lua string allocation whatever the layout. */
typedef struct scratch {
  char *p;
  size_t cap;
} scratch;

static int scratch_gc(lua_State *L) {
  scratch *s = lua_touserdata(L, 1);
  free(s->p);
  s->p = NULL;
  s->cap = 0;
  return 0;
}

/* Pushes n (> 0, <= available) bytes, then consumes them: a memory error
 * while pushing leaves them in the ring. */
static void push_bytes(lua_State *L, net_conn *c, size_t n) {
  net_span sp[READ_SPANS];
  int ns = net__conn_peek(c, sp, READ_SPANS, n);
  if (ns == 1) {
    lua_pushlstring(L, sp[0].base, sp[0].len);
    net__conn_consume(c, sp[0].len);
    return;
  }
  scratch *s = lua_touserdata(L, lua_upvalueindex(1));
  if (s->cap < n) {
    char *p = realloc(s->p, n);
    if (!p) luaL_error(L, "not enough memory");
    s->p = p;
    s->cap = n;
  }
  size_t got = 0;
  for (int i = 0; i < ns; i++) {
    memcpy(s->p + got, sp[i].base, sp[i].len);
    got += sp[i].len;
  }
  lua_pushlstring(L, s->p, got);
  net__conn_consume(c, got);
}

static int tcp_read(lua_State *L) {
  ltcp *u = check_tcp(L);
  lua_Integer max = luaL_checkinteger(L, 2);
  if (max < 1) return luaL_argerror(L, 2, "max_len must be at least 1");
  if (!u->c) return closed(L);
  size_t avail = net_conn_available(u->c);
  if (avail == 0) {
    long end = net__conn_read_end(u->c);
    if (end == NET_READ_EOF) {
      lua_pushnil(L);
      return 1;
    }
    if (end == NET_READ_ERROR) {
      net_result r = net_conn_status(u->c);
      return lnet_fail(L, r.msg, r.err);
    }
    avail = net_conn_available(u->c);   /* bytes may have raced in before the flag */
    if (avail == 0) {
      lua_pushliteral(L, "");
      return 1;
    }
  }
  if (avail > READ_MAX) avail = READ_MAX;
  push_bytes(L, u->c, (lua_Unsigned)max < avail ? (size_t)max : avail);
  return 1;
}

static int tcp_available(lua_State *L) {
  ltcp *u = check_tcp(L);
  lua_pushinteger(L, u->c ? (lua_Integer)net_conn_available(u->c) : 0);
  return 1;
}

static int tcp_get_pending_writes(lua_State *L) {
  ltcp *u = check_tcp(L);
  lua_pushinteger(L, u->c ? (lua_Integer)net_conn_pending_writes(u->c) : 0);
  return 1;
}

static int tcp_wait_until_drained(lua_State *L) {
  ltcp *u = check_tcp(L);
  int timeout = lnet_opt_timeout(L, 2);
  lua_pushinteger(L, u->c ? (lua_Integer)net_conn_wait_drained(u->c, timeout) : 0);
  return 1;
}

static int tcp_get_address(lua_State *L) {
  ltcp *u = check_tcp(L);
  if (!u->c) {
    lua_pushnil(L);
    return 1;
  }
  net_addr **slot = lnet_new_addr(L);
  *slot = net_conn_peer(u->c);
  if (!*slot) lua_pushnil(L);
  return 1;
}

static int tcp_starttls(lua_State *L) {
  ltcp *u = check_tcp(L);
  tls_args tls;
  memset(&tls, 0, sizeof tls);
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    check_tls_table(L, 2, &tls);
  }
  if (!u->c) return closed(L);
  const char *err;
  if (net_conn_starttls(u->c, &tls.o, &err) != 0) return lnet_fail(L, err, NET_E_TLS);
  lua_pushboolean(L, 1);
  return 1;
}

static int tcp_get_tls_info(lua_State *L) {
  ltcp *u = check_tcp(L);
  net_tls_info info;
  if (!u->c || !net_conn_tls_info(u->c, &info)) {
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, 0, 4);
  lua_pushstring(L, info.version);
  lua_setfield(L, -2, "version");
  lua_pushstring(L, info.cipher);
  lua_setfield(L, -2, "cipher");
  if (info.alpn[0]) {
    lua_pushstring(L, info.alpn);
    lua_setfield(L, -2, "alpn");
  }
  lua_pushstring(L, info.peer_subject);
  lua_setfield(L, -2, "peer_subject");
  return 1;
}

static int tcp_close(lua_State *L) {
  ltcp *u = check_tcp(L);
  if (u->c) net_conn_close(u->c);
  u->c = NULL;
  return 0;
}

static int tcp_gc(lua_State *L) {
  ltcp *u = check_tcp(L);
  tcp_close(L);
  net_addr_unref(u->target);
  u->target = NULL;
  return 0;
}

static int tcp_tostring(lua_State *L) {
  static const char *const names[] = {"waiting", "success", "failure"};
  ltcp *u = check_tcp(L);
  net_result r = u->c ? net_conn_status(u->c) : (net_result){NET_FAILURE, NET_E_CLOSED, "closed"};
  const char *state = u->c ? names[r.status] : "closed";
  char host[256] = "?";
  net_addr *peer = u->c ? net_conn_peer(u->c) : NULL;
  if (peer) {   /* copy out before pushing: a memory error must not leak the ref */
    snprintf(host, sizeof host, "%s", net_addr_ip(peer));
    net_addr_unref(peer);
  } else if (u->target) {
    snprintf(host, sizeof host, "%s", net_addr_hostname(u->target));
  }
  if (strchr(host, ':')) lua_pushfstring(L, "net.tcp([%s]:%d, %s)", host, u->port, state);
  else lua_pushfstring(L, "net.tcp(%s:%d, %s)", host, u->port, state);
  return 1;
}

void lnet_open_tcp(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"get_status", tcp_get_status},
      {"wait_until_connected", tcp_wait_until_connected},
      {"write", tcp_write},
      {"read", tcp_read},
      {"available", tcp_available},
      {"get_pending_writes", tcp_get_pending_writes},
      {"wait_until_drained", tcp_wait_until_drained},
      {"get_address", tcp_get_address},
      {"close", tcp_close},
      {"starttls", tcp_starttls},
      {"get_tls_info", tcp_get_tls_info},
      {NULL, NULL},
  };
  static const luaL_Reg meta[] = {
      {"__gc", tcp_gc},
      {"__close", tcp_close},
      {"__tostring", tcp_tostring},
      {NULL, NULL},
  };
  scratch *s = lua_newuserdatauv(L, sizeof *s, 0);
  s->p = NULL;
  s->cap = 0;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, scratch_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lnet_new_class(L, LNET_TCP, methods, meta, 1);   /* every method shares the buffer */
}
