/* http_body.c: a response body on the I/O thread: its framing (length,
 * chunked, until close), gzip/deflate decoding, the size cap, and the
 * owner's bounded buffer (a full buffer stops reading the connection, so a
 * slow owner slows the server down). Body bytes go connection -> stage
 * (framing removed) -> decoder -> the owner's buffer. Also the exchange's
 * failure. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "http.h"


/* "/a/b?...": a signed URL's query neither crowds out the reason nor goes into logs. */
void net__http_short_path(const char *path, char *out, size_t len) {
  size_t n = strcspn(path, "?"), keep = n;
  bool query = path[n] != '\0';
  if (n + (query ? 4 : 0) >= len) keep = len - 8;   /* room for "..." and "?..." */
  snprintf(out, len, "%.*s%s%s", (int)keep, path, keep < n ? "..." : "", query ? "?..." : "");
}

void net__http_fail(net_http *h, net_err code, const char *fmt, ...) {
  if (atomic_load_explicit(&h->state, memory_order_relaxed) != NET_WAITING || h->fail_held) return;
  char what[512], path[64], where[NET_ERRMSG_MAX];   /* what: longer is cut in its middle, its end kept */
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  net__http_short_path(h->url.path, path, sizeof path);
  int n = snprintf(where, sizeof where, "http %s %s %s", h->where, h->method, path);
  /* the reason whole; the place cut when both do not fit */
  int room = NET_ERRMSG_MAX - 1 - 2 - (int)strlen(what);
  if (n > room) n = room > 24 ? room : 24;
  net__seterr(&h->err, code, "%.*s: %s", n, where, what);
  h->phase = HP_DONE;
  if (h->file) net__http_file_abandon(h->file);
  /* a download's .part is final before its failure shows (end() publishes it) */
  if (h->file && !net__http_file_settled(h->file)) h->fail_held = true, h->held_at = net__now_ms();
  else net__http_show_failure(h);
}

void net__http_show_failure(net_http *h) {
  h->fail_held = false;
  /* release: err is complete before anyone sees FAILURE */
  atomic_store_explicit(&h->state, NET_FAILURE, memory_order_release);
  net__io_publish(&h->obj);
}

void net__http_conn_failed(net_http *h) {
  net_result st = net_conn_status(h->c);
  if (h->absolute) net__http_fail(h, st.err, "proxy %s: %s", h->proxy_where, st.msg);
  else net__http_fail(h, st.err, "%s", st.msg);
}

/* ---- setting up ------------------------------------------------------------------ */

/* The codings of every Content-Encoding line, identity aside (RFC 9110 8.4:
 * in the order applied): how many, and the kind of the last; -1 for a kind
 * we did not ask for. */
static int codings(const http_head *hd, int *last) {
  int n = 0;
  *last = -1;
  for (size_t i = 0; i < http_head_nfields(hd); i++) {
    http_field f = http_head_field(hd, i);
    if (strcmp(f.name, "content-encoding")) continue;
    for (const char *p = f.value, *end = f.value + f.value_len; p < end;) {
      while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) p++;
      const char *t = p;
      while (p < end && *p != ',' && *p != ' ' && *p != '\t') p++;
      size_t k = (size_t)(p - t);
      if (!k || (k == 8 && !strncasecmp(t, "identity", 8))) continue;
      n++;
      *last = (k == 4 && !strncasecmp(t, "gzip", 4)) || (k == 6 && !strncasecmp(t, "x-gzip", 6)) ? INFLATE_GZIP
              : k == 7 && !strncasecmp(t, "deflate", 7)                                       ? INFLATE_DEFLATE
                                                                                              : -1;
    }
  }
  return n;
}

/* The most body bytes this response may bring: in memory max_size; into a
 * file only a max_size the caller gave, the part a resume kept counted. */
static uint64_t body_cap(const net_http *h) {
  if (!h->file) return h->req.max_size;
  if (!h->req.max_size_given) return UINT64_MAX;
  uint64_t had = h->resumed ? h->offset : 0;
  return had < h->req.max_size ? h->req.max_size - had : 0;
}

static bool start_decoding(net_http *h) {
  int kind, n = h->req.decompress ? codings(&h->head, &kind) : 0;
  if (n == 0 || (n == 1 && kind < 0)) return true;   /* none, or one we did not ask for: the body as sent */
  if (n > 1) {   /* one layer off would pass for the body */
    net__http_fail(h, NET_E_PROTOCOL, "%d Content-Encoding codings stacked: not decoded (decompress = false "
                   "takes the body as sent)", n);
    return false;
  }
  uint64_t cap = body_cap(h);
  if (cap == 0) {   /* a resume from a file already that large: inflate's 0 would be no cap */
    net__http_fail(h, NET_E_LIMIT, "the file already holds max_size %llu bytes", (unsigned long long)h->req.max_size);
    return false;
  }
  if (inflate_init(&h->inf, (inflate_kind)kind, 15, cap == UINT64_MAX ? 0 : cap, HTTP_MAX_RATIO) != 0) {
    net__http_fail(h, NET_E_LIMIT, "%s", h->inf.err);
    return false;
  }
  h->inflating = true;
  return true;
}

bool net__http_body_begin(net_http *h) {
  h->framing = http_head_framing(&h->head, h->method);
  /* Content-Length: 0 ends here; no byte will come to say so, and an empty
   * body has nothing to decode, whatever its Content-Encoding */
  h->framed_end = h->framing.kind == HTTP_BODY_LENGTH && h->framing.length == 0;
  if (h->framing.kind != HTTP_BODY_NONE && !h->framed_end && !start_decoding(h)) return false;
  if (h->framing.kind == HTTP_BODY_LENGTH) {
    h->body_left = h->framing.length;
    atomic_store(&h->total, h->framing.length + (h->resumed ? h->offset : 0));   /* the whole file */
    atomic_store(&h->has_total, 1);
    if (h->framing.length > body_cap(h) && !h->inflating) {
      net__http_fail(h, NET_E_LIMIT, "body of %llu bytes is over max_size %llu",
                     (unsigned long long)h->framing.length, (unsigned long long)h->req.max_size);
      return false;
    }
  } else if (h->framing.kind == HTTP_BODY_CHUNKED) {
    http_chunked_init(&h->chunked);
  }
  return true;
}

void net__http_body_free(net_http *h) {
  net__free(h->stage);
  h->stage = h->pend = NULL;
  h->stage_len = h->stage_pos = h->pend_len = h->pend_pos = 0;
  h->framed_end = false;
  h->delivered = 0;
  if (h->inflating) inflate_free(&h->inf);
  h->inflating = false;
  if (h->framing.kind == HTTP_BODY_CHUNKED) http_chunked_free(&h->chunked);
  h->framing.kind = HTTP_BODY_NONE;
}

/* ---- the owner's buffer ------------------------------------------------------------ */

/* Room in the owner's buffer; 0 marks it paused (the owner's read kicks). */
static size_t room(net_http *h) {
  size_t free = ring_free_space(&h->body);
  if (free) return free;
  atomic_store(&h->body_paused, 1);
  /* seq_cst fence: pairs with the one in net_http_read; either it sees the
   * flag, or we see the room it made */
  atomic_thread_fence(memory_order_seq_cst);
  free = ring_free_space(&h->body);
  if (free) atomic_store(&h->body_paused, 0);
  return free;
}

/* Decoded bytes into the owner's buffer: how many it took. 0 when full (the
 * owner's read kicks us), while the owner trims it (we kick ourselves to try
 * again next turn), or when memory ran out (h fails). */
static size_t put_body(net_http *h, const char *p, size_t n) {
  size_t w = ring_write(&h->body, p, n);
  if (w) {
    h->delivered += w;
    net__io_publish(&h->obj);
    /* the writer wakes for a batch, not for every piece (the end flushes the rest) */
    size_t batch = ring_cap(&h->body) / 2 < HTTP_FILE_BATCH ? ring_cap(&h->body) / 2 : HTTP_FILE_BATCH;
    if (h->file && ring_used(&h->body) >= batch && !net__http_file_kick(h))
      net__http_fail(h, NET_E_LIMIT, "%s", net__http_file_refusal());
  } else if (h->body.oom) {
    net__http_fail(h, NET_E_LIMIT, "out of memory for the body buffer");
  } else if (room(h) > 0) {
    net__engine_kick(&h->obj);
  }
  return w;
}

/* Decoded bytes a decoder made and the owner's buffer has not taken yet. */
static bool flush_pending(net_http *h) {
  while (h->pend_pos < h->pend_len) {
    size_t w = put_body(h, h->pend + h->pend_pos, h->pend_len - h->pend_pos);
    if (!w) return false;
    h->pend_pos += w;
  }
  h->pend_pos = h->pend_len = 0;
  return true;
}

/* One step of staged bytes through the decoder into pending output. */
static bool inflate_step(net_http *h) {
  size_t took, out_len, n = h->stage_len - h->stage_pos;
  inflate_result r = inflate_feed(&h->inf, h->stage + h->stage_pos, n, &took, h->pend, PIECE, &out_len);
  if (r == INFLATE_ERROR || r == INFLATE_LIMIT)
    return net__http_fail(h, r == INFLATE_LIMIT ? NET_E_LIMIT : NET_E_PROTOCOL, "%s", h->inf.err), false;
  h->pend_len = out_len;
  h->stage_pos += took;
  if (took == 0 && out_len == 0) h->stage_pos = h->stage_len;   /* past a finished stream: finish judges */
  return true;
}

/* Staged body bytes to the owner, through the decoder when there is one, as
 * far as the owner's buffer takes them. false: h failed. */
static bool unstage(net_http *h) {
  for (;;) {
    if (!flush_pending(h) || h->stage_pos >= h->stage_len)
      return atomic_load_explicit(&h->state, memory_order_relaxed) == NET_WAITING;
    size_t n = h->stage_len - h->stage_pos;
    if (h->inflating) {
      if (!inflate_step(h)) return false;
      continue;
    }
    if (h->delivered + n > body_cap(h))
      return net__http_fail(h, NET_E_LIMIT, "body is over max_size %llu", (unsigned long long)h->req.max_size),
             false;
    size_t w = put_body(h, h->stage + h->stage_pos, n);
    if (!w) return atomic_load_explicit(&h->state, memory_order_relaxed) == NET_WAITING;
    h->stage_pos += w;
  }
}

/* ---- framing ------------------------------------------------------------------------- */

/* A resumed 206 framed without a length that would run past the file's end
 * its Content-Range gave (nothing of it is kept). */
static bool past_range(net_http *h, size_t n) {
  if (!h->range_end || atomic_load(&h->received) + n <= h->range_end) return false;
  net__http_fail(h, NET_E_PROTOCOL, "206 body runs past byte %llu, where its Content-Range ends the file",
                 (unsigned long long)h->range_end);
  return true;
}

/* Body bytes of the framing at p[0..n) into the empty stage; *used: bytes
 * of p taken. 1: the framing ended, 0: more, -1: failed. */
static int stage_step(net_http *h, const char *p, size_t n, size_t *used) {
  if (n > HTTP_STAGE) n = HTTP_STAGE;
  if (h->framing.kind == HTTP_BODY_CHUNKED) {
    const char *b;
    size_t blen;
    http_result r = http_chunked_feed(&h->chunked, p, n, used, &b, &blen);
    if (r == HTTP_ERROR)
      return net__http_fail(h, h->chunked.trailer.oom ? NET_E_LIMIT : NET_E_PROTOCOL, "%s", h->chunked.err), -1;
    if (past_range(h, blen)) return -1;
    if (blen) memcpy(h->stage, b, blen);
    h->stage_len = blen;
    atomic_fetch_add(&h->received, blen);   /* the chunks' payload, not their framing */
    return r == HTTP_DONE;
  }
  if (h->framing.kind == HTTP_BODY_LENGTH && n > h->body_left) n = (size_t)h->body_left;
  if (past_range(h, n)) return -1;
  memcpy(h->stage, p, n);
  h->stage_len = *used = n;
  atomic_fetch_add(&h->received, n);
  if (h->framing.kind != HTTP_BODY_LENGTH) return 0;
  h->body_left -= n;
  return h->body_left == 0;
}

/* The body ended by its framing and is all with the owner. */
static int ended(net_http *h) {
  if (h->inflating && inflate_finish(&h->inf) != 0)
    return net__http_fail(h, NET_E_PROTOCOL, "%s", h->inf.err), -1;
  uint64_t got = atomic_load(&h->received);
  if (h->range_end && got != h->range_end)   /* a short resume is no whole file */
    return net__http_fail(h, NET_E_PROTOCOL, "206 body ended at byte %llu of the %llu its Content-Range gave",
                          (unsigned long long)got, (unsigned long long)h->range_end), -1;
  return 1;
}

/* The connection's input ended (EOF, or a failure already drained). */
static int input_end(net_http *h, long why) {
  if (why == NET_READ_EOF && h->framing.kind == HTTP_BODY_CLOSE) {
    h->framed_end = true;
    return 0;
  }
  if (why == NET_READ_ERROR) return net__http_conn_failed(h), -1;
  if (h->framing.kind == HTTP_BODY_LENGTH)
    net__http_fail(h, NET_E_CLOSED, "body ended after %llu of %llu bytes",
                   (unsigned long long)(h->framing.length - h->body_left), (unsigned long long)h->framing.length);
  else
    net__http_fail(h, NET_E_CLOSED, "connection closed inside the chunked body after %llu bytes",
                   (unsigned long long)atomic_load(&h->received));
  return -1;
}

/* Conn bytes into the empty stage. 1: progress, 0: nothing now, -1: failed. */
static int fill_stage(net_http *h) {
  net_span sp[1];
  int k = 1;
  long n = net_conn_peek(h->c, HTTP_STAGE, sp, &k);
  if (n == 0) return 0;
  if (n < 0) return input_end(h, n) < 0 ? -1 : 1;
  size_t used = 0;
  int r = stage_step(h, sp[0].base, sp[0].len, &used);
  if (r < 0) return -1;
  net_conn_consume(h->c, used);
  if (r == 1) h->framed_end = true;
  return 1;
}

int net__http_body_pump(net_http *h) {
  if (h->framing.kind == HTTP_BODY_NONE) return ended(h);
  if (!h->stage && !(h->stage = net__malloc(HTTP_STAGE + PIECE)))
    return net__http_fail(h, NET_E_LIMIT, "out of memory"), -1;
  h->pend = h->stage + HTTP_STAGE;
  for (;;) {
    if (!unstage(h)) return -1;
    if (h->stage_pos < h->stage_len || h->pend_len) return 0;   /* a kick brings us back */
    h->stage_pos = h->stage_len = 0;
    if (h->framed_end) return ended(h);
    int r = fill_stage(h);
    if (r <= 0) return r;
  }
}
