/* lopts.c: reads the option tables of open_tcp, open_unix, starttls and
 * create_server into the engine's structs (owner thread). Each table is read
 * through a plain copy of its own (lnet_options) put in its stack slot: the
 * strings handed to the engine stay owned by those copies, which are on the
 * stack until the engine copies them. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lnet.h"

static const char *const tls_keys[] = {"verify", "server_name", "ca_file", "ca_path", "cert_file",
                                       "key_file", "key_password", "alpn", "min_version", "pkcs12", "resume", NULL};
static const char *const conn_keys[] = {"ssl", "connect_timeout", "idle_timeout", "nodelay",
                                        "keepalive", "buffer_size", "family", "linger", "resolver", "proxy", NULL};
static const char *const server_keys[] = {"ssl", "backlog", "reuseaddr", "unix", "idle_timeout", "nodelay",
                                          "keepalive", "buffer_size", "linger", "websocket",
                                          "handshake_timeout", NULL};

static bool in(const char *const *keys, const char *k) {
  for (; *keys; keys++)
    if (strcmp(*keys, k) == 0) return true;
  return false;
}

/* A misspelt option must not pass silently. */
static void check_keys(lua_State *L, int arg, int argn, const char *const *keys, const char *what) {
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    if (!k || !in(keys, k))
      luaL_argerror(L, argn, lua_pushfstring(L, "unknown %s option '%s'", what, k ? k : "?"));
    lua_pop(L, 1);
  }
}

static bool has_any(lua_State *L, int arg, const char *const *keys) {
  for (; *keys; keys++) {
    bool found = lua_getfield(L, arg, *keys) != LUA_TNIL;
    lua_pop(L, 1);
    if (found) return true;
  }
  return false;
}

/* What an __index function returns, or what a finalizer run by a later
 * allocation sets in the caller's table, is held by nothing of the caller's:
 * a copy of the known keys read once, in the table's place, holds them and
 * shows the same value to every look. */
static void snapshot(lua_State *L, int arg, const char *const *keys) {
  arg = lua_absindex(L, arg);
  lua_createtable(L, 0, 8);
  for (; *keys; keys++) {
    if (lua_getfield(L, arg, *keys) == LUA_TNIL) lua_pop(L, 1);
    else lua_setfield(L, -2, *keys);   /* a plain table: raw */
  }
  lua_replace(L, arg);
}

void lnet_options(lua_State *L, int arg, int argn, const char *const *keys, const char *what) {
  check_keys(L, arg, argn, keys, what);
  snapshot(L, arg, keys);
}

/* The list at idx as a copy of its raw items 1..#, in its place. */
void lnet_snapshot_list(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  lua_createtable(L, n > 256 ? 256 : (int)n, 0);   /* past any list's cap: raised on after */
  for (lua_Integer i = 1; i <= n && i <= 257; i++) {
    lua_rawgeti(L, idx, i);
    lua_rawseti(L, -2, i);
  }
  lua_replace(L, idx);
}

static const char *opt_lstring(lua_State *L, int arg, int argn, const char *field, size_t *len) {
  int t = lua_getfield(L, arg, field);
  const char *v = NULL;
  if (t == LUA_TSTRING) v = lua_tolstring(L, -1, len);
  else if (t != LUA_TNIL) luaL_argerror(L, argn, lua_pushfstring(L, "option '%s' must be a string", field));
  lua_pop(L, 1);   /* the table keeps the string alive */
  return v;
}

/* A string the engine takes as a C string: a NUL byte would cut it short,
 * so it raises. */
static const char *opt_string(lua_State *L, int arg, int argn, const char *field) {
  size_t len = 0;
  const char *v = opt_lstring(L, arg, argn, field, &len);
  if (v && strlen(v) != len) luaL_argerror(L, argn, lua_pushfstring(L, "option '%s' contains a NUL byte", field));
  return v;
}

/* A file path option: a string without NUL (a path cannot hold one; the
 * open then fails, "invalid", rather than reach another file). */
static const char *opt_path(lua_State *L, int arg, int argn, const char *field, lnet_tls_args *a) {
  size_t len = 0;
  const char *v = opt_lstring(L, arg, argn, field, &len);
  if (v && strlen(v) != len && !a->bad)
    a->bad = lua_pushfstring(L, "tls: option '%s' contains a NUL byte", field);   /* kept on the stack */
  return v;
}

/* -1 when absent. */
static int opt_bool(lua_State *L, int arg, int argn, const char *field) {
  int t = lua_getfield(L, arg, field), v = -1;
  if (t == LUA_TBOOLEAN) v = lua_toboolean(L, -1);
  else if (t != LUA_TNIL) luaL_argerror(L, argn, lua_pushfstring(L, "option '%s' must be a boolean", field));
  lua_pop(L, 1);
  return v;
}

/* def when absent; raises outside [lo, hi]. */
static lua_Integer opt_int(lua_State *L, int arg, int argn, const char *field, lua_Integer lo, lua_Integer hi,
                           lua_Integer def) {
  int isint = 0;
  lua_getfield(L, arg, field);
  lua_Integer v = lua_tointegerx(L, -1, &isint);
  bool absent = lua_isnil(L, -1);
  lua_pop(L, 1);
  if (absent) return def;
  if (!isint || v < lo || v > hi)
    luaL_argerror(L, argn, lua_pushfstring(L, "option '%s' must be an integer %I..%I", field, lo, hi));
  return v;
}

static void opt_alpn(lua_State *L, int arg, int argn, lnet_tls_args *a) {
  int t = lua_getfield(L, arg, "alpn");
  if (t == LUA_TTABLE) {
    lnet_snapshot_list(L, -1);
    lua_pushvalue(L, -1);
    lua_setfield(L, arg, "alpn");   /* the TLS table's copy holds the names */
    /* raw, as the names are read: a __len could say anything, even -1 */
    size_t n = lua_rawlen(L, -1);
    if (n > 16) luaL_argerror(L, argn, "at most 16 alpn names");
    for (size_t i = 1; i <= n; i++) {
      if (lua_rawgeti(L, -1, (lua_Integer)i) != LUA_TSTRING) luaL_argerror(L, argn, "alpn must be a list of strings");
      size_t len;
      a->alpn[i - 1] = lua_tolstring(L, -1, &len);
      if (strlen(a->alpn[i - 1]) != len) luaL_argerror(L, argn, "an alpn name contains a NUL byte");
      lua_pop(L, 1);
    }
    a->alpn[n] = NULL;
    a->o.alpn = n ? a->alpn : NULL;
  } else if (t != LUA_TNIL) {
    luaL_argerror(L, argn, "alpn must be a list of strings");
  }
  lua_pop(L, 1);
}

/* pkcs12 = {path = ..., password = ...}: checked here; the engine refuses it. */
static void opt_pkcs12(lua_State *L, int arg, int argn, lnet_tls_args *a) {
  int t = lua_getfield(L, arg, "pkcs12");
  int top = lua_gettop(L);
  if (t == LUA_TTABLE) {
    static const char *const keys[] = {"path", "password", NULL};
    snapshot(L, top, keys);
    lua_pushvalue(L, top);
    lua_setfield(L, arg, "pkcs12");   /* the TLS table's copy holds it */
    a->o.pkcs12_file = opt_path(L, top, argn, "path", a);
    (void)opt_string(L, top, argn, "password");
    if (!a->o.pkcs12_file) luaL_argerror(L, argn, "pkcs12 = {path = ..., password = ...} needs a path");
  } else if (t != LUA_TNIL) {
    luaL_argerror(L, argn, "option 'pkcs12' must be a table {path = ..., password = ...}");
  }
  lua_remove(L, top);   /* the TLS table's copy keeps the path alive; a->bad, above, stays anchored */
}

/* The TLS table at stack index arg; errors name argument argn. */
static void tls_table(lua_State *L, int arg, int argn, lnet_tls_args *a, bool server) {
  memset(a, 0, sizeof *a);
  lnet_options(L, arg, argn, tls_keys, "TLS");
  int verify = opt_bool(L, arg, argn, "verify");
  a->o.no_verify = verify == 0;
  a->o.require_client_cert = server && verify == 1;
  a->o.no_resume = opt_bool(L, arg, argn, "resume") == 0;
  a->o.server_name = opt_string(L, arg, argn, "server_name");
  a->o.ca_file = opt_path(L, arg, argn, "ca_file", a);
  a->o.ca_path = opt_path(L, arg, argn, "ca_path", a);
  a->o.cert_file = opt_path(L, arg, argn, "cert_file", a);
  a->o.key_file = opt_path(L, arg, argn, "key_file", a);
  a->o.key_password = opt_string(L, arg, argn, "key_password");
  const char *v = opt_string(L, arg, argn, "min_version");
  if (v && strcmp(v, "tls1.2") == 0) a->o.min_version = 12;
  else if (v && strcmp(v, "tls1.3") == 0) a->o.min_version = 13;
  else if (v) luaL_argerror(L, argn, "min_version must be \"tls1.2\" or \"tls1.3\"");
  opt_alpn(L, arg, argn, a);
  opt_pkcs12(L, arg, argn, a);
}

void lnet_check_tls_table(lua_State *L, int arg, lnet_tls_args *a, bool server) {
  tls_table(L, arg, arg, a, server);
}

/* The `ssl` value at index arg: nil/false (none), true (defaults) or a table. */
static const net_tls_opts *check_ssl_value(lua_State *L, int arg, int argn, lnet_tls_args *a,
                                           bool server) {
  int t = lua_type(L, arg);
  memset(a, 0, sizeof *a);
  if (t == LUA_TNONE || t == LUA_TNIL || (t == LUA_TBOOLEAN && !lua_toboolean(L, arg))) return NULL;
  if (t == LUA_TBOOLEAN) {
    if (server) luaL_argerror(L, argn, "a TLS server needs {cert_file = ..., key_file = ...}");
    return &a->o;
  }
  if (t != LUA_TTABLE) {
    if (arg == argn) luaL_typeerror(L, arg, "boolean or table");
    luaL_argerror(L, argn, "option 'ssl' must be a boolean or a table");
  }
  tls_table(L, arg, argn, a, server);
  return &a->o;
}

/* Lua's keepalive (a boolean, or 1..86400 idle seconds) at index i as the
 * engine's value; false when it is neither. Seconds are always sent as
 * NET_KEEPALIVE_SECONDS, so 1 second reads back as 1, not as true. */
bool lnet_keepalive_from(lua_State *L, int i, int *out) {
  if (lua_isboolean(L, i)) return *out = lua_toboolean(L, i), true;
  int isint = 0;
  lua_Integer s = lua_tointegerx(L, i, &isint);   /* 30.0 too, as every integer option */
  if (!isint || s < 1 || s > 86400) return false;
  return *out = NET_KEEPALIVE_SECONDS((int)s), true;
}

/* Pushes the engine's keepalive as Lua gave it: the seconds, else a boolean. */
void lnet_push_keepalive(lua_State *L, int v) {
  if (v < 0) lua_pushinteger(L, -(lua_Integer)v);
  else if (v > 1) lua_pushinteger(L, v);   /* set by a C host */
  else lua_pushboolean(L, v);
}

/* Options every connection takes (also a server's, for what it accepts). */
static void conn_fields(lua_State *L, int arg, int argn, net_conn_opts *o) {
  o->idle_timeout_ms = (int)opt_int(L, arg, argn, "idle_timeout", 0, 0x7fffffff, 0);
  o->nodelay = opt_bool(L, arg, argn, "nodelay") == 1;
  lua_getfield(L, arg, "keepalive");   /* true, or the idle seconds before probes */
  if (!lua_isnil(L, -1) && !lnet_keepalive_from(L, -1, &o->keepalive))
    luaL_argerror(L, argn, "option 'keepalive' must be a boolean or 1..86400 seconds");
  lua_pop(L, 1);
  o->buffer_size = (size_t)opt_int(L, arg, argn, "buffer_size", 16384, 1 << 30, 0);
  lua_Integer linger = opt_int(L, arg, argn, "linger", 0, 0x7fffffff, -2);
  o->linger_ms = linger == -2 ? 0 : linger == 0 ? -1 : (int)linger;
}

/* `proxy`: a URL the engine takes, else an argument error saying what is wrong. */
static void opt_proxy(lua_State *L, int arg, int argn, net_conn_opts *o) {
  o->proxy = opt_string(L, arg, argn, "proxy");
  if (!o->proxy) return;
  char why[160];
  lua_getfield(L, arg, "proxy");
  size_t len = lua_rawlen(L, -1);
  lua_pop(L, 1);   /* the table keeps the string alive */
  if (strlen(o->proxy) != len) luaL_argerror(L, argn, "option 'proxy' holds a NUL byte");
  if (!net_proxy_check(o->proxy, why, sizeof why))
    luaL_argerror(L, argn, lua_pushfstring(L, "option 'proxy': %s", why));
}

void lnet_check_conn_arg(lua_State *L, int arg, bool ssl_alone, lnet_conn_args *a) {
  int argn = arg;
  memset(a, 0, sizeof *a);
  int t = lua_type(L, arg);
  if (!ssl_alone && t != LUA_TTABLE && t != LUA_TNIL && t != LUA_TNONE)
    luaL_typeerror(L, arg, "table of connection options");
  if (t != LUA_TTABLE || (ssl_alone && !has_any(L, arg, conn_keys))) {   /* Part 1: `ssl` itself */
    /* a misspelt connection option lands here too: the message names both */
    if (t == LUA_TTABLE) check_keys(L, arg, argn, tls_keys, "connection or TLS");
    a->o.tls = check_ssl_value(L, arg, argn, &a->tls, false);
    return;
  }
  if (has_any(L, arg, tls_keys))
    luaL_argerror(L, argn, "TLS options go in ssl = {...} next to connection options");
  lnet_options(L, arg, argn, conn_keys, "connection");
  conn_fields(L, arg, argn, &a->o);
  lua_Integer ct = opt_int(L, arg, argn, "connect_timeout", 0, 0x7fffffff, -1);
  a->o.connect_timeout_ms = ct < 0 ? 0 : ct == 0 ? -1 : (int)ct;   /* absent: the default; 0: none */
  const char *fam = opt_string(L, arg, argn, "family");
  if (fam && strcmp(fam, "inet") == 0) a->o.family = 4;
  else if (fam && strcmp(fam, "inet6") == 0) a->o.family = 6;
  else if (fam) luaL_argerror(L, argn, "family must be \"inet\" or \"inet6\"");
  if (lua_getfield(L, arg, "resolver") != LUA_TNIL) {   /* stays on the stack: the slot lives in it */
    if (!luaL_testudata(L, -1, LNET_RESOLVER)) luaL_argerror(L, argn, "option 'resolver' must be a net.resolver");
    if (!*(a->resolver = lnet_resolver_slot(L, lua_gettop(L)))) luaL_argerror(L, argn, "option 'resolver' is closed");
  } else {
    lua_pop(L, 1);
  }
  opt_proxy(L, arg, argn, &a->o);
  lua_getfield(L, arg, "ssl");
  a->o.tls = check_ssl_value(L, lua_gettop(L), argn, &a->tls, false);   /* its copy stays on the stack */
}

/* ---- websockets ------------------------------------------------------------------ */

static const char *const ws_keys[] = {"headers", "protocols", "ssl", "proxy", "connect_timeout", "max_message",
                                      "compress", "ping_interval", "ping_timeout", "close_timeout", NULL};
static const char *const ws_server_keys[] = {"protocols", "path", "compress", "max_message", "ping_interval",
                                             "ping_timeout", "close_timeout", "handshake_timeout", "origins", NULL};

/* t[field], a string or a list of them, as a NULL-terminated array held by a
 * userdata left on the stack (with the strings, which t keeps); NULL when absent. */
static const char *const *string_list(lua_State *L, int arg, int argn, const char *field) {
  int t = lua_getfield(L, arg, field);
  if (t == LUA_TNIL) return lua_pop(L, 1), NULL;
  if (t != LUA_TSTRING && t != LUA_TTABLE)
    luaL_argerror(L, argn, lua_pushfstring(L, "option '%s' must be a string or a list of strings", field));
  int list = lua_gettop(L);
  if (t == LUA_TTABLE) lnet_snapshot_list(L, list);
  lua_Integer n = t == LUA_TSTRING ? 1 : (lua_Integer)lua_rawlen(L, list);   /* raw, as read below */
  if (n < 1 || n > 64) luaL_argerror(L, argn, lua_pushfstring(L, "option '%s' must list 1..64 strings", field));
  const char **v = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *v, 0);
  for (lua_Integer i = 0; i < n; i++) {
    if (t == LUA_TTABLE && lua_rawgeti(L, list, i + 1) != LUA_TSTRING)
      luaL_argerror(L, argn, lua_pushfstring(L, "option '%s' must be a list of strings", field));
    size_t len;
    v[i] = lua_tolstring(L, t == LUA_TTABLE ? -1 : list, &len);
    if (strlen(v[i]) != len) luaL_argerror(L, argn, lua_pushfstring(L, "option '%s' contains a NUL byte", field));
    if (t == LUA_TTABLE) lua_pop(L, 1);   /* the list keeps it */
  }
  v[n] = NULL;
  return v;
}

static void ws_common(lua_State *L, int arg, int argn, uint64_t *max_message, int *no_compress, int *ping,
                      int *ping_timeout, int *close_timeout) {
  *max_message = (uint64_t)opt_int(L, arg, argn, "max_message", 1, (lua_Integer)NET_WS_MAX_MESSAGE, 0);
  *no_compress = opt_bool(L, arg, argn, "compress") == 0;
  *ping = (int)opt_int(L, arg, argn, "ping_interval", 0, 0x7fffffff, 0);
  *ping_timeout = (int)opt_int(L, arg, argn, "ping_timeout", 1, 0x7fffffff, 0);
  *close_timeout = (int)opt_int(L, arg, argn, "close_timeout", 1, 0x7fffffff, 0);
}

/* create_server's `websocket`: true, or a table of upgrade rules. */
static void ws_server_opts(lua_State *L, int arg, int argn, lnet_server_args *a) {
  int t = lua_getfield(L, arg, "websocket");
  if (t == LUA_TNIL || (t == LUA_TBOOLEAN && !lua_toboolean(L, -1))) return (void)lua_pop(L, 1);
  if (t != LUA_TBOOLEAN && t != LUA_TTABLE) luaL_argerror(L, argn, "option 'websocket' must be true or a table");
  a->o.websocket = &a->ws;
  if (t == LUA_TBOOLEAN) return (void)lua_pop(L, 1);
  int w = lua_gettop(L);   /* stays on the stack: the lists below hang from it */
  lnet_options(L, w, argn, ws_server_keys, "websocket");
  net_ws_server_opts *o = &a->ws;
  ws_common(L, w, argn, &o->max_message, &o->no_compress, &o->ping_interval_ms, &o->ping_timeout_ms,
            &o->close_timeout_ms);
  o->handshake_timeout_ms = (int)opt_int(L, w, argn, "handshake_timeout", 1, 0x7fffffff, 0);
  o->protocols = string_list(L, w, argn, "protocols");
  o->paths = string_list(L, w, argn, "path");
  o->origins = string_list(L, w, argn, "origins");
}

static const char **http_headers(lua_State *L, int arg, const net_http_opts *o);

void lnet_check_ws_opts(lua_State *L, int arg, lnet_ws_args *a) {
  memset(a, 0, sizeof *a);
  if (lua_isnoneornil(L, arg)) return;
  luaL_checktype(L, arg, LUA_TTABLE);
  lnet_options(L, arg, arg, ws_keys, "open_websocket");
  net_ws_opts *o = &a->o;
  ws_common(L, arg, arg, &o->max_message, &o->no_compress, &o->ping_interval_ms, &o->ping_timeout_ms,
            &o->close_timeout_ms);
  lua_Integer ct = opt_int(L, arg, arg, "connect_timeout", 0, 0x7fffffff, -1);
  o->connect_timeout_ms = ct < 0 ? 0 : ct == 0 ? -1 : (int)ct;
  net_conn_opts c = {0};
  opt_proxy(L, arg, arg, &c);
  o->proxy = c.proxy;
  o->protocols = string_list(L, arg, arg, "protocols");
  lua_getfield(L, arg, "ssl");
  o->tls = check_ssl_value(L, lua_gettop(L), arg, &a->tls, false);   /* the table stays on the stack */
  if (a->tls.bad) luaL_argerror(L, arg, a->tls.bad);
  o->headers = http_headers(L, arg, NULL);
}

void lnet_check_server_opts(lua_State *L, int arg, lnet_server_args *a) {
  int argn = arg;
  memset(a, 0, sizeof *a);
  if (lua_isnoneornil(L, arg)) return;
  luaL_checktype(L, arg, LUA_TTABLE);
  lnet_options(L, arg, argn, server_keys, "server");
  conn_fields(L, arg, argn, &a->o.conn);
  a->o.backlog = (int)opt_int(L, arg, argn, "backlog", 1, 65535, 0);
  /* an accepted TLS connection's handshake (0: the 30 s default) */
  a->o.conn.connect_timeout_ms = (int)opt_int(L, arg, argn, "handshake_timeout", 1, 0x7fffffff, 0);
  a->o.no_reuseaddr = opt_bool(L, arg, argn, "reuseaddr") == 0;
  a->o.unix_path = opt_string(L, arg, argn, "unix");
  lua_getfield(L, arg, "ssl");
  a->o.tls = check_ssl_value(L, lua_gettop(L), argn, &a->tls, true);   /* its copy stays on the stack */
  ws_server_opts(L, arg, argn, a);
}

/* ---- net.http_request's options ---------------------------------------------- */

static const char *const http_keys[] = {"url", "method", "headers", "body", "timeout", "connect_timeout",
                                        "idle_timeout", "max_redirects", "max_size", "decompress",
                                        "allow_downgrade", "ssl", "buffer_size", "keepalive", "output",
                                        "resume", "sha256", "proxy", NULL};

/* Case-insensitive first: names that differ only in case end up side by side. */
static int name_order(const void *a, const void *b) {
  const char *x = *(const char *const *)a, *y = *(const char *const *)b;
  int c = strcasecmp(x, y);
  return c ? c : strcmp(x, y);
}

/* The engine's rule for a header value: no control byte but tab. */
static bool header_value_ok(const char *v, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (((unsigned char)v[i] < ' ' && v[i] != '\t') || v[i] == 127) return false;
  return true;
}

/* The body's framing is the engine's: a Transfer-Encoding would say chunked
 * of a body that is not, a Content-Length other than the body's would leave
 * its rest to be read as another request. A body file's size is checked by
 * the engine once known. Proxy credentials go in the proxy's URL: a header
 * would reach the origin through a tunnel. */
static void check_framing(lua_State *L, int arg, const char *name, const char *v, const net_http_opts *o) {
  if (!strcasecmp(name, "proxy-authorization"))
    luaL_argerror(L, arg, lua_pushfstring(L, "header %s is not taken: give the proxy's credentials in its URL "
                                          "(http://user:password@host:port)", name));
  if (!strcasecmp(name, "transfer-encoding"))
    luaL_argerror(L, arg, lua_pushfstring(L, "header %s is not taken: the body goes with Content-Length", name));
  if (strcasecmp(name, "content-length") || o->body_file) return;
  const char *want = lua_pushfstring(L, "%I", (lua_Integer)o->body_len);
  if (strcmp(v, want))
    luaL_argerror(L, arg, lua_pushfstring(L, "header %s: %s is not the body's length (%s); left out, it is added",
                                          name, v, want));
  lua_pop(L, 1);
}

/* {name = value} as name, value, ..., NULL, names sorted (the request is the
 * same text every time). The array and the value strings are held by two
 * values left on the stack. */
static const char **http_headers(lua_State *L, int arg, const net_http_opts *o) {
  size_t n = 0;
  if (lua_getfield(L, arg, "headers") == LUA_TNIL) return NULL;
  if (!lua_istable(L, -1)) luaL_argerror(L, arg, "option 'headers' must be a table {name = value}");
  int t = lua_gettop(L);
  for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1)) {
    int vt = lua_type(L, -1);
    if (lua_type(L, -2) != LUA_TSTRING || (vt != LUA_TSTRING && vt != LUA_TNUMBER))
      luaL_argerror(L, arg, "headers must map names (strings) to strings or numbers");
    if (strlen(lua_tostring(L, -2)) != lua_rawlen(L, -2))   /* the name would end at the NUL */
      luaL_argerror(L, arg, "a header name contains a NUL byte");
    n++;
  }
  const char **pairs = lua_newuserdatauv(L, (2 * n + 1) * sizeof *pairs, 0);
  lua_createtable(L, (int)(2 * n), 0);   /* the names and the values as strings, kept alive */
  int held = lua_gettop(L);
  size_t i = 0;
  for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1)) {
    if (i == n || lua_type(L, -2) != LUA_TSTRING)   /* a finalizer run by the allocations above changed it */
      luaL_argerror(L, arg, "option 'headers' changed while it was read");
    pairs[2 * i++] = lua_tostring(L, -2);
    lua_pushvalue(L, -2);
    lua_rawseti(L, held, (lua_Integer)(n + i));
  }
  if (i != n) luaL_argerror(L, arg, "option 'headers' changed while it was read");
  qsort(pairs, n, 2 * sizeof *pairs, name_order);   /* names sit at even slots: sort pairs */
  for (i = 0; i < n; i++) {
    const char *name = pairs[2 * i];
    if (!*name || name[strspn(name, "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")])
      luaL_argerror(L, arg, lua_pushfstring(L, "header name '%s' is not a token", name));
    if (i > 0 && !strcasecmp(pairs[2 * i - 2], name))   /* one field, two values: which would count? */
      luaL_argerror(L, arg, lua_pushfstring(L, "header %s is given twice (names are case-insensitive)", name));
    lua_getfield(L, t, name);
    size_t len;
    const char *v = lua_tolstring(L, -1, &len);   /* a number becomes a string here */
    if (!v) luaL_argerror(L, arg, "option 'headers' changed while it was read");
    if (!header_value_ok(v, len))
      luaL_argerror(L, arg, lua_pushfstring(L, "header %s: a value with a control character (CR, LF, NUL...; "
                                               "only tab is taken)", name));
    if (o) check_framing(L, arg, name, v, o);   /* a websocket's handshake has no body */
    pairs[2 * i + 1] = v;
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  pairs[2 * n] = NULL;
  return pairs;
}

void lnet_check_http_opts(lua_State *L, int arg, lnet_http_args *a) {
  memset(a, 0, sizeof *a);
  luaL_checktype(L, arg, LUA_TTABLE);
  lnet_options(L, arg, arg, http_keys, "http_request");
  if (!(a->o.url = opt_string(L, arg, arg, "url"))) luaL_argerror(L, arg, "option 'url' is required");
  a->o.method = opt_string(L, arg, arg, "method");
  if (a->o.method && (!*a->o.method || a->o.method[strspn(a->o.method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")]))
    luaL_argerror(L, arg, "option 'method' must be an upper-case token (GET, POST...)");
  int bt = lua_getfield(L, arg, "body");
  if (bt == LUA_TSTRING) {
    a->o.body = lua_tolstring(L, -1, &a->o.body_len);
  } else if (bt == LUA_TTABLE) {   /* {file = path}: streamed from the file */
    static const char *const keys[] = {"file", NULL};
    size_t len;
    snapshot(L, -1, keys);
    lua_pushvalue(L, -1);
    lua_setfield(L, arg, "body");   /* the options' copy holds it */
    if (lua_getfield(L, -1, "file") != LUA_TSTRING || !*(a->o.body_file = lua_tolstring(L, -1, &len)) ||
        strlen(a->o.body_file) != len)
      luaL_argerror(L, arg, "option 'body' as a table must be {file = path}");
    lua_pop(L, 1);   /* the body table's copy keeps it */
  } else if (bt != LUA_TNIL) {
    luaL_argerror(L, arg, "option 'body' must be a string or {file = path}");
  }
  lua_pop(L, 1);   /* the options' copy keeps it */
  lua_Integer t = opt_int(L, arg, arg, "timeout", 0, 0x7fffffff, -1);
  a->o.timeout_ms = t < 0 ? 0 : t == 0 ? -1 : (int)t;   /* absent: the default; 0: none */
  lua_Integer ct = opt_int(L, arg, arg, "connect_timeout", 0, 0x7fffffff, -1);
  a->o.connect_timeout_ms = ct < 0 ? 0 : ct == 0 ? -1 : (int)ct;
  a->o.idle_timeout_ms = (int)opt_int(L, arg, arg, "idle_timeout", 0, 0x7fffffff, 0);
  a->o.max_redirects = (int)opt_int(L, arg, arg, "max_redirects", 0, 100, -1);
  a->o.max_size = (uint64_t)opt_int(L, arg, arg, "max_size", 1, (lua_Integer)1 << 53, 0);
  a->o.no_decompress = opt_bool(L, arg, arg, "decompress") == 0;
  a->o.allow_downgrade = opt_bool(L, arg, arg, "allow_downgrade") == 1;
  a->o.no_keepalive = opt_bool(L, arg, arg, "keepalive") == 0;
  int pt = lua_getfield(L, arg, "proxy"), on = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (pt == LUA_TBOOLEAN && on) luaL_argerror(L, arg, "option 'proxy' must be a URL, or false for none");
  if (pt == LUA_TBOOLEAN) {
    a->o.proxy = "";   /* none, whatever the environment says */
  } else {
    net_conn_opts c = {0};
    opt_proxy(L, arg, arg, &c);
    a->o.proxy = c.proxy;
  }
  a->o.output = opt_string(L, arg, arg, "output");
  a->o.resume = opt_bool(L, arg, arg, "resume") == 1;
  a->o.sha256 = opt_string(L, arg, arg, "sha256");
  if (a->o.output && (!*a->o.output || strlen(a->o.output) != (lua_getfield(L, arg, "output"), lua_rawlen(L, -1))))
    luaL_argerror(L, arg, "option 'output' must be a file path (no NUL byte)");
  if ((a->o.resume || a->o.sha256) && !a->o.output) luaL_argerror(L, arg, "resume and sha256 go with output");
  if (a->o.sha256 && (strlen(a->o.sha256) != 64 || a->o.sha256[strspn(a->o.sha256, "0123456789abcdefABCDEF")]))
    luaL_argerror(L, arg, "option 'sha256' must be 64 hex digits");
  a->o.buffer_size = (size_t)opt_int(L, arg, arg, "buffer_size", 16384, 1 << 30, 0);
  lua_getfield(L, arg, "ssl");
  a->o.tls = check_ssl_value(L, lua_gettop(L), arg, &a->tls, false);   /* the table stays on the stack */
  if (a->tls.bad) luaL_argerror(L, arg, a->tls.bad);
  a->o.headers = http_headers(L, arg, &a->o);
}
