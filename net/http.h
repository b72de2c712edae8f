/* http.h: the HTTP client exchange, shared by
 *   http.c      the owner API (net_http_*): rings and atomics only;
 *   http_io.c   the I/O thread: connection, request, response, redirects;
 *   http_body.c the I/O thread: body framing, decoding, the owner's buffer;
 *   http_req.c  any thread: the request's copy of the caller's options, and
 *               the request text.
 * Calls go down that list only. */
#ifndef SLUICE_HTTP_H
#define SLUICE_HTTP_H

#include "conn.h"
#include "http_parse.h"
#include "inflate.h"
#include "ring.h"
#include "url.h"

#define HTTP_DEFAULT_TIMEOUT_MS 300000
#define HTTP_DEFAULT_MAX_SIZE ((uint64_t)64 << 20)
#define HTTP_DEFAULT_REDIRECTS 5
#define HTTP_MAX_RATIO 1000u        /* decoded / encoded, past the inflate floor */
#define HTTP_STAGE 65536            /* body bytes between framing and decoding */
#define HTTP_FILE_BATCH (256 * 1024)   /* body bytes that wake the file writer */
#define PIECE 16384                 /* decoded bytes made per step */

enum { HREQ_CANCEL = 1, HREQ_CLOSE = 2, HREQ_RESUME = 4 };

typedef struct http_file http_file;
typedef struct http_src http_src;

typedef enum http_phase {
  HP_START,      /* no connection yet (first attempt, or after a redirect) */
  HP_EXCHANGE,   /* request going out, response head coming in */
  HP_BODY,       /* the response body */
  HP_FILE,       /* the body ended: its file is being finished */
  HP_DONE        /* ended: the state says how */
} http_phase;

/* The final response head, published once (immutable, freed with the request). */
typedef struct http_resp {
  net_http_response r;
  /* names, values, reason and url point into the same allocation */
} http_resp;

/* What the caller asked for, copied (immutable once the request starts). */
typedef struct http_req {
  char *method;
  size_t nhdr;
  char **names, **values;      /* the caller's headers, as given */
  char *body;
  size_t body_len;
  int timeout_ms, connect_timeout_ms, idle_timeout_ms, max_redirects;
  uint64_t max_size;
  bool max_size_given;         /* a file is capped only then */
  bool decompress, allow_downgrade;
  net_tls_opts *tls;           /* deep copy, or NULL */
  char *tls_key;               /* the TLS options as a pool key part */
  char *proxy;                 /* the caller's proxy URL ("": none), or NULL */
  char *env[4];                /* NULL proxy: HTTPS_PROXY, http_proxy, ALL_PROXY, NO_PROXY then */
  bool keepalive;
  size_t buffer_size;
} http_req;

struct net_http {
  net_ring body;                        /* I/O thread produces decoded body, owner consumes */
  _Alignas(NET_CACHELINE) net_io obj;
  atomic_int state;                     /* net_status */
  atomic_int requests;                  /* HREQ_* from the owner */
  atomic_int body_paused;               /* the body ring was full: the owner's read kicks */
  _Atomic(http_resp *) resp;            /* the final head, once it arrived */
  _Atomic(http_resp *) *hops;           /* max_redirects + 1 slots: each redirect answered
                                           (followed, or the one refused) */
  atomic_int nhops;                     /* hops published (release after the slot) */
  atomic_uint_fast64_t received, total, sent, send_total;
  atomic_int has_total;
  net_error err;                        /* before FAILURE is published */
  http_req req;
  http_file *file;                      /* output: the file the body goes to */
  http_src *src;                        /* body_file: the file the request body comes from */
  /* I/O thread only */
  uint64_t offset;                      /* output with resume: bytes already there */
  uint64_t src_size;                    /* body_file: its size, once known */
  bool src_asked;                       /* its first job queued */
  bool file_asked, resumed;             /* the file's first job queued; a 206 took up offset */
  uint64_t range_end;                   /* a resumed 206 framed without a length: the file's size
                                         * its Content-Range gave, which the body must reach exactly */
  bool fail_held;                       /* failed: shown once the file job let go of the .part */
  uint64_t held_at;                     /* when the failure came, to bound the hold */
  http_phase phase;
  net_url url;                          /* the current target */
  char where[NET_URL_HOST_MAX + 16];    /* "host:port" for messages */
  int redirects;
  const char *method;                   /* the caller's, or GET after a 303 */
  net_conn *c;
  bool reused, retried;                 /* c came from the pool; one retry on a fresh one done */
  const char *via;                      /* the proxy of this attempt, or NULL */
  bool absolute;                        /* plain http through an http proxy: absolute-form */
  char proxy_auth[700];                 /* absolute-form: "Basic ..." or "" */
  char proxy_where[NET_URL_HOST_MAX + 16];   /* absolute-form: the proxy's "host:port" */
  char pool_key[NET_URL_HOST_MAX + 512];
  char *out;                            /* the request text being written */
  size_t out_len, out_pos, head_len;
  bool send_body;                       /* this attempt sends the caller's body */
  http_head head;
  size_t head_bytes;                    /* of the head being parsed */
  bool interim;                         /* this attempt had a 1xx: the server has the request */
  bool answered;                        /* a 2xx ended before the request body went out whole */
  bool started;                         /* the first kick came: the timeout runs */
  http_framing framing;
  http_chunked chunked;
  uint64_t body_left;                   /* HTTP_BODY_LENGTH: encoded bytes still due */
  char *stage;                          /* HTTP_STAGE bytes: framed-off body not yet decoded */
  size_t stage_len, stage_pos;
  char *pend;                           /* PIECE decoded bytes the owner's buffer has not taken */
  size_t pend_len, pend_pos;
  bool framed_end;                      /* the framing ended: what is staged is the rest */
  uint64_t delivered;                   /* decoded bytes handed to the owner */
  net_inflate inf;
  bool inflating;
  uint64_t deadline;
};

/* http_req.c */
bool net__http_req_copy(http_req *r, const net_http_opts *o, const char **err);
void net__http_req_free(http_req *r);
/* The TLS part of the pool key again, after the options changed. */
bool net__http_req_rekey(http_req *r);
/* The request text for h's current URL into h->out (head, then the body when
 * h->send_body). false when out of memory. */
bool net__http_build(net_http *h);
/* The caller's Content-Length when it is not the size of the body file this
 * attempt sends, else NULL. */
const char *net__http_bad_length(const net_http *h);
/* Whether name is one of the fields that identify the caller to one origin. */
bool net__http_origin_bound(const char *name);
/* Whether the caller gave that header (any case). */
bool net__http_req_given(const http_req *r, const char *name);
/* The proxy for h's current URL (the caller's, or the environment's unless
 * NO_PROXY names the host), or NULL. */
const char *net__http_proxy_for(const net_http *h);
/* Whether NO_PROXY's list exempts host: "*", or comma-separated entries,
 * each a name (the host and its subdomains; a leading or final dot and a
 * port are ignored), an IP literal (brackets allowed) or a CIDR block
 * ("10.0.0.0/8", "fe80::/10"), which match only addresses. */
bool net__http_no_proxy(const char *list, const char *host);

/* http_pool.c (I/O thread): idle keep-alive connections by key. */
void net__http_pool_put(const char *key, net_conn *c);
/* Hands the connection to link, with link's idle timeout (0: none). */
net_conn *net__http_pool_take(const char *key, net_io *link, int idle_timeout_ms);

/* http_file.c: the output file, written on a helper lane. */
http_file *net__http_file_new(const char *path, bool resume, const char *sha256, const char **err);
void net__http_file_free(http_file *f);
/* I/O thread: queues a job for what is new (preparing, writing, finishing);
 * false when the lane is full. */
bool net__http_file_kick(net_http *h);
/* I/O thread: 1 and *offset once the file is open, 0 before, -1 failed. */
int net__http_file_prepared(http_file *f, uint64_t *offset);
void net__http_file_restart(http_file *f);   /* the whole body comes after all */
void net__http_file_final(http_file *f);     /* no more body: finish the file */
bool net__http_file_abandon(http_file *f);   /* the exchange failed: never rename into place (false: too late) */
bool net__http_file_settled(http_file *f);   /* no job will touch the .part any more */
const char *net__http_file_refusal(void);     /* why the lane took no job: full, or no helper */
const char *net__http_src_refusal(void);      /* the same for uploads (body_file) */
/* 1 in place, 0 not yet, -1 failed (*err). */
int net__http_file_result(http_file *f, net_error *err);

/* http_src.c: a request body read from a file on a helper lane. */
http_src *net__http_src_new(const char *path, const char **err);
void net__http_src_free(http_src *s);
bool net__http_src_kick(net_http *h);                                /* I/O thread */
int net__http_src_prepared(http_src *s, uint64_t *size, net_error *err);   /* 1, 0 not yet, -1 */
/* I/O thread: file bytes into the connection; the count, or -1 with *err. */
long net__http_src_send(net_http *h, net_conn *c, net_error *err);
bool net__http_src_done(const http_src *s);                          /* all of it sent */
/* I/O thread: the body again from the start (a new source); false: out of memory. */
bool net__http_src_rewind(net_http *h);

/* http_io.c */
extern const net_io_ops net__http_ops;

/* http_body.c (I/O thread) */
/* Sets up framing and decoding for the head just parsed; false: h failed. */
bool net__http_body_begin(net_http *h);
/* Moves body bytes from the connection to the owner's buffer. Returns 1
 * when the body ended, 0 for more later, -1 when h failed. */
int net__http_body_pump(net_http *h);
void net__http_body_free(net_http *h);
void net__http_show_failure(net_http *h);   /* a held failure, once its file settled */
void net__http_fail(net_http *h, net_err code, const char *fmt, ...) NET_PRINTF(3, 4);
/* "/a/b?...": a path for messages, without its query (a signed URL's query
 * neither crowds out the reason nor goes into logs). */
void net__http_short_path(const char *path, char *out, size_t len);
/* Fails h with its connection's failure; the proxy's, when the request goes
 * to an http proxy whole (the connection is the proxy's). */
void net__http_conn_failed(net_http *h);

#endif
