/* http_io.c: an HTTP exchange on the I/O thread. It owns its connection as
 * an owner would (net__conn_open_linked: the connection kicks it with news),
 * writes the request, parses the response head (skipping 1xx), follows
 * redirects by the rules of the caller's options, publishes the final head,
 * and hands the body to http_body.c. I/O thread, but for the destroy callback. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <mbedtls/base64.h>
#include <mbedtls/sha256.h>

#include "alloc.h"
#include "http.h"
#include "proxy.h"

#define HTTP(io_ptr) ((net_http *)((char *)(io_ptr) - offsetof(net_http, obj)))
#define HOLD_MAX_MS 2000   /* a failed download waits at most this long for its .part to settle */

static void set_where(net_http *h) {
  snprintf(h->where, sizeof h->where, h->url.host_family == 6 ? "[%s]:%u" : "%s:%u", h->url.host,
           h->url.port);
}

/* ---- ending -------------------------------------------------------------------------- */

static void drop_conn(net_http *h) {
  if (!h->c) return;
  net__conn_close_link(h->c);   /* graceful; it kicks us no more */
  h->c = NULL;
}

/* Whether every byte of the request went to the connection. */
static bool request_sent(const net_http *h) {
  return h->out_pos == h->out_len && (!h->src || !h->send_body || net__http_src_done(h->src));
}

/* After a 101, or a 2xx to CONNECT, the connection carries another protocol. */
static bool switched(const net_http *h) {
  int st = http_head_status(&h->head);
  return st == 101 || (!strcmp(h->method, "CONNECT") && st >= 200 && st < 300);
}

/* The connection can carry the next request to this origin: the response
 * was delimited, both sides want to go on, our request went out whole. */
static void keep_or_drop(net_http *h, http_body_kind body) {
  if (h->c && h->req.keepalive && body != HTTP_BODY_CLOSE && http_head_keep_alive(&h->head) &&
      request_sent(h) && !switched(h)) {
    net__http_pool_put(h->pool_key, h->c);
    h->c = NULL;
  }
  drop_conn(h);
}

static void finish_ok(net_http *h) {
  /* ended already (failed): never turned into success */
  if (h->phase == HP_DONE || atomic_load_explicit(&h->state, memory_order_relaxed) != NET_WAITING) return;
  keep_or_drop(h, h->framing.kind);
  h->phase = HP_DONE;
  /* release: every body byte is committed before SUCCESS is visible */
  atomic_store_explicit(&h->state, NET_SUCCESS, memory_order_release);
  net__io_publish(&h->obj);
}

/* Ended either way: nothing of it runs any more. Memory goes with the last reference. */
static void end(net_http *h) {
  drop_conn(h);
  uint64_t now = net__now_ms();
  if (h->fail_held && !net__http_file_settled(h->file) && now < h->held_at + HOLD_MAX_MS) {
    /* the file job's kick comes back; a lane that was full is asked again;
     * a disk or a lane that lags past HOLD_MAX_MS does not hold the failure */
    uint64_t at = h->held_at + HOLD_MAX_MS;
    if (!net__http_file_kick(h) && now + 50 < at) at = now + 50;
    net__io_timer(&h->obj, at);
    return;
  }
  if (h->fail_held) net__http_show_failure(h);
  net__io_retire(&h->obj);
}

/* ---- an attempt ------------------------------------------------------------------------ */

/* Plain http through an http proxy: the request goes to the proxy in absolute
 * form, its credentials in Proxy-Authorization, on a new connection to the
 * proxy or on an idle one. Fills host/port with the proxy's address. */
static bool absolute_proxy(net_http *h, char *host, uint16_t *port) {
  static _Thread_local net_proxy p;
  static _Thread_local char why[NET_PROXY_WHY_MAX];
  char cred[2 * NET_URL_CRED_MAX + 2];
  size_t n;
  if (!net__proxy_parse(h->via, &p, host, port, why, sizeof why))
    return net__http_fail(h, NET_E_INVALID, "%s", why), false;
  snprintf(h->proxy_where, sizeof h->proxy_where, "%s", p.where);
  strcpy(h->proxy_auth, "Basic ");
  int cl = snprintf(cred, sizeof cred, "%s:%s", p.user, p.pass);
  bool ok = !p.auth || mbedtls_base64_encode((unsigned char *)h->proxy_auth + 6, sizeof h->proxy_auth - 6, &n,
                                             (unsigned char *)cred, (size_t)cl) == 0;
  if (!p.auth) h->proxy_auth[0] = '\0';
  net__wipe(cred, sizeof cred);   /* the password: no copy stays behind */
  net__wipe(&p, sizeof p);
  if (!ok) return net__http_fail(h, NET_E_INVALID, "proxy credentials too long"), false;
  return true;
}

/* A new connection to the current URL: direct, tunnelled through the proxy,
 * or to the http proxy at host:port that takes the request whole. */
static bool connect_url(net_http *h, const char *host, uint16_t port) {
  const char *err;
  net_err code;
  static const net_tls_opts verified;
  net_conn_opts o = {.connect_timeout_ms = h->req.connect_timeout_ms, .idle_timeout_ms = h->req.idle_timeout_ms,
                     .tls = !strcmp(h->url.scheme, "https") ? (h->req.tls ? h->req.tls : &verified) : NULL,
                     .proxy = h->absolute ? NULL : h->via,
                     .buffer_size = NET_RING_DEFAULT_CAP};   /* read on this thread: no growing */
  h->c = net__conn_open_host_linked(host, port, &o, &h->obj, &err, &code);
  if (!h->c) return net__http_fail(h, code, "%s", err), false;
  return true;
}

/* The pool key: the origin, then a digest of the TLS options and the proxy,
 * so that no key is cut short however long their paths, and no password
 * sits in it. */
static void make_pool_key(net_http *h) {
  unsigned char d[32];
  mbedtls_sha256_context sha;
  mbedtls_sha256_init(&sha);
  mbedtls_sha256_starts_ret(&sha, 0);
  mbedtls_sha256_update_ret(&sha, (const unsigned char *)h->req.tls_key, strlen(h->req.tls_key) + 1);
  if (h->via) mbedtls_sha256_update_ret(&sha, (const unsigned char *)h->via, strlen(h->via));
  mbedtls_sha256_finish_ret(&sha, d);
  mbedtls_sha256_free(&sha);
  int n = snprintf(h->pool_key, sizeof h->pool_key, "%s://%s|", h->url.scheme, h->where);
  for (int i = 0; i < 32; i++) snprintf(h->pool_key + n + 2 * i, 3, "%02x", d[i]);
}

/* A connection to the current URL (an idle one first), and the request text. */
static bool start(net_http *h) {
  set_where(h);
  h->via = net__http_proxy_for(h);
  h->absolute = h->via && !strncasecmp(h->via, "http://", 7) && !strcmp(h->url.scheme, "http");
  make_pool_key(h);
  char host[NET_URL_HOST_MAX + 1];
  uint16_t port = h->url.port;
  snprintf(host, sizeof host, "%s", h->url.host);
  if (h->absolute && !absolute_proxy(h, host, &port)) return false;
  h->c = h->req.keepalive && !h->retried ? net__http_pool_take(h->pool_key, &h->obj, h->req.idle_timeout_ms) : NULL;
  h->reused = h->c != NULL;
  if (!h->c && !connect_url(h, host, port)) return false;
  http_head_reset(&h->head);
  h->head_bytes = 0;
  h->interim = false;
  if (!net__http_build(h)) return net__http_fail(h, NET_E_LIMIT, "out of memory"), false;
  h->phase = HP_EXCHANGE;
  return true;
}

static void write_request(net_http *h) {
  while (h->out_pos < h->out_len) {
    long n = net_conn_write(h->c, h->out + h->out_pos, h->out_len - h->out_pos);
    if (n <= 0) break;   /* full: the connection kicks us with room; failed: reading says */
    h->out_pos += (size_t)n;
  }
  if (h->src && h->send_body && h->out_pos == h->out_len) {
    net_error e;
    long n = net__http_src_send(h, h->c, &e);
    if (n < 0) net__http_fail(h, e.code, "%s", e.msg);
    else atomic_fetch_add(&h->sent, (uint64_t)n);
  } else if (h->send_body && h->out_pos > h->head_len) {
    atomic_store(&h->sent, h->out_pos - h->head_len);
  }
}

/* The body again, from its start, for another attempt. */
static bool replay_body(net_http *h) {
  atomic_store(&h->sent, 0);
  if (!h->src || !h->send_body) return true;
  h->src_asked = false;
  if (net__http_src_rewind(h)) return true;
  return net__http_fail(h, NET_E_LIMIT, "out of memory"), false;
}

static bool idempotent(const char *m) {
  return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "OPTIONS") || !strcmp(m, "PUT") ||
         !strcmp(m, "DELETE") || !strcmp(m, "TRACE");
}

/* A kept-alive connection that ended (closed, reset, or over TLS closed
 * without close_notify) before any byte of a response: the server had closed
 * it meanwhile. A timeout is not that: the server may be working on the request. */
static bool closed_while_idle(net_http *h, long why, bool some) {
  if (!h->reused || some) return false;
  net_err e = why == NET_READ_EOF ? NET_E_CLOSED : net_conn_status(h->c).err;
  return e == NET_E_CLOSED || e == NET_E_RESET || e == NET_E_TLS;
}

/* The response ended before it began: 2 when that is an idle connection the
 * server closed meanwhile and the request can be made again on a new one. */
static int input_failed(net_http *h, long why, bool some) {
  if (closed_while_idle(h, why, some) && !h->retried && idempotent(h->method)) {
    h->retried = true;
    drop_conn(h);
    h->phase = HP_START;
    return replay_body(h) ? 2 : -1;
  }
  if (why == NET_READ_ERROR) return net__http_conn_failed(h), -1;
  net__http_fail(h, NET_E_CLOSED, some ? "connection closed inside the response head"
                                       : "connection closed before a response");
  return -1;
}

/* The response head: 1 once a final one is parsed, 0 for more, -1 failed, 2
 * to start over on a new connection. */
static int read_head(net_http *h) {
  for (;;) {
    net_span sp[1];
    int k = 1;
    long n = net_conn_peek(h->c, HTTP_MAX_HEAD_DEFAULT, sp, &k);
    if (n == 0) return 0;
    if (n < 0) return input_failed(h, n, h->head_bytes > 0 || h->interim);
    size_t used = 0;
    http_result r = http_head_feed(&h->head, sp[0].base, sp[0].len, &used);
    if (r == HTTP_ERROR) return net__http_fail(h, h->head.oom ? NET_E_LIMIT : NET_E_PROTOCOL, "%s", h->head.err), -1;
    if (r == HTTP_MORE) used = sp[0].len;
    h->head_bytes += used;
    net_conn_consume(h->c, used);
    if (r == HTTP_MORE) continue;
    int st = http_head_status(&h->head);
    if (st == 101 && !net__http_req_given(&h->req, "upgrade"))   /* RFC 9110 15.2.2: only to what the client offered */
      return net__http_fail(h, NET_E_PROTOCOL, "101 Switching Protocols to a request that offered no Upgrade"), -1;
    if (st >= 200 || st == 101) return 1;
    http_head_reset(&h->head);   /* an interim response: the final one follows */
    h->head_bytes = 0;
    h->interim = true;
  }
}

/* ---- response heads for the owner ----------------------------------------------------------------- */

static size_t strings_size(const http_head *hd, size_t url_len) {
  size_t n = strlen(http_head_reason(hd)) + 1 + url_len + 1;
  for (size_t i = 0; i < http_head_nfields(hd); i++) {
    http_field f = http_head_field(hd, i);
    n += f.name_len + 1 + f.value_len + 1;
  }
  return n;
}

static char *put(char **p, const char *s, size_t len) {
  char *at = *p;
  memcpy(at, s, len);
  at[len] = '\0';
  *p += len + 1;
  return at;
}

/* One allocation holding a response head the owner reads. */
static http_resp *make_resp(net_http *h) {
  const http_head *hd = &h->head;
  char url[NET_URL_MAX + NET_URL_HOST_MAX + 64];
  size_t ul = net__url_format(&h->url, url, sizeof url), nf = http_head_nfields(hd);
  if (ul >= sizeof url) ul = 0;
  http_resp *r = net__calloc(1, sizeof *r + 2 * nf * sizeof(char *) + strings_size(hd, ul));
  if (!r) return net__http_fail(h, NET_E_LIMIT, "out of memory"), NULL;
  const char **names = (const char **)(r + 1), **values = names + nf;
  char *p = (char *)(values + nf);
  for (size_t i = 0; i < nf; i++) {
    http_field f = http_head_field(hd, i);
    names[i] = put(&p, f.name, f.name_len);
    values[i] = put(&p, f.value, f.value_len);
  }
  const char *reason = http_head_reason(hd);
  r->r = (net_http_response){http_head_status(hd), put(&p, reason, strlen(reason)), nf, names, values,
                             put(&p, url, ul), h->redirects};
  return r;
}

static bool publish_head(net_http *h) {
  http_resp *r = make_resp(h);
  if (!r) return false;
  /* release: the record is complete before the owner can see it */
  atomic_store_explicit(&h->resp, r, memory_order_release);
  net__io_publish(&h->obj);
  return true;
}

/* A redirect about to be followed: its head joins the hops the owner may read. */
static bool publish_hop(net_http *h) {
  http_resp *r = make_resp(h);
  if (!r) return false;
  int n = atomic_load_explicit(&h->nhops, memory_order_relaxed);
  atomic_store_explicit(&h->hops[n], r, memory_order_relaxed);
  /* release: the slot and its record are complete before the count shows them */
  atomic_store_explicit(&h->nhops, n + 1, memory_order_release);
  net__io_publish(&h->obj);
  return true;
}

/* ---- redirects ----------------------------------------------------------------------- */

static void drop_header(http_req *r, const char *name) {
  for (size_t i = 0; i < r->nhdr; i++)
    if (r->names[i] && !strcasecmp(r->names[i], name)) {
      net__free(r->names[i]);
      r->names[i] = NULL;
    }
}

/* Leaving the origin: what identifies the caller there stays there. */
static void leave_origin(net_http *h) {
  http_req *r = &h->req;
  for (size_t i = 0; i < r->nhdr; i++)
    if (r->names[i] && net__http_origin_bound(r->names[i])) {
      net__free(r->names[i]);   /* not drop_header: it would compare with the freed name */
      r->names[i] = NULL;
    }
  if (r->tls && r->tls->server_name) {   /* it named the first host */
    net__free((char *)r->tls->server_name);
    r->tls->server_name = NULL;
    if (!net__http_req_rekey(r)) net__http_fail(h, NET_E_LIMIT, "out of memory");
  }
}

/* Named without its query, as every failure names its URL. */
static void downgrade_refused(net_http *h, const net_url *to) {
  net_url shown = *to;
  shown.has_userinfo = false;   /* never in a message, nor left in this copy */
  net__wipe(shown.pass, sizeof shown.pass);
  char path[64], text[NET_URL_HOST_MAX + 96];
  net__http_short_path(to->path, path, sizeof path);
  snprintf(shown.path, sizeof shown.path, "%s", path);
  net__http_fail(h, NET_E_PROTOCOL, "redirect from https to http refused: %s (allow_downgrade)",
                 net__url_format(&shown, text, sizeof text) < sizeof text ? text : to->host);
}

/* 303, and 301/302 after a POST, go on as GET without the body (as browsers do). */
static void method_after(net_http *h, int st) {
  if (st != 303 && !((st == 301 || st == 302) && !strcmp(h->method, "POST"))) return;
  if (strcmp(h->method, "HEAD")) h->method = "GET";
  h->send_body = false;
  atomic_store(&h->send_total, 0);   /* nothing of it is sent now */
  drop_header(&h->req, "content-length");
  drop_header(&h->req, "content-type");
}

/* A redirect's connection goes back to the pool when its body (none, or a
 * short one) is already here whole: the next request, often to the same
 * origin, skips a connect and a handshake. Else it is closed, not read on. */
#define REDIRECT_BODY_KEEP 4096
static void leave_redirect(net_http *h) {
  http_framing f = http_head_framing(&h->head, h->method);
  bool whole = f.kind == HTTP_BODY_NONE ||
               (f.kind == HTTP_BODY_LENGTH && f.length <= REDIRECT_BODY_KEEP && h->c &&
                net_conn_available(h->c) >= (size_t)f.length);
  if (!whole) return drop_conn(h);
  if (f.kind == HTTP_BODY_LENGTH) net_conn_consume(h->c, (size_t)f.length);
  keep_or_drop(h, f.kind);
}

/* Whether the head is a redirect to follow (then h restarts or fails). */
static bool redirect(net_http *h) {
  int st = http_head_status(&h->head);
  size_t len;
  const char *loc = http_head_get(&h->head, "location", &len);
  if ((st != 301 && st != 302 && st != 303 && st != 307 && st != 308) || !loc || !h->req.max_redirects)
    return false;
  net_url to;
  char why[NET_URL_WHY_MAX], url[NET_URL_MAX + NET_URL_HOST_MAX + 64];
  if (!publish_hop(h)) return true;   /* the owner sees every redirect, a refused one too */
  size_t ulen = net__url_escape(loc, len, url, sizeof url);   /* as servers send it: spaces, UTF-8, "|"... */
  if (h->redirects >= h->req.max_redirects)
    net__http_fail(h, NET_E_LIMIT, "more than %d redirects", h->req.max_redirects);
  else if (ulen >= sizeof url)
    net__http_fail(h, NET_E_PROTOCOL, "bad redirect: longer than %d bytes", NET_URL_MAX);
  else if (!net__url_resolve(&h->url, url, ulen, &to, why, sizeof why))
    net__http_fail(h, NET_E_PROTOCOL, "bad redirect: %s", why);
  else if (strcmp(to.scheme, "http") && strcmp(to.scheme, "https"))
    net__http_fail(h, NET_E_PROTOCOL, "redirect to a %s URL", to.scheme);
  else if (!strcmp(h->url.scheme, "https") && !strcmp(to.scheme, "http") && !h->req.allow_downgrade)
    downgrade_refused(h, &to);
  /* never sent, as for the first URL: not kept either, nor left on the stack (a refusal too) */
  net__wipe(to.pass, sizeof to.pass);
  to.has_userinfo = false, to.user[0] = '\0';
  if (h->phase == HP_DONE) return true;
  if (!net__url_same_origin(&h->url, &to)) leave_origin(h);
  if (h->phase == HP_DONE) return true;   /* out of memory: ended */
  leave_redirect(h);   /* under the old origin's key, with the request as it went (all sent?) */
  method_after(h, st);
  h->redirects++;
  h->retried = false;   /* a new exchange: it may take a kept connection, and retry once */
  h->url = to;
  h->phase = HP_START;
  replay_body(h);
  return true;
}

/* ---- an output file -------------------------------------------------------------------- */

/* Before the first request: the file is open, and how much of it there is. */
static bool file_ready(net_http *h) {
  int r = net__http_file_prepared(h->file, &h->offset);
  if (r > 0) return true;
  net_error e;
  if (r < 0 && net__http_file_result(h->file, &e) < 0) net__http_fail(h, e.code, "%s", e.msg);
  else if (!h->file_asked && !(h->file_asked = net__http_file_kick(h))) net__http_fail(h, NET_E_LIMIT, "%s", net__http_file_refusal());
  return false;
}

/* Before a request with a body from a file: its size, for Content-Length. */
static bool src_ready(net_http *h) {
  net_error e;
  int r = net__http_src_prepared(h->src, &h->src_size, &e);
  const char *bad = r > 0 ? net__http_bad_length(h) : NULL;
  if (bad)
    return net__http_fail(h, NET_E_INVALID, "Content-Length %s is not the size of body_file (%llu bytes)", bad,
                          (unsigned long long)h->src_size), false;
  if (r > 0) {
    atomic_store(&h->send_total, h->src_size);
    return true;
  }
  if (r < 0) net__http_fail(h, e.code, "%s", e.msg);
  else if (!h->src_asked && !(h->src_asked = net__http_src_kick(h))) net__http_fail(h, NET_E_LIMIT, "%s", net__http_src_refusal());
  return false;
}

/* What is wrong with a 206's Content-Range "bytes first-last/complete" to a
 * resume from offset, or NULL with the file's size in *complete: it must run
 * from the file's end to its end (a server that caps each range would
 * otherwise leave a short file). */
static const char *range_wrong(const http_head *hd, uint64_t offset, uint64_t *complete) {
  size_t len;
  const char *v = http_head_get(hd, "content-range", &len);
  uint64_t first, last;
  if (!v) return "without a Content-Range";
  int known = http_content_range(v, len, &first, &last, complete);
  if (known < 0) return "with a malformed Content-Range";
  if (first != offset) return "not from the file's end";
  if (!known) return "whose Content-Range does not give the file's size";   /* the end unprovable */
  if (last + 1 != *complete) return "that stops before the file's end";
  if (hd->has_length && hd->content_length != last - first + 1) return "whose Content-Length is not its range's";
  return NULL;
}

/* A 416 to a resume, "Content-Range: bytes * /size" with the size the file
 * already has: it is whole (curl -C - takes it so). */
static bool whole_already(const http_head *hd, uint64_t offset) {
  size_t len;
  const char *v = http_head_get(hd, "content-range", &len);
  char want[40];
  int n = snprintf(want, sizeof want, "bytes */%llu", (unsigned long long)offset);
  return http_head_status(hd) == 416 && offset && v && len == (size_t)n && !strncmp(v, want, (size_t)n);
}

/* The final head of a download: 2xx, and a resume the server took up or not. */
static bool file_response(net_http *h) {
  int st = http_head_status(&h->head);
  if (st < 200 || st > 299)
    return net__http_fail(h, NET_E_PROTOCOL, "server answered %d %s", st, http_head_reason(&h->head)), false;
  if (st == 206 && !h->offset && !net__http_req_given(&h->req, "range"))   /* a part, to a request for the whole file */
    return net__http_fail(h, NET_E_PROTOCOL, "206 Partial Content to a request for the whole file"), false;
  h->range_end = 0;
  if (h->offset && st == 206) {
    uint64_t size;
    const char *wrong = range_wrong(&h->head, h->offset, &size);
    if (wrong)   /* the .part stays for a later resume */
      return net__http_fail(h, NET_E_PROTOCOL, "206 %s to a resume from byte %llu", wrong,
                            (unsigned long long)h->offset), false;
    atomic_store(&h->received, h->offset);   /* progress counts the whole file */
    h->resumed = true;
    if (!h->head.has_length) {   /* chunked or to the close: the body must end at the file's end */
      h->range_end = size;
      atomic_store(&h->total, size);
      atomic_store(&h->has_total, 1);
    }
  } else if (h->offset) {
    net__http_file_restart(h->file);   /* the server sends it whole: start over */
  }
  return true;
}

static void body_to_file_done(net_http *h) {
  h->phase = HP_FILE;
  net__http_file_final(h->file);
  if (!net__http_file_kick(h)) net__http_fail(h, NET_E_LIMIT, "%s", net__http_file_refusal());
}

/* The file stopped taking bytes (a write error, a full disk): the download
 * ends with that error rather than wait on a buffer nobody drains. */
static bool file_failed(net_http *h) {
  net_error e;
  if (!h->file || net__http_file_result(h->file, &e) >= 0) return false;
  net__http_fail(h, e.code, "%s", e.msg);
  return true;
}

static void file_done(net_http *h) {
  net_error e;
  if (!file_failed(h) && net__http_file_result(h->file, &e) > 0) finish_ok(h);
}

/* ---- the exchange ---------------------------------------------------------------------- */

static void body_done(net_http *h) {
  if (h->file) body_to_file_done(h);
  else finish_ok(h);
}

/* A 2xx whose body ended before the request body went out whole: the server
 * may still take the rest (an echo, a stream). The exchange succeeds once it
 * took all of it, and fails if the connection ends first: a truncated upload
 * never passes for a whole one. Bytes after the response are not ours. */
static void upload_after_answer(net_http *h) {
  h->answered = true;
  write_request(h);
  if (h->phase == HP_DONE) return;
  if (request_sent(h)) return body_done(h);
  net_span sp[4];
  int k = 4;
  long n;
  while ((n = net_conn_peek(h->c, (size_t)1 << 20, sp, &k)) > 0) net_conn_consume(h->c, (size_t)n), k = 4;
  if (n == 0) return;   /* a kick brings us back with room or news */
  net_result st = net_conn_status(h->c);
  net__http_fail(h, n == NET_READ_EOF ? NET_E_CLOSED : st.err,
                 "the server answered %d before it took the whole request body, then %s after %llu bytes of it",
                 http_head_status(&h->head), n == NET_READ_EOF ? "closed" : st.msg,
                 (unsigned long long)atomic_load(&h->sent));
}

/* As far as the exchange can go now; redirects restart it in the same turn. */
static void step(net_http *h) {
  while (h->phase != HP_DONE) {
    if (h->phase == HP_START && h->file && !file_ready(h)) return;
    if (h->phase == HP_START && h->src && h->send_body && !src_ready(h)) return;
    if (h->phase == HP_FILE) return file_done(h);
    if (h->phase == HP_START && !start(h)) return;
    if (h->phase == HP_EXCHANGE) {
      write_request(h);
      if (h->phase == HP_DONE) return;   /* failed: nothing read after it may end it well */
      int r = read_head(h);
      if (r == 2) continue;
      if (r <= 0) return;
      if (redirect(h)) continue;
      if (!publish_head(h)) return;
      if (h->file && whole_already(&h->head, h->offset)) {   /* its body is the server's words: unread */
        atomic_store(&h->received, h->offset);
        atomic_store(&h->total, h->offset);   /* the whole file, as Content-Range says */
        atomic_store(&h->has_total, 1);
        drop_conn(h);
        body_to_file_done(h);
        continue;
      }
      if ((h->file && !file_response(h)) || !net__http_body_begin(h)) return;
      h->phase = HP_BODY;
    } else if (h->answered) {
      return upload_after_answer(h);
    } else if (!request_sent(h) && http_head_status(&h->head) < 300) {
      /* a server that says yes before it has read the whole body (a stream,
       * an echo) still wants the rest; one that refused or redirected does not */
      write_request(h);
      if (h->phase == HP_DONE) return;
    }
    if (file_failed(h)) return;
    int r = net__http_body_pump(h);
    if (r == 1 && !request_sent(h) && http_head_status(&h->head) < 300) upload_after_answer(h);
    else if (r == 1) body_done(h);
    return;
  }
}

/* Stops a download's file from going into place: false when it is already
 * being put there. A cancel or a timeout that late is too late: the
 * exchange completes, so a failure always means no file. */
static bool file_abandoned(net_http *h) { return !h->file || net__http_file_abandon(h->file); }

static void http_kicked(net_io *io) {
  net_http *h = HTTP(io);
  int req = atomic_exchange(&h->requests, 0);
  if (!h->started) {   /* the first kick: the clock starts */
    h->started = true;
    set_where(h);   /* every failure names the origin, a cancel before the first step too */
    if (h->req.timeout_ms) net__io_timer(&h->obj, net__now_ms() + (uint64_t)h->req.timeout_ms);
  }
  if ((req & (HREQ_CLOSE | HREQ_CANCEL)) && !file_abandoned(h)) step(h);
  else if (req & HREQ_CLOSE) net__http_fail(h, NET_E_CANCELLED, "closed by its owner");
  else if (req & HREQ_CANCEL) net__http_fail(h, NET_E_CANCELLED, "cancelled");
  else step(h);
  if (h->phase == HP_DONE) end(h);
}

static void http_event(net_io *io, int mask) { (void)io, (void)mask; }   /* it owns no socket */

static void http_timer(net_io *io, uint64_t now) {
  net_http *h = HTTP(io);
  (void)now;
  if (!file_abandoned(h)) return;
  net__http_fail(h, NET_E_TIMEOUT, "timed out after %d ms (timeout)", h->req.timeout_ms);
  end(h);
}

static void http_destroy(net_io *io) {
  net_http *h = HTTP(io);
  ring_destroy(&h->body);
  net__http_body_free(h);
  http_head_free(&h->head);
  net__free(h->out);
  net__free(atomic_load(&h->resp));
  for (int i = 0; h->hops && i < atomic_load(&h->nhops); i++) net__free(atomic_load(&h->hops[i]));
  net__free(h->hops);
  net__http_req_free(&h->req);
  net__http_file_free(h->file);
  net__http_src_free(h->src);
  net__wipe(h->proxy_auth, sizeof h->proxy_auth);   /* the proxy's password, encoded */
  net__free_aligned(h);
  atomic_fetch_sub(&net__live_http, 1);
}

const net_io_ops net__http_ops = {http_kicked, http_event, http_timer, http_destroy};
