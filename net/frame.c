/* frame.c: whole messages on a stream connection (4-byte length prefixes,
 * LSP Content-Length headers), parsed in place in the receive buffer.
 * Owner thread: it only peeks, copies and consumes through conn.c. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "conn.h"

#define GATHER_MIN (64u * 1024)   /* first gathering buffer; doubles as bytes arrive */
#define PACKET_MAX 0xffffffffu    /* what 4 length bytes can say */
#define LENGTH_DIGITS 15          /* a Content-Length longer than this is absurd */

struct net_frame {
  /* the message net_frame_next announced */
  size_t hdr, len;
  bool announced;
  /* a message larger than the receive buffer, gathered across calls */
  bool gathering;
  net_frame_kind kind;
  size_t have, cap;
  char *buf;
};

net_frame *net_frame_new(void) { return net__calloc(1, sizeof(net_frame)); }

static void drop_buffer(net_frame *f) {
  net__free(f->buf);
  f->buf = NULL;
  f->have = f->cap = 0;
  f->gathering = false;
}

void net_frame_free(net_frame *f) {
  if (!f) return;
  drop_buffer(f);
  net__free(f);
}

int net_frame_busy(const net_frame *f) { return f->gathering; }

/* ---- the LSP header block --------------------------------------------------- */

/* RFC 9110 token characters, for header names. */
static bool tchar(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* A field value byte: visible, space, tab or non-ASCII. */
static bool vchar(unsigned char ch) { return ch == '\t' || (ch >= ' ' && ch != 0x7f); }

static bool name_is(const char *p, size_t n, const char *want) {
  return strlen(want) == n && strncasecmp(p, want, n) == 0;
}

/* Content-Length's value: 1..LENGTH_DIGITS digits. */
static const char *parse_length(const char *v, size_t n, uint64_t *out) {
  if (n == 0) return "empty Content-Length";
  if (n > LENGTH_DIGITS) return "Content-Length too large";
  uint64_t x = 0;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9') return "Content-Length is not a number";
    x = x * 10 + (uint64_t)(v[i] - '0');
  }
  *out = x;
  return NULL;
}

/* One line (without its CRLF) of a header block; complete: it ended. A
 * partial line is checked as far as it goes. */
static const char *check_line(const char *p, size_t n, bool complete, uint64_t *length,
                              bool *seen) {
  size_t i = 0;
  while (i < n && p[i] != ':') {
    if (!tchar((unsigned char)p[i])) return "bad character in a header name";
    i++;
  }
  if (i == n) return complete ? "header line without ':'" : NULL;
  if (i == 0) return "empty header name";
  size_t name = i++;
  while (i < n && (p[i] == ' ' || p[i] == '\t')) i++;   /* the space is optional */
  size_t v = i, end = n;
  for (; i < n; i++)
    if (!vchar((unsigned char)p[i])) return "control character in a header value";
  if (!complete || !name_is(p, name, "content-length")) return NULL;
  while (end > v && (p[end - 1] == ' ' || p[end - 1] == '\t')) end--;
  uint64_t x;
  const char *why = parse_length(p + v, end - v, &x);
  if (why) return why;
  if (*seen && x != *length) return "conflicting Content-Length headers";
  *length = x;
  *seen = true;
  return NULL;
}

long net_lsp_header(const char *p, size_t n, uint64_t *body, const char **why) {
  size_t i = 0;
  uint64_t length = 0;
  bool seen = false;
  while (i + 1 < n && p[i] == '\r' && p[i + 1] == '\n') i += 2;   /* stray blank lines between messages */
  for (;;) {
    if (i > NET_LSP_HEADER_MAX) return *why = "header block longer than 8192 bytes", -1;
    const char *cr = memchr(p + i, '\r', n - i);
    size_t end = cr ? (size_t)(cr - p) : n;
    if (end > NET_LSP_HEADER_MAX) return *why = "header block longer than 8192 bytes", -1;
    bool complete = cr && end + 1 < n;
    if (cr && complete && p[end + 1] != '\n') return *why = "CR without LF in the header", -1;
    if (complete && end == i) {   /* the empty line: the block ends */
      if (!seen) return *why = "no Content-Length header", -1;
      *body = length;
      return (long)(end + 2);
    }
    if ((*why = check_line(p + i, end - i, complete, &length, &seen))) return -1;
    if (!complete) return 0;
    i = end + 2;
  }
}

/* ---- reading ------------------------------------------------------------------- */

static long fail(net_conn *c, net_err code, const char *fmt, ...) NET_PRINTF(3, 4);

/* Fails the connection with a formatted message: NET_READ_ERROR. */
static long fail(net_conn *c, net_err code, const char *fmt, ...) {
  char msg[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  net_conn_abort(c, code, msg);
  return NET_READ_ERROR;
}

static const char *what(net_frame_kind kind) { return kind == NET_FRAME_LSP ? "read_lsp" : "read_packet"; }

/* The stream ended inside a message: a failure of its own, or a cut. */
static long truncated(net_conn *c, net_frame_kind kind, size_t have) {
  /* the owner's shutdown("receive"): its end, as between messages, never the peer's fault */
  if (atomic_load(&c->shut) & NET_SHUT_RECEIVE) return NET_READ_EOF;
  /* the connection's own failure, not the peer's close, which
   * net_conn_status also calls one once nothing is left to read */
  if (c->aborted || atomic_load_explicit(&c->state, memory_order_acquire) == NET_FAILURE) return NET_READ_ERROR;
  return fail(c, NET_E_PROTOCOL, "%s: the stream ended inside a message (%zu bytes of it arrived)",
              what(kind), have);
}

/* Nothing but blank lines (which LSP allows between messages) in the n bytes. */
static bool only_blank_lines(net_conn *c, size_t n) {
  char two[2];
  if (n % 2) return false;
  for (size_t at = 0; at < n; at += 2)
    if (net_conn_copy(c, at, two, 2) != 2 || two[0] != '\r' || two[1] != '\n') return false;
  return true;
}

/* Moves what arrived of a gathered message out of the receive buffer. */
static long gather(net_frame *f, net_conn *c) {
  size_t n = net_conn_available(c), want = f->len - f->have;
  if (n > want) n = want;
  if (f->have + n > f->cap) {
    size_t cap = f->cap ? f->cap : GATHER_MIN;
    while (cap < f->have + n) cap *= 2;
    if (cap > f->len) cap = f->len;
    char *b = net__realloc(f->buf, cap);
    if (!b) return fail(c, NET_E_LIMIT, "%s: out of memory for a %zu-byte message", what(f->kind), f->len);
    f->buf = b;
    f->cap = cap;
  }
  if (n) {
    n = net_conn_copy(c, 0, f->buf + f->have, n);
    net_conn_consume(c, n);
    f->have += n;
  }
  if (f->have == f->len) {
    f->announced = true;
    return (long)f->len;
  }
  if (net_conn_input_ended(c) && net_conn_available(c) == 0) return truncated(c, f->kind, f->have);
  return NET_FRAME_PARTIAL;
}

/* The header of the message at the head of the buffer (n bytes arrived):
 * its length, 0 while incomplete, -1 when the connection was failed. */
static long header(net_conn *c, net_frame_kind kind, size_t n, uint64_t *len) {
  if (kind == NET_FRAME_PACKET) {
    unsigned char b[4];
    if (n < 4) return 0;
    net_conn_copy(c, 0, b, 4);
    *len = (uint64_t)b[0] << 24 | (uint64_t)b[1] << 16 | (uint64_t)b[2] << 8 | b[3];
    return 4;
  }
  char block[NET_LSP_HEADER_MAX + 4], two[2];
  size_t skip = 0;   /* blank lines before the header: the parser skips them too */
  while (skip <= NET_LSP_HEADER_MAX && net_conn_copy(c, skip, two, 2) == 2 && two[0] == '\r' && two[1] == '\n')
    skip += 2;
  long end = net_conn_find(c, "\r\n\r\n", 4, skip, n < sizeof block ? n : sizeof block);
  size_t look = end >= 0 ? (size_t)end + 4 : n < sizeof block ? n : sizeof block;
  const char *why = NULL;
  long h = net_lsp_header(block, net_conn_copy(c, 0, block, look), len, &why);
  if (h < 0) {
    char msg[96];
    snprintf(msg, sizeof msg, "read_lsp: bad header: %s", why);
    net_conn_abort(c, NET_E_PROTOCOL, msg);
  }
  return h;
}

long net_frame_next(net_frame *f, net_conn *c, net_frame_kind kind, size_t max) {
  f->announced = false;
  if (f->gathering) {
    long r = f->len > max ? fail(c, NET_E_LIMIT, "%s: message of %zu bytes exceeds max %zu", what(kind), f->len, max)
                          : gather(f, c);
    if (r == NET_READ_ERROR || r == NET_READ_EOF) drop_buffer(f);   /* the stream is over: nothing to finish */
    return r;
  }
  size_t n = net_conn_available(c);
  if (n == 0) {   /* the end between messages, or nothing yet */
    net_span sp;
    int k = 1;
    long r = net_conn_peek(c, 1, &sp, &k);
    return r < 0 ? r : NET_FRAME_PARTIAL;
  }
  uint64_t len = 0;
  long hdr = header(c, kind, n, &len);
  if (hdr < 0) return NET_READ_ERROR;
  if (hdr > 0 && len > max)
    return fail(c, NET_E_LIMIT, "%s: message of %llu bytes exceeds max %zu", what(kind),
                (unsigned long long)len, max);
  if (hdr > 0 && (size_t)hdr + len <= n) {
    f->hdr = (size_t)hdr;
    f->len = (size_t)len;
    f->announced = true;
    return (long)len;
  }
  if (hdr > 0 && (size_t)hdr + len > net_conn_buffer_size(c)) {   /* can never lie there whole */
    net_conn_consume(c, (size_t)hdr);
    f->gathering = true;
    f->kind = kind;
    f->len = (size_t)len;
    f->have = 0;
    long r = gather(f, c);
    if (r == NET_READ_ERROR || r == NET_READ_EOF) drop_buffer(f);
    return r;
  }
  if (!net_conn_input_ended(c) || n != net_conn_available(c)) {
    net_conn_want_more(c);   /* it fits: a full buffer must not hold its rest back */
    return NET_FRAME_PARTIAL;
  }
  if (kind == NET_FRAME_LSP && hdr == 0 && only_blank_lines(c, n)) {   /* a clean end after them */
    net_conn_consume(c, n);
    return net_frame_next(f, c, kind, max);
  }
  return truncated(c, kind, n);
}

const void *net_frame_view(net_frame *f, net_conn *c) {
  if (!f->announced) return NULL;
  if (f->gathering) return f->buf ? f->buf : "";
  net_span sp[2];
  int k = 2;
  if (net_conn_peek(c, f->hdr + f->len, sp, &k) <= 0 || k == 0) return f->len ? NULL : "";
  if (sp[0].len >= f->hdr + f->len) return sp[0].base + f->hdr;
  if (k == 2 && sp[0].len == f->hdr && sp[1].len >= f->len) return sp[1].base;
  return NULL;
}

size_t net_frame_copy(net_frame *f, net_conn *c, void *dst) {
  if (!f->announced) return 0;
  if (f->gathering) {
    memcpy(dst, f->buf, f->len);
    return f->len;
  }
  return net_conn_copy(c, f->hdr, dst, f->len);
}

void net_frame_done(net_frame *f, net_conn *c) {
  if (!f->announced) return;
  f->announced = false;
  if (f->gathering) drop_buffer(f);   /* large: give it back at once */
  else net_conn_consume(c, f->hdr + f->len);
}

/* ---- writing --------------------------------------------------------------------- */

/* The message's header in hdr (48 bytes): its length, or 0 when a packet
 * is too long for its 4 length bytes. */
static size_t frame_header(char *hdr, net_frame_kind kind, size_t len) {
  if (kind == NET_FRAME_PACKET) {
    if (len > PACKET_MAX) return 0;
    unsigned char *b = (unsigned char *)hdr;
    b[0] = (unsigned char)(len >> 24), b[1] = (unsigned char)(len >> 16);
    b[2] = (unsigned char)(len >> 8), b[3] = (unsigned char)len;
    return 4;
  }
  return (size_t)snprintf(hdr, 48, "Content-Length: %llu\r\n\r\n", (unsigned long long)len);
}

static bool fits_whole(net_conn *c, size_t h, size_t len) { return len <= ring_cap(&c->tx) && h + len <= ring_cap(&c->tx); }

int net_frame_write(net_conn *c, net_frame_kind kind, const void *data, size_t len) {
  char hdr[48];
  size_t h = frame_header(hdr, kind, len);
  if (!h || !fits_whole(c, h, len)) return NET_FRAME_TOO_BIG;
  /* one record: two writes could part after the header (the I/O thread
   * trimming the ring, memory short), leaving the stream broken */
  return net__conn_write_record(c, hdr, h, data, len);
}

/* Queues from byte *done of header + data on, one buffer's worth at most
 * (a call moves no more than a write does). */
static int write_from(net_conn *c, const char *hdr, size_t h, const char *data, size_t len, size_t *done) {
  long n;
  if (*done < h) {
    if ((n = net_conn_write(c, hdr + *done, h - *done)) < 0) return -1;
    *done += (size_t)n;
    if (*done < h) return 0;
  }
  if ((n = net_conn_write(c, data + (*done - h), h + len - *done)) < 0) return -1;
  *done += (size_t)n;
  return *done == h + len;
}

int net_frame_write_part(net_conn *c, net_frame_kind kind, const void *data, size_t len, size_t *done) {
  char hdr[48];
  size_t h = frame_header(hdr, kind, len);
  if (!h) return NET_FRAME_TOO_BIG;
  if (*done == 0 && fits_whole(c, h, len)) return net__conn_write_record(c, hdr, h, data, len);
  if (*done > h + len) return NET_FRAME_TOO_BIG;   /* not this message's count */
  return write_from(c, hdr, h, data, len, done);
}
