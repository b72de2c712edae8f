/* http_parse.h: HTTP/1.1 message heads (responses, requests, trailers) and chunked
 * bodies, fed bytes in pieces as they arrive. Engine-internal; any thread; pure. */
#ifndef SLUICE_HTTP_PARSE_H
#define SLUICE_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEAD_DEFAULT    65536u   /* bytes of a head, start line to empty line */
#define HTTP_MAX_FIELDS_DEFAULT  100u     /* header fields of a head */
#define HTTP_MAX_TRAILER         16384u   /* bytes of a chunked body's trailer section */
#define HTTP_MAX_CHUNK_LINE      4096u    /* a chunk-size line with its extensions */
#define HTTP_ERR_MAX             160

/* What a feed call says. */
typedef enum http_result {
  HTTP_ERROR = -1,    /* malformed or over a limit: the object's err says what */
  HTTP_MORE = 0,      /* every byte given was taken; feed more */
  HTTP_DONE = 1,      /* the message part ended; *used says where */
} http_result;

typedef enum http_head_kind {
  HTTP_HEAD_RESPONSE,  /* HTTP/1.x NNN reason */
  HTTP_HEAD_REQUEST,   /* METHOD target HTTP/1.x */
  HTTP_HEAD_TRAILER,   /* header fields only (a chunked body's trailer section) */
} http_head_kind;

typedef struct http_field {
  const char *name;    /* lower case, NUL-terminated */
  size_t name_len;
  const char *value;   /* without surrounding whitespace, NUL-terminated */
  size_t value_len;
} http_field;

typedef struct http_field_pos {
  uint32_t name, name_len, value, value_len;
} http_field_pos;

/* A head under parse, then parsed. Owns a copy of the head's bytes (grown as needed,
 * never past max_head), so the caller's buffers may be reused after every feed.
 * Everything below is private but for err; use the accessors. */
typedef struct http_head {
  http_head_kind kind;
  uint32_t max_head, max_fields;
  char *buf;                 /* the head's bytes; lines end in NUL once parsed */
  uint32_t len, cap;         /* bytes in buf, allocated size */
  uint32_t line;             /* start of the line not yet complete */
  bool started;              /* the start line is parsed (or there is none) */
  bool done, failed;
  bool oom;                  /* failed for want of memory, not for what was sent */
  /* start line (offsets into buf) */
  uint32_t method, target, reason;
  int version_minor;         /* 0 or 1 */
  int status;
  /* fields */
  http_field_pos *fields;
  uint32_t nfields, fields_cap;
  /* framing facts, gathered when the head ends */
  bool has_length, chunked, has_te;
  uint64_t content_length;
  char err[HTTP_ERR_MAX];
} http_head;

/* max_head / max_fields 0 take the defaults. Allocates nothing until the first feed. */
void http_head_init(http_head *h, http_head_kind kind, uint32_t max_head, uint32_t max_fields);
void http_head_free(http_head *h);
/* Ready for the next message, keeping the limits (and the buffer). */
void http_head_reset(http_head *h);

/* Feeds the next len bytes of the stream. HTTP_MORE: all taken (*used = len).
 * HTTP_DONE: the head ended after *used of these bytes (the rest is body or the next
 * message). HTTP_ERROR: h->err says what, h->oom whether memory ran out (*used
 * means nothing then); further feeds keep failing. Splitting the stream
 * differently gives the same outcome. */
http_result http_head_feed(http_head *h, const char *data, size_t len, size_t *used);

/* After HTTP_DONE; the strings live in h until http_head_reset or http_head_free. */
int http_head_status(const http_head *h);               /* responses */
const char *http_head_reason(const http_head *h);       /* responses; maybe "" */
const char *http_head_method(const http_head *h);       /* requests */
const char *http_head_target(const http_head *h);       /* requests */
int http_head_version(const http_head *h);              /* minor version: 0 or 1 */
size_t http_head_nfields(const http_head *h);
http_field http_head_field(const http_head *h, size_t i);
/* The first field called name (any case), or NULL. */
const char *http_head_get(const http_head *h, const char *name, size_t *len);
/* Whether any field called name lists token (comma-separated, any case):
 * http_head_has_token(h, "connection", "close"). */
bool http_head_has_token(const http_head *h, const char *name, const char *token);
/* Whether a NUL-terminated string is a token (a header name), or a field
 * value without CR, LF or other control bytes (no header injection). */
bool http_token_ok(const char *s);
bool http_value_ok(const char *s);
/* Whether the comma-separated list v[0..len) holds token (any case). */
bool http_list_has_token(const char *v, size_t len, const char *token);
/* A 206's Content-Range value "bytes first-last/complete" (RFC 9110 14.4):
 * 1 with all three, 0 when the complete length is "*", -1 when malformed
 * (last before first, numbers past 2^63). */
int http_content_range(const char *v, size_t len, uint64_t *first, uint64_t *last, uint64_t *complete);
/* Whether the connection may carry another message after this one (version,
 * Connection, and framing that forces a close). */
bool http_head_keep_alive(const http_head *h);

typedef enum http_body_kind {
  HTTP_BODY_NONE,      /* no body: HEAD, 1xx, 204, 304; a request without length */
  HTTP_BODY_LENGTH,    /* exactly length bytes */
  HTTP_BODY_CHUNKED,   /* chunked transfer coding: http_chunked */
  HTTP_BODY_CLOSE,     /* a response read until the server closes */
} http_body_kind;

typedef struct http_framing {
  http_body_kind kind;
  uint64_t length;     /* HTTP_BODY_LENGTH */
} http_framing;

/* How the body of a parsed head is delimited (RFC 9112 section 6.3). request_method
 * is the method of the request a response answers ("HEAD" means no body), ignored
 * for requests. Conflicting or unusable framing was already an HTTP_ERROR of feed. */
http_framing http_head_framing(const http_head *h, const char *request_method);

/* ---- chunked bodies ---------------------------------------------------------------- */

typedef struct http_chunked {
  int state;
  uint64_t remaining;        /* bytes left in the current chunk */
  uint32_t line_len;         /* bytes of the chunk-size line so far */
  int digits;
  http_head trailer;         /* the trailer section, parsed with the header rules */
  bool failed;
  char err[HTTP_ERR_MAX];
} http_chunked;

void http_chunked_init(http_chunked *c);
void http_chunked_free(http_chunked *c);

/* Feeds the next len bytes of a chunked body. Takes *used bytes and points *body at
 * the body bytes among them (*body_len of them, maybe 0; a slice of data). At most
 * one slice per call: loop while HTTP_MORE and bytes remain. HTTP_DONE: the body and
 * its trailer ended after *used bytes (the rest belongs to the next message).
 * HTTP_ERROR: c->err says what (*used means nothing then). Splitting the stream
 * differently gives the same body and outcome. */
http_result http_chunked_feed(http_chunked *c, const char *data, size_t len, size_t *used,
                              const char **body, size_t *body_len);

/* The same over a whole buffer, decoding in place: the body bytes end up at buf[0..
 * *out_len). *used as above. */
http_result http_chunked_decode(http_chunked *c, char *buf, size_t len, size_t *used,
                                size_t *out_len);

/* After HTTP_DONE: the trailer's fields (none when it had none). */
const http_head *http_chunked_trailer(const http_chunked *c);

#endif
