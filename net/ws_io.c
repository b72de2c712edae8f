/* ws_io.c: a websocket on the I/O thread: it owns its connection as an
 * owner would (net__conn_open_linked, or an accepted one handed over), runs
 * the opening handshake of its side, then drives ws_rx.c and ws_tx.c, the
 * keep-alive pings and the closing handshake, and ends the object. I/O
 * thread, but for creation (owner thread for clients) and destroy. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "ws.h"

#define WS(io_ptr) ((net_ws *)((char *)(io_ptr) - offsetof(net_ws, obj)))
#define USER_AGENT "sluice/" NET_VERSION
#define JOINED_MAX 4096   /* a list header's values, joined */

/* ---- creation ------------------------------------------------------------------------ */

net_ws *net__ws_new(net_ws_role role) {
  net_ws *w = net__aligned(sizeof *w);
  if (!w) return NULL;
  memset(w, 0, sizeof *w);
  net__io_init(&w->obj, &net__ws_ops, 2);   /* the owner's and the I/O thread's */
  atomic_init(&w->state, NET_WAITING);
  w->close_code = NET_WS_CLOSE_ABNORMAL;
  http_head_init(&w->head, role == NET_WS_SERVER ? HTTP_HEAD_REQUEST : HTTP_HEAD_RESPONSE, WS_HS_MAX, 0);
  atomic_fetch_add(&net__live_ws, 1);
  return w;
}

/* A queue fits the largest message, so a message never waits for a record
 * that can never come; chunks come and go with use, so the cap costs nothing idle. */
void net__ws_queues(net_ws *w) {
  size_t cap = (size_t)w->conf.max_message + WS_REC_HDR;
  if (cap < NET_RING_DEFAULT_CAP) cap = NET_RING_DEFAULT_CAP;
  ring_init(&w->rx, cap);
  ring_init(&w->tx, cap);
}

net_ws *net__ws_upgrade(net_conn *c, const ws_conf *conf, const ws_acceptor *acc) {
  net_ws *w = net__ws_new(NET_WS_SERVER);
  if (!w) return NULL;
  w->conf = *conf;   /* the lists stay the server's: it outlives the handshake (acc holds it) */
  net__ws_queues(w);
  w->acc = *acc;
  net__io_ref(acc->server);
  w->c = c;
  net__conn_set_link(c, &w->obj);
  net_conn_describe(c, w->where, sizeof w->where);
  w->phase = WP_HANDSHAKE;
  w->started = true;
  int t = conf->connect_timeout_ms ? conf->connect_timeout_ms : NET_DEFAULT_CONNECT_TIMEOUT_MS;
  w->deadline = net__now_ms() + (uint64_t)t;
  net__engine_kick(&w->obj);   /* bytes may be there already */
  return w;
}

/* ---- what the handshake settled ----------------------------------------------------------- */

static char *put(char **p, const char *s) {
  size_t n = strlen(s);
  char *at = *p;
  memcpy(at, s, n + 1);
  *p += n + 1;
  return at;
}

static void start_closing(net_ws *w);

/* An absolute-form target (RFC 9112 3.2.2: "http://host/chat?x") from its
 * path on: what an origin-form one would be, but for a "/" it lacks when
 * nothing or only a query follows the authority (*slash). */
static const char *origin_form(const char *target, bool *slash) {
  const char *a = strstr(target, "://");
  *slash = false;
  if (target[0] == '/' || !a) return target;
  const char *p = a + 3 + strcspn(a + 3, "/?");
  *slash = *p != '/';
  return p;
}

/* One allocation the owner reads: the subprotocol, the extensions, and the
 * other side's head (the request a server got, the answer a client got). */
static bool publish_open(net_ws *w, const char *protocol, const char *ext) {
  const http_head *hd = &w->head;
  size_t nf = http_head_nfields(hd);
  bool slash = false;
  const char *target = w->conf.role == NET_WS_SERVER ? origin_form(http_head_target(hd), &slash) : "";
  size_t size = strlen(protocol) + strlen(ext) + strlen(target) + 4;
  for (size_t i = 0; i < nf; i++) size += http_head_field(hd, i).name_len + http_head_field(hd, i).value_len + 2;
  ws_info *r = net__calloc(1, sizeof *r + 2 * nf * sizeof(char *) + size);
  if (!r) return net__ws_fail(w, NET_E_LIMIT, "out of memory"), false;
  const char **names = (const char **)(r + 1), **values = names + nf;
  char *p = (char *)(values + nf);
  for (size_t i = 0; i < nf; i++) {
    names[i] = put(&p, http_head_field(hd, i).name);
    values[i] = put(&p, http_head_field(hd, i).value);
  }
  char *t = p;   /* the target, with the "/" an absolute form may lack */
  if (slash) *p++ = '/';
  put(&p, target);
  r->i = (net_ws_info){put(&p, protocol), put(&p, ext), t, nf, names, values};
  net_conn_remote(w->c, &r->peer);
  atomic_store_explicit(&w->info, r, memory_order_release);   /* complete before the owner sees it */
  w->phase = WP_OPEN;
  w->deadline = 0;
  net__free(w->hs);
  w->hs = NULL;
  w->last_rx = net__now_ms();
  /* the handshake's bytes, sent or on their way, say nothing of the peer */
  w->sent_seen = net_conn_get_stats(w->c).sent + net_conn_pending_writes(w->c);
  w->ctl_out = 0;
  net__ws_parser_init(&w->p, w->conf.role, w->compressed, w->conf.max_message);
  atomic_store_explicit(&w->state, NET_SUCCESS, memory_order_release);
  net__io_publish(&w->obj);
  if (w->close_later) start_closing(w);   /* the owner closed while it opened */
  return true;
}

/* Every field called name, joined with ", " (as list headers combine). */
static size_t joined(const http_head *hd, const char *name, char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < http_head_nfields(hd); i++) {
    http_field f = http_head_field(hd, i);
    if (strcmp(f.name, name)) continue;
    n += (size_t)snprintf(buf + (n < cap ? n : cap - 1), n < cap ? cap - n : 1, n ? ", %s" : "%s", f.value);
  }
  return n < cap ? n : cap;   /* cap: too long to be a list anyone sends */
}

/* ---- client ------------------------------------------------------------------------------ */

static bool client_connect(net_ws *w) {
  static const net_tls_opts verified;
  const char *err;
  net_err code;
  bool tls = !strcmp(w->url.scheme, "wss");
  net_conn_opts o = {.connect_timeout_ms = w->conf.connect_timeout_ms,
                     .tls = tls ? (w->conf.tls ? w->conf.tls : &verified) : NULL,
                     .proxy = w->conf.proxy,
                     .nodelay = 1,
                     .buffer_size = NET_RING_DEFAULT_CAP};   /* read on this thread: no growing */
  w->c = net__conn_open_host_linked(w->url.host, w->url.port, &o, &w->obj, &err, &code);
  if (!w->c) return net__ws_fail(w, code, "%s", err), false;
  return true;
}

static bool given(const ws_conf *c, const char *name) {
  for (size_t i = 0; c->headers && c->headers[i]; i += 2)
    if (!strcasecmp(c->headers[i], name)) return true;
  return false;
}

/* Writes the upgrade request into buf (NULL: measures); returns its length. */
static size_t request_text(const net_ws *w, const char *ext, char *buf, size_t cap) {
  const ws_conf *c = &w->conf;
  char host[NET_URL_HOST_MAX + 16];
  size_t n = 0;
#define PUT(...) n += (size_t)snprintf(buf ? buf + n : NULL, buf ? cap - n : 0, __VA_ARGS__)
  net__url_host_field(&w->url, host, sizeof host);
  PUT("GET %s HTTP/1.1\r\n", w->url.path);
  PUT("Host: %s\r\n", host);   /* the URL's: a caller's Host is refused (ws_opts.c) */
  PUT("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", w->key);
  for (size_t i = 0; i < c->nprotocols; i++) PUT(i ? ", %s" : "Sec-WebSocket-Protocol: %s", c->protocols[i]);
  if (c->nprotocols) PUT("\r\n");
  if (*ext) PUT("Sec-WebSocket-Extensions: %s\r\n", ext);
  if (!given(c, "user-agent")) PUT("User-Agent: %s\r\n", USER_AGENT);
  for (size_t i = 0; c->headers && c->headers[i]; i += 2) PUT("%s: %s\r\n", c->headers[i], c->headers[i + 1]);
  PUT("\r\n");
#undef PUT
  return n;
}


static bool client_start(net_ws *w) {
  char ext[NET_WS_EXT_LINE] = "";
  net_ws_deflate_conf dc;
  net__ws_deflate_conf_init(&dc);
  net_ws_rng *r = net__ws_rng();
  if (!r || !net__ws_key_make(r, w->key)) return net__ws_fail(w, NET_E_LIMIT, "the random generator failed"), false;
  if (w->conf.compress && !net__ws_deflate_offer(&dc, ext, sizeof ext)) ext[0] = '\0';
  size_t n = request_text(w, ext, NULL, 0);
  if (!(w->hs = net__malloc(n + 1))) return net__ws_fail(w, NET_E_LIMIT, "out of memory"), false;
  request_text(w, ext, w->hs, n + 1);
  w->hs_len = n;
  int t = w->conf.connect_timeout_ms ? w->conf.connect_timeout_ms : NET_DEFAULT_CONNECT_TIMEOUT_MS;
  w->deadline = t > 0 ? net__now_ms() + (uint64_t)t : 0;
  if (!client_connect(w)) return false;
  w->phase = WP_HANDSHAKE;
  return true;
}

/* The handshake fields RFC 6455 (11.3) allows once appear at most once. */
static bool once(const http_head *hd, const char *name) {
  int n = 0;
  for (size_t i = 0; i < http_head_nfields(hd); i++) n += !strcmp(http_head_field(hd, i).name, name);
  return n <= 1;
}

/* The server's answer: 101 with the right Upgrade, Connection and Accept,
 * a subprotocol that was offered, extensions that were. */
static bool client_check(net_ws *w) {
  const http_head *hd = &w->head;
  char proto[JOINED_MAX], ext[JOINED_MAX];
  size_t alen, plen = joined(hd, "sec-websocket-protocol", proto, sizeof proto);
  size_t elen = joined(hd, "sec-websocket-extensions", ext, sizeof ext);
  const char *accept = http_head_get(hd, "sec-websocket-accept", &alen), *why = NULL;
  int st = http_head_status(hd), k = net__ws_protocol_check(proto, plen, (const char *const *)w->conf.protocols,
                                                             w->conf.nprotocols);
  net_ws_deflate_conf dc;
  net__ws_deflate_conf_init(&dc);
  int d = w->conf.compress ? net__ws_deflate_check(&dc, ext, elen, &w->deflate, &why) : (elen ? -1 : 0);
  if (st != 101)
    return net__ws_fail(w, NET_E_PROTOCOL, "the server answered %d %s, not 101 (no websocket there)", st,
                        http_head_reason(hd)), false;
  if (!http_head_has_token(hd, "upgrade", "websocket") || !http_head_has_token(hd, "connection", "upgrade"))
    return net__ws_fail(w, NET_E_PROTOCOL, "the 101 answer lacks Upgrade: websocket or Connection: upgrade"), false;
  if (!accept || !once(hd, "sec-websocket-accept") || !net__ws_accept_ok(w->key, NET_WS_KEY_LEN, accept, alen))
    return net__ws_fail(w, NET_E_PROTOCOL, "Sec-WebSocket-Accept does not match the key sent"), false;
  if (k == -2) return net__ws_fail(w, NET_E_PROTOCOL, "the server chose a subprotocol that was not offered"), false;
  if (d < 0)
    return net__ws_fail(w, NET_E_PROTOCOL, "bad Sec-WebSocket-Extensions answer: %s",
                        why ? why : "no extension was offered"), false;
  w->compressed = d == 1;
  return publish_open(w, k >= 0 ? w->conf.protocols[k] : "", d == 1 ? ext : "");
}

/* ---- server ------------------------------------------------------------------------------ */

/* Windows of 4 KiB both ways when the client can limit its own: the
 * server's inflater keeps one per websocket, so a server of many stays small. */
static void server_deflate_conf(net_ws_deflate_conf *dc) {
  net__ws_deflate_conf_init(dc);
  dc->server_max_window_bits = dc->client_max_window_bits = 12;
}

typedef struct refusal {
  int status;
  const char *why, *extra;   /* extra: header lines to add */
} refusal;

/* RFC 9112 3.2: a path (origin-form) or a whole URL (absolute-form); "chat"
 * or "*" names no resource, whatever paths the server takes. */
static bool target_ok(const char *target) {
  const char *a = strstr(target, "://");
  size_t scheme = strspn(target, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
  return target[0] == '/' || (a && scheme > 0 && target + scheme == a);
}

static bool path_ok(const ws_conf *c, const char *target) {
  if (!c->paths) return true;
  bool slash;
  const char *t = origin_form(target, &slash);
  size_t n = strcspn(t, "?");
  for (size_t i = 0; c->paths[i]; i++)
    if (slash ? !strcmp(c->paths[i], "/") : strlen(c->paths[i]) == n && !strncmp(c->paths[i], t, n)) return true;
  return false;
}

/* A browser names the page's origin; a site not listed may not reach the
 * server through its visitors' browsers (cross-site websocket hijacking). */
static bool origin_ok(const ws_conf *c, const http_head *hd) {
  const char *o = http_head_get(hd, "origin", NULL);
  if (!c->origins || !o) return true;
  for (size_t i = 0; c->origins[i]; i++)
    if (!strcasecmp(c->origins[i], o)) return true;
  return false;
}

/* 0 when the request is an upgrade this server takes, else how to refuse it. */
static refusal server_check(net_ws *w, const char *proto, size_t plen, int *pick) {
  const http_head *hd = &w->head;
  size_t klen;
  const char *key = http_head_get(hd, "sec-websocket-key", &klen), *ver = http_head_get(hd, "sec-websocket-version", NULL);
  if (!http_head_has_token(hd, "upgrade", "websocket"))
    return (refusal){426, "this is a websocket endpoint: an upgrade is required", "Upgrade: websocket\r\nConnection: Upgrade\r\n"};
  if (strcmp(http_head_method(hd), "GET") || http_head_version(hd) != 1)
    return (refusal){400, "a websocket upgrade is an HTTP/1.1 GET", NULL};
  if (!http_head_has_token(hd, "connection", "upgrade") || !http_head_get(hd, "host", NULL))
    return (refusal){400, "the upgrade lacks Connection: Upgrade or Host", NULL};
  if (!once(hd, "host")) return (refusal){400, "Host appears twice", NULL};   /* RFC 9112 3.2 */
  if (!once(hd, "sec-websocket-key") || !once(hd, "sec-websocket-version"))
    return (refusal){400, "Sec-WebSocket-Key or Sec-WebSocket-Version appears twice", NULL};
  if (!ver || strcmp(ver, "13"))
    return (refusal){426, "only websocket version 13 is spoken here", "Sec-WebSocket-Version: 13\r\n"};
  if (!key || !net__ws_key_valid(key, klen)) return (refusal){400, "Sec-WebSocket-Key is missing or malformed", NULL};
  if (!target_ok(http_head_target(hd))) return (refusal){400, "the request target is neither a path nor a URL", NULL};
  if (!path_ok(&w->conf, http_head_target(hd))) return (refusal){404, "no websocket at this path", NULL};
  if (!once(hd, "origin")) return (refusal){400, "Origin appears twice", NULL};
  if (!origin_ok(&w->conf, hd)) return (refusal){403, "websockets from this origin are not accepted here", NULL};
  *pick = net__ws_protocol_pick(proto, plen, (const char *const *)w->conf.protocols, w->conf.nprotocols);
  if (*pick == -2) return (refusal){400, "Sec-WebSocket-Protocol is malformed", NULL};
  return (refusal){0, NULL, NULL};
}

static bool hs_text(net_ws *w, const char *fmt, ...) NET_PRINTF(2, 3);
static bool hs_text(net_ws *w, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || !(w->hs = net__malloc((size_t)n + 1))) return net__ws_fail(w, NET_E_LIMIT, "out of memory"), false;
  va_start(ap, fmt);
  vsnprintf(w->hs, (size_t)n + 1, fmt, ap);
  va_end(ap);
  w->hs_len = (size_t)n;
  w->hs_pos = 0;
  return true;
}

static void refuse(net_ws *w, refusal r) {
  const char *text = r.status == 404 ? "Not Found" : r.status == 403 ? "Forbidden" : r.status == 426 ? "Upgrade Required"
                     : r.status == 503 ? "Service Unavailable" : "Bad Request";
  if (!hs_text(w, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n%s\n",
               r.status, text, strlen(r.why) + 1, r.extra ? r.extra : "", r.why))
    return;
  w->hs_reject = true;
  net__seterr(&w->err, NET_E_PROTOCOL, "ws %s: refused the upgrade with %d: %s", w->where, r.status, r.why);
}

static bool server_answer(net_ws *w) {
  const http_head *hd = &w->head;
  char proto[JOINED_MAX], offer[JOINED_MAX], ext[NET_WS_EXT_LINE] = "", accept[NET_WS_ACCEPT_LEN + 1];
  size_t plen = joined(hd, "sec-websocket-protocol", proto, sizeof proto), klen;
  size_t olen = joined(hd, "sec-websocket-extensions", offer, sizeof offer);
  int pick = -1;
  refusal r = server_check(w, proto, plen, &pick);
  net_ws_deflate_conf dc;
  server_deflate_conf(&dc);
  const char *why = NULL;
  int d = !r.status && w->conf.compress ? net__ws_deflate_select(&dc, offer, olen, &w->deflate, ext, sizeof ext, &why) : 0;
  if (d < 0) r = (refusal){400, why ? why : "Sec-WebSocket-Extensions is malformed", NULL};
  /* the owner has not taken the websockets before it: a place is held from here on */
  if (!r.status && !w->acc.room(w->acc.server, w))
    r = (refusal){503, "the server is busy: try again later", "Retry-After: 1\r\n"};
  if (r.status) return refuse(w, r), true;
  const char *key = http_head_get(hd, "sec-websocket-key", &klen);
  net__ws_accept(key, klen, accept);
  const char *p = pick >= 0 ? w->conf.protocols[pick] : "";
  w->compressed = d == 1;
  w->agreed_proto = p;
  snprintf(w->agreed_ext, sizeof w->agreed_ext, "%s", d == 1 ? ext : "");
  return hs_text(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Accept: %s\r\n%s%s%s%s%s%s\r\n",
                 accept, *p ? "Sec-WebSocket-Protocol: " : "", p, *p ? "\r\n" : "",
                 d == 1 ? "Sec-WebSocket-Extensions: " : "", ext, d == 1 ? "\r\n" : "");
}

/* The server's websocket is open: the server takes it (its queue holds the owner's reference). */
static void hand_over(net_ws *w) {
  ws_acceptor acc = w->acc;
  w->acc.server = NULL;
  w->conf.protocols = w->conf.paths = NULL;   /* the server's: not ours to keep */
  if (!acc.ready(acc.server, w)) {   /* the server closed meanwhile: let go as an owner would (1001) */
    atomic_fetch_or(&w->requests, WREQ_FREE);
    net__engine_kick(&w->obj);
    net__io_unref(&w->obj);
  }
  net__io_unref(acc.server);
}

/* ---- the opening handshake, either side ----------------------------------------------- */

/* The other side's head: 1 once parsed, 0 for more, -1 failed, -2 a
 * server's malformed request. */
static int read_head(net_ws *w) {
  for (;;) {
    net_span sp;
    int k = 1;
    long n = net_conn_peek(w->c, WS_HS_MAX, &sp, &k);
    if (n == 0) return 0;
    if (n < 0) {
      net_result st = net_conn_status(w->c);
      if (n == NET_READ_ERROR) net__ws_fail(w, st.err, "%s", st.msg);
      else net__ws_fail(w, NET_E_CLOSED, "connection closed during the opening handshake");
      return -1;
    }
    size_t used = 0;
    http_result r = http_head_feed(&w->head, sp.base, sp.len, &used);
    if (r == HTTP_ERROR && w->conf.role == NET_WS_SERVER) return -2;   /* answered with a 400 */
    if (r == HTTP_ERROR) return net__ws_fail(w, NET_E_PROTOCOL, "opening handshake: %s", w->head.err), -1;
    net_conn_consume(w->c, r == HTTP_MORE ? sp.len : used);
    if (r == HTTP_DONE) return 1;
  }
}

static bool hs_written(net_ws *w) {
  while (w->hs_pos < w->hs_len) {
    long n = net_conn_write(w->c, w->hs + w->hs_pos, w->hs_len - w->hs_pos);
    if (n <= 0) return false;   /* full: it kicks us with room; failed: reading says */
    w->hs_pos += (size_t)n;
  }
  return true;
}

/* Client: the request goes out while the answer is awaited. Server: the
 * request is read, then the answer goes out (frames may follow it at once). */
static void handshake(net_ws *w) {
  bool server = w->conf.role == NET_WS_SERVER;
  if (!server || !w->hs) {
    if (w->hs) hs_written(w);
    int r = read_head(w);
    if (r == -2) refuse(w, (refusal){400, w->head.err, NULL});
    if (r == -1 || r == 0 || (r == -2 && !w->hs)) return;
    if (!server) {
      client_check(w);
      return;
    }
    if (r == 1 && !server_answer(w)) return;
  }
  if (!hs_written(w)) return;
  if (w->hs_reject) net__ws_publish_end(w, NET_WS_CLOSE_ABNORMAL, NULL, 0);   /* err says why */
  else if (publish_open(w, w->agreed_proto, w->agreed_ext)) hand_over(w);
}

/* ---- closing and ending ---------------------------------------------------------------- */

static void end(net_ws *w) {
  if (w->c) {
    net__conn_close_link(w->c);   /* graceful: a close frame written goes out */
    w->c = NULL;
  }
  net__ws_rx_free(w);
  net__ws_tx_free(w);
  net__free(w->hs);
  w->hs = NULL;
  http_head_free(&w->head);
  if (w->acc.server) {   /* a handshake that never made a websocket */
    w->acc.gone(w->acc.server, w);
    net__io_unref(w->acc.server);
    w->acc.server = NULL;
    net__io_unref(&w->obj);   /* the reference an owner would have had */
  }
  net__io_timer(&w->obj, 0);
  net__io_retire(&w->obj);
}

/* The closing handshake's clock: only progress from now on (closing_moves)
 * puts it back. */
static void closing_deadline(net_ws *w) {
  w->deadline = net__now_ms() + (uint64_t)w->conf.close_timeout_ms;
  w->sent_seen = net__conn_delivered(w->c);
  w->ctl_out = 0;
  w->read_seen = ring_consumed(&w->rx);
  w->held_back = w->msg_ready;
}

/* Our close frame goes out after the queued messages (ws_tx.c orders them). */
static void start_closing(net_ws *w) {
  w->close_due = true;
  w->phase = WP_CLOSING;
  closing_deadline(w);
}

/* The owner closes (or lets go: 1001). Messages it queued while the opening
 * handshake runs still go once open, then the close; with none queued there
 * is nothing to open for, and it ends at once. */
static void owner_close(net_ws *w, bool going_away) {
  if (w->phase > WP_OPEN || w->close_later) return;   /* closing already */
  w->send_code = going_away && !w->want_code ? NET_WS_CLOSE_GOING_AWAY : w->want_code;
  w->send_reason_len = going_away && !w->want_code ? 0 : w->want_len;
  memcpy(w->send_reason, w->want_reason, w->send_reason_len);
  if (w->phase == WP_OPEN) start_closing(w);
  else if (ring_used(&w->tx)) w->close_later = true;   /* publish_open starts it */
  else net__ws_fail(w, NET_E_CANCELLED, "closed before it opened");
}

/* An upgrade dropped by its server has nothing to deliver: its descriptor
 * goes at once, not after a linger waiting on an idle client's FIN. */
static void drop_upgrade(net_ws *w) {
  if (w->c) net_conn_set_option(w->c, NET_OPT_LINGER, 0);
}

void net__ws_shed(net_ws *w, const char *why) {
  if (w->phase == WP_DONE) return;   /* ended already: end() ran */
  drop_upgrade(w);
  net__ws_fail(w, NET_E_LIMIT, "dropped: %s", why);
  end(w);
}

static void clean_end(net_ws *w) {
  /* RFC 6455 sends nothing after the peer's close: what we held is dropped, and said so */
  if (w->tx_type || ring_used(&w->tx))
    net__seterr(&w->err, NET_E_CLOSED, "closed by the peer before every queued message was sent");
  else
    net__seterr(&w->err, NET_E_CLOSED, "closed");
  net__ws_publish_end(w, w->peer_code, (const uint8_t *)w->peer_reason, w->peer_reason_len);
}

/* Both close frames went: a server closes the TCP connection first; a
 * client, too, rather than linger for it (its FIN follows the close frame).
 * A peer that closed and dropped the connection before our answer could go
 * still closed cleanly: its close frame said so. */
static void exchange(net_ws *w) {
  net__ws_rx_pump(w);
  if (w->phase == WP_DONE) return;
  if (w->close_got && !w->deadline) closing_deadline(w);
  net__ws_tx_pump(w);
  if (w->phase == WP_DONE || !w->close_got) return;
  if (w->close_sent || net_conn_status(w->c).status == NET_FAILURE) clean_end(w);
}

/* ---- keep-alive pings and deadlines --------------------------------------------------------- */

static void set_timer(net_ws *w) {
  uint64_t at = w->deadline;
  if (w->phase == WP_OPEN && w->conf.ping_interval_ms) {
    /* a ping the peer answered waits for nothing: the next one is due an interval after */
    bool unanswered = w->ping_at && w->last_rx < w->ping_at;
    uint64_t p = unanswered ? w->ping_at + (uint64_t)w->conf.ping_timeout_ms
                            : w->last_rx + (uint64_t)w->conf.ping_interval_ms;
    if (!at || p < at) at = p;
  }
  net__io_timer(&w->obj, at);
}

/* Whether the peer took bytes of ours since the last look, beyond our own
 * pings and pongs: one busy reading a long upload is alive, though its
 * answers wait behind what it has yet to read. */
static bool peer_taking(net_ws *w) {
  uint64_t s = net__conn_delivered(w->c);
  bool took = s > w->sent_seen + w->ctl_out;
  if (s > w->sent_seen) w->sent_seen = s;
  w->ctl_out = 0;
  return took;
}

/* Whether the closing handshake moved since the clock was last set: the
 * peer took our bytes, or the owner read messages while its full queue held
 * the rest back (the peer's close waits behind them, unread). An owner that
 * keeps up with a peer that ignores our close and sends on does not hold
 * the close open. */
static bool closing_moves(net_ws *w) {
  size_t read = ring_consumed(&w->rx);
  bool owner_read = read != w->read_seen && w->held_back && !w->ownerless;
  w->read_seen = read;
  w->held_back = w->msg_ready;
  return peer_taking(w) || owner_read;
}

static void keep_alive(net_ws *w, uint64_t now) {
  /* we stopped reading (the owner's queue is full, or the server's holds us
   * untaken): no answer can reach us; or the peer reads what we send */
  if (w->msg_ready || atomic_load(&w->c->owner_paused) || peer_taking(w)) {
    w->ping_at = 0;
    w->last_rx = now;
    return;
  }
  if (w->ping_at && w->last_rx >= w->ping_at) w->ping_at = 0;   /* it answered */
  if (w->ping_at && now >= w->ping_at + (uint64_t)w->conf.ping_timeout_ms) {
    net__ws_fail(w, NET_E_TIMEOUT, "nothing from the peer for %d ms after a ping", w->conf.ping_timeout_ms);
  } else if (!w->ping_at && now >= w->last_rx + (uint64_t)w->conf.ping_interval_ms) {
    w->ping_at = now;
    w->ping_due = true;
    net__ws_tx_pump(w);
  }
}

static void ws_timer(net_io *io, uint64_t now) {
  net_ws *w = WS(io);
  if (w->phase == WP_DONE) return;
  if (w->deadline && now >= w->deadline && w->phase == WP_CLOSING && closing_moves(w)) {
    w->deadline = now + (uint64_t)w->conf.close_timeout_ms;   /* still moving what came before a close */
  } else if (w->deadline && now >= w->deadline) {
    bool opening = w->phase < WP_OPEN;
    int ms = opening ? w->conf.connect_timeout_ms : w->conf.close_timeout_ms;
    if (opening && w->acc.server) drop_upgrade(w);
    net__ws_fail(w, NET_E_TIMEOUT, "the %s handshake took over %d ms", opening ? "opening" : "closing",
                 opening && !ms ? NET_DEFAULT_CONNECT_TIMEOUT_MS : ms);
  } else if (w->phase == WP_OPEN && w->conf.ping_interval_ms) {
    keep_alive(w, now);
  }
  if (w->phase == WP_DONE) end(w);
  else set_timer(w);
}

/* ---- the object ---------------------------------------------------------------------------- */

static void ws_kicked(net_io *io) {
  net_ws *w = WS(io);
  int req = atomic_exchange(&w->requests, 0);
  if (w->phase == WP_DONE) return;
  if (!w->started) {
    w->started = true;
    /* closed at once with nothing queued: no connection only to drop it */
    if (!(req & (WREQ_CLOSE | WREQ_FREE)) || ring_used(&w->tx)) client_start(w);
  }
  if ((req & WREQ_TAKEN) && w->c) net__conn_taken(w->c);
  if ((req & WREQ_FREE) && !w->ownerless) {
    /* nobody reads its queue now: a full one must not keep the peer's close answer out */
    w->ownerless = true;
    ring_consume(&w->rx, ring_used(&w->rx));
  }
  if (req & (WREQ_CLOSE | WREQ_FREE)) owner_close(w, (req & WREQ_FREE) != 0);
  if (w->phase == WP_HANDSHAKE) handshake(w);
  if (w->phase == WP_OPEN || w->phase == WP_CLOSING) exchange(w);
  if (w->phase == WP_DONE) end(w);
  else set_timer(w);
}

static void ws_event(net_io *io, int mask) { (void)io, (void)mask; }   /* it owns no socket */

static void ws_destroy(net_io *io) {
  net_ws *w = WS(io);
  ring_destroy(&w->rx);
  ring_destroy(&w->tx);
  net__ws_rx_free(w);
  net__ws_tx_free(w);
  http_head_free(&w->head);
  net__free(w->hs);
  net__free(atomic_load(&w->info));
  if (w->conf.role == NET_WS_CLIENT) net__ws_conf_free(&w->conf);
  net__free_aligned(w);
  atomic_fetch_sub(&net__live_ws, 1);
}

const net_io_ops net__ws_ops = {ws_kicked, ws_event, ws_timer, ws_destroy};
