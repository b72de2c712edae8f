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
extern const net_module net__tcp_module;

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
void net__sockaddr_str(const struct sockaddr *sa, char *buf, size_t len, bool with_port);

/* ---- connections (tcp.c) ---- */
enum {
  REQ_CLOSE = 1,      /* owner asked for a graceful close */
  REQ_STARTTLS = 2,   /* owner asked for TLS after the bytes written so far */
};

typedef enum conn_io {
  IO_NEW,             /* not yet seen by the I/O thread */
  IO_RESOLVING,       /* waiting for its address */
  IO_CONNECTING,
  IO_HANDSHAKE,       /* TLS handshake running */
  IO_OPEN,
  IO_FLUSHING,        /* closing: delivering what the owner wrote */
  IO_DRAINING,        /* closing: write side shut, discarding until the peer's FIN */
  IO_DONE             /* socket closed; waiting for the last reference */
} conn_io;

struct net_conn {
  /* shared with the owner */
  net_ring rx;                      /* I/O thread produces, owner consumes */
  net_ring tx;                      /* owner produces, I/O thread consumes */
  _Alignas(NET_CACHELINE) net_io obj;
  atomic_int state;                 /* net_status */
  atomic_int rx_eof;                /* peer closed orderly; set after the last rx commit */
  atomic_int rx_paused;             /* I/O thread stopped reading: rx was full */
  atomic_int tx_idle;               /* I/O thread found tx empty and sleeps on it */
  atomic_int requests;              /* REQ_* bits */
  net_error err;
  net_addr *addr;                   /* target; owned reference */
  net_addr *_Atomic peer;           /* set by the I/O thread before SUCCESS */
  int linger_ms;
  uint16_t port;
  net_tls_cfg *tls_cfg;             /* set by the owner before the request that uses it */
  size_t starttls_at;               /* tx position where plain text ends */
  net_tls_info tls_info;            /* written before tls_ready is released */
  atomic_int tls_ready;
  /* I/O thread only */
  conn_io io;
  net_sock fd;
  int poll_mask;                    /* registered interest, 0 when not registered */
  int next_addr;                    /* next index of addr to try */
  net_sockaddr cur;                 /* the address being tried / connected */
  bool want_out;                    /* OUT interest: tx has bytes the kernel refused */
  bool peer_fin;                    /* the peer's FIN was read */
  bool starttls;                    /* upgrade once tx reaches starttls_at */
  bool notify_sent;                 /* close_notify went out */
  net_tls *tls;
  size_t tls_wlen;                  /* a blocked TLS write: repeat with this length */
  int last_errno;
  uint64_t deadline;                /* linger end, ms since engine start; 0: none */
  struct net_conn *io_prev, *io_next;   /* the I/O thread list it is on */
  struct conn_list *list;
  bool owner_gone;
  bool reading;                     /* IN interest wanted (not paused, no EOF yet) */
};

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
void net__settings_lock(void);      /* process-wide settings such as the CA path */
void net__settings_unlock(void);

/* The poller, for the connection code (I/O thread only). */
int net__engine_set_interest(net_sock fd, int *registered, int mask, net_io *io);

/* Statistics counters. */
extern atomic_size_t net__live_conns, net__live_addrs;

/* Bounded formatting into a net_error. */
void net__seterr(net_error *e, net_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
net_err net__errno_code(int e);
const char *net__errstr(int e, char *buf, size_t len);   /* thread-safe strerror */

/* Owner-side helpers for the Lua binding (zero-copy reads). */
int net__conn_peek(net_conn *c, net_span *spans, int maxspans, size_t max);
void net__conn_consume(net_conn *c, size_t n);
long net__conn_read_end(net_conn *c);   /* 0, NET_READ_EOF or NET_READ_ERROR when rx is empty */

#endif
