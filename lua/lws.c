/* lws.c: the net.websocket object of the Lua binding (owner thread):
 * net.open_websocket(url, opts), and the websockets a websocket server's
 * accept() gives. Whole messages in and out; the protocol runs on the I/O thread. */
#include <string.h>

#include "lnet.h"


typedef struct lws {
  net_ws *w;       /* NULL once collected */
  unsigned reads;  /* bumped by every message taken (lnet_source) */
} lws;

/* The websocket, or NULL once released (__close, __gc): a released websocket
 * answers as a closed one, it never raises. */
static net_ws *check(lua_State *L) { return ((lws *)luaL_checkudata(L, 1, LNET_WS))->w; }

static int closed(lua_State *L) { return lnet_fail(L, "closed", NET_E_CLOSED); }

static const net_result closed_status = {NET_FAILURE, NET_E_CLOSED, "closed"};

net_ws **lnet_new_ws(lua_State *L) {
  lws *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->w = NULL;
  luaL_setmetatable(L, LNET_WS);
  return &u->w;
}

int lnet_open_websocket(lua_State *L) {
  luaL_checkstring(L, 1);
  lnet_ws_args a;
  lnet_check_ws_opts(L, 2, &a);
  a.o.url = lua_tostring(L, 1);
  if (strlen(a.o.url) != lua_rawlen(L, 1)) return luaL_argerror(L, 1, "URL holds a NUL byte");
  net_ws **slot = lnet_new_ws(L);
  const char *err;
  net_err code;
  if (!(*slot = net_ws_open(&a.o, &err, &code))) return lnet_fail(L, err, code);
  return 1;
}

static int ws_get_status(lua_State *L) {
  net_ws *w = check(L);
  return lnet_push_result(L, w ? net_ws_status(w) : closed_status);
}

static int ws_wait_until_connected(lua_State *L) {
  net_ws *w = check(L);
  int ms = lnet_opt_timeout(L, 2);
  return lnet_push_result(L, w ? net_ws_wait(w, ms) : closed_status);
}

/* Why nothing can be sent: how it ended (even while messages received before
 * wait to be read), or the closing handshake under way. */
static int cannot_send(lua_State *L, net_ws *w) {
  net_result r;
  if (net_ws_ended(w, &r)) return lnet_fail(L, r.msg, r.err);
  return lnet_fail(L, "the websocket is closing", NET_E_CLOSED);
}

static int sent(lua_State *L, net_ws *w, int r, const char *what) {
  if (r == 1) return lua_pushboolean(L, 1), 1;
  if (r == NET_WS_QUEUE_FULL) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "send queue full");
    lua_pushliteral(L, "limit");
    return 3;
  }
  if (r == NET_WS_TOO_BIG) return luaL_argerror(L, 2, what);
  return cannot_send(L, w);
}

static int ws_send(lua_State *L) {
  check(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  static const char *const kinds[] = {"text", "binary", NULL};
  int kind = lnet_check_option(L, 3, "text", kinds);
  if (kind == 0 && !net_utf8_valid(data, len)) return luaL_argerror(L, 2, "a text message must be UTF-8 (send binary)");
  net_ws *w = check(L);   /* after the arguments, which may allocate (lnet.h) */
  if (!w) return closed(L);
  return sent(L, w, net_ws_send(w, kind == 0 ? NET_WS_TEXT : NET_WS_BINARY, data, len),
              "message larger than max_message");
}

static int ws_ping(lua_State *L) {
  check(L);
  size_t len = 0;
  const char *data = luaL_optlstring(L, 2, "", &len);
  luaL_argcheck(L, len <= 125, 2, "a ping carries at most 125 bytes");   /* closed or not: a wrong argument */
  net_ws *w = check(L);   /* after the argument, which may allocate (lnet.h) */
  if (!w) return closed(L);
  return sent(L, w, net_ws_ping(w, data, len), "a ping carries at most 125 bytes");
}

/* message, "text" | "binary"; nil when none waits; nil, msg, code once failed or closed. */
static bool ws_open(void *ud) { return ((lws *)ud)->w != NULL; }

static size_t ws_copy(void *ud, void *dst, size_t n) {
  (void)n;   /* the message's own size */
  return net_ws_copy(((lws *)ud)->w, dst);
}

static int receive_once(lua_State *L) {
  net_ws *w = check(L);
  lws *u = lua_touserdata(L, 1);
  if (!w) return closed(L);
  int type;
  long n = net_ws_next(w, &type);
  if (n == NET_WS_NONE) return lua_pushnil(L), 1;
  if (n < 0) {
    net_result r = net_ws_status(w);
    return lnet_fail(L, r.msg, r.err);
  }
  const lnet_source src = {u, ws_open, ws_copy, &u->reads};
  long got = lnet_push_gathered(L, (size_t)n, net_ws_view(w), &src);
  if (got == LNET_READ_AGAIN) return LNET_READ_AGAIN;
  if (got < 0) return closed(L);
  if (u->w) net_ws_drop(u->w), u->reads++;   /* after the push: a memory error leaves the message queued */
  lua_pushstring(L, type == NET_WS_TEXT ? "text" : "binary");
  return 2;
}

static int ws_receive(lua_State *L) { return lnet_read_again(L, receive_once); }

static int ws_close(lua_State *L) {
  check(L);
  lua_Integer code = luaL_optinteger(L, 2, 1000);
  size_t len = 0;
  const char *reason = luaL_optlstring(L, 3, "", &len);
  net_ws *w = check(L);   /* after the arguments, which may allocate (lnet.h) */
  luaL_argcheck(L, code >= 1000 && code <= 4999, 2, "close code must be 1000-1003, 1007-1014 or 3000-4999");
  if (net_ws_close(w, (int)code, reason, len) < 0) {   /* released (w NULL): the checks still apply */
    if (len > 123 || !net_utf8_valid(reason, len)) return luaL_argerror(L, 3, "reason must be UTF-8 of at most 123 bytes");
    return luaL_argerror(L, 2, "close code must be 1000-1003, 1007-1014 or 3000-4999");
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int ws_get_close(lua_State *L) {
  int code;
  char reason[128];
  size_t len = sizeof reason;
  net_ws *w = check(L);
  if (!w) return closed(L);
  if (!net_ws_get_close(w, &code, reason, &len)) return lua_pushnil(L), 1;
  lua_pushinteger(L, code);
  lua_pushlstring(L, reason, len);
  return 2;
}

static int info_string(lua_State *L, int which) {
  net_ws_info i;
  net_ws *w = check(L);
  if (!w) return closed(L);
  if (!net_ws_get_info(w, &i)) return lua_pushnil(L), 1;
  const char *s = which == 0 ? i.protocol : which == 1 ? i.extensions : i.target;
  if (*s) lua_pushstring(L, s);
  else lua_pushnil(L);
  return 1;
}

static int ws_get_protocol(lua_State *L) { return info_string(L, 0); }
static int ws_get_extensions(lua_State *L) { return info_string(L, 1); }

/* target (server side; nil for a client), and the other side's header fields */
static int ws_get_request(lua_State *L) {
  net_ws_info i;
  net_ws *w = check(L);
  if (!w) return closed(L);
  if (!net_ws_get_info(w, &i)) return lua_pushnil(L), 1;
  lws *u = lua_touserdata(L, 1);
  if (*i.target) lua_pushstring(L, i.target);
  else lua_pushnil(L);
  lua_createtable(L, 0, (int)i.nfields);
  /* i's strings live in the websocket, which a finalizer that a push runs
   * may free: check before each use (lnet.h) */
  for (size_t k = 0; k < i.nfields; k++) {
    if (!u->w) return closed(L);
    lua_pushstring(L, i.names[k]);
    if (!u->w) return closed(L);
    lua_pushstring(L, i.values[k]);   /* a repeated field: the last one (list fields say it all) */
    lua_rawset(L, -3);
  }
  return 2;
}

static int ws_get_peer(lua_State *L) {
  net_endpoint e;
  net_ws *w = check(L);
  if (!w) return closed(L);
  if (!net_ws_remote(w, &e)) return lua_pushnil(L), 1;
  return lnet_push_endpoint(L, &e);
}

static int ws_gc(lua_State *L) {
  lws *u = luaL_checkudata(L, 1, LNET_WS);
  if (u->w) net_ws_free(u->w);
  u->w = NULL;
  return 0;
}

/* <close>: close() with 1000, then let go as __gc does (the close goes on). */
static int ws_close_scope(lua_State *L) {
  lws *u = luaL_checkudata(L, 1, LNET_WS);
  if (u->w) net_ws_close(u->w, 1000, "", 0);
  return ws_gc(L);
}

static int ws_tostring(lua_State *L) {
  lws *u = luaL_checkudata(L, 1, LNET_WS);
  if (!u->w) return lua_pushliteral(L, "net.websocket(closed)"), 1;
  static const char *const names[] = {"waiting", "open", "failure"};
  char where[700];
  net_ws_describe(u->w, where, sizeof where);
  lua_pushfstring(L, "net.websocket(%s, %s)", where, names[net_ws_status(u->w).status]);
  return 1;
}

void lnet_open_ws(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"get_status", ws_get_status},   {"wait_until_connected", ws_wait_until_connected},
      {"send", ws_send},               {"receive", ws_receive},
      {"ping", ws_ping},               {"close", ws_close},
      {"get_close", ws_get_close},     {"get_protocol", ws_get_protocol},
      {"get_extensions", ws_get_extensions}, {"get_request", ws_get_request},
      {"get_peer", ws_get_peer},       {NULL, NULL},
  };
  static const luaL_Reg meta[] = {{"__gc", ws_gc}, {"__close", ws_close_scope}, {"__tostring", ws_tostring}, {NULL, NULL}};
  lnet_new_class(L, LNET_WS, methods, meta, 0);
}
