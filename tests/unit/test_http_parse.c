/* test_http_parse.c: unit tests for net/http_parse.c and net/http_chunked.c (heads of
 * real servers, every error with its message, byte-at-a-time feeding, framing, chunked
 * bodies with extensions and trailers); prints TAP. */
#include "http_parse.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tap.h"

/* ---- TAP ---------------------------------------------------------------------- */

/* ---- helpers ------------------------------------------------------------------- */
/* Feeds s in pieces of step bytes (0: all at once); returns the result and where the
 * head ended. h is initialised here and must be freed by the caller. */
static http_result feed_head(http_head *h, http_head_kind kind, const char *s, size_t len,
                             size_t step, uint32_t max_head, size_t *end) {
  http_head_init(h, kind, max_head, 0);
  size_t off = 0;
  http_result r = HTTP_MORE;
  *end = 0;
  while (off < len) {
    size_t n = step && len - off > step ? step : len - off, used;
    r = http_head_feed(h, s + off, n, &used);
    off += used;
    if (r != HTTP_MORE) break;
  }
  *end = off;
  return r;
}

/* ---- real responses ------------------------------------------------------------ */
static const char NGINX[] =
    "HTTP/1.1 200 OK\r\n"
    "Server: nginx/1.22.1\r\n"
    "Date: Mon, 30 Nov 2026 20:00:00 GMT\r\n"
    "Content-Type: text/html\r\n"
    "Content-Length: 615\r\n"
    "Last-Modified: Tue, 13 Jun 2023 15:08:10 GMT\r\n"
    "Connection: keep-alive\r\n"
    "ETag: \"6488865a-267\"\r\n"
    "Accept-Ranges: bytes\r\n"
    "\r\n"
    "<!DOCTYPE html>";

static const char PYTHON[] =
    "HTTP/1.0 200 OK\r\n"
    "Server: SimpleHTTP/0.6 Python/3.11.2\r\n"
    "Date: Mon, 30 Nov 2026 20:00:00 GMT\r\n"
    "Content-type: text/plain\r\n"
    "Content-Length: 12\r\n"
    "Last-Modified: Mon, 30 Nov 2026 19:59:00 GMT\r\n"
    "\r\n"
    "hello world\n";

static const char PYTHON_404[] =
    "HTTP/1.0 404 File not found\r\n"
    "Server: SimpleHTTP/0.6 Python/3.11.2\r\n"
    "Date: Mon, 30 Nov 2026 20:00:00 GMT\r\n"
    "Connection: close\r\n"
    "Content-Type: text/html;charset=utf-8\r\n"
    "Content-Length: 335\r\n"
    "\r\n";

static const char NGINX_CHUNKED_GZIP[] =
    "HTTP/1.1 200 OK\r\n"
    "Server: nginx/1.22.1\r\n"
    "Content-Type: application/json\r\n"
    "Transfer-Encoding: chunked\r\n"
    "Connection: keep-alive\r\n"
    "Content-Encoding: gzip\r\n"
    "\r\n";

static bool nginx_case(size_t step) {
  http_head h;
  size_t end;
  http_result r = feed_head(&h, HTTP_HEAD_RESPONSE, NGINX, strlen(NGINX), step, 0, &end);
  bool ok = false;
  size_t vl = 0;
  const char *v;
  http_framing f;
  if (r != HTTP_DONE) { fail("result %d (%s)", r, h.err); goto out; }
  if (end != strlen(NGINX) - strlen("<!DOCTYPE html>")) { fail("head ended at %zu", end); goto out; }
  if (http_head_status(&h) != 200 || strcmp(http_head_reason(&h), "OK") != 0) { fail("status"); goto out; }
  if (http_head_version(&h) != 1 || http_head_nfields(&h) != 8) { fail("version/fields"); goto out; }
  v = http_head_get(&h, "CONTENT-length", &vl);
  if (!v || vl != 3 || strcmp(v, "615") != 0) { fail("content-length '%s'", v ? v : "(none)"); goto out; }
  if (strcmp(http_head_field(&h, 5).name, "connection") != 0) { fail("lower-case names"); goto out; }
  v = http_head_get(&h, "etag", NULL);
  if (!v || strcmp(v, "\"6488865a-267\"") != 0) { fail("etag"); goto out; }
  f = http_head_framing(&h, "GET");
  if (f.kind != HTTP_BODY_LENGTH || f.length != 615) { fail("framing %d", f.kind); goto out; }
  if (!http_head_keep_alive(&h)) { fail("keep-alive"); goto out; }
  ok = true;
out:
  http_head_free(&h);
  return ok;
}

static bool python_case(size_t step) {
  http_head h;
  size_t end;
  http_result r = feed_head(&h, HTTP_HEAD_RESPONSE, PYTHON, strlen(PYTHON), step, 0, &end);
  bool ok = r == HTTP_DONE && end == strlen(PYTHON) - 12 && http_head_version(&h) == 0 &&
            http_head_status(&h) == 200 && !http_head_keep_alive(&h) &&
            strcmp(http_head_get(&h, "content-type", NULL), "text/plain") == 0 &&
            http_head_framing(&h, "GET").length == 12;
  if (!ok) fail("python head: r=%d end=%zu err=%s", r, end, h.err);
  http_head_free(&h);
  if (!ok) return false;
  r = feed_head(&h, HTTP_HEAD_RESPONSE, PYTHON_404, strlen(PYTHON_404), step, 0, &end);
  ok = r == HTTP_DONE && http_head_status(&h) == 404 &&
       strcmp(http_head_reason(&h), "File not found") == 0 &&
       http_head_has_token(&h, "Connection", "CLOSE") && !http_head_keep_alive(&h);
  if (!ok) fail("python 404: r=%d err=%s", r, h.err);
  http_head_free(&h);
  return ok;
}

static bool chunked_head_case(size_t step) {
  http_head h;
  size_t end;
  http_result r = feed_head(&h, HTTP_HEAD_RESPONSE, NGINX_CHUNKED_GZIP,
                            strlen(NGINX_CHUNKED_GZIP), step, 0, &end);
  bool ok = r == HTTP_DONE && http_head_framing(&h, "GET").kind == HTTP_BODY_CHUNKED &&
            http_head_keep_alive(&h) && http_head_has_token(&h, "content-encoding", "gzip");
  if (!ok) fail("r=%d err=%s", r, h.err);
  http_head_free(&h);
  return ok;
}

static bool t_real_heads(void) {
  size_t steps[] = { 0, 1, 2, 7, 64 };
  for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
    if (!nginx_case(steps[i])) return fail("nginx, step %zu: %s", steps[i], why);
    if (!python_case(steps[i])) return fail("python, step %zu: %s", steps[i], why);
    if (!chunked_head_case(steps[i])) return fail("chunked, step %zu: %s", steps[i], why);
  }
  return true;
}

/* ---- framing --------------------------------------------------------------------- */
static bool t_interim_then_final(void) {
  static const char S[] = "HTTP/1.1 100 Continue\r\n\r\n"
                          "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
  http_head h;
  size_t off = 0, used;
  int statuses[3];
  http_head_init(&h, HTTP_HEAD_RESPONSE, 0, 0);
  for (int i = 0; i < 3; i++) {
    http_result r = http_head_feed(&h, S + off, strlen(S) - off, &used);
    if (r != HTTP_DONE) { http_head_free(&h); return fail("head %d: %d %s", i, r, h.err); }
    off += used;
    statuses[i] = http_head_status(&h);
    if (i < 2 && http_head_framing(&h, "GET").kind != HTTP_BODY_NONE) {
      http_head_free(&h);
      return fail("1xx has a body");
    }
    if (i < 2) http_head_reset(&h);
  }
  bool ok = statuses[0] == 100 && statuses[1] == 103 && statuses[2] == 200 &&
            strcmp(S + off, "hi") == 0 && http_head_framing(&h, "GET").length == 2;
  http_head_free(&h);
  CHECK(ok, "statuses %d %d %d, rest '%s'", statuses[0], statuses[1], statuses[2], S + off);
  return true;
}

static http_framing framing_of(const char *head, const char *method, bool *keep) {
  http_head h;
  size_t end;
  http_framing f = { (http_body_kind)-1, 0 };
  if (feed_head(&h, HTTP_HEAD_RESPONSE, head, strlen(head), 0, 0, &end) == HTTP_DONE) {
    f = http_head_framing(&h, method);
    if (keep) *keep = http_head_keep_alive(&h);
  }
  http_head_free(&h);
  return f;
}

static bool t_framing(void) {
  const char *len = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
  CHECK(framing_of(len, "GET", NULL).kind == HTTP_BODY_LENGTH, "200 with a length");
  CHECK(framing_of(len, "HEAD", NULL).kind == HTTP_BODY_NONE, "HEAD");
  CHECK(framing_of("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", "GET", NULL).kind == HTTP_BODY_NONE, "204");
  CHECK(framing_of("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", NULL).kind == HTTP_BODY_NONE, "304");
  CHECK(framing_of("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "GET", NULL).kind == HTTP_BODY_LENGTH, "length 0");
  CHECK(framing_of("HTTP/1.1 200 Connection established\r\n\r\n", "CONNECT", NULL).kind == HTTP_BODY_NONE, "CONNECT");
  bool keep = true;
  CHECK(framing_of("HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", "GET", &keep).kind == HTTP_BODY_CLOSE, "until close");
  CHECK(framing_of("HTTP/1.1 200\r\nContent-Length: 5, 5\r\n\r\n", "GET", NULL).length == 5, "list of equal lengths");
  CHECK(framing_of("HTTP/1.1 200\r\nContent-Length: 4611686018427387904\r\n\r\n", "GET", NULL).length == (uint64_t)1 << 62,
        "the largest length");
  /* RFC 9112 6.3: chunked wins over Content-Length, and the connection is not reused */
  http_framing f = framing_of("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", &keep);
  CHECK(f.kind == HTTP_BODY_CHUNKED && !keep, "CL + TE: kind %d keep %d", f.kind, keep);
  CHECK(framing_of("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\n", "GET", &keep).kind == HTTP_BODY_LENGTH && keep,
        "1.0 keep-alive");
  CHECK(framing_of("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", "GET", &keep).kind == HTTP_BODY_LENGTH && !keep,
        "Connection: close");
  return true;
}

static bool t_request(void) {
  static const char S[] = "GET /chat?room=1 HTTP/1.1\r\n"
                          "Host: 127.0.0.1:8080\r\n"
                          "Upgrade: websocket\r\n"
                          "Connection: keep-alive, Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Sec-WebSocket-Version: 13\r\n\r\n";
  for (size_t step = 0; step < 3; step++) {
    http_head h;
    size_t end;
    http_result r = feed_head(&h, HTTP_HEAD_REQUEST, S, strlen(S), step, 0, &end);
    bool ok = r == HTTP_DONE && end == strlen(S) && strcmp(http_head_method(&h), "GET") == 0 &&
              strcmp(http_head_target(&h), "/chat?room=1") == 0 &&
              http_head_has_token(&h, "connection", "upgrade") &&
              http_head_has_token(&h, "upgrade", "WebSocket") &&
              !http_head_has_token(&h, "upgrade", "websocke") &&
              http_head_framing(&h, NULL).kind == HTTP_BODY_NONE;
    if (!ok) fail("step %zu: r=%d err=%s", step, r, h.err);
    http_head_free(&h);
    if (!ok) return false;
  }
  return true;
}

static bool t_token_lists(void) {
  CHECK(http_list_has_token(" close ", 7, "close"), "trimmed");
  CHECK(http_list_has_token("a,,b , Close", 12, "close"), "empty elements and case");
  CHECK(!http_list_has_token("closed", 6, "close"), "prefix");
  CHECK(!http_list_has_token("", 0, "close"), "empty");
  return true;
}

static int range_of(const char *v, uint64_t *f, uint64_t *l, uint64_t *c) {
  return http_content_range(v, strlen(v), f, l, c);
}

static bool t_content_range(void) {
  uint64_t f, l, c;
  CHECK(range_of("bytes 100-149/200", &f, &l, &c) == 1 && f == 100 && l == 149 && c == 200, "a range of a known length");
  CHECK(range_of("bytes 0-0/1", &f, &l, &c) == 1 && f == 0 && l == 0 && c == 1, "one byte");
  CHECK(range_of("bytes 5-9/*", &f, &l, &c) == 0 && f == 5 && l == 9, "the length unknown");
  static const char *const bad[] = {"bytes 9-5/20", "bytes 5-9/9", "bytes 5-9", "bytes -9/20", "bytes 5-/20",
                                    "bytes 5-9/20 ", "bytes 5-9/*x", "bytes */20", "items 5-9/20", "bytes 5-9/",
                                    "bytes 99999999999999999999-1/2", "bytes 1-2/99999999999999999999", ""};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) CHECK(range_of(bad[i], &f, &l, &c) < 0, bad[i]);
  return true;
}

/* ---- errors: each with its message, whole and byte at a time ---------------------- */
typedef struct bad_case {
  http_head_kind kind;
  const char *input;
  size_t len;           /* 0: strlen */
  const char *message;  /* a part of the error text */
} bad_case;

#define RESP HTTP_HEAD_RESPONSE
#define REQ HTTP_HEAD_REQUEST
static const bad_case BAD[] = {
  { RESP, "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", 0, "obsolete line folding: ' b'" },
  { RESP, "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", 0, "bare CR in the head" },
  { RESP, "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n", 27, "bad character in a header field value: 'X: a?b'" },
  { RESP, "HTTP/1.1 200 OK\r\nX: a\x01\r\n\r\n", 0, "bad character in a header field value" },
  { RESP, "HTTP/1.1 200 OK\r\nX: a\x7f\r\n\r\n", 0, "bad character in a header field value" },
  { RESP, "HTTP/1.1 200 OK\nX: y\n\n", 0, "line ends in LF without CR: 'HTTP/1.1 200 OK'" },
  { RESP, "HTTP/1.1 2x0 OK\r\n\r\n", 0, "bad status code: 'HTTP/1.1 2x0 OK'" },
  { RESP, "HTTP/1.1 200OK\r\n\r\n", 0, "bad status code" },
  { RESP, "HTTP/1.1 099 Low\r\n\r\n", 0, "bad status code" },
  { RESP, "HTTP/1.1 20\r\n\r\n", 0, "bad status line" },
  { RESP, "HTTP/2.0 200 OK\r\n\r\n", 0, "unsupported HTTP version: 'HTTP/2.0 200 OK'" },
  { RESP, "HTTP/1.2 200 OK\r\n\r\n", 0, "unsupported HTTP version" },
  { RESP, "HTXP/1.1 200 OK\r\n\r\n", 0, "bad status line" },
  { RESP, "SSH-2.0-OpenSSH_9.2\r\n", 0, "bad status line" },
  { RESP, "HTTP/1.1 200 O\x01K\r\n\r\n", 0, "bad character in the reason phrase" },
  { RESP, "\r\nHTTP/1.1 200 OK\r\n\r\n", 0, "empty line where the status line should be" },
  { RESP, "HTTP/1.1 200 OK\r\nBad Name: v\r\n\r\n", 0, "bad header field name: 'Bad Name: v'" },
  { RESP, "HTTP/1.1 200 OK\r\nName : v\r\n\r\n", 0, "bad header field name" },
  { RESP, "HTTP/1.1 200 OK\r\nBad Name xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx: v\r\n\r\n", 0, "bad header field name: 'Bad Name xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'" },
  { RESP, "HTTP/1.1 200 OK\r\n: v\r\n\r\n", 0, "bad header field name" },
  { RESP, "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", 0, "bad header field name" },
  { RESP, "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n", 0, "bad Content-Length '12a'" },
  { RESP, "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, "bad Content-Length" },
  { RESP, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 0, "conflicting Content-Length values" },
  { RESP, "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n", 0, "conflicting Content-Length values" },
  { RESP, "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", 0, "Content-Length too large" },
  /* 2^64 + 4: wrapped, it would read as 4 */
  { RESP, "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551620\r\n\r\n", 0, "Content-Length too large" },
  { RESP, "HTTP/1.1 200 OK\r\nContent-Length: 4, 18446744073709551620\r\n\r\n", 0, "Content-Length too large" },
  { RESP, "HTTP/1.1 200 OK\r\nContent-Length: 4611686018427387905\r\n\r\n", 0, "Content-Length too large" },
  { RESP, "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", 0, "empty Content-Length" },
  { RESP, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 0, "unsupported Transfer-Encoding 'gzip'" },
  { RESP, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 0, "chunked applied twice" },
  { RESP, "HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\n", 0, "empty Transfer-Encoding" },
  { RESP, "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, "Transfer-Encoding in an HTTP/1.0 message" },
  { REQ, "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 0, "both Content-Length and Transfer-Encoding" },
  { REQ, "GET  / HTTP/1.1\r\n\r\n", 0, "bad request line: 'GET  / HTTP/1.1'" },
  { REQ, "GET / HTTP/1.1 x\r\n\r\n", 0, "bad request line" },
  { REQ, "GET /\xff HTTP/1.1\r\n\r\n", 0, "bad request line" },
  { REQ, "GET / HTTP/3.0\r\n\r\n", 0, "unsupported HTTP version" },
  { REQ, "G(T / HTTP/1.1\r\n\r\n", 0, "bad request line" },
  { REQ, "\r\nGET / HTTP/1.1\r\n\r\n", 0, "empty line where the request line should be" },
};

static bool one_bad(const bad_case *c, size_t step) {
  http_head h;
  size_t end, len = c->len ? c->len : strlen(c->input);
  http_result r = feed_head(&h, c->kind, c->input, len, step, 0, &end);
  bool ok = r == HTTP_ERROR && strstr(h.err, c->message) != NULL;
  if (!ok) fail("'%s' step %zu: result %d, message '%s', wanted '%s'", c->input, step, r, h.err, c->message);
  /* an error stays */
  if (ok && http_head_feed(&h, "x", 1, &end) != HTTP_ERROR) ok = fail("error did not stay");
  http_head_free(&h);
  return ok;
}

/* Header names and values a caller gives, checked before they are sent. */
static bool t_caller_fields(void) {
  CHECK(http_value_ok("caf\xc3\xa9 \t x") && http_value_ok(""), "obs-text and tabs in a value");
  CHECK(!http_value_ok("a\r\nb") && !http_value_ok("a\x7f") && !http_value_ok("\x01"), "controls in a value");
  CHECK(http_token_ok("X-Name_1.~") && !http_token_ok("") && !http_token_ok("caf\xc3\xa9") && !http_token_ok("a b") &&
            !http_token_ok("a:b"),
        "tokens");
  return true;
}

static bool t_errors(void) {
  for (size_t i = 0; i < sizeof BAD / sizeof *BAD; i++)
    for (size_t step = 0; step < 3; step++)
      if (!one_bad(&BAD[i], step)) return false;
  return true;
}

static bool t_limits(void) {
  http_head h;
  size_t end;
  const char *s = "HTTP/1.1 200 OK\r\nServer: a-rather-long-server-name/1.0\r\nX: y\r\n\r\n";
  size_t n = strlen(s);
  for (size_t step = 0; step < 2; step++) {
    /* exactly at the cap passes, a byte less fails */
    http_result r = feed_head(&h, RESP, s, n, step, (uint32_t)n, &end);
    http_head_free(&h);
    CHECK(r == HTTP_DONE && end == n, "head of exactly the cap: %d", r);
    r = feed_head(&h, RESP, s, n, step, (uint32_t)n - 1, &end);
    bool ok = r == HTTP_ERROR && strstr(h.err, "head larger than");
    http_head_free(&h);
    CHECK(ok, "head over the cap: %d", r);
  }
  /* an endless header line stops at the default cap */
  size_t big = 70000;
  char *b = malloc(big);
  memcpy(b, "HTTP/1.1 200 OK\r\nX: ", 20);
  memset(b + 20, 'a', big - 20);
  http_result r = feed_head(&h, RESP, b, big, 1000, 0, &end);
  bool ok = r == HTTP_ERROR && strcmp(h.err, "head larger than 65536 bytes") == 0 && end <= 65536;
  http_head_free(&h);
  /* 100 fields pass, 101 fail */
  char *p = b;
  p += sprintf(p, "HTTP/1.1 200 OK\r\n");
  for (int i = 0; i < 100; i++) p += sprintf(p, "X-%d: %d\r\n", i, i);
  sprintf(p, "\r\n");
  r = feed_head(&h, RESP, b, strlen(b), 0, 0, &end);
  ok = ok && r == HTTP_DONE && http_head_nfields(&h) == 100;
  http_head_free(&h);
  sprintf(p, "X-100: 1\r\n\r\n");
  r = feed_head(&h, RESP, b, strlen(b), 0, 0, &end);
  ok = ok && r == HTTP_ERROR && strcmp(h.err, "more than 100 header fields") == 0;
  http_head_free(&h);
  free(b);
  CHECK(ok, "endless line or field count: %d %s", r, h.err);
  return true;
}

/* ---- chunked bodies ---------------------------------------------------------------- */
/* Decodes s fed in pieces of step bytes (0: at once) through http_chunked_feed. */
static http_result dechunk(http_chunked *c, const char *s, size_t len, size_t step,
                           char *out, size_t *out_len, size_t *end) {
  size_t off = 0, o = 0;
  http_result r = HTTP_MORE;
  http_chunked_init(c);
  while (off < len) {
    size_t piece = step && len - off > step ? step : len - off, pos = 0;
    while (pos < piece) {
      size_t used, bl;
      const char *b;
      r = http_chunked_feed(c, s + off + pos, piece - pos, &used, &b, &bl);
      if (bl) memcpy(out + o, b, bl);
      o += bl;
      pos += used;
      if (r != HTTP_MORE) break;
    }
    off += pos;
    if (r != HTTP_MORE) break;
  }
  *out_len = o;
  *end = off;
  return r;
}

static const char CHUNKED[] =
    "5\r\nhello\r\n"
    "6;name=value;flag\r\n world\r\n"
    "1A \t; ext=\"quoted; string\"\r\nabcdefghijklmnopqrstuvwxyz\r\n"
    "0\r\n"
    "Expires: never\r\n"
    "X-Checksum: 1234\r\n"
    "\r\n"
    "HTTP/1.1 200 OK\r\n";

static bool t_chunked(void) {
  size_t steps[] = { 0, 1, 3, 11 };
  const char *want = "hello worldabcdefghijklmnopqrstuvwxyz";
  for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
    http_chunked c;
    char out[256];
    size_t n, end;
    http_result r = dechunk(&c, CHUNKED, strlen(CHUNKED), steps[i], out, &n, &end);
    const http_head *t = http_chunked_trailer(&c);
    bool ok = r == HTTP_DONE && n == strlen(want) && memcmp(out, want, n) == 0 &&
              end == strlen(CHUNKED) - strlen("HTTP/1.1 200 OK\r\n") &&
              http_head_nfields(t) == 2 && strcmp(http_head_get(t, "x-checksum", NULL), "1234") == 0;
    if (!ok) fail("step %zu: r=%d n=%zu end=%zu err=%s", steps[i], r, n, end, c.err);
    http_chunked_free(&c);
    if (!ok) return false;
  }
  /* the in-place decoder over the whole buffer */
  http_chunked c;
  char buf[sizeof CHUNKED];
  size_t used, n;
  memcpy(buf, CHUNKED, sizeof CHUNKED);
  http_chunked_init(&c);
  http_result r = http_chunked_decode(&c, buf, strlen(buf), &used, &n);
  http_chunked_free(&c);
  CHECK(r == HTTP_DONE && n == strlen(want) && memcmp(buf, want, n) == 0, "in place: %d", r);
  return true;
}

static bool t_chunked_empty(void) {
  http_chunked c;
  char out[8];
  size_t n, end;
  http_result r = dechunk(&c, "0\r\n\r\n", 5, 1, out, &n, &end);
  bool ok = r == HTTP_DONE && n == 0 && end == 5 && http_head_nfields(http_chunked_trailer(&c)) == 0;
  http_chunked_free(&c);
  CHECK(ok, "0 CRLF CRLF: %d", r);
  r = dechunk(&c, "000\r\n\r\n", 7, 0, out, &n, &end);
  ok = r == HTTP_DONE && end == 7;
  http_chunked_free(&c);
  CHECK(ok, "leading zeros: %d", r);
  r = dechunk(&c, "5\r\nhel", 6, 0, out, &n, &end);
  ok = r == HTTP_MORE && n == 3;
  http_chunked_free(&c);
  CHECK(ok, "a cut body wants more: %d", r);
  return true;
}

typedef struct bad_chunk {
  const char *input;
  const char *message;
} bad_chunk;

static const bad_chunk BAD_CHUNKS[] = {
  { "g\r\n", "bad chunk size (byte 0x67)" },
  { "\r\n", "bad chunk size (byte 0x0d)" },
  { "-5\r\n", "bad chunk size (byte 0x2d)" },
  { "5 x\r\nhello\r\n", "bad chunk size (byte 0x78)" },
  { "0x5\r\nhello\r\n", "bad chunk size (byte 0x78)" },
  { "5\r\nhelloXX", "chunk data not followed by CRLF" },
  { "5\r\nhello\rX", "chunk data not followed by CRLF" },
  { "5\nhello", "chunk size line without CRLF" },
  { "5\r\rhello", "chunk size line without CRLF" },
  { "11111111111111111\r\n", "chunk size too large" },
  { "1;a=\x01\r\n", "bad character 0x01 in a chunk extension" },
  { "0\r\nX: a\r\n  b\r\n\r\n", "chunked trailer: obsolete line folding" },
  { "0\r\nBad Field\r\n\r\n", "chunked trailer: bad header field name" },
  { "0\r\nX: y\n\n", "chunked trailer: line ends in LF without CR" },
};

static bool t_chunked_errors(void) {
  for (size_t i = 0; i < sizeof BAD_CHUNKS / sizeof *BAD_CHUNKS; i++) {
    for (size_t step = 0; step < 2; step++) {
      http_chunked c;
      char out[64];
      size_t n, end;
      http_result r = dechunk(&c, BAD_CHUNKS[i].input, strlen(BAD_CHUNKS[i].input), step, out, &n, &end);
      bool ok = r == HTTP_ERROR && strstr(c.err, BAD_CHUNKS[i].message);
      if (!ok) fail("'%s' step %zu: %d '%s', wanted '%s'", BAD_CHUNKS[i].input, step, r, c.err, BAD_CHUNKS[i].message);
      http_chunked_free(&c);
      if (!ok) return false;
    }
  }
  return true;
}

static bool t_chunked_limits(void) {
  size_t big = HTTP_MAX_TRAILER + 64;
  char *s = malloc(big + 16), *out = malloc(big);
  http_chunked c;
  size_t n, end;
  /* a chunk-size line of endless extension */
  memcpy(s, "1;", 2);
  memset(s + 2, 'e', big - 2);
  http_result r = dechunk(&c, s, big, 100, out, &n, &end);
  bool ok = r == HTTP_ERROR && strcmp(c.err, "chunk size line longer than 4096 bytes") == 0;
  http_chunked_free(&c);
  /* an endless trailer */
  memcpy(s, "0\r\nX: ", 6);
  memset(s + 6, 'v', big - 6);
  r = dechunk(&c, s, big, 0, out, &n, &end);
  ok = ok && r == HTTP_ERROR && strstr(c.err, "chunked trailer: head larger than 16384 bytes");
  http_chunked_free(&c);
  free(s);
  free(out);
  CHECK(ok, "%d %s", r, c.err);
  return true;
}

int main(void) {
  report("real heads (nginx, Python http.server), whole and in pieces", t_real_heads());
  report("1xx heads before the final one", t_interim_then_final());
  report("body framing: HEAD, 1xx, 204, 304, CONNECT, length, chunked, until close", t_framing());
  report("a WebSocket upgrade request", t_request());
  report("comma-separated token lists", t_token_lists());
  report("a 206's Content-Range", t_content_range());
  report("header names and values from the caller", t_caller_fields());
  report("every malformed head fails with its message, at once and byte at a time", t_errors());
  report("head size and field count limits", t_limits());
  report("chunked body with extensions and trailer, in pieces and in place", t_chunked());
  report("empty and cut chunked bodies", t_chunked_empty());
  report("every malformed chunked body fails with its message", t_chunked_errors());
  report("chunk-size line and trailer limits", t_chunked_limits());
  return tap_done();
}
