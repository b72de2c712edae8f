/* ltcp.c: the net.tcp connection object of the Lua binding (owner thread),
 * for TCP and Unix sockets, plain or TLS. Every method polls the engine's
 * buffers through net.h and returns at once. */
#include <stdio.h>
#include <string.h>

#include "lnet.h"

#define READ_MAX (1u << 20)   /* per call: bounds the time one read can take */

struct ltcp {
  net_conn *c;        /* NULL once closed */
  char where[128];    /* "host:port" asked for; the last endpoint once closed */
  /* read_until: how far the buffered bytes were searched without finding the
   * delimiter kept as the user value; valid while nothing was consumed */
  size_t scanned;
  /* write_packet / write_lsp: bytes queued of a message larger than the send
   * buffer, kept as user value 2 until the last of it is queued */
  size_t wdone;
  net_frame_kind wkind;
  net_frame *frame;   /* read_packet / read_lsp, made on first use */
  net_frame_kind frame_kind;   /* the kind of the last framed read */
  unsigned reads;     /* bumped by every consume (lnet_source) */
};

static ltcp *check_tcp(lua_State *L) { return luaL_checkudata(L, 1, LNET_TCP); }

static int closed(lua_State *L) { return lnet_fail(L, "closed", NET_E_CLOSED); }

static int failed(lua_State *L, net_conn *c) {
  net_result r = net_conn_status(c);
  return lnet_fail(L, r.status == NET_FAILURE ? r.msg : "closed",
                   r.status == NET_FAILURE ? r.err : NET_E_CLOSED);
}

ltcp *lnet_new_tcp(lua_State *L) {
  ltcp *u = lua_newuserdatauv(L, sizeof *u, 2);
  memset(u, 0, sizeof *u);
  luaL_setmetatable(L, LNET_TCP);
  return u;
}

void lnet_tcp_adopt(ltcp *u, net_conn *c) {
  u->c = c;
  net_conn_describe(c, u->where, sizeof u->where);
}

/* c, err and code come from one open call made before this one: argument
 * order is unspecified in C, so never pass the call itself. */
static int open_conn(lua_State *L, ltcp *u, net_conn *c, const char *err, net_err code) {
  u->c = c;
  return c ? 1 : lnet_fail(L, err, code);
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
  lnet_conn_args opts;
  lnet_check_conn_arg(L, 3, true, &opts);
  if (opts.tls.bad) return lnet_fail(L, opts.tls.bad, NET_E_INVALID);
  ltcp *u = lnet_new_tcp(L);
  if (!host) a = lnet_test_addr(L, 1);   /* handles: read after the last allocation (lnet.h) */
  net_resolver *r = opts.resolver ? *opts.resolver : NULL;
  if (opts.resolver && !r) return lnet_fail(L, "option 'resolver' is closed", NET_E_CLOSED);
  const char *err = NULL;
  net_err code = NET_E_INVALID;
  if (opts.o.proxy && (host || r)) {   /* the name goes to the proxy stage, r looks up the proxy's */
    if (!host) host = net_addr_hostname(a), len = strlen(host);
    net_conn *c = net_tcp_open_host(r, host, len, (uint16_t)port, &opts.o, &err, &code);
    if (c) net_conn_describe(c, u->where, sizeof u->where);
    return open_conn(L, u, c, err, code);
  }
  net_addr *made = a   ? NULL
                   : r ? net_resolver_resolve(r, host, len, &err, &code)
                       : net_resolve(host, len, &err, &code);
  if (!a && !made) return lnet_fail(L, err, code);
  net_conn *c = net_tcp_open(a ? a : made, (uint16_t)port, &opts.o, &err, &code);
  net_addr_unref(made);   /* the connection holds its own reference */
  if (c) net_conn_describe(c, u->where, sizeof u->where);
  return open_conn(L, u, c, err, code);
}

int lnet_open_unix_fn(lua_State *L) {
  const char *path = lnet_check_cstring(L, 1);   /* a NUL raises, as create_server{unix} does */
  size_t len = strlen(path);
  if (len == 0 || len > 107)   /* sun_path; never truncated */
    return lnet_fail(L, "a Unix socket path must be 1..107 bytes", NET_E_INVALID);
  lnet_conn_args opts;
  lnet_check_conn_arg(L, 2, false, &opts);
  if (opts.tls.bad) return lnet_fail(L, opts.tls.bad, NET_E_INVALID);
  ltcp *u = lnet_new_tcp(L);
  const char *err = NULL;
  net_err code = NET_E_INVALID;
  net_conn *c = net_unix_open(path, &opts.o, &err, &code);
  if (c) net_conn_describe(c, u->where, sizeof u->where);
  return open_conn(L, u, c, err, code);
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

/* data[i..j] as string.sub counts them: the rest of a partly written string
 * goes out without copying it first (a copy per frame of a large one would
 * be quadratic). */
static const char *check_range(lua_State *L, int arg, size_t *len) {
  size_t l;
  const char *s = luaL_checklstring(L, arg, &l);
  lua_Integer i = luaL_optinteger(L, arg + 1, 1), j = luaL_optinteger(L, arg + 2, -1), n = (lua_Integer)l;
  i = i > 0 ? i : i == 0 || i < -n ? 1 : n + i + 1;
  j = j > n ? n : j >= 0 ? j : j < -n ? 0 : n + j + 1;
  *len = i > j ? 0 : (size_t)(j - i + 1);
  return s + (i > j ? 0 : i - 1);
}

static const char *writer_name(net_frame_kind kind) { return kind == NET_FRAME_LSP ? "write_lsp" : "write_packet"; }

/* A message partly queued must be finished before any other write: the
 * stream is inside it. */
static void check_not_writing(lua_State *L, ltcp *u, const char *fn) {
  if (u->wdone) luaL_error(L, "%s: a %s message is partly queued; call %s with it again until it returns true",
                           fn, writer_name(u->wkind), writer_name(u->wkind));
}

static void set_pending(lua_State *L, ltcp *u, size_t done, net_frame_kind kind) {
  if (done && !u->wdone) {
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, 1, 2);
  } else if (!done && u->wdone) {
    lua_pushnil(L);
    lua_setiuservalue(L, 1, 2);
  }
  u->wdone = done;
  u->wkind = kind;
}

static int tcp_write(lua_State *L) {
  ltcp *u = check_tcp(L);
  size_t len;
  const char *data = check_range(L, 2, &len);
  if (!u->c) return closed(L);
  check_not_writing(L, u, "write");
  long n = net_conn_write(u->c, data, len);
  if (n < 0) {
    net_result r = net_conn_write_status(u->c);
    return lnet_fail(L, r.msg, r.err);
  }
  lua_pushinteger(L, n);
  return 1;
}

/* ---- reading ---------------------------------------------------------------- */

/* Everything consumed invalidates read_until's progress. */
static void consume(ltcp *u, size_t n) {
  net_conn_consume(u->c, n);
  u->scanned = 0;
  u->reads++;
}

static bool tcp_open(void *ud) { return ((ltcp *)ud)->c != NULL; }

static size_t tcp_copy(void *ud, void *dst, size_t n) { return net_conn_copy(((ltcp *)ud)->c, 0, dst, n); }

/* Pushes the first n buffered bytes as a string and consumes them: the
 * method's result count, or closed / LNET_READ_AGAIN (nothing pushed) when a
 * finalizer the allocation ran closed or read the connection. Bytes in one
 * piece of buffer memory (first, the span a peek already found) are copied
 * once, others gathered (lnet_push_gathered). A memory error while pushing
 * leaves the bytes buffered. */
static int push_bytes(lua_State *L, ltcp *u, size_t n, const net_span *first) {
  const lnet_source src = {u, tcp_open, tcp_copy, &u->reads};
  long got = lnet_push_gathered(L, n, first && first->len >= n ? first->base : NULL, &src);
  if (got == LNET_READ_AGAIN) return LNET_READ_AGAIN;
  if (got < 0) return closed(L);
  if (u->c) consume(u, (size_t)got);   /* else closed by a finalizer the push ran: the bytes are ours */
  return 1;
}

/* The end of reading: "" (nothing yet), nil (orderly end) or nil, msg, code. */
static int push_end(lua_State *L, ltcp *u, long end) {
  if (end == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  if (end == NET_READ_EOF) {
    lua_pushnil(L);
    return 1;
  }
  return failed(L, u->c);
}

/* A message larger than the receive buffer is half gathered: the stream
 * continues inside it, and a plain read would tear it apart. */
static void check_not_framing(lua_State *L, ltcp *u, const char *fn) {
  if (u->frame && net_frame_busy(u->frame) && net_conn_status(u->c).status != NET_FAILURE)
    luaL_error(L, "%s: a %s message is partly read; finish it first", fn,
               u->frame_kind == NET_FRAME_LSP ? "read_lsp" : "read_packet");
}

static int read_once(lua_State *L) {
  ltcp *u = check_tcp(L);
  lua_Integer max = luaL_checkinteger(L, 2);
  if (max < 1) return luaL_argerror(L, 2, "max_len must be at least 1");
  if (!u->c) return closed(L);
  check_not_framing(L, u, "read");
  size_t want = (lua_Unsigned)max < READ_MAX ? (size_t)max : READ_MAX;
  net_span first;
  int k = 1;
  long n = net_conn_peek(u->c, want, &first, &k);
  if (n <= 0) return push_end(L, u, n);
  size_t total = (size_t)n;
  if (total < want) {   /* more may lie past the first piece */
    size_t avail = net_conn_available(u->c);
    total = avail < want ? avail : want;
  }
  return push_bytes(L, u, total, &first);
}

static int tcp_read(lua_State *L) { return lnet_read_again(L, read_once); }

/* Where the delimiter (argument 2) starts within the first `limit` buffered
 * bytes, searching only what is new since the last call with the same
 * delimiter, kept as the user value; -1 if absent. */
static long find_delim(lua_State *L, ltcp *u, const char *delim, size_t dlen, size_t limit) {
  size_t plen = 0;
  lua_getiuservalue(L, 1, 1);
  const char *prev = lua_tolstring(L, -1, &plen);
  bool same = prev && plen == dlen && (prev == delim || memcmp(prev, delim, dlen) == 0);
  lua_pop(L, 1);
  size_t from = same && u->scanned >= dlen ? u->scanned - (dlen - 1) : 0;
  long at = net_conn_find(u->c, delim, dlen, from, limit);
  if (!same) {
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, 1, 1);
  }
  u->scanned = at < 0 ? limit : 0;
  return at;
}

/* at >= 0: the delimiter is there, but the data and it do not fit in max. */
static int until_limit(lua_State *L, lua_Integer max, size_t cap, long at, size_t dlen) {
  if (at >= 0)
    return lnet_fail(L, lua_pushfstring(L, "read_until: the data and its delimiter take %I bytes, over max_len %I",
                                        (LUAI_UACINT)((size_t)at + dlen), (LUAI_UACINT)max), NET_E_LIMIT);
  if ((lua_Unsigned)max > cap)   /* the buffer is full: no byte can come to help */
    return lnet_fail(L, lua_pushfstring(L, "read_until: no delimiter within the %I-byte receive buffer",
                                        (LUAI_UACINT)cap), NET_E_LIMIT);
  return lnet_fail(L, lua_pushfstring(L, "read_until: no delimiter within %I bytes", max), NET_E_LIMIT);
}

static int read_until_once(lua_State *L) {
  ltcp *u = check_tcp(L);
  size_t dlen;
  const char *delim = luaL_checklstring(L, 2, &dlen);
  if (dlen == 0) return luaL_argerror(L, 2, "delimiter must not be empty");
  if (dlen > NET_FIND_MAX) return luaL_argerror(L, 2, "delimiter must be at most 1024 bytes");
  lua_Integer max = luaL_optinteger(L, 3, u->c ? (lua_Integer)net_conn_buffer_size(u->c) : READ_MAX);
  if (max < 1) return luaL_argerror(L, 3, "max_len must be at least 1");
  if (!u->c) return closed(L);
  check_not_framing(L, u, "read_until");
  size_t avail = net_conn_available(u->c), cap = net_conn_buffer_size(u->c);
  size_t want = (lua_Unsigned)max < NET_BUFFER_MAX ? (size_t)max : NET_BUFFER_MAX;
  long at = find_delim(L, u, delim, dlen, avail < want + dlen ? avail : want + dlen);
  if (at >= 0 && (size_t)at + dlen <= want) return push_bytes(L, u, (size_t)at + dlen, NULL);
  if (at >= 0 || avail >= want || avail >= cap) return until_limit(L, max, cap, at, dlen);
  if (net_conn_input_ended(u->c) && avail == net_conn_available(u->c)) {
    if (avail == 0) {
      net_span sp;
      int k = 1;
      return push_end(L, u, net_conn_peek(u->c, 1, &sp, &k));
    }
    return push_bytes(L, u, avail, NULL);   /* the rest, without the delimiter */
  }
  net_conn_want_more(u->c);   /* a line longer than half the buffer: its rest must come in */
  lua_pushliteral(L, "");
  return 1;
}

static int tcp_read_until(lua_State *L) { return lnet_read_again(L, read_until_once); }

/* ---- framed messages ------------------------------------------------------------- */

static size_t frame_copy(void *ud, void *dst, size_t n) {
  (void)n;   /* the message's own size */
  return net_frame_copy(((ltcp *)ud)->frame, ((ltcp *)ud)->c, dst);
}

/* Pushes the message net_frame_next announced (n bytes) and drops it: one
 * copy when it lies in one piece; else gathered first, as push_bytes does,
 * with the same results when a finalizer closed or read the connection
 * meanwhile. A memory error while pushing leaves it buffered. */
static int push_message(lua_State *L, ltcp *u, size_t n) {
  const lnet_source src = {u, tcp_open, frame_copy, &u->reads};   /* closed: its frame freed too */
  long got = lnet_push_gathered(L, n, net_frame_view(u->frame, u->c), &src);
  if (got == LNET_READ_AGAIN) return LNET_READ_AGAIN;
  if (got < 0) return closed(L);
  if (!u->c) return 1;   /* closed by a finalizer the push ran: the message is ours */
  net_frame_done(u->frame, u->c);
  u->scanned = 0;
  u->reads++;
  return 1;
}

static int read_framed(lua_State *L, net_frame_kind kind, lua_Integer def) {
  ltcp *u = check_tcp(L);
  lua_Integer max = luaL_optinteger(L, 2, def);
  if (max < 0) return luaL_argerror(L, 2, "max must be 0 or more bytes");
  if (!u->c) return closed(L);
  if (u->frame && net_frame_busy(u->frame) && u->frame_kind != kind)
    return luaL_error(L, "%s: a %s message is partly read; finish it first",
                      kind == NET_FRAME_LSP ? "read_lsp" : "read_packet",
                      u->frame_kind == NET_FRAME_LSP ? "read_lsp" : "read_packet");
  if (!u->frame && !(u->frame = net_frame_new())) return lnet_fail(L, "out of memory", NET_E_LIMIT);
  u->frame_kind = kind;
  long n = net_frame_next(u->frame, u->c, kind, (lua_Unsigned)max < SIZE_MAX ? (size_t)max : SIZE_MAX);
  if (n == NET_FRAME_PARTIAL) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (n < 0) return push_end(L, u, n);
  return push_message(L, u, (size_t)n);
}

static int read_packet_once(lua_State *L) { return read_framed(L, NET_FRAME_PACKET, 512 * 1024); }
static int read_lsp_once(lua_State *L) { return read_framed(L, NET_FRAME_LSP, 64 * 1024 * 1024); }
static int tcp_read_packet(lua_State *L) { return lnet_read_again(L, read_packet_once); }
static int tcp_read_lsp(lua_State *L) { return lnet_read_again(L, read_lsp_once); }

static int write_framed(lua_State *L, net_frame_kind kind) {
  ltcp *u = check_tcp(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  if (!u->c) return closed(L);
  if (u->wdone) {   /* only the same message goes on */
    lua_getiuservalue(L, 1, 2);
    bool same = kind == u->wkind && lua_rawequal(L, -1, 2);
    lua_pop(L, 1);
    if (!same) check_not_writing(L, u, writer_name(kind));
  }
  size_t done = u->wdone;
  int r = net_frame_write_part(u->c, kind, data, len, &done);
  set_pending(L, u, r == 0 ? done : 0, kind);
  if (r == NET_FRAME_TOO_BIG)
    return lnet_fail(L, lua_pushfstring(L, "%s: a %I-byte packet is more than 4 bytes of length can say",
                                        writer_name(kind), (LUAI_UACINT)len), NET_E_LIMIT);
  if (r < 0) {
    net_result w = net_conn_write_status(u->c);
    return lnet_fail(L, w.msg, w.err);
  }
  lua_pushboolean(L, r);
  return 1;
}

static int tcp_write_packet(lua_State *L) { return write_framed(L, NET_FRAME_PACKET); }
static int tcp_write_lsp(lua_State *L) { return write_framed(L, NET_FRAME_LSP); }

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
  *slot = u->c ? net_conn_peer(u->c) : NULL;   /* u->c read again after the allocation (lnet.h) */
  if (!*slot) lua_pushnil(L);
  return 1;
}

static int endpoint_of(lua_State *L, int (*get)(net_conn *, net_endpoint *)) {
  ltcp *u = check_tcp(L);
  net_endpoint e;
  if (!u->c) return closed(L);
  if (!get(u->c, &e)) return lnet_fail(L, "not connected", NET_E_INVALID);
  return lnet_push_endpoint(L, &e);
}

static int tcp_get_local_address(lua_State *L) { return endpoint_of(L, net_conn_local); }
static int tcp_get_peer(lua_State *L) { return endpoint_of(L, net_conn_remote); }

static int tcp_get_stats(lua_State *L) {
  ltcp *u = check_tcp(L);
  if (!u->c) return closed(L);
  net_conn_stats s = net_conn_get_stats(u->c);
  lua_pushinteger(L, (lua_Integer)s.received);
  lua_pushinteger(L, (lua_Integer)s.sent);
  lua_pushnumber(L, s.age);
  return 3;
}

static int tcp_shutdown(lua_State *L) {
  static const char *const modes[] = {"send", "receive", "both", NULL};
  static const int how[] = {NET_SHUT_SEND, NET_SHUT_RECEIVE, NET_SHUT_SEND | NET_SHUT_RECEIVE};
  ltcp *u = check_tcp(L);
  int m = lnet_check_option(L, 2, "both", modes);
  if (!u->c) return closed(L);
  net_conn_shutdown(u->c, how[m]);
  u->scanned = 0;
  lua_pushboolean(L, 1);
  return 1;
}

static int pause_resume(lua_State *L, int paused) {
  ltcp *u = check_tcp(L);
  if (!u->c) return closed(L);   /* as every method of a closed object */
  net_conn_pause_read(u->c, paused);
  lua_pushboolean(L, 1);
  return 1;
}

static int tcp_pause_read(lua_State *L) { return pause_resume(L, 1); }
static int tcp_resume_read(lua_State *L) { return pause_resume(L, 0); }

static const char *const option_names[] = {"nodelay", "keepalive", "linger", "reuseaddr", NULL};

static int tcp_set_option(lua_State *L) {
  ltcp *u = check_tcp(L);
  int opt = lnet_check_option(L, 2, NULL, option_names), v;
  if (opt == NET_OPT_LINGER) {
    lua_Integer ms = luaL_checkinteger(L, 3);
    if (ms < 0 || ms > 0x7fffffff) return luaL_argerror(L, 3, "linger must be 0 or more milliseconds");
    v = (int)ms;
  } else if (opt == NET_OPT_KEEPALIVE) {
    if (!lnet_keepalive_from(L, 3, &v)) return luaL_argerror(L, 3, "keepalive must be a boolean or 1..86400 seconds");
  } else {
    luaL_checktype(L, 3, LUA_TBOOLEAN);
    v = lua_toboolean(L, 3);
  }
  if (!u->c) return closed(L);
  net_conn_set_option(u->c, (net_conn_option)opt, v);
  lua_pushboolean(L, 1);
  return 1;
}

static int tcp_get_option(lua_State *L) {
  ltcp *u = check_tcp(L);
  int opt = lnet_check_option(L, 2, NULL, option_names);
  if (!u->c) return closed(L);
  int v = net_conn_get_option(u->c, (net_conn_option)opt);
  if (opt == NET_OPT_LINGER) lua_pushinteger(L, v);
  else if (opt == NET_OPT_KEEPALIVE) lnet_push_keepalive(L, v);
  else lua_pushboolean(L, v != 0);
  return 1;
}

static int tcp_starttls(lua_State *L) {
  ltcp *u = check_tcp(L);
  lnet_tls_args tls;
  memset(&tls, 0, sizeof tls);
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lnet_check_tls_table(L, 2, &tls, false);
  }
  if (!u->c) return closed(L);
  if (tls.bad) return lnet_fail(L, tls.bad, NET_E_INVALID);
  check_not_writing(L, u, "starttls");   /* its rest would go out encrypted */
  /* its head and first bytes came in plain text: the rest must not come from TLS */
  if (u->frame && net_frame_busy(u->frame))
    return lnet_fail(L, u->frame_kind == NET_FRAME_LSP
                            ? "starttls: a read_lsp message that began before it is partly read"
                            : "starttls: a read_packet message that began before it is partly read",
                     NET_E_PROTOCOL);
  const char *err;
  net_err code;
  if (net_conn_starttls(u->c, &tls.o, &err, &code) != 0) return lnet_fail(L, err, code);
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
  if (u->c) {
    net_conn_describe(u->c, u->where, sizeof u->where);   /* for __tostring from now on */
    net_conn_close(u->c);
  }
  u->c = NULL;
  set_pending(L, u, 0, u->wkind);
  net_frame_free(u->frame);
  u->frame = NULL;
  return 0;
}

static int tcp_tostring(lua_State *L) {
  static const char *const names[] = {"waiting", "success", "failure"};
  ltcp *u = check_tcp(L);
  if (u->c) net_conn_describe(u->c, u->where, sizeof u->where);
  const char *state = u->c ? names[net_conn_status(u->c).status] : "closed";
  lua_pushfstring(L, "net.tcp(%s, %s)", u->where[0] ? u->where : "?", state);
  return 1;
}

void lnet_open_tcp(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"get_status", tcp_get_status},
      {"wait_until_connected", tcp_wait_until_connected},
      {"write", tcp_write},
      {"read", tcp_read},
      {"read_until", tcp_read_until},
      {"read_packet", tcp_read_packet},
      {"write_packet", tcp_write_packet},
      {"read_lsp", tcp_read_lsp},
      {"write_lsp", tcp_write_lsp},
      {"available", tcp_available},
      {"get_pending_writes", tcp_get_pending_writes},
      {"wait_until_drained", tcp_wait_until_drained},
      {"get_address", tcp_get_address},
      {"get_local_address", tcp_get_local_address},
      {"get_peer", tcp_get_peer},
      {"get_stats", tcp_get_stats},
      {"shutdown", tcp_shutdown},
      {"pause_read", tcp_pause_read},
      {"resume_read", tcp_resume_read},
      {"set_option", tcp_set_option},
      {"get_option", tcp_get_option},
      {"starttls", tcp_starttls},
      {"get_tls_info", tcp_get_tls_info},
      {"close", tcp_close},
      {NULL, NULL},
  };
  static const luaL_Reg meta[] = {
      {"__gc", tcp_close},
      {"__close", tcp_close},
      {"__tostring", tcp_tostring},
      {NULL, NULL},
  };
  lnet_new_class(L, LNET_TCP, methods, meta, 0);
}
