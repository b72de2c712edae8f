/* conn.h: the stream connection (TCP or Unix socket, plain or TLS), shared by
 *   conn.c          the owner API (net_conn_*): rings and atomics only;
 *   conn_loop.c     the I/O thread's entry points: requests, events, timers,
 *                   closing, and the object's lifetime;
 *   conn_connect.c  the I/O thread: resolution, Happy Eyeballs, Unix connect;
 *   conn_proxy.c    the I/O thread: the proxy handshake, once connected to it;
 *   conn_io.c       the I/O thread: the transport once a socket exists:
 *                   TLS handshake, receive, send, failure.
 * Calls go down that list only (conn.c -> conn_loop.c -> conn_connect.c ->
 * conn_proxy.c -> conn_io.c), never back up. */
#ifndef SLUICE_CONN_H
#define SLUICE_CONN_H

#include "addr.h"
#include "alloc.h"
#include "engine.h"
#include "err.h"
#include "os.h"
#include "proxy.h"
#include "ring.h"
#include "tls.h"

enum {
  REQ_CLOSE = 1,      /* owner asked for a graceful close */
  REQ_STARTTLS = 2,   /* owner asked for TLS after the bytes written so far */
  REQ_OPTIONS = 4,    /* socket options changed */
  REQ_SHUT_WR = 8,    /* FIN once tx is flushed */
  REQ_SHUT_RD = 16,   /* discard input from now on */
  REQ_PAUSE = 32,     /* owner_paused changed */
  REQ_ABORT = 64,     /* net_conn_abort: fail with abort_err */
};

typedef enum conn_io {
  IO_NEW,             /* not yet seen by the I/O thread */
  IO_RESOLVING,       /* waiting for its address */
  IO_CONNECTING,      /* attempts in flight (Happy Eyeballs) */
  IO_PROXY,           /* connected to the proxy; its handshake running */
  IO_TLS_WAIT,        /* connected; its TLS configuration is being loaded */
  IO_HANDSHAKE,       /* TLS handshake running */
  IO_OPEN,
  IO_FLUSHING,        /* closing: delivering what the owner wrote */
  IO_DRAINING,        /* closing: write side shut, discarding until the peer's FIN */
  IO_DONE             /* socket closed; waiting for the last reference */
} conn_io;

#define NET_WHERE_MAX 600     /* net__conn_where's longest text */
#define RX_SHRINK_MS 500    /* rx read empty this long after data came: its memory goes back */
#define NET_MAX_ATTEMPTS 4   /* connection attempts in flight at once */
#define NET_DEFAULT_LINGER_MS 5000
/* Resolving, connecting and the TLS handshake together, unless the caller
 * says otherwise: long enough for a slow resolver's retries and a handshake
 * over a poor link, short enough that a peer that never answers does not
 * keep a connection "waiting" for good. */
#define NET_DEFAULT_CONNECT_TIMEOUT_MS 30000

/* One connection attempt of Happy Eyeballs: its own socket and poller entry. */
typedef struct net_attempt {
  net_io obj;
  struct net_conn *c;
  net_sock fd;
  int poll_mask;
  uint64_t since;                   /* ms it started: the oldest may give way */
  net_sockaddr sa;
} net_attempt;

/* The attempts of one connection, freed between poller batches (events of
 * the current batch may still point at them); link is the engine's. */
typedef struct attempt_block {
  void *link;
  net_attempt att[NET_MAX_ATTEMPTS];
} attempt_block;

/* The proxy stage's buffers (conn_proxy.c); the request holds the credentials. */
typedef enum proxy_step {
  P_HEAD,      /* reading the CONNECT reply head */
  P_METHOD,    /* reading SOCKS5's method choice */
  P_AUTH,      /* reading the user/password answer */
  P_RESOLVE,   /* socks5://: waiting for the target's address */
  P_REPLY      /* reading SOCKS5's CONNECT reply */
} proxy_step;

struct proxy_io {
  proxy_step step;                    /* what comes once out is sent */
  size_t out_len, out_off, in_len;
  uint8_t out[NET_PROXY_REQ_MAX];
  uint8_t in[NET_PROXY_HEAD_MAX];
};

struct net_conn {
  /* shared with the owner */
  net_ring rx;                      /* I/O thread produces, owner consumes */
  net_ring tx;                      /* owner produces, I/O thread consumes */
  _Alignas(NET_CACHELINE) net_io obj;
  atomic_int state;                 /* net_status */
  atomic_int rx_eof;                /* peer closed orderly; set after the last rx commit */
  atomic_int rx_paused;             /* I/O thread stopped reading: rx was full */
  atomic_int tx_idle;               /* I/O thread found tx empty and sleeps on it */
  atomic_int requests;              /* REQ_* bits, taken by the I/O thread */
  atomic_int owner_paused;          /* pause_read() */
  atomic_int shut;                  /* NET_SHUT_* the owner asked for */
  atomic_int opt[4];                /* net_conn_option values, as last set */
  atomic_uint_fast64_t bytes_in, bytes_out;
  double created;                   /* net_clock() at open */
  bool write_oom;                   /* owner only: the last write found no memory */
  bool aborted;                     /* owner only: net_conn_abort was called */
  bool upgrading;                   /* owner only: established, then starttls() was called */
  bool accepted;                    /* fixed: a server's, not a connect's */
  net_error abort_err;              /* written by the owner before REQ_ABORT, then fixed */
  net_error err;
  net_addr *addr;                   /* target, or the proxy; owned reference */
  net_proxy *proxy;                 /* NULL: direct; fixed at open */
  net_addr *_Atomic peer;           /* set by the I/O thread before SUCCESS */
  char *unix_path;                  /* Unix socket connections */
  uint16_t port;
  int family;                       /* 0, 4 or 6 */
  int connect_timeout_ms, idle_timeout_ms;
  net_tls_cfg *tls_cfg;             /* set by the owner before the request that uses it */
  net_tls_conf *tls_conf;           /* accepted connections: the server's, loaded already */
  size_t starttls_at;               /* tx position where plain text ends */
  uint_fast64_t starttls_in;        /* bytes_in when starttls() was asked: no byte may follow */
  net_tls_info *_Atomic tls_info;   /* published with tls_ready */
  atomic_int tls_ready;
  net_sockaddr cur;                 /* the peer; final once SUCCESS is published */
  net_sockaddr local;               /* likewise, our end */
  net_io *link;                     /* a protocol on the I/O thread owning this connection
                                       (set before its first kick): kicked with its news
                                       instead of a host being told */
  net_exit_link live;               /* the hosts' live connections (conn_loop.c) */
  /* I/O thread only */
  conn_io io;
  net_sock fd;
  int poll_mask;                    /* registered interest, 0 when not registered */
  int last_errno;
  net_attempt *att;                 /* NET_MAX_ATTEMPTS slots while connecting */
  int natt, next_try;               /* attempts in flight; next index of order[] */
  uint8_t order[NET_MAX_ADDRS];     /* addresses in Happy Eyeballs order */
  int norder;
  uint64_t connect_deadline, next_attempt_at, linger_deadline, last_io;
  uint64_t rx_shrink_at;            /* when to see whether rx was read empty */
  bool owner_gone;
  bool exit_counted;                /* closing: counted in net__engine_closing until sent */
  bool reading;                     /* IN interest wanted (not paused, no EOF yet) */
  bool want_out;                    /* OUT interest: tx has bytes the kernel refused */
  bool peer_fin;                    /* the peer's FIN was read */
  bool fresh_socket;                /* made by our connect, no option set on it yet */
  uint8_t unix_waits;               /* connects a Unix server's full backlog turned away */
  bool starttls;                    /* upgrade once tx reaches starttls_at */
  bool notify_sent;                 /* close_notify went out */
  bool shut_wr_pending, wr_shut, discard_rx;
  int held_requests;                /* REQ_* taken while resolving: handled once connecting */
  net_tls *tls;
  struct proxy_io *pio;             /* the proxy handshake's buffers, while it runs */
};

/* conn.c: a connection owned by a protocol on the I/O thread (HTTP,
 * WebSockets): `link` is kicked with its news, and the protocol drives it
 * with the owner API (net_conn_read/write/close...) from the I/O thread.
 * Open it on the I/O thread (in the link's own kick), so the protocol holds
 * the handle before any news, and let go of it with net__conn_close_link
 * (I/O thread): from then on it kicks the protocol no more. */
net_conn *net__conn_open_linked(net_addr *a, uint16_t port, const net_conn_opts *o, net_io *link,
                                const char **err, net_err *code);
void net__conn_close_link(net_conn *c);
/* The same to a host name: with o->proxy the name goes to the proxy and is
 * never looked up here (socks5:// aside). */
net_conn *net__conn_open_host_linked(const char *host, uint16_t port, const net_conn_opts *o, net_io *link,
                                     const char **err, net_err *code);
/* I/O thread: another protocol object takes it over (a pool of idle ones). */
void net__conn_set_link(net_conn *c, net_io *link);
/* I/O thread: bytes sent less what the kernel holds unacknowledged (where
 * the system says): it grows only as the peer takes them. */
uint64_t net__conn_delivered(net_conn *c);
/* The proxy handshake's buffers, wiped as they go (they held the credentials). */
static inline void net__conn_proxy_io_free(net_conn *c) {
  net__free_secret(c->pio, c->pio ? sizeof *c->pio : 0);
  c->pio = NULL;
}
/* I/O thread: the idle timeout from now on (0: none), for its next user. */
void net__conn_set_idle(net_conn *c, int ms);
/* Owner: head and body into tx together or not at all (a framed message):
 * 1 written; 0 no room now; -1 cannot send, or no memory (net_conn_write_status). */
int net__conn_write_record(net_conn *c, const void *head, size_t hlen, const void *body, size_t blen);

/* conn_loop.c: lifetime, and accepted connections for server.c. */
net_conn *net__conn_new(const net_conn_opts *o, int refs);
void net__conn_destroy(net_conn *c);   /* before it was ever kicked */
/* A connection a host owns: the exit waits (a while) for the bytes it wrote,
 * until the host closes it (then the close's own linger counts). */
void net__conn_list(net_conn *c);
void net__conn_unlist(net_conn *c);
/* I/O thread: a connection around an accepted socket. The caller owns one
 * reference (to hand to the owner), the I/O thread the other. `queued`: it
 * reads no application data until the owner takes it (net__conn_taken). */
net_conn *net__conn_adopt(net_sock fd, const net_sockaddr *peer, const char *unix_path,
                          const net_conn_opts *o, const net_tls_cfg *tls, net_tls_conf *conf, bool queued);
/* Owner: an accepted connection taken from its server's queue: reading starts. */
void net__conn_taken(net_conn *c);
/* I/O thread: a websocket's connection put in its server's queue reads no more
 * until taken. */
void net__conn_hold(net_conn *c);
/* I/O thread: an accepted connection nobody will take. */
void net__conn_abandon(net_conn *c);

/* conn_connect.c (I/O thread) */
void net__conn_start(net_conn *c);          /* resolve (await) or connect */
void net__conn_next_attempt(net_conn *c);   /* the Happy Eyeballs delay passed */

/* conn_proxy.c (I/O thread) */
void net__conn_proxy_start(net_conn *c);    /* connected to the proxy: handshake, then connected */
void net__conn_proxy_event(net_conn *c, int mask);
void net__conn_proxy_kicked(net_conn *c);   /* socks5://: the target may have resolved */


/* conn_io.c (I/O thread) */
void net__conn_connected(net_conn *c);      /* the socket is connected: TLS or data */
void net__conn_handshake(net_conn *c);
void net__conn_start_tls(net_conn *c);      /* now, or once its configuration is loaded */
void net__conn_recv(net_conn *c);
bool net__conn_tls_held(net_conn *c);       /* bytes mbedTLS holds for a reading owner */
void net__conn_send(net_conn *c);
void net__conn_interest(net_conn *c);       /* poller interest from reading / want_out */
void net__conn_set_timer(net_conn *c);      /* the earliest deadline that applies */
void net__conn_begin_flush(net_conn *c);    /* closing: deliver tx, then FIN */
void net__conn_fail(net_conn *c, net_err code, const char *msg);
void net__conn_fail_sys(net_conn *c, const char *op, int e);
void net__conn_finish(net_conn *c);         /* socket closed; retired if the owner is gone */
void net__conn_drop_attempts(net_conn *c);   /* closes and frees the attempts */
void net__conn_apply_options(net_conn *c, bool asked);
/* "1.2.3.4:80", "unix:/p"; through a proxy "proxy 1.2.3.4:3128" while
 * connecting to it, then "example.test:443 via proxy 1.2.3.4:3128". */
void net__conn_where(const net_conn *c, char *buf, size_t len);
/* What was asked for, "example.test:443" or "[::1]:80" (any thread: fixed at open). */
void net__conn_asked(const net_conn *c, char *buf, size_t len);

#endif
