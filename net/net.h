/* net.h: the public C API of the sluice engine, for hosts with or without Lua.
 * Every function here is called from an owner thread and returns at once; only
 * the *_wait functions block, and only for the timeout they are given. */
#ifndef SLUICE_NET_H
#define SLUICE_NET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define NET_API __declspec(dllexport)
#else
#define NET_API __attribute__((visibility("default")))
#endif

typedef enum net_status {
  NET_WAITING = 0,  /* resolving, connecting or handshaking */
  NET_SUCCESS = 1,  /* resolved / established */
  NET_FAILURE = 2   /* failed or closed; see the error code and message */
} net_status;

/* X(name, code string for programs, default text for people) */
#define NET_ERRORS(X)                                        \
  X(NONE, "", "no error")                                    \
  X(CLOSED, "closed", "closed")                              \
  X(REFUSED, "refused", "connection refused")                \
  X(RESET, "reset", "connection reset")                      \
  X(TIMEOUT, "timeout", "timed out")                         \
  X(UNREACHABLE, "unreachable", "unreachable")               \
  X(DNS, "dns", "name resolution failed")                    \
  X(TLS, "tls", "TLS failure")                               \
  X(TLS_VERIFY, "tls-verify", "certificate not trusted")     \
  X(LIMIT, "limit", "out of resources")                      \
  X(INVALID, "invalid", "invalid argument")                  \
  X(IO, "io", "input/output error")                          \
  X(PROTOCOL, "protocol", "protocol error")                  \
  X(CANCELLED, "cancelled", "cancelled")                    \
  X(PROXY, "proxy", "proxy failure")

typedef enum net_err {
#define NET_ERR_ENUM(name, code, text) NET_E_##name,
  NET_ERRORS(NET_ERR_ENUM)
#undef NET_ERR_ENUM
  NET_E_COUNT
} net_err;

/* Stable short code ("refused", "dns", ...) and default text of an error. */
NET_API const char *net_errcode(net_err e);
NET_API const char *net_strerror(net_err e);

/* A piece of buffer memory (a zero-copy view into a connection's buffer). */
typedef struct net_span {
  char *base;
  size_t len;
} net_span;

#define NET_IP_MAX 64            /* an IP address as text, with an IPv6 zone */
#define NET_BUFFER_MAX (1u << 30)   /* the largest buffer_size */
#define NET_FIND_MAX 1024        /* the longest delimiter net_conn_find takes */

/* A status with its failure details; msg is "" unless status is NET_FAILURE. */
typedef struct net_result {
  net_status status;
  net_err err;
  const char *msg;   /* valid while the object is referenced */
} net_result;

/* Engine setup: returns 0, or -1 when the engine cannot be set up. net_quit
 * pairs with it and never blocks, but on Windows, where the exit of the
 * process stops the I/O thread first, the last net_quit waits for closes
 * still sending (each bounded by its linger); it turns host wake-ups off
 * (no SDL event or callback reaches the host after it returns). The I/O
 * thread starts with the first object and then stays parked for the life of
 * the process; closing a handle never waits for it (a lingering close
 * finishes in the background). A child forked after net_init has no I/O
 * thread and takes no work: what it opens fails at once ("cannot start the
 * I/O thread"), its waits only time out, and its exit waits for nothing. */
NET_API int net_init(void);
NET_API void net_quit(void);

/* Block at most timeout_ms (-1: forever) until the engine publishes anything
 * (data, state change, drained buffer). Returns 1 on activity, 0 on timeout. */
NET_API int net_wait_activity(int timeout_ms);
/* The same, counting from *seen (0 at first): returns at once if anything
 * was published since the caller's previous wait, and updates *seen. */
NET_API int net_wait_activity_since(uint64_t *seen, int timeout_ms);

/* Host wake-ups: when data arrives or a state changes, a background thread
 * wakes the host's frame loop once, and repeats that at most every 20 ms
 * while the host leaves news unread (then once a second, after a second
 * without a call), so a host that dropped a wake-up it was not ready for
 * gets another; one with nothing unread behind it (room to write) is
 * repeated for a second at most. Closes finishing wake no host.
 * NET_WAKE_SDL pushes an SDL user event (of the type net_wakeup_event_type
 * returns, code 1) through the SDL the host runs, SDL3 or SDL2, found at run
 * time (never linked): a loop asleep in SDL_WaitEvent* runs at once.
 * NET_WAKE_CALLBACK calls fn(ud) on a background thread; it must return
 * quickly and must not call back into the engine. NET_WAKE_OFF: none.
 * A call that replaces a callback returns once no call of it is running:
 * then its ud may be freed. At most 64 different settings per process.
 * Returns 0, or -1 with *why (static text): no SDL reachable in this process
 * (an SDL linked statically into the host exports nothing), an SDL whose
 * events are not initialised yet, ... The SDL is found among the libraries
 * already loaded, without searching the file system. */
typedef enum net_wake_mode { NET_WAKE_OFF, NET_WAKE_SDL, NET_WAKE_CALLBACK } net_wake_mode;
NET_API int net_set_wakeup(net_wake_mode mode, void (*fn)(void *ud), void *ud, const char **why);
NET_API uint32_t net_wakeup_event_type(void);   /* 0 unless NET_WAKE_SDL is on */
NET_API int net_wakeup_sdl_version(void);       /* 2 or 3 while NET_WAKE_SDL is on, else 0 */

/* Monotonic time in seconds. */
NET_API double net_clock(void);

typedef struct net_stats {
  size_t module_bytes;  /* memory the engine holds (objects, buffers, queues) */
  size_t heap_bytes;    /* malloc'ed bytes in use in the whole process, the host's
                           included (glibc), else 0 */
  size_t connections;   /* connection objects alive in the engine */
  size_t servers;       /* listening servers alive */
  size_t udp;           /* UDP sockets alive in the engine */
  size_t addresses;     /* address objects alive */
  size_t http;          /* HTTP exchanges alive */
  size_t websockets;    /* websockets alive (connecting, open or closing) */
  size_t buffer_bytes;  /* ring memory held by all connections and UDP sockets */
  size_t chunks;        /* buffer chunks handed out */
} net_stats;
NET_API net_stats net_get_stats(void);

/* Tests: lets `after` more engine allocations succeed, then fails `count` in
 * a row (count 0: off). Failures surface as "limit" errors. */
NET_API void net_debug_fail_allocs(long after, long count);
/* Tests: a custom resolver made from now on ends a lookup after ms in all
 * (or tries x timeout per nameserver when longer) instead of 60 s; 0: 60 s. */
NET_API void net_debug_lookup_max(int ms);
/* Tests: for ms from now the I/O thread runs no owner's request (it still
 * reads and writes), as a busy one might leave them; 0: at once again. */
NET_API void net_debug_hold_requests(int ms);

/* ---- Addresses --------------------------------------------------------- */
typedef struct net_addr net_addr;

/* Starts resolving host (len bytes, no NUL, 1..253 bytes) in the background.
 * Numeric literals are resolved at once, names from the hosts file (and
 * "localhost") without waiting behind other lookups. Returns NULL with *err
 * (naming host; valid until this thread's next call) and *code (may be
 * NULL): NET_E_INVALID for a name no lookup can take, NET_E_LIMIT when
 * memory runs out. Too many lookups in progress show as the address's
 * failure, code NET_E_LIMIT. The caller owns one reference. */
NET_API net_addr *net_resolve(const char *host, size_t len, const char **err, net_err *code);
NET_API net_result net_addr_status(net_addr *a);
NET_API net_result net_addr_wait(net_addr *a, int timeout_ms);
NET_API const char *net_addr_ip(net_addr *a);        /* NULL unless resolved */
NET_API const char *net_addr_hostname(net_addr *a);
NET_API net_addr *net_addr_ref(net_addr *a);
NET_API void net_addr_unref(net_addr *a);
/* A resolved address from an IP literal ("127.0.0.1", "::1", "[::1]",
 * "fe80::1%eth0"), or NULL with *err: never a lookup. */
NET_API net_addr *net_parse_ip(const char *s, size_t len, const char **err);
/* 4 or 6 for an IP literal (and *multicast, when not NULL), else 0. */
NET_API int net_ip_family(const char *s, size_t len, int *multicast);

/* ---- TCP connections --------------------------------------------------- */
typedef struct net_conn net_conn;

/* TLS client options; every field may be 0/NULL for the default. The engine
 * copies what it needs, so the caller's strings may go away afterwards. */
typedef struct net_tls_opts {
  int no_verify;                 /* 1: skip certificate checks (default: verify) */
  const char *server_name;       /* SNI and name checked; default: the host */
  const char *ca_file, *ca_path; /* default: net_set_cacert_path, else the system's */
  const char *cert_file, *key_file, *key_password;   /* client certificate */
  const char *const *alpn;       /* NULL-terminated protocol list */
  int min_version;               /* 12: TLS 1.2 (default), 13: TLS 1.3 */
  int require_client_cert;       /* servers: ask for one and verify it against ca_file */
  const char *pkcs12_file;       /* a PKCS#12 client certificate: mbedTLS cannot read one,
                                    so this is refused (NET_E_INVALID) with the command
                                    that converts it to PEM */
  int no_resume;                 /* 1: every handshake is a full one (clients neither offer
                                    nor keep sessions; servers issue no session tickets) */
} net_tls_opts;

typedef struct net_tls_info {
  char version[16];              /* "TLSv1.2" */
  char cipher[96];
  char alpn[256];                /* "" when none was agreed */
  char peer_subject[1024];       /* "" without a peer certificate; "..." ends a longer one */
} net_tls_info;

/* Whether the mbedTLS in use speaks TLS 1.3. */
NET_API int net_tls_has_13(void);

/* The PEM bundle (file or directory) later verifying connections use when
 * they name none; NULL restores the system search. Returns 0, or -1 when
 * memory ran out: the earlier setting stays (never the system's instead). */
NET_API int net_set_cacert_path(const char *path);
/* Copies the bundle in use (the one set, else SSL_CERT_FILE / SSL_CERT_DIR,
 * else the first system bundle found) into buf: 1; 0 when there is none; -1
 * when its path does not fit in len bytes (buf then holds ""). */
NET_API int net_get_cacert_path(char *buf, size_t len);
/* Copies the folder trusted beside that bundle (SSL_CERT_DIR, when
 * SSL_CERT_FILE is set too and both exist, as OpenSSL trusts both) into buf:
 * 1; 0 when there is none; -1 when it does not fit in len bytes (buf ""). */
NET_API int net_get_cacert_dir(char *buf, size_t len);

/* A keepalive value that names its idle seconds, 1 included (a plain 1 means "on"). */
#define NET_KEEPALIVE_SECONDS(s) (-(s))

/* Connection options; a zeroed struct means every default. */
typedef struct net_conn_opts {
  size_t buffer_size;        /* cap per direction, fixed; 0: 1 MiB, doubling (up to
                                64 MiB) each time the owner reads empty a buffer that
                                had been full 5 ms or more, as a frame loop that
                                streams does */
  int linger_ms;             /* how long close() keeps delivering; 0: 5000, <0: not at all */
  const net_tls_opts *tls;   /* NULL: plain TCP */
  int connect_timeout_ms;    /* resolving + connecting + handshake; 0: 30000, < 0: none
                                (accepted connections: the TLS handshake) */
  int idle_timeout_ms;       /* no byte in or out for this long fails it; 0: none */
  int nodelay;               /* 1: TCP_NODELAY */
  int keepalive;             /* 0: off; 1: SO_KEEPALIVE after the system's idle time;
                                NET_KEEPALIVE_SECONDS(s): after s idle seconds (1..86400,
                                Linux's longest, 32767, past it; a plain s > 1 means that too) */
  int family;                /* 0: any, 4: IPv4 only, 6: IPv6 only (of the proxy's
                                addresses, and of the target's for socks5://) */
  const char *proxy;         /* NULL: direct. "http://[user:pass@]host[:port]" (CONNECT,
                                Basic auth), "socks5h://..." (the proxy resolves the target's
                                name), "socks5://..." (resolved here); see net_tcp_open_host */
} net_conn_opts;

/* Where a socket is: an IP and port, or a Unix socket path (port 0). */
typedef struct net_endpoint {
  char ip[110];              /* IP text (NET_IP_MAX fits), or the socket path */
  int port;
  int family;                /* 4, 6, or 0 for Unix sockets */
} net_endpoint;

/* Connects to port on every address of a (still resolving is fine) in turn.
 * Returns NULL with *err and *code (code may be NULL) for options no
 * connection could use (NET_E_INVALID: an empty file path, ...) or when out
 * of memory; network failures show in the status. The caller owns the handle
 * until net_conn_close. */
NET_API net_conn *net_tcp_open(net_addr *a, uint16_t port, const net_conn_opts *opts,
                               const char **err, net_err *code);
/* Connects to host (len bytes, a name or an IP literal) and port. Direct,
 * it resolves host (through r, else as net_resolve) and is net_tcp_open.
 * With opts->proxy it resolves only the proxy's host (through r too), then
 * runs the proxy's handshake on the I/O thread between the TCP connect and
 * TLS: for http:// and socks5h:// the target's name goes to the proxy and is
 * never looked up here; socks5:// looks it up here and sends the address.
 * TLS verifies the target's name (or ssl server_name), end to end through the
 * tunnel; connect_timeout covers the whole. Failures of the handshake have
 * code NET_E_PROXY and say what the proxy answered; failing to reach the
 * proxy reads "connect proxy 127.0.0.1:3128: ..." with the usual codes.
 * Through a proxy, net_conn_remote/net_conn_peer give the proxy's address (the
 * socket's other end) and net_conn_describe "example.test:443 via proxy
 * 127.0.0.1:3128". net_tcp_open with opts->proxy takes the target's name
 * from a (net_addr_hostname; the lookup it started is the caller's). A
 * malformed or unsupported proxy URL, or a target (through a proxy) that is
 * neither an IP literal nor a host name (letters, digits, '-', '_', dots
 * between labels): NULL, NET_E_INVALID, *err valid until this thread's next
 * open. */
typedef struct net_resolver net_resolver;
NET_API net_conn *net_tcp_open_host(net_resolver *r, const char *host, size_t len, uint16_t port,
                                    const net_conn_opts *opts, const char **err, net_err *code);
/* 1 when url is a proxy URL net_conn_opts.proxy takes, else 0 with why (NULL:
 * 0, "no proxy URL"). */
NET_API int net_proxy_check(const char *url, char *why, size_t len);
NET_API net_result net_conn_status(net_conn *c);
NET_API net_result net_conn_wait_connected(net_conn *c, int timeout_ms);
/* Accepts up to len bytes into the send buffer; returns the count (0: full).
 * Returns -1 once the connection has failed or its sending side was shut
 * down: net_conn_write_status says which. */
NET_API long net_conn_write(net_conn *c, const void *data, size_t len);
NET_API net_result net_conn_write_status(net_conn *c);
/* Copies up to max arrived bytes into buf. Returns the count, 0 when nothing has
 * arrived yet, NET_READ_EOF after an orderly close once all data was read (or
 * after net_conn_shutdown(NET_SHUT_RECEIVE): final, later bytes are dropped),
 * or NET_READ_ERROR once failed and drained (see net_conn_status). */
#define NET_READ_EOF (-1)
#define NET_READ_ERROR (-2)
NET_API long net_conn_read(net_conn *c, void *buf, size_t max);
/* Zero-copy read: describes up to max arrived bytes as at most *nspans spans
 * of buffer memory (*nspans is set to the count), valid until this thread's
 * next consuming call on c. Returns the byte count, or 0 / NET_READ_EOF /
 * NET_READ_ERROR as net_conn_read. Nothing is consumed: net_conn_consume
 * drops bytes once the caller is done with them. */
NET_API long net_conn_peek(net_conn *c, size_t max, net_span *spans, int *nspans);
NET_API void net_conn_consume(net_conn *c, size_t n);
/* Copies up to n arrived bytes starting off bytes in, consuming nothing
 * (headers, length prefixes); returns the count. */
NET_API size_t net_conn_copy(net_conn *c, size_t off, void *dst, size_t n);
/* The offset of the first delim (1..NET_FIND_MAX bytes) lying wholly within
 * the arrived bytes [from, limit), or -1. Searches in place, copying nothing. */
NET_API long net_conn_find(net_conn *c, const void *delim, size_t dlen, size_t from, size_t limit);
/* 1 once no more bytes will arrive (the peer closed, the connection failed,
 * or the receiving side was shut down); what arrived may still be read. */
NET_API int net_conn_input_ended(net_conn *c);
NET_API size_t net_conn_available(net_conn *c);
NET_API size_t net_conn_buffer_size(net_conn *c);   /* the receive cap now */
/* The caller waits for more bytes than have arrived (a message or line that
 * fits the buffer but has not all come). Reading, stopped by a full buffer,
 * otherwise resumes only once half of it is consumed: call this, once per
 * look, whenever a look finds the unit incomplete, or it may never come. */
NET_API void net_conn_want_more(net_conn *c);
NET_API size_t net_conn_pending_writes(net_conn *c);
NET_API size_t net_conn_wait_drained(net_conn *c, int timeout_ms);
/* A Unix domain socket connection, with the same semantics as TCP. */
NET_API net_conn *net_unix_open(const char *path, const net_conn_opts *opts, const char **err,
                                net_err *code);

typedef enum net_conn_option {
  NET_OPT_NODELAY, NET_OPT_KEEPALIVE, NET_OPT_LINGER, NET_OPT_REUSEADDR
} net_conn_option;
/* Applied by the I/O thread at once; get returns the value last set. */
NET_API void net_conn_set_option(net_conn *c, net_conn_option opt, int value);
NET_API int net_conn_get_option(net_conn *c, net_conn_option opt);

#define NET_SHUT_SEND 1      /* FIN after the bytes already written */
#define NET_SHUT_RECEIVE 2   /* discard what arrives; reads end */
NET_API void net_conn_shutdown(net_conn *c, int how);
/* Stops (1) or resumes (0) reading the socket: the peer feels backpressure. */
NET_API void net_conn_pause_read(net_conn *c, int paused);

typedef struct net_conn_stats {
  uint64_t received, sent;   /* bytes from and to the network (plain text for TLS) */
  double age;                /* seconds since open */
} net_conn_stats;
NET_API net_conn_stats net_conn_get_stats(net_conn *c);
/* Fill *out and return 1 once connected, else 0. */
NET_API int net_conn_local(net_conn *c, net_endpoint *out);
NET_API int net_conn_remote(net_conn *c, net_endpoint *out);

/* Upgrades a plain connection to TLS after the bytes already written; the
 * status is NET_WAITING until the handshake ends, and nothing can be read
 * until then (plain text that came after the call fails the connection and
 * is dropped). Returns 0, or -1 with *err.
 * Refused while received bytes are unread; a caller gathering messages
 * (net_frame) must also refuse while one is partly read (net_frame_busy):
 * its first bytes came in plain text. */
NET_API int net_conn_starttls(net_conn *c, const net_tls_opts *o, const char **err, net_err *code);
/* Fills *out and returns 1 once a TLS handshake has completed, else 0. */
NET_API int net_conn_tls_info(net_conn *c, net_tls_info *out);
/* The peer's address once connected (new reference), else NULL (always for
 * a Unix socket: net_conn_remote gives its path). */
NET_API net_addr *net_conn_peer(net_conn *c);
/* "127.0.0.1:80", "[::1]:80" or "unix:/path": the peer once connected, else
 * what was asked for. */
NET_API void net_conn_describe(net_conn *c, char *buf, size_t len);
/* Graceful close: accepted bytes are still delivered (bounded by the linger
 * time), then the socket closes. Releases the handle: c is invalid afterwards. */
NET_API void net_conn_close(net_conn *c);

/* Fails the connection from the owner's side (a protocol the owner parses
 * met bytes it cannot accept): from this call on it reads as failed with
 * code and msg (copied), unread input is dropped, and the I/O thread closes
 * the socket. No-op once the connection has failed. */
NET_API void net_conn_abort(net_conn *c, net_err code, const char *msg);

/* ---- Framed messages (frame.c) ---------------------------------------------
 * Whole messages on a stream connection, parsed in place in the receive
 * buffer: NET_FRAME_PACKET, a 4-byte big-endian length and that many bytes;
 * NET_FRAME_LSP, the JSON-RPC base protocol (a header block with
 * Content-Length, any case, optional Content-Type, ended by an empty line,
 * then the body). A message is copied once, from the buffer into the
 * caller's memory. One larger than the connection's receive buffer
 * (buffer_size) can never lie there whole: it is gathered, as it arrives,
 * into memory of the reader's own (at most twice what has arrived, 64 KiB
 * at first, never more than the message), and costs one more copy. Owner thread; one
 * reader per connection. */
typedef enum net_frame_kind { NET_FRAME_PACKET, NET_FRAME_LSP } net_frame_kind;
#define NET_FRAME_PARTIAL (-3)          /* no whole message yet */
#define NET_FRAME_TOO_BIG (-4)          /* net_frame_write: larger than the send buffer */
#define NET_LSP_HEADER_MAX 8192         /* the longest LSP header block */
typedef struct net_frame net_frame;
NET_API net_frame *net_frame_new(void);   /* NULL when out of memory */
NET_API void net_frame_free(net_frame *f);
/* The payload size (>= 0) of the next whole message; NET_FRAME_PARTIAL
 * while it is incomplete; NET_READ_EOF at the end of the stream between
 * messages; NET_READ_ERROR once the connection failed (an end inside a
 * message fails it, NET_E_PROTOCOL). A message declaring more than max bytes
 * fails the connection (net_conn_abort, NET_E_LIMIT), and so does a
 * malformed LSP header (NET_E_PROTOCOL): NET_READ_ERROR, and nothing of the
 * declared size is allocated. An announced message stays until
 * net_frame_done; nothing else may read c in between. */
NET_API long net_frame_next(net_frame *f, net_conn *c, net_frame_kind kind, size_t max);
/* The announced payload when it lies in one piece of memory (copy it from
 * there), else NULL: net_frame_copy gathers it. Neither consumes. */
NET_API const void *net_frame_view(net_frame *f, net_conn *c);
NET_API size_t net_frame_copy(net_frame *f, net_conn *c, void *dst);
/* Drops the announced message (header and payload). */
NET_API void net_frame_done(net_frame *f, net_conn *c);
/* 1 while a message larger than the receive buffer is partly gathered: the
 * stream then continues inside it, so plain reads would split it. */
NET_API int net_frame_busy(const net_frame *f);
/* Writes one whole message (header + data) into the send buffer, or nothing:
 * returns 1; 0 when it does not fit now (retry later); NET_FRAME_TOO_BIG
 * when it can never fit (larger than the send buffer, or over 4 GiB - 1 for
 * a packet); -1 once the connection cannot send (net_conn_write_status). */
NET_API int net_frame_write(net_conn *c, net_frame_kind kind, const void *data, size_t len);
/* net_frame_write for a message of any size: one that fits the send buffer
 * goes whole or not at all (*done stays 0); a larger one goes in parts, as
 * the buffer drains. *done counts the message's bytes (header and data)
 * queued so far: start at 0, then call again with the same message and
 * *done until 1. Returns 1 once all is queued; 0 while some is not (no
 * other write may come in between, or the stream breaks); -1 once the
 * connection cannot send; NET_FRAME_TOO_BIG for a packet over 4 GiB - 1. */
NET_API int net_frame_write_part(net_conn *c, net_frame_kind kind, const void *data, size_t len, size_t *done);
/* The LSP header parser (exposed for tests and fuzzing), over the first n
 * bytes of p. Returns the header block's length (through the empty line)
 * with *body its Content-Length; 0 when the block has not ended within n
 * bytes and nothing seen so far is wrong; -1 with *why (static text) for a
 * malformed block or one longer than NET_LSP_HEADER_MAX. */
NET_API long net_lsp_header(const char *p, size_t n, uint64_t *body, const char **why);

/* ---- HTTP client (http.c, http_io.c) -----------------------------------------
 * One HTTP/1.1 exchange run on the I/O thread: request, response head, body
 * (Content-Length, chunked or until close; gzip/deflate decoded), redirects.
 * The owner polls it like a connection; the body comes through a bounded
 * buffer (the server is slowed down when the owner reads slowly). */
typedef struct net_http net_http;
#define NET_VERSION "0.4"

typedef struct net_http_opts {
  const char *url;                 /* http:// or https:// */
  const char *method;              /* NULL: "GET"; an upper-case token */
  const char *const *headers;      /* name, value, name, value, ..., NULL; the body's
                                      framing is the engine's: no Transfer-Encoding, a
                                      Content-Length only as the body's length; Host
                                      and Content-Length once at most */
  const void *body;                /* NULL: no body */
  size_t body_len;
  const char *body_file;           /* or the body streamed from this file (read on a
                                      helper thread; Content-Length is its size) */
  int timeout_ms;                  /* the whole exchange; 0: 300000, < 0: none */
  int connect_timeout_ms;          /* per connection, as net_conn_opts */
  int idle_timeout_ms;             /* no byte in or out for this long; 0: none */
  int max_redirects;               /* < 0: 5; 0: a 3xx is the response */
  uint64_t max_size;               /* the largest body; 0: 64 MiB (output: no cap) */
  int no_decompress;               /* 1: no Accept-Encoding added, the body as sent */
  int allow_downgrade;             /* 1: follow a redirect from https to http */
  const net_tls_opts *tls;         /* for https (redirects too); NULL: verified defaults */
  size_t buffer_size;              /* body bytes held for the owner, fixed; 0: 1 MiB,
                                      growing as net_conn_opts' default does */
  int no_keepalive;                /* 1: a new connection, closed after the response */
  const char *output;              /* the body goes to this file (written on a helper
                                      thread into output.part, renamed when whole);
                                      net_http_read then gives no bytes */
  int resume;                      /* with output: continue output.part (or the file at
                                      output) with a Range request */
  const char *sha256;              /* with output: 64 hex digits the file must match,
                                      else failure and no file */
  const char *proxy;               /* a proxy URL (http://, socks5://, socks5h://, with
                                      user:pass@), "" for none; NULL: from the
                                      environment (HTTPS_PROXY, ALL_PROXY, NO_PROXY,
                                      also in lower case; http_proxy only in lower
                                      case, as curl) */
} net_http_opts;

typedef struct net_http_response {
  int status;
  const char *reason;
  size_t nfields;                  /* header fields, names in lower case, in order */
  const char *const *names;
  const char *const *values;
  const char *url;                 /* where it came from, after redirects */
  int redirects;
} net_http_response;

typedef struct net_http_progress {
  uint64_t received;               /* body bytes as the server sent them (encoded) */
  uint64_t total;                  /* Content-Length, or 0 when unknown (has_total 0) */
  uint64_t sent, send_total;       /* request body bytes */
  int has_total;
} net_http_progress;

/* Starts the exchange; returns at once. NULL with *err and *code
 * (NET_E_INVALID for a URL or option it cannot use). The caller owns the
 * handle until net_http_close. */
NET_API net_http *net_http_request(const net_http_opts *o, const char **err, net_err *code);
/* WAITING, SUCCESS (the whole body arrived; unread bytes stay readable), or
 * FAILURE with a message naming the request ("http 127.0.0.1:8080 GET /x:
 * body ended after 10 of 100 bytes") and a code (NET_E_TIMEOUT, NET_E_LIMIT,
 * NET_E_PROTOCOL, NET_E_CANCELLED, or a connection's). */
NET_API net_result net_http_status(net_http *h);
NET_API net_result net_http_wait(net_http *h, int timeout_ms);   /* until not WAITING */
/* 1 and *out once the final response's head arrived (valid while h is
 * open), else 0. */
NET_API int net_http_get_response(net_http *h, net_http_response *out);
/* 1 and *out for the i-th (from 0) redirect the server answered so far,
 * in order (the one refused too, when a redirect fails), else 0. */
NET_API int net_http_get_redirect(net_http *h, int i, net_http_response *out);
NET_API net_http_progress net_http_get_progress(net_http *h);
/* Body bytes: the count, 0 when none has arrived yet, NET_READ_EOF after the
 * last byte of a successful exchange, NET_READ_ERROR once failed and drained. */
NET_API long net_http_read(net_http *h, void *buf, size_t max);
/* Zero-copy body reads, as net_conn_peek / _consume / _copy / _available:
 * nothing leaves the body until net_http_consume, so a caller whose own
 * allocation fails loses no byte. */
NET_API long net_http_peek(net_http *h, size_t max, net_span *spans, int *nspans);
NET_API void net_http_consume(net_http *h, size_t n);
NET_API size_t net_http_copy(net_http *h, size_t off, void *dst, size_t n);
NET_API size_t net_http_available(net_http *h);
/* Fails the exchange with NET_E_CANCELLED (unless it already ended). */
NET_API void net_http_cancel(net_http *h);
/* Ends the exchange if it still runs and releases the handle. Never blocks. */
NET_API void net_http_close(net_http *h);

/* ---- WebSockets (ws.c; ws_io.c, ws_rx.c, ws_tx.c on the I/O thread) -------------
 * RFC 6455 and permessage-deflate (RFC 7692), run on the I/O thread: the
 * opening handshake, framing, masking, fragmentation, UTF-8 checks of text,
 * pongs, keep-alive pings, compression and the closing handshake. The owner
 * moves whole messages through two capped queues of message records; a
 * loop that stops polling for a while still answers pings. */
typedef struct net_ws net_ws;
#define NET_WS_DEFAULT_MAX_MESSAGE ((uint64_t)16 << 20)
#define NET_WS_MAX_MESSAGE ((uint64_t)512 << 20)   /* the largest max_message */

typedef struct net_ws_opts {
  const char *url;                  /* ws:// or wss:// */
  const char *const *headers;       /* name, value, name, value, ..., NULL */
  const char *const *protocols;     /* subprotocols offered, NULL-terminated; NULL: none */
  const net_tls_opts *tls;          /* wss://; NULL: verified defaults */
  const char *proxy;                /* NULL or "": direct; else as net_conn_opts.proxy */
  int connect_timeout_ms;           /* connect, TLS and the opening handshake; 0: 30000 */
  uint64_t max_message;             /* largest message either way; 0: 16 MiB */
  int no_compress;                  /* 1: no permessage-deflate offer */
  int ping_interval_ms;             /* > 0: a ping after this long without a frame */
  int ping_timeout_ms;              /* nothing from the peer this long after a ping
                                       fails it (NET_E_TIMEOUT); 0: ping_interval_ms */
  int close_timeout_ms;             /* the closing handshake's bound; 0: 5000 */
} net_ws_opts;

/* What a websocket server does with upgrades (net_server_opts.websocket). */
typedef struct net_ws_server_opts {
  const char *const *protocols;     /* the server's subprotocols by preference; NULL: none */
  const char *const *paths;         /* request paths accepted (query aside); NULL: any */
  uint64_t max_message;             /* 0: 16 MiB */
  int no_compress;
  int ping_interval_ms, ping_timeout_ms, close_timeout_ms;   /* as net_ws_opts */
  int handshake_timeout_ms;         /* TLS and the upgrade request; 0: 10000 */
  const char *const *origins;       /* Origin values accepted (case aside), NULL-terminated;
                                       NULL: any. A request without Origin (no browser) passes */
} net_ws_server_opts;

/* Starts connecting; returns at once. NULL with *err and *code
 * (NET_E_INVALID for a URL or option it cannot use). The caller owns the
 * handle until net_ws_free. */
NET_API net_ws *net_ws_open(const net_ws_opts *o, const char **err, net_err *code);
/* WAITING while connecting, SUCCESS while open (and while closing with
 * messages still to receive), FAILURE with a message naming the websocket
 * ("ws 127.0.0.1:8080: ...") and a code: after a clean close, once every
 * message was received, NET_E_CLOSED "closed". */
NET_API net_result net_ws_status(net_ws *w);
/* 1 with how it ended (as net_ws_status gives it at the very end) once the
 * websocket ended, whatever messages are still to receive; else 0. */
NET_API int net_ws_ended(net_ws *w, net_result *out);
NET_API net_result net_ws_wait(net_ws *w, int timeout_ms);   /* until not WAITING */
#define NET_WS_TEXT 1
#define NET_WS_BINARY 2
#define NET_WS_QUEUE_FULL 0
#define NET_WS_TOO_BIG (-3)
/* Queues one whole message (NET_WS_TEXT or NET_WS_BINARY; text must be
 * UTF-8, which this does not check): 1; NET_WS_QUEUE_FULL when the send
 * queue has no room now; NET_WS_TOO_BIG over max_message; -1 once it ended
 * (net_ws_ended says how) or is closing. */
NET_API int net_ws_send(net_ws *w, int type, const void *data, size_t len);
/* A ping with up to 125 bytes; the same returns as net_ws_send. */
NET_API int net_ws_ping(net_ws *w, const void *data, size_t len);
/* The size of the next whole message (*type its kind), 0 included; -4
 * (NET_WS_NONE) while none is waiting; NET_READ_ERROR once failed or closed
 * and drained. The message stays until net_ws_drop. */
#define NET_WS_NONE (-4)
NET_API long net_ws_next(net_ws *w, int *type);
/* The announced message when it lies in one piece of memory (copy it from
 * there), else NULL: net_ws_copy gathers it. Neither consumes. */
NET_API const void *net_ws_view(net_ws *w);
NET_API size_t net_ws_copy(net_ws *w, void *dst);
NET_API void net_ws_drop(net_ws *w);
/* Starts the closing handshake once the queued messages are sent: code 0
 * sends none, else 1000-1003, 1007-1014 or 3000-4999; reason UTF-8 of at
 * most 123 bytes. 0, or -1 when code or reason cannot be sent. Again: no-op.
 * w NULL: only checks code and reason. */
NET_API int net_ws_close(net_ws *w, int code, const char *reason, size_t len);
/* 1 once closed: the peer's close code and reason (1005: it sent no code),
 * 1006 when the connection ended without a close frame, or the code this end
 * closed with after a protocol failure (1002, 1007, 1009, 1011). The reason
 * (at most 123 bytes; U+0000 is valid UTF-8) is copied into reason[*len],
 * NUL-terminated when there is room, and *len becomes its length. */
NET_API int net_ws_get_close(net_ws *w, int *code, char *reason, size_t *len);

/* What the opening handshake settled, once open (valid until net_ws_free). */
typedef struct net_ws_info {
  const char *protocol;             /* "" when none */
  const char *extensions;           /* the agreed Sec-WebSocket-Extensions, or "" */
  const char *target;               /* server: the request target ("/chat?room=1"); client: "" */
  size_t nfields;                   /* server: the request's header fields (lower-case
                                       names); client: the 101 response's */
  const char *const *names;
  const char *const *values;
} net_ws_info;
NET_API int net_ws_get_info(net_ws *w, net_ws_info *out);   /* 1 once open, else 0 */
NET_API int net_ws_remote(net_ws *w, net_endpoint *out);     /* 1 once connected */
/* "127.0.0.1:8080" or "example.test:443 via proxy ...". */
NET_API void net_ws_describe(net_ws *w, char *buf, size_t len);
/* 1 when p[0..n) is UTF-8 a text message may carry (no overlongs, no surrogates). */
NET_API int net_utf8_valid(const void *p, size_t n);
/* Releases the handle; an open websocket is closed with 1001 (going away),
 * queued messages first. Never blocks. */
NET_API void net_ws_free(net_ws *w);

/* ---- Servers ------------------------------------------------------------- */
typedef struct net_server net_server;

typedef struct net_server_opts {
  int backlog;               /* 0: 128 */
  int no_reuseaddr;          /* 1: leave SO_REUSEADDR off */
  const char *unix_path;     /* listen on this Unix socket instead of a port */
  const net_tls_opts *tls;   /* cert_file and key_file: accepted connections speak TLS */
  net_conn_opts conn;        /* for accepted connections (tls is ignored here) */
  const net_ws_server_opts *websocket;   /* non-NULL: accepts websockets (net_server_accept_ws) */
} net_server_opts;

/* Binds and listens at once (a bind is quick), so "address in use" comes back
 * here: NULL with *err and *code. a NULL: every interface, IPv6 and IPv4.
 * A TLS server's options are checked here; its certificate and key are read
 * on a helper thread, and a missing or bad one fails the server a moment
 * later (net_server_status, net_server_accept: "tls: ...", NET_E_TLS). */
NET_API net_server *net_server_open(net_addr *a, uint16_t port, const net_server_opts *o,
                                    const char **err, net_err *code);
/* The next accepted connection (NET_SUCCESS, or NET_WAITING while its TLS
 * handshake runs), or NULL, with *why (may be NULL): NET_WAITING, none yet;
 * NET_FAILURE with the server's failure; or NET_FAILURE NET_E_LIMIT while the
 * process is out of file descriptors (the server backs off, connections wait
 * in the kernel's backlog, and accepting resumes when descriptors free up). */
NET_API net_conn *net_server_accept(net_server *s, net_result *why);
/* A websocket server's: the next websocket whose upgrade succeeded; as net_server_accept. */
NET_API net_ws *net_server_accept_ws(net_server *s, net_result *why);
NET_API int net_server_is_ws(net_server *s);
NET_API net_result net_server_status(net_server *s);
NET_API int net_server_local(net_server *s, net_endpoint *out);
NET_API void net_server_close(net_server *s);

/* ---- Resolvers with their own nameservers (dns.c) ------------------------------
 * Lookups ask the given nameservers directly (c-ares, driven by the I/O
 * thread: no helper thread, and a lookup whose address nobody holds any more
 * is cancelled). Names in the hosts file (/etc/hosts, or SLUICE_HOSTS_FILE
 * when set) and "localhost" are answered from there first, off the I/O
 * thread. A and AAAA records; failures name the name and the nameservers. */
#define NET_RESOLVER_MAX_SERVERS 8
typedef struct net_resolver_opts {
  const char *const *nameservers;   /* "127.0.0.1", "127.0.0.1:5353", "::1", "[::1]:53" */
  int count;                        /* 1..NET_RESOLVER_MAX_SERVERS */
  int timeout_ms;                   /* the first try's wait for an answer; 0: 2000 */
  int tries;                        /* attempts per nameserver; 0: 3 */
} net_resolver_opts;
/* NULL with *err (valid until this thread's next net_resolver_new) and *code
 * (NET_E_INVALID for a nameserver that is not IP[:port], ...). The caller
 * owns the handle until net_resolver_free. */
NET_API net_resolver *net_resolver_new(const net_resolver_opts *o, const char **err, net_err *code);
/* As net_resolve, through r. */
NET_API net_addr *net_resolver_resolve(net_resolver *r, const char *host, size_t len, const char **err,
                                       net_err *code);
/* "127.0.0.1:5353, [::1]:53" */
NET_API void net_resolver_describe(net_resolver *r, char *buf, size_t len);
/* Releases the handle; lookups in flight go on for the addresses still held. */
NET_API void net_resolver_free(net_resolver *r);

/* ---- Module --------------------------------------------------------------- */
/* Up to max IP addresses of this host's interfaces that are up (port 0);
 * returns the count, or -1 with *err. */
NET_API int net_local_addresses(net_endpoint *out, int max, const char **err);

/* ---- UDP sockets --------------------------------------------------------- */
/* A bound datagram socket. socket() and bind() run on the caller's thread (they
 * never block); sendmsg/recvmsg run on the I/O thread, and datagrams move
 * through two capped rings of records, so every call returns at once. */
typedef struct net_udp net_udp;

typedef struct net_udp_opts {
  size_t buffer_size;   /* cap of each queue, headers included; 0: 1 MiB. At least
                           one largest datagram (64 KiB) always fits. */
  int reuseaddr;        /* 1: SO_REUSEADDR before bind, so sockets can share a port */
} net_udp_opts;

/* Binds a datagram socket to port (0: an ephemeral one) on local, a resolved
 * address (its first IP), or on every interface when local is NULL (the IPv6
 * wildcard carrying IPv4 too where the system allows, else 0.0.0.0). Returns
 * NULL with *err and *code at once: "bind 127.0.0.1:5353: Address already in
 * use" ("invalid"), an address still resolving ("invalid"), ... A port held
 * by a socket of this process that is closing is no refusal: the socket binds
 * on the I/O thread once that one closed (sending nothing before), and a
 * refusal then is a failure of net_udp_status. The text stays
 * valid until this thread's next net_udp call. The caller owns the handle until
 * net_udp_close. opts and code may be NULL. */
NET_API net_udp *net_udp_open(net_addr *local, uint16_t port, const net_udp_opts *opts,
                              const char **err, net_err *code);
/* The port actually bound (the real one when 0 was asked), and the endpoint. */
NET_API uint16_t net_udp_port(net_udp *u);
NET_API void net_udp_local(net_udp *u, net_endpoint *out);
/* NET_SUCCESS while usable; NET_FAILURE once the I/O thread met an error it
 * cannot count and go on from (never a send or ICMP error: see net_udp_stats). */
NET_API net_result net_udp_status(net_udp *u);

/* Queues one datagram of len bytes (0 is allowed) for port on the first address
 * of to that this socket can reach (an IPv4 address from the dual-stack
 * wildcard socket goes out IPv4-mapped). Returns NET_E_NONE, or without
 * queueing anything: NET_E_LIMIT "send queue full" (never blocks: try again
 * after the I/O thread made room, see net_wait_activity), NET_E_INVALID for a
 * datagram over 65507 bytes (IPv4) / 65527 (IPv6), for port 0, an address
 * not resolved or of a family the socket cannot reach; the address's own code
 * if it failed to resolve; the failure of net_udp_status. *err as for
 * net_udp_open. The I/O thread sends it later; the kernel refusing it there
 * (unreachable, no broadcast permission, ...) only counts in net_udp_stats. */
NET_API net_err net_udp_send(net_udp *u, net_addr *to, uint16_t port, const void *data,
                             size_t len, const char **err);
/* net_udp_send to an IP literal (never a lookup: NET_E_INVALID "not an IP
 * address" for a name). */
NET_API net_err net_udp_send_to(net_udp *u, const char *ip, size_t iplen, uint16_t port,
                                const void *data, size_t len, const char **err);

/* Receiving: the datagrams the I/O thread queued, oldest first. */
#define NET_UDP_NONE (-1)   /* no datagram is waiting */
/* The payload size of the next datagram, NET_UDP_NONE, or NET_READ_ERROR once
 * the socket failed and every datagram received before was taken. */
NET_API long net_udp_next_size(net_udp *u);
/* Takes the next datagram: copies min(len, cap) payload bytes into buf and
 * returns len (more than cap: the rest was cut off), or NET_UDP_NONE /
 * NET_READ_ERROR as net_udp_next_size. from (if not NULL) gets the sender as a
 * new resolved address reference (NULL when out of memory), port its port. */
NET_API long net_udp_receive(net_udp *u, void *buf, size_t cap, net_addr **from,
                             uint16_t *port);
/* Takes the next datagram only if its payload size is want (any: -1), else
 * NET_UDP_NONE: a caller that sized its buffer with net_udp_next_size never
 * takes another one. from (if not NULL) gets the sender. */
NET_API long net_udp_take(net_udp *u, void *buf, size_t cap, long want, net_endpoint *from);

/* Counters the I/O thread keeps (monotonic, read without a lock). When the
 * receive queue is full, the datagrams that arrive are read and dropped (the
 * newest are lost, the queued ones kept): `dropped` counts them. Datagrams the
 * kernel itself drops (its socket buffer full) are counted nowhere here. */
typedef struct net_udp_counts {
  uint64_t received;      /* datagrams queued for net_udp_receive */
  uint64_t sent;          /* datagrams the kernel accepted */
  uint64_t dropped;       /* datagrams that arrived while the receive queue was full */
  uint64_t send_errors;   /* datagrams the kernel refused, and errors it reported
                             later for earlier sends (ICMP unreachable, ...) */
} net_udp_counts;
NET_API net_udp_counts net_udp_stats(net_udp *u);

/* Socket options, set at once on the caller's thread. Booleans take 0/1;
 * NET_UDP_MULTICAST_TTL takes 0..255 (IPv6: the hop limit). The multicast
 * options apply to this socket's family (both on the dual-stack wildcard). */
typedef enum net_udp_option {
  NET_UDP_BROADCAST,        /* SO_BROADCAST: may send to broadcast addresses */
  NET_UDP_REUSEADDR,        /* SO_REUSEADDR (see also net_udp_opts.reuseaddr) */
  NET_UDP_MULTICAST_LOOP,   /* IP(V6)_MULTICAST_LOOP: own multicast comes back (default on) */
  NET_UDP_MULTICAST_TTL     /* IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS (default 1) */
} net_udp_option;
/* Both return NET_E_NONE, or a code with *err as for net_udp_open. */
NET_API net_err net_udp_set_option(net_udp *u, net_udp_option opt, int value, const char **err);
NET_API net_err net_udp_get_option(net_udp *u, net_udp_option opt, int *value, const char **err);
/* The interface multicast goes out on: an IPv4 address ("127.0.0.1"), or for
 * IPv6 an interface name ("lo") or index ("1"); NULL or "": the default. */
NET_API net_err net_udp_set_multicast_if(net_udp *u, const char *iface, const char **err);
/* Writes the IPv4 address (returns 4) or the IPv6 interface index (returns 6)
 * as text into buf (NET_IP_MAX bytes always hold it); -1 on failure or when
 * it does not fit (buf then holds ""). */
NET_API int net_udp_get_multicast_if(net_udp *u, char *buf, size_t len);

/* Joins / leaves a multicast group (an IPv4 or IPv6 literal). iface: for an IPv4
 * group the IPv4 address of the interface, for IPv6 its name or index (or the
 * group's zone, "ff02::1%lo"); NULL or "": the system's choice. Joining twice
 * or leaving a group not joined: NET_E_INVALID. */
NET_API net_err net_udp_join(net_udp *u, const char *group, const char *iface, const char **err);
NET_API net_err net_udp_leave(net_udp *u, const char *group, const char *iface, const char **err);

/* Closes the socket on the I/O thread, which first hands the kernel the
 * datagrams still queued, as far as it takes them at once (no linger). The
 * port is free again shortly after. Releases the handle: u is invalid afterwards. */
NET_API void net_udp_close(net_udp *u);

#ifdef __cplusplus
}
#endif
#endif
