/* engine.h: internals shared by the engine files: objects, the connection
 * struct, and the I/O thread's services. Not part of the public API. */
#ifndef SLUICE_ENGINE_H
#define SLUICE_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"
#include "ring.h"
#include "sock.h"
#include "tls.h"

#define NET_ERRMSG_MAX 192
#define NET_MAX_ADDRS 16
#define NET_HOST_MAX 253
#define NET_IPSTR_MAX 64   /* INET6_ADDRSTRLEN plus room */

/* Failure details written by the publishing thread before the state is
 * release-stored; readers read them only after an acquire load sees FAILURE. */
typedef struct net_error {
  net_err code;
  char msg[NET_ERRMSG_MAX];
} net_error;

/* ---- objects the I/O thread serves ---- */
typedef struct net_io net_io;
typedef struct net_io_ops {
  void (*kicked)(net_io *io);            /* I/O thread: the owner asked for something */
  void (*event)(net_io *io, int mask);   /* I/O thread: its socket is ready */
  void (*destroy)(net_io *io);           /* the last reference went (any thread) */
} net_io_ops;

/* The head every connection, server and UDP socket embeds: the reference
 * count, and the link of the kick stack. Poller events carry a net_io *. */
struct net_io {
  const net_io_ops *ops;
  atomic_int refs;
  atomic_int kicked;                /* on the engine's kick stack */
  net_io *kick_next;
};

void net__io_init(net_io *io, const net_io_ops *ops, int refs);
void net__io_unref(net_io *io);

/* What each kind of object does between poller batches (I/O thread). */
typedef struct net_module {
  void (*resolved)(void);                /* some address finished resolving */
  uint64_t (*timers)(uint64_t now);      /* due work; returns the next deadline, 0: none */
  bool (*idle)(void);                    /* nothing left that needs the thread */
  void (*shutdown)(void);                /* engine stops: abort what is left */
} net_module;
extern const net_module net__tcp_module, net__server_module;
extern const net_module net__udp_module;

/* ---- addresses (resolver.c) ---- */
typedef union net_sockaddr {
  struct sockaddr sa;
  struct sockaddr_in in4;
  struct sockaddr_in6 in6;
} net_sockaddr;

struct net_addr {
  atomic_int refs;
  atomic_int state;                 /* net_status */
  net_error err;
  int count;                        /* results, valid once SUCCESS */
  net_sockaddr sa[NET_MAX_ADDRS];
  char ip[NET_IPSTR_MAX];           /* first result as text */
  char host[NET_HOST_MAX + 1];
};

net_addr *net__addr_from_sockaddr(const struct sockaddr *sa, socklen_t len);
void net__sockaddr_unmap_v4(net_sockaddr *sa);
void net__sockaddr_str(const struct sockaddr *sa, char *buf, size_t len, bool with_port);

/* ---- connections (tcp.c) ---- */
enum {
  REQ_CLOSE = 1,      /* owner asked for a graceful close */
  REQ_STARTTLS = 2,   /* owner asked for TLS after the bytes written so far */
  REQ_OPTIONS = 4,    /* socket options changed */
  REQ_SHUT_WR = 8,    /* FIN once tx is flushed */
  REQ_SHUT_RD = 16,   /* discard input from now on */
  REQ_PAUSE = 32,     /* owner_paused changed */
};

typedef enum conn_io {
  IO_NEW,             /* not yet seen by the I/O thread */
  IO_RESOLVING,       /* waiting for its address */
  IO_CONNECTING,      /* attempts in flight (Happy Eyeballs) */
  IO_HANDSHAKE,       /* TLS handshake running */
  IO_OPEN,
  IO_FLUSHING,        /* closing: delivering what the owner wrote */
  IO_DRAINING,        /* closing: write side shut, discarding until the peer's FIN */
  IO_DONE             /* socket closed; waiting for the last reference */
} conn_io;

#define NET_MAX_ATTEMPTS 4  /* connection attempts in flight at once */

/* One connection attempt of Happy Eyeballs: its own socket and poller entry. */
typedef struct net_attempt {
  net_io obj;
  struct net_conn *c;
  net_sock fd;
  int poll_mask;
  net_sockaddr sa;
} net_attempt;

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
  net_error err;
  net_addr *addr;                   /* target; owned reference */
  net_addr *_Atomic peer;           /* set by the I/O thread before SUCCESS */
  char *unix_path;                  /* Unix socket connections */
  uint16_t port;
  int family;                       /* 0, 4 or 6 */
  int connect_timeout_ms, idle_timeout_ms;
  net_tls_cfg *tls_cfg;             /* set by the owner before the request that uses it */
  size_t starttls_at;               /* tx position where plain text ends */
  net_tls_info *_Atomic tls_info;   /* published with tls_ready */
  atomic_int tls_ready;
  net_sockaddr cur;                 /* the peer; final once SUCCESS is published */
  net_sockaddr local;               /* likewise, our end */
  /* I/O thread only */
  conn_io io;
  net_sock fd;
  int poll_mask;                    /* registered interest, 0 when not registered */
  int last_errno;
  net_attempt *att;                 /* while connecting */
  int natt, next_try;               /* attempts in flight; next index of order[] */
  uint8_t order[NET_MAX_ADDRS];     /* addresses in Happy Eyeballs order */
  int norder;
  uint64_t connect_deadline, next_attempt_at, linger_deadline, last_io;
  uint64_t wake_at;                 /* earliest of the above that applies; 0: none */
  struct net_conn *io_prev, *io_next;   /* the I/O thread list it is on */
  struct net_conn *t_prev, *t_next;     /* the timer list, while wake_at != 0 */
  struct conn_list *list;
  bool timed;
  bool owner_gone;
  bool reading;                     /* IN interest wanted (not paused, no EOF yet) */
  bool want_out;                    /* OUT interest: tx has bytes the kernel refused */
  bool peer_fin;                    /* the peer's FIN was read */
  bool starttls;                    /* upgrade once tx reaches starttls_at */
  bool notify_sent;                 /* close_notify went out */
  bool shut_wr_pending, wr_shut, discard_rx;
  net_tls *tls;
  size_t tls_wlen;                  /* a blocked TLS write: repeat with this length */
};

/* tcp.c, for server.c: a connection around an accepted socket (I/O thread).
 * The caller owns one reference (to hand to the owner), the I/O thread the other. */
net_conn *net__conn_adopt(net_sock fd, const net_sockaddr *peer, const char *unix_path,
                          const net_conn_opts *o, const net_tls_cfg *tls);
/* I/O thread: an accepted connection nobody will take: close it and drop the
 * reference the owner would have had. */
void net__conn_abandon(net_conn *c);
void net__conn_apply_options(net_sock fd, const net_conn_opts *o);
/* "1.2.3.4:80", "[::1]:80" or "unix:/path" */
void net__conn_where(const net_conn *c, char *buf, size_t len);
net_addr *net__addr_unix(const char *path);

/* ---- engine (engine.c) ---- */
bool net__engine_acquire(void);     /* starts the I/O thread if needed */
void net__engine_release(void);
void net__engine_kick(net_io *io);  /* owner: schedule io for the I/O thread */
void net__engine_wake(void);        /* anyone: wake the I/O thread (coalesced) */
void net__engine_notify(void);      /* publisher: wake waiting owners */
void net__engine_activity(void);    /* I/O thread: notify once this loop turn ends */
void net__host_polled(void);        /* owner: re-arms the host wake-up */
void net__engine_addr_resolved(void);   /* resolver helper: an address is published */
/* Owner: block until done(arg) or timeout_ms (-1: forever); 1 when done. */
int net__wait_until(bool (*done)(void *), void *arg, int timeout_ms);
/* Owner: 1 if anything was published since *seen, else wait for it. */
int net_wait_activity_since(uint64_t *seen, int timeout_ms);
uint64_t net__now_ms(void);
void net__background_priority(void);   /* called first by the I/O thread and resolver helpers */
void net__settings_lock(void);      /* process-wide settings such as the CA path */
void net__settings_unlock(void);

/* The poller, for the connection code (I/O thread only). */
int net__engine_set_interest(net_sock fd, int *registered, int mask, net_io *io);

/* Statistics counters. */
extern atomic_size_t net__live_conns, net__live_addrs;
extern atomic_size_t net__live_udp;

/* ---- UDP (udp.c), owner-side helpers for the Lua binding ---- */
/* An IP literal ("127.0.0.1", "::1", "[::1]", "fe80::1%eth0") into *out, port 0;
 * never a lookup. */
bool net__udp_parse_ip(const char *s, size_t len, net_sockaddr *out);
/* net_udp_send to a socket address instead of an address object. */
net_err net__udp_send_sa(net_udp *u, const net_sockaddr *to, uint16_t port, const void *data,
                         size_t len, const char **err);
/* Takes the next datagram only if its size is want (any size: -1); as net_udp_receive. */
long net__udp_take(net_udp *u, void *buf, size_t cap, long want, net_sockaddr *peer);
void net__udp_where(net_udp *u, char *buf, size_t len);   /* "127.0.0.1:5353", "[::]:5353" */
uint16_t net__sockaddr_port(const net_sockaddr *sa);
socklen_t net__sockaddr_len(const net_sockaddr *sa);

/* Bounded formatting into a net_error. */
void net__seterr(net_error *e, net_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
net_err net__errno_code(int e);
const char *net__errstr(int e, char *buf, size_t len);   /* thread-safe strerror */

/* Owner-side helpers for the Lua binding (zero-copy reads). */
int net__conn_peek(net_conn *c, net_span *spans, int maxspans, size_t max);
void net__conn_consume(net_conn *c, size_t n);
long net__conn_read_end(net_conn *c);   /* 0, NET_READ_EOF or NET_READ_ERROR when rx is empty */
bool net__conn_input_ended(net_conn *c);   /* no more bytes will arrive */
net_result net__conn_write_error(net_conn *c);   /* why net_conn_write returned -1 */
size_t net__conn_copy(net_conn *c, size_t off, void *dst, size_t n);   /* peek at an offset */
size_t net__conn_cap(net_conn *c);      /* the buffer size of each direction */
size_t net__live_servers(void);

#endif
