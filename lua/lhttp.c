/* lhttp.c: the net.http request object of the Lua binding (owner thread):
 * net.http_request(opts) and its polling methods. The exchange itself runs
 * on the I/O thread. */
#include <string.h>

#include "lnet.h"

#define READ_DEFAULT (1 << 20)

typedef struct lhttp {
  net_http *h;     /* NULL once closed */
  unsigned reads;  /* bumped by every consume (lnet_source) */
} lhttp;

/* The request, or NULL once closed: a closed request answers as one, it never raises. */
static net_http *check(lua_State *L) { return ((lhttp *)luaL_checkudata(L, 1, LNET_HTTP))->h; }

/* The handle again after an allocation (lnet.h): NULL when a finalizer closed it. */
static net_http *now(lua_State *L) { return ((lhttp *)lua_touserdata(L, 1))->h; }

static int closed(lua_State *L) { return lnet_fail(L, "closed", NET_E_CLOSED); }

static const net_result closed_status = {NET_FAILURE, NET_E_CLOSED, "closed"};

int lnet_http_request(lua_State *L) {
  lnet_http_args a;
  lnet_check_http_opts(L, 1, &a);
  lhttp *u = lua_newuserdatauv(L, sizeof *u, 1);
  u->h = NULL;
  luaL_setmetatable(L, LNET_HTTP);
  lua_pushstring(L, a.o.url);   /* for tostring before a response names one (it holds no credentials) */
  lua_setiuservalue(L, -2, 1);
  const char *err;
  net_err code;
  u->h = net_http_request(&a.o, &err, &code);
  if (!u->h) return lnet_fail(L, err, code);
  return 1;
}

static int http_get_status(lua_State *L) {
  net_http *h = check(L);
  return lnet_push_result(L, h ? net_http_status(h) : closed_status);
}

static int http_wait(lua_State *L) {
  net_http *h = check(L);
  int ms = lnet_opt_timeout(L, 2);
  return lnet_push_result(L, h ? net_http_wait(h, ms) : closed_status);
}

/* One header field into the table on top: a repeated name becomes a list. */
static void add_field(lua_State *L) {   /* table, name, value */
  lua_pushvalue(L, -2);
  int t = lua_rawget(L, -4);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
  } else if (t == LUA_TSTRING) {   /* the second one: a list of both */
    lua_createtable(L, 2, 0);
    lua_insert(L, -3);              /* table, name, list, value, first */
    lua_rawseti(L, -3, 1);
    lua_rawseti(L, -2, 2);
  } else {
    lua_insert(L, -2);              /* table, name, list, value */
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  }
  lua_rawset(L, -3);
}

/* status, headers (lower-case names; a repeated one as a list), reason, url.
 * r's strings live in the request, which a finalizer that a push runs may
 * close: the handle is checked before each use (lnet.h). */
static int push_response(lua_State *L, const net_http_response *r) {
  lua_pushinteger(L, r->status);
  lua_createtable(L, 0, (int)r->nfields);
  for (size_t i = 0; i < r->nfields; i++) {
    if (!now(L)) return closed(L);
    lua_pushstring(L, r->names[i]);
    if (!now(L)) return closed(L);
    lua_pushstring(L, r->values[i]);
    add_field(L);
  }
  if (!now(L)) return closed(L);
  lua_pushstring(L, r->reason);
  if (!now(L)) return closed(L);
  lua_pushstring(L, r->url);
  return 4;
}

static int http_get_response(lua_State *L) {
  net_http *h = check(L);
  net_http_response r;
  if (!h) return closed(L);
  if (!net_http_get_response(h, &r)) return lua_pushnil(L), 1;
  return push_response(L, &r);
}

/* The i-th redirect answered (from 1), as get_response; nil when there is none (yet). */
static int http_get_redirect(lua_State *L) {
  net_http *h = check(L);
  lua_Integer i = luaL_checkinteger(L, 2);
  net_http_response r;
  if (!h) return closed(L);
  if (i < 1 || i > 1000 || !net_http_get_redirect(h, (int)i - 1, &r)) return lua_pushnil(L), 1;
  return push_response(L, &r);
}

/* received, total (nil when unknown), sent, send_total */
static int http_get_progress(lua_State *L) {
  net_http *h = check(L);
  if (!h) return closed(L);
  net_http_progress p = net_http_get_progress(h);
  lua_pushinteger(L, (lua_Integer)p.received);
  if (p.has_total) lua_pushinteger(L, (lua_Integer)p.total);
  else lua_pushnil(L);
  lua_pushinteger(L, (lua_Integer)p.sent);
  lua_pushinteger(L, (lua_Integer)p.send_total);
  return 4;
}

static bool http_open(void *ud) { return ((lhttp *)ud)->h != NULL; }

static size_t http_copy(void *ud, void *dst, size_t n) { return net_http_copy(((lhttp *)ud)->h, 0, dst, n); }

/* n body bytes (n > 0, first the first of them) as a string; they leave
 * the body only once it exists, so a memory error loses none. */
static int push_body(lua_State *L, size_t n, const net_span *first) {
  lhttp *u = lua_touserdata(L, 1);
  const lnet_source src = {u, http_open, http_copy, &u->reads};
  long got = lnet_push_gathered(L, n, first->len >= n ? first->base : NULL, &src);
  if (got == LNET_READ_AGAIN) return LNET_READ_AGAIN;
  if (got < 0) return closed(L);
  if (!u->h) return 1;   /* closed by a finalizer the push ran: the bytes are ours */
  net_http_consume(u->h, (size_t)got);
  u->reads++;
  return 1;
}

/* Body bytes: "" when none yet, nil at the end, nil, msg, code on failure.
 * Allocates only what is there, never max. */
static int read_once(lua_State *L) {
  net_http *h = check(L);
  lua_Integer max = luaL_optinteger(L, 2, READ_DEFAULT);
  luaL_argcheck(L, max >= 1 && max <= (lua_Integer)1 << 30, 2, "max must be 1..2^30");
  if (!h) return closed(L);
  net_span first;
  int k = 1;
  long n = net_http_peek(h, (size_t)max, &first, &k);
  if (n == 0) return lua_pushliteral(L, ""), 1;
  if (n == NET_READ_EOF) return lua_pushnil(L), 1;
  if (n == NET_READ_ERROR) {
    net_result r = net_http_status(h);
    return lnet_fail(L, r.msg, r.err);
  }
  size_t total = (size_t)n;
  if (total < (size_t)max) {   /* more may lie past the first piece */
    size_t avail = net_http_available(h);
    total = avail < (size_t)max ? avail : (size_t)max;
  }
  return push_body(L, total, &first);
}

static int http_read(lua_State *L) { return lnet_read_again(L, read_once); }

static int http_cancel(lua_State *L) {
  net_http *h = check(L);
  if (h) net_http_cancel(h);
  return 0;
}

static int http_close(lua_State *L) {
  lhttp *u = luaL_checkudata(L, 1, LNET_HTTP);
  if (u->h) net_http_close(u->h);
  u->h = NULL;
  return 0;
}

static int http_tostring(lua_State *L) {
  lhttp *u = luaL_checkudata(L, 1, LNET_HTTP);
  if (!u->h) return lua_pushliteral(L, "net.http(closed)"), 1;
  net_http_response r;
  static const char *const names[] = {"waiting", "success", "failure"};
  net_result st = net_http_status(u->h);
  if (net_http_get_response(u->h, &r)) {
    lua_pushfstring(L, "net.http(%d %s, %s)", r.status, r.url, names[st.status]);
  } else {
    lua_getiuservalue(L, 1, 1);
    lua_pushfstring(L, "net.http(%s, %s)", lua_tostring(L, -1), names[st.status]);
  }
  return 1;
}

void lnet_open_http(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"get_status", http_get_status}, {"wait", http_wait},   {"get_response", http_get_response},
      {"get_redirect", http_get_redirect},
      {"get_progress", http_get_progress}, {"read", http_read}, {"cancel", http_cancel},
      {"close", http_close},           {NULL, NULL},
  };
  static const luaL_Reg meta[] = {
      {"__gc", http_close}, {"__close", http_close}, {"__tostring", http_tostring}, {NULL, NULL}};
  lnet_new_class(L, LNET_HTTP, methods, meta, 0);
}
