/* http.c: the owner API of HTTP exchanges (net_http_*). Owner thread: it
 * touches only the body ring and atomics, and hands the rest to the I/O
 * thread by a kick. */
#include <string.h>

#include "alloc.h"
#include "http.h"
#include "wake.h"

static void request(net_http *h, int bit) {
  atomic_fetch_or(&h->requests, bit);
  net__engine_kick(&h->obj);
}

static net_http *setup(const net_http_opts *o, const char **err, net_err *code) {
  static _Thread_local char why[NET_URL_WHY_MAX];
  net_http *h = net__aligned(sizeof *h);
  *code = NET_E_LIMIT;
  if (!h) return *err = "out of memory", NULL;
  memset(h, 0, sizeof *h);
  *code = NET_E_INVALID;
  *err = NULL;
  if (!net__url_parse_given(o->url, &h->url, why, sizeof why)) *err = why;
  else if (strcmp(h->url.scheme, "http") && strcmp(h->url.scheme, "https"))
    *err = "only http:// and https:// URLs can be requested";
  else if (h->url.has_userinfo)
    *err = "credentials in the URL are not sent: give an Authorization header";
  else if ((o->resume || o->sha256) && !o->output)
    *err = "resume and sha256 go with output";
  else if (o->body_file && (o->body || !*o->body_file))
    *err = o->body ? "a body, or a body_file: not both" : "body_file must be a file path";
  else if (net__http_req_copy(&h->req, o, err) &&
           (!h->req.max_redirects || (h->hops = net__calloc((size_t)h->req.max_redirects + 1, sizeof *h->hops))) &&
           (!o->output || (h->file = net__http_file_new(o->output, o->resume != 0, o->sha256, err))) &&
           (!o->body_file || (h->src = net__http_src_new(o->body_file, err))))
    return h;
  if (!*err || !strcmp(*err, "out of memory")) *err = "out of memory", *code = NET_E_LIMIT;
  net__http_req_free(&h->req);
  net__free(h->hops);
  net__http_file_free(h->file);
  net__http_src_free(h->src);
  net__free_aligned(h);
  return NULL;
}

net_http *net_http_request(const net_http_opts *o, const char **err, net_err *code) {
  net_err ignored;
  if (!code) code = &ignored;
  *code = NET_E_INVALID;
  if (!o || !o->url) return *err = "a URL is required", NULL;
  net_http *h = setup(o, err, code);
  if (!h) return NULL;
  ring_init(&h->body, o->buffer_size ? o->buffer_size : NET_RING_DEFAULT_CAP);
  ring_allow_growth(&h->body, o->buffer_size ? 0 : NET_RING_GROW_MAX, NET_RING_GROW_STALL_NS);
  ring_take_runs(&h->body);   /* fixed at 2 MiB or more, it earns one too (ring.h) */
  net__io_init(&h->obj, &net__http_ops, 2);   /* the owner's and the I/O thread's */
  atomic_init(&h->state, NET_WAITING);
  http_head_init(&h->head, HTTP_HEAD_RESPONSE, 0, 0);
  h->method = h->req.method;
  if (o->resume) h->req.decompress = false;   /* ranges of the file itself, not of an encoding */
  h->send_body = h->req.body != NULL || h->src != NULL;
  atomic_store(&h->send_total, h->req.body_len);
  atomic_fetch_add(&net__live_http, 1);
  if (!net__engine_acquire()) {
    net__io_unref(&h->obj);
    net__io_unref(&h->obj);
    *code = NET_E_LIMIT;
    return *err = net__engine_refusal(), NULL;
  }
  net__engine_kick(&h->obj);
  return h;
}

net_result net_http_status(net_http *h) {
  net_result r;
  if (net__engine_inherited(&r)) return r;
  net__host_polled();
  /* acquire: pairs with the release stores of the state; err is complete */
  int st = atomic_load_explicit(&h->state, memory_order_acquire);
  if (st != NET_WAITING && ring_used(&h->body) == 0) net__io_seen(&h->obj);
  if (st == NET_FAILURE) return (net_result){NET_FAILURE, h->err.code, h->err.msg};
  return (net_result){(net_status)st, NET_E_NONE, ""};
}

static bool not_waiting(void *h) {
  return atomic_load_explicit(&((net_http *)h)->state, memory_order_acquire) != NET_WAITING;
}

net_result net_http_wait(net_http *h, int timeout_ms) {
  net__wait_until(not_waiting, h, timeout_ms);
  return net_http_status(h);
}

int net_http_get_response(net_http *h, net_http_response *out) {
  net__host_polled();
  /* acquire: pairs with the release in publish_head */
  http_resp *r = atomic_load_explicit(&h->resp, memory_order_acquire);
  if (!r) return 0;
  *out = r->r;
  return 1;
}

int net_http_get_redirect(net_http *h, int i, net_http_response *out) {
  net__host_polled();
  /* acquire: pairs with the release in publish_hop; slots below it are complete */
  if (i < 0 || i >= atomic_load_explicit(&h->nhops, memory_order_acquire)) return 0;
  *out = atomic_load_explicit(&h->hops[i], memory_order_relaxed)->r;
  return 1;
}

net_http_progress net_http_get_progress(net_http *h) {
  net__host_polled();
  return (net_http_progress){atomic_load(&h->received), atomic_load(&h->total), atomic_load(&h->sent),
                             atomic_load(&h->send_total), atomic_load(&h->has_total)};
}

/* Room in the body: a pause for want of it ends. */
static void body_drained(net_http *h) {
  /* seq_cst fence: pairs with the one in room(): the I/O thread sees the
   * space, or we see its pause and kick */
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load(&h->body_paused) && atomic_exchange(&h->body_paused, 0)) request(h, HREQ_RESUME);
}

/* 0 while the exchange runs, else how the body ended. */
static long body_end(net_http *h) {
  /* acquire: every body byte was committed before the final state */
  int st = atomic_load_explicit(&h->state, memory_order_acquire);
  return st == NET_WAITING ? 0 : st == NET_SUCCESS ? NET_READ_EOF : NET_READ_ERROR;
}

long net_http_peek(net_http *h, size_t max, net_span *spans, int *nspans) {
  int cap = h->file ? 0 : *nspans;   /* a file's bytes are its writer's */
  net__host_polled();
  int k = cap ? ring_peek(&h->body, spans, cap, max) : 0;
  long end = 0;
  if (k == 0) {
    end = body_end(h);
    if (end && cap) k = ring_peek(&h->body, spans, cap, max);   /* raced in before the state */
    if (end && !h->file && ring_used(&h->body) > 0) end = 0;   /* no room asked (max or nspans 0): not the end yet */
    if (k == 0) net__io_seen(&h->obj);
    if (k == 0 && !end) net__host_read(h, true);
  }
  *nspans = k;
  return k ? (long)ring_spans_len(spans, k) : end;
}

void net_http_consume(net_http *h, size_t n) {
  if (ring_consume_upto(&h->body, n)) body_drained(h);
}

size_t net_http_available(net_http *h) { return h->file ? 0 : ring_used(&h->body); }

size_t net_http_copy(net_http *h, size_t off, void *dst, size_t n) {
  return h->file ? 0 : ring_copy(&h->body, off, dst, n);
}

long net_http_read(net_http *h, void *buf, size_t max) {
  net_span first;
  int k = 1;
  long n = net_http_peek(h, max, &first, &k);
  if (n <= 0) return n;
  n = (long)ring_read(&h->body, buf, max);
  body_drained(h);
  return n;
}

void net_http_cancel(net_http *h) { request(h, HREQ_CANCEL); }

void net_http_close(net_http *h) {
  net__io_disown(&h->obj);   /* the cancellation it causes is nobody's news */
  request(h, HREQ_CLOSE);
  net__io_unref(&h->obj);
  net__engine_release();
}
