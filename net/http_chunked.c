/* http_chunked.c: the chunked transfer coding (RFC 9112 section 7.1) as a state
 * machine fed arbitrary pieces; trailers go through the head parser. Any thread; pure. */
#include "http_parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum {
  C_SIZE,       /* hex digits of chunk-size */
  C_SIZE_WS,    /* whitespace after the size, before ';' or CR */
  C_EXT,        /* a chunk extension: skipped, bounded by HTTP_MAX_CHUNK_LINE */
  C_SIZE_LF,    /* CR seen after the size line */
  C_DATA,
  C_DATA_CR,
  C_DATA_LF,
  C_TRAILER,    /* after the last chunk: fields until an empty line */
  C_DONE,
};

static http_result fail(http_chunked *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof c->err, fmt, ap);
  va_end(ap);
  c->failed = true;
  return HTTP_ERROR;
}

void http_chunked_init(http_chunked *c) {
  memset(c, 0, sizeof *c);
  c->state = C_SIZE;
  http_head_init(&c->trailer, HTTP_HEAD_TRAILER, HTTP_MAX_TRAILER, 0);
}

void http_chunked_free(http_chunked *c) { http_head_free(&c->trailer); }

const http_head *http_chunked_trailer(const http_chunked *c) { return &c->trailer; }

static int hexval(unsigned char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

static http_result size_byte(http_chunked *c, unsigned char ch) {
  int v = hexval(ch);
  if (v >= 0) {
    if (c->remaining > (UINT64_MAX >> 4)) return fail(c, "chunk size too large");
    c->remaining = c->remaining * 16 + (uint64_t)v;
    c->digits++;
    return HTTP_MORE;
  }
  if (ch == '\n') return fail(c, "chunk size line without CRLF");
  if (c->digits == 0) return fail(c, "bad chunk size (byte 0x%02x)", ch);
  if (ch == ' ' || ch == '\t') c->state = C_SIZE_WS;
  else if (ch == ';') c->state = C_EXT;
  else if (ch == '\r') c->state = C_SIZE_LF;
  else return fail(c, "bad chunk size (byte 0x%02x)", ch);
  return HTTP_MORE;
}

/* One byte of the framing around the data (not data, not trailer). */
static http_result frame_byte(http_chunked *c, unsigned char ch) {
  switch (c->state) {
  case C_SIZE:
    return size_byte(c, ch);
  case C_SIZE_WS:
    if (ch == ';') c->state = C_EXT;
    else if (ch == '\r') c->state = C_SIZE_LF;
    else if (ch != ' ' && ch != '\t') return fail(c, "bad chunk size (byte 0x%02x)", ch);
    return HTTP_MORE;
  case C_EXT:
    if (ch == '\r') c->state = C_SIZE_LF;
    else if (ch != '\t' && (ch < 0x20 || ch == 0x7f))
      return fail(c, "bad character 0x%02x in a chunk extension", ch);
    return HTTP_MORE;
  case C_SIZE_LF:
    if (ch != '\n') return fail(c, "chunk size line without CRLF");
    c->line_len = 0;
    c->digits = 0;
    c->state = c->remaining ? C_DATA : C_TRAILER;
    return HTTP_MORE;
  case C_DATA_CR:
    if (ch != '\r') return fail(c, "chunk data not followed by CRLF");
    c->state = C_DATA_LF;
    return HTTP_MORE;
  default:   /* C_DATA_LF */
    if (ch != '\n') return fail(c, "chunk data not followed by CRLF");
    c->state = C_SIZE;
    return HTTP_MORE;
  }
}

static http_result trailer(http_chunked *c, const char *data, size_t len, size_t *used) {
  http_result r = http_head_feed(&c->trailer, data, len, used);
  if (r == HTTP_ERROR) return fail(c, "chunked trailer: %s", c->trailer.err);
  if (r == HTTP_DONE) c->state = C_DONE;
  return r;
}

http_result http_chunked_feed(http_chunked *c, const char *data, size_t len, size_t *used,
                              const char **body, size_t *body_len) {
  size_t i = 0;
  *used = 0;
  *body = NULL;
  *body_len = 0;
  if (c->failed) return HTTP_ERROR;
  if (c->state == C_DONE) return HTTP_DONE;
  while (i < len) {
    if (c->state == C_DATA) {
      size_t n = len - i < c->remaining ? len - i : (size_t)c->remaining;
      *body = data + i;
      *body_len = n;
      c->remaining -= n;
      if (c->remaining == 0) c->state = C_DATA_CR;
      *used = i + n;
      return HTTP_MORE;
    }
    if (c->state == C_TRAILER) {
      size_t u;
      http_result r = trailer(c, data + i, len - i, &u);
      *used = i + u;
      return r;
    }
    if (c->state <= C_SIZE_LF && ++c->line_len > HTTP_MAX_CHUNK_LINE) {
      *used = i;
      return fail(c, "chunk size line longer than %u bytes", HTTP_MAX_CHUNK_LINE);
    }
    if (frame_byte(c, (unsigned char)data[i++]) == HTTP_ERROR) {
      *used = i;
      return HTTP_ERROR;
    }
  }
  *used = len;
  return HTTP_MORE;
}

http_result http_chunked_decode(http_chunked *c, char *buf, size_t len, size_t *used,
                                size_t *out_len) {
  size_t i = 0, out = 0;
  http_result r = HTTP_MORE;
  while (i < len) {
    size_t u, bl;
    const char *b;
    r = http_chunked_feed(c, buf + i, len - i, &u, &b, &bl);
    if (bl) memmove(buf + out, b, bl);
    out += bl;
    i += u;
    if (r != HTTP_MORE) break;
  }
  *used = i;
  *out_len = out;
  return r;
}
