/* http_parse.c: strict, incremental HTTP/1.1 head parser (RFC 9112): start lines,
 * header fields, body framing. Any thread; pure (no I/O, no globals). */
#include "http_parse.h"
#include "alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_LENGTH ((uint64_t)1 << 62)   /* a Content-Length past this is nonsense */

/* ---- characters (RFC 9110 section 5.6.2) --------------------------------------- */
static bool is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-vchar, SP and HTAB: what a value and a reason phrase may hold */
static bool is_text(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }
static bool is_ows(char c) { return c == ' ' || c == '\t'; }
static char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }

static bool same_ci(const char *a, size_t n, const char *b, size_t m) {
  if (n != m) return false;
  for (size_t i = 0; i < n; i++)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

/* ---- errors ---------------------------------------------------------------------- */
static http_result fail(http_head *h, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(h->err, sizeof h->err, fmt, ap);
  va_end(ap);
  h->failed = true;
  return HTTP_ERROR;
}

/* The start of a bad line, printable, for a message. */
static const char *quote(const char *s, size_t n, char *out, size_t cap) {
  size_t k = 0, i = 0;
  for (; i < n && k + 4 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
    out[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
  }
  if (i < n) out[k++] = '.', out[k++] = '.', out[k++] = '.';
  out[k] = 0;
  return out;
}

static http_result fail_line(http_head *h, const char *what, uint32_t off, size_t n) {
  char q[48];
  return fail(h, "%s: '%s'", what, quote(h->buf + off, n, q, sizeof q));
}

/* ---- setup ----------------------------------------------------------------------- */
void http_head_init(http_head *h, http_head_kind kind, uint32_t max_head, uint32_t max_fields) {
  memset(h, 0, sizeof *h);
  h->kind = kind;
  h->max_head = max_head ? max_head : HTTP_MAX_HEAD_DEFAULT;
  h->max_fields = max_fields ? max_fields : HTTP_MAX_FIELDS_DEFAULT;
  h->started = kind == HTTP_HEAD_TRAILER;
  h->status = -1;
  h->version_minor = 1;
}

void http_head_free(http_head *h) {
  net__free(h->buf);
  net__free(h->fields);
  h->buf = NULL;
  h->fields = NULL;
  h->len = h->cap = h->nfields = h->fields_cap = 0;
}

void http_head_reset(http_head *h) {
  char *buf = h->buf;
  http_field_pos *fields = h->fields;
  uint32_t cap = h->cap, fields_cap = h->fields_cap;
  http_head_init(h, h->kind, h->max_head, h->max_fields);
  h->buf = buf;
  h->cap = cap;
  h->fields = fields;
  h->fields_cap = fields_cap;
}

static bool grow(http_head *h, size_t need) {
  if (need <= h->cap) return true;
  size_t cap = h->cap ? h->cap : 512;
  while (cap < need) cap *= 2;
  if (cap > h->max_head) cap = h->max_head;
  char *p = net__realloc(h->buf, cap);
  if (!p) return false;
  h->buf = p;
  h->cap = (uint32_t)cap;
  return true;
}

/* ---- start lines ----------------------------------------------------------------- */
/* "HTTP/1.x" at s[0..8): the minor version, or -1 (-2: another major/minor version). */
static int version(const char *s) {
  if (memcmp(s, "HTTP/", 5) != 0) return -1;
  if (s[5] < '0' || s[5] > '9' || s[6] != '.' || s[7] < '0' || s[7] > '9') return -1;
  if (s[5] != '1' || s[7] > '1') return -2;
  return s[7] - '0';
}

static http_result status_line(http_head *h, uint32_t off, size_t n) {
  char *s = h->buf + off;
  int v = n >= 8 ? version(s) : -1;
  if (v == -2) return fail_line(h, "unsupported HTTP version", off, n);
  if (v < 0 || n < 12 || s[8] != ' ') return fail_line(h, "bad status line", off, n);
  for (int i = 9; i < 12; i++)
    if (s[i] < '0' || s[i] > '9') return fail_line(h, "bad status code", off, n);
  if (s[9] == '0' || (n > 12 && s[12] != ' ')) return fail_line(h, "bad status code", off, n);
  for (size_t i = 13; i < n; i++)
    if (!is_text((unsigned char)s[i])) return fail_line(h, "bad character in the reason phrase", off, n);
  h->version_minor = v;
  h->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
  h->reason = n > 12 ? off + 13 : off + 12;   /* the NUL that ended the line */
  return HTTP_MORE;
}

static http_result request_line(http_head *h, uint32_t off, size_t n) {
  char *s = h->buf + off;
  size_t m = 0, t;
  while (m < n && is_tchar((unsigned char)s[m])) m++;
  if (m == 0 || m == n || s[m] != ' ') return fail_line(h, "bad request line", off, n);
  t = m + 1;
  while (t < n && (unsigned char)s[t] > 0x20 && (unsigned char)s[t] < 0x7f) t++;
  if (t == m + 1 || t + 9 != n || s[t] != ' ') return fail_line(h, "bad request line", off, n);
  int v = version(s + t + 1);
  if (v == -2) return fail_line(h, "unsupported HTTP version", off, n);
  if (v < 0) return fail_line(h, "bad request line", off, n);
  s[m] = 0;
  s[t] = 0;
  h->version_minor = v;
  h->method = off;
  h->target = off + (uint32_t)m + 1;
  return HTTP_MORE;
}

/* ---- framing fields -------------------------------------------------------------- */
/* Next element of a comma-separated list at *p (< end), trimmed; false when none left. */
static bool list_next(const char **p, const char *end, const char **e, size_t *n) {
  while (*p < end) {
    const char *s = *p, *c = memchr(s, ',', (size_t)(end - s));
    const char *stop = c ? c : end;
    *p = c ? c + 1 : end;
    while (s < stop && is_ows(*s)) s++;
    while (stop > s && is_ows(stop[-1])) stop--;
    if (stop > s) {
      *e = s;
      *n = (size_t)(stop - s);
      return true;
    }
  }
  return false;
}

/* Content-Length, maybe a list of identical values (RFC 9110 section 8.6). */
static http_result content_length(http_head *h, const char *v, size_t n) {
  const char *p = v, *e;
  size_t en;
  bool any = false;
  while (list_next(&p, v + n, &e, &en)) {
    uint64_t x = 0;
    for (size_t i = 0; i < en; i++) {
      if (e[i] < '0' || e[i] > '9') return fail(h, "bad Content-Length '%.40s'", v);
      uint64_t d = (uint64_t)(e[i] - '0');
      if (x > (MAX_LENGTH - d) / 10) return fail(h, "Content-Length too large '%.40s'", v);
      x = x * 10 + d;   /* checked first: a wrapped value would pass as small */
    }
    if (h->has_length && x != h->content_length)
      return fail(h, "conflicting Content-Length values");
    h->has_length = true;
    h->content_length = x;
    any = true;
  }
  return any ? HTTP_MORE : fail(h, "empty Content-Length");
}

/* Only "chunked" is a transfer coding we can undo: anything else would hand the
 * caller bytes it cannot use, so it is an error rather than read-until-close. */
static http_result transfer_encoding(http_head *h, const char *v, size_t n) {
  const char *p = v, *e;
  size_t en;
  h->has_te = true;
  while (list_next(&p, v + n, &e, &en)) {
    if (!same_ci(e, en, "chunked", 7))
      return fail(h, "unsupported Transfer-Encoding '%.*s'", (int)(en > 40 ? 40 : en), e);
    if (h->chunked) return fail(h, "Transfer-Encoding chunked applied twice");
    h->chunked = true;
  }
  return HTTP_MORE;
}

/* ---- fields ---------------------------------------------------------------------- */
static http_result add_field(http_head *h, uint32_t name, uint32_t nlen, uint32_t val, uint32_t vlen) {
  if (h->nfields >= h->max_fields) return fail(h, "more than %u header fields", h->max_fields);
  if (h->nfields == h->fields_cap) {
    uint32_t cap = h->fields_cap ? h->fields_cap * 2 : 16;
    if (cap > h->max_fields) cap = h->max_fields;
    http_field_pos *f = net__realloc(h->fields, cap * sizeof *f);
    if (!f) return h->oom = true, fail(h, "out of memory for header fields");
    h->fields = f;
    h->fields_cap = cap;
  }
  h->fields[h->nfields++] = (http_field_pos){ name, nlen, val, vlen };
  return HTTP_MORE;
}

static http_result field_line(http_head *h, uint32_t off, size_t n) {
  char *s = h->buf + off;
  size_t c = 0;
  if (is_ows(s[0])) return fail_line(h, "obsolete line folding", off, n);
  while (c < n && is_tchar((unsigned char)s[c])) c++;
  if (c == n || s[c] != ':' || c == 0) return fail_line(h, "bad header field name", off, n);
  size_t v = c + 1, end = n;
  while (v < end && is_ows(s[v])) v++;
  while (end > v && is_ows(s[end - 1])) end--;
  for (size_t i = v; i < end; i++)
    if (!is_text((unsigned char)s[i])) return fail_line(h, "bad character in a header field value", off, n);
  for (size_t i = 0; i < c; i++) s[i] = lower(s[i]);
  s[c] = 0;
  s[end] = 0;
  if (add_field(h, off, (uint32_t)c, off + (uint32_t)v, (uint32_t)(end - v)) == HTTP_ERROR)
    return HTTP_ERROR;
  if (h->kind == HTTP_HEAD_TRAILER) return HTTP_MORE;   /* never framing (RFC 9110 6.5.1) */
  if (same_ci(s, c, "content-length", 14)) return content_length(h, s + v, end - v);
  if (same_ci(s, c, "transfer-encoding", 17)) return transfer_encoding(h, s + v, end - v);
  return HTTP_MORE;
}

/* The empty line: the head is complete; framing conflicts are decided here. */
static http_result finish(http_head *h) {
  if (h->has_te) {
    if (!h->chunked) return fail(h, "empty Transfer-Encoding");
    /* RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing */
    if (h->version_minor == 0) return fail(h, "Transfer-Encoding in an HTTP/1.0 message");
    /* RFC 9112 6.3: chunked wins in a response (and the connection closes after it);
     * a request with both is a smuggling attempt and is refused */
    if (h->has_length && h->kind == HTTP_HEAD_REQUEST)
      return fail(h, "both Content-Length and Transfer-Encoding");
  }
  h->done = true;
  return HTTP_DONE;
}

/* A complete line sits at buf[h->line .. h->len), its LF included. */
static http_result line_done(http_head *h) {
  uint32_t off = h->line;
  size_t n = h->len - off;
  char *s = h->buf + off;
  if (n < 2 || s[n - 2] != '\r') return fail_line(h, "line ends in LF without CR", off, n - 1);
  n -= 2;
  if (memchr(s, '\r', n)) return fail_line(h, "bare CR in the head", off, n);
  s[n] = 0;
  h->line = h->len;
  if (!h->started) {
    h->started = true;
    if (n == 0) return fail(h, "empty line where the %s line should be",
                            h->kind == HTTP_HEAD_RESPONSE ? "status" : "request");
    return h->kind == HTTP_HEAD_RESPONSE ? status_line(h, off, n) : request_line(h, off, n);
  }
  if (n == 0) return finish(h);
  return field_line(h, off, n);
}

http_result http_head_feed(http_head *h, const char *data, size_t len, size_t *used) {
  size_t i = 0;
  *used = 0;
  if (h->failed) return HTTP_ERROR;
  if (h->done) return HTTP_DONE;
  while (i < len) {
    const char *nl = memchr(data + i, '\n', len - i);
    size_t take = nl ? (size_t)(nl - (data + i)) + 1 : len - i;
    if ((uint64_t)h->len + take > h->max_head)
      return fail(h, "head larger than %u bytes", h->max_head);
    if (!grow(h, h->len + take)) return h->oom = true, fail(h, "out of memory for the head");
    memcpy(h->buf + h->len, data + i, take);
    h->len += (uint32_t)take;
    i += take;
    if (!nl) break;
    http_result r = line_done(h);
    if (r != HTTP_MORE) {
      *used = i;
      return r;
    }
  }
  *used = len;
  return HTTP_MORE;
}

/* ---- after the head -------------------------------------------------------------- */
int http_head_status(const http_head *h) { return h->status; }
int http_head_version(const http_head *h) { return h->version_minor; }
size_t http_head_nfields(const http_head *h) { return h->nfields; }

const char *http_head_reason(const http_head *h) {
  return h->kind == HTTP_HEAD_RESPONSE && h->done ? h->buf + h->reason : "";
}

const char *http_head_method(const http_head *h) {
  return h->kind == HTTP_HEAD_REQUEST && h->done ? h->buf + h->method : "";
}

const char *http_head_target(const http_head *h) {
  return h->kind == HTTP_HEAD_REQUEST && h->done ? h->buf + h->target : "";
}

http_field http_head_field(const http_head *h, size_t i) {
  http_field f = { "", 0, "", 0 };
  if (i < h->nfields) {
    const http_field_pos *p = &h->fields[i];
    f = (http_field){ h->buf + p->name, p->name_len, h->buf + p->value, p->value_len };
  }
  return f;
}

const char *http_head_get(const http_head *h, const char *name, size_t *len) {
  size_t n = strlen(name);
  for (uint32_t i = 0; i < h->nfields; i++) {
    const http_field_pos *p = &h->fields[i];
    if (same_ci(h->buf + p->name, p->name_len, name, n)) {
      if (len) *len = p->value_len;
      return h->buf + p->value;
    }
  }
  return NULL;
}

bool http_list_has_token(const char *v, size_t len, const char *token) {
  const char *p = v, *e;
  size_t en, tn = strlen(token);
  while (list_next(&p, v + len, &e, &en))
    if (same_ci(e, en, token, tn)) return true;
  return false;
}

bool http_head_has_token(const http_head *h, const char *name, const char *token) {
  size_t n = strlen(name);
  for (uint32_t i = 0; i < h->nfields; i++) {
    const http_field_pos *p = &h->fields[i];
    if (same_ci(h->buf + p->name, p->name_len, name, n) &&
        http_list_has_token(h->buf + p->value, p->value_len, token))
      return true;
  }
  return false;
}

bool http_head_keep_alive(const http_head *h) {
  if (!h->done || h->failed) return false;
  if (h->has_length && h->chunked) return false;   /* RFC 9112 6.3 (3) */
  if (http_head_has_token(h, "connection", "close")) return false;
  if (h->version_minor >= 1) return true;
  return http_head_has_token(h, "connection", "keep-alive");
}

http_framing http_head_framing(const http_head *h, const char *request_method) {
  http_framing f = { HTTP_BODY_NONE, 0 };
  if (h->kind == HTTP_HEAD_TRAILER || !h->done) return f;
  if (h->kind == HTTP_HEAD_RESPONSE) {
    int s = h->status;
    const char *m = request_method ? request_method : "";
    if (s < 200 || s == 204 || s == 304 || strcmp(m, "HEAD") == 0) return f;
    if (strcmp(m, "CONNECT") == 0 && s < 300) return f;   /* a tunnel follows */
  }
  if (h->chunked) {
    f.kind = HTTP_BODY_CHUNKED;
  } else if (h->has_length) {
    f.kind = HTTP_BODY_LENGTH;
    f.length = h->content_length;
  } else if (h->kind == HTTP_HEAD_RESPONSE) {
    f.kind = HTTP_BODY_CLOSE;
  }
  return f;
}

bool http_token_ok(const char *s) {
  if (!*s) return false;
  for (const unsigned char *u = (const unsigned char *)s; *u; u++)
    if (*u <= ' ' || *u >= 127 || strchr("()<>@,;:\\\"/[]?={}", *u)) return false;
  return true;
}

/* Bytes from 0x80 up are obs-text (RFC 9110 section 5.5): allowed. */
bool http_value_ok(const char *s) {
  for (const unsigned char *u = (const unsigned char *)s; *u; u++)
    if ((*u < ' ' && *u != '\t') || *u == 127) return false;
  return true;
}

/* Digits at *p (before end) as a number; false when none or past 2^63. */
static bool range_number(const char **p, const char *end, uint64_t *out) {
  const char *s = *p;
  uint64_t v = 0;
  for (; *p < end && **p >= '0' && **p <= '9'; (*p)++) {
    if (v > (UINT64_MAX >> 1) / 10) return false;
    v = v * 10 + (uint64_t)(**p - '0');
  }
  *out = v;
  return *p > s;
}

int http_content_range(const char *v, size_t len, uint64_t *first, uint64_t *last, uint64_t *complete) {
  const char *end = v + len;
  *first = *last = *complete = 0;
  if (len < 6 || strncmp(v, "bytes ", 6)) return -1;
  v += 6;
  if (!range_number(&v, end, first) || v == end || *v++ != '-' || !range_number(&v, end, last) || *last < *first ||
      v == end || *v++ != '/')
    return -1;
  if (v < end && *v == '*') return v + 1 == end ? 0 : -1;   /* the complete length unknown */
  return range_number(&v, end, complete) && v == end && *last < *complete ? 1 : -1;
}
