/* udp.c: UDP sockets. The net_udp_* functions run on the owner thread: socket,
 * bind and setsockopt (quick syscalls that never block) and the datagram rings;
 * the I/O thread owns sendmsg/recvmsg, the poller registration and the close
 * (and the bind of a port that a closing socket of ours held at open). */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "alloc.h"
#include "engine.h"
#include "poller.h"
#include "ring.h"
#include "wake.h"

#define MAX_SPANS 8             /* a record of 64 KiB + header spans at most 6 chunks */
#define RECV_BATCH 64           /* datagrams per readiness event: no socket starves others */
#define SEND_BATCH 64           /* datagrams per turn; the rest after an OUT event */
#define DGRAM_MAX 65535u        /* receive room: more than any UDP payload */
#define DGRAM_MAX4 65507u       /* 65535 - 20 (IPv4 header) - 8 (UDP header) */
#define DGRAM_MAX6 65527u       /* 65535 - 8: the IPv6 payload length covers only UDP */
#define RESERVE_TRIES 4         /* a reserve that meets the consumer trimming fails */

/* One ring record: this header, then len payload bytes. Records are written
 * whole with reserve/commit, so a consumer never sees half of one. The header
 * may straddle two chunks: it is always copied in and out, never cast. */
typedef struct rec_hdr {
  uint32_t len;
  net_sockaddr peer;            /* rx: the sender; tx: the destination (port included) */
} rec_hdr;
#define HDR sizeof(rec_hdr)

struct net_udp {
  /* shared with the owner */
  net_ring rx;                  /* I/O thread produces records, owner consumes */
  net_ring tx;                  /* owner produces records, I/O thread consumes */
  _Alignas(NET_CACHELINE) net_io obj;
  atomic_int state;             /* NET_SUCCESS while usable, NET_FAILURE after an I/O error */
  atomic_int tx_idle;           /* I/O thread found tx empty and sleeps on it */
  atomic_int close_req;         /* the owner closed it */
  net_error err;                /* written before FAILURE is released */
  net_sock fd;                  /* opened by the owner; closed by the I/O thread */
  net_sockaddr local;           /* bound address with the real port; read-only after open */
  bool dual;                    /* IPv6 wildcard that carries IPv4 too (V6ONLY off) */
  bool mif4;                    /* owner: multicast_interface was last set to an IPv4 address */
  /* written by the I/O thread only, read by anyone */
  _Alignas(NET_CACHELINE) atomic_uint_fast64_t received, sent, dropped, send_errors;
  /* I/O thread only */
  _Alignas(NET_CACHELINE) int poll_mask;
  bool want_out;                /* OUT interest: the kernel refused a send (EAGAIN) */
  bool failed;                  /* stopped after an error; the fd stays open for the owner */
  bool closed;                  /* fd closed, waiting to be reaped */
  bool serving;                 /* the I/O thread has registered it */
  net_exit_link live;           /* listed while open: the exit waits for its queue */
  /* A port one of ours still held, closing, when this one opened: it binds
   * once that one's fd is closed (see net_udp_open). pred: set by the
   * opener, then the I/O thread's; waiters, wait_next: I/O thread only. */
  net_udp *pred;
  net_udp *waiters;             /* sockets kicked once this one's fd is closed */
  net_udp *wait_next;
  bool waiting;                 /* listed in pred->waiters */
  net_exit_link closing_link;   /* in `closing` from close to the fd's close */
};

#define UDP(io_ptr) ((net_udp *)((char *)(io_ptr) - offsetof(net_udp, obj)))

static void udp_destroy(net_io *io) {
  net_udp *u = UDP(io);
  if (u->pred) net__io_unref(&u->pred->obj);   /* never served (the I/O thread ended first) */
  ring_destroy(&u->rx);
  ring_destroy(&u->tx);
  net__free_aligned(u);
  atomic_fetch_sub(&net__live_udp, 1);
}

/* ---- open sockets at exit ------------------------------------------------ */

/* A socket left open that has not failed and holds a datagram to send: what
 * a program sent before an os.exit without close goes out too. */
static bool udp_pending(net_exit_link *m) {
  net_udp *u = (net_udp *)((char *)m - offsetof(net_udp, live));
  return ring_used(&u->tx) != 0 && atomic_load_explicit(&u->state, memory_order_acquire) != NET_FAILURE;
}

static net_exit_list live = {.pending = udp_pending};

/* ---- ports of sockets still closing ----------------------------------------- */

/* Closed by their owners, their fds not closed yet (the I/O thread sends
 * what they queued first): a socket opened for one's port waits for it
 * rather than failing with "Address already in use". No pending(): the
 * exit waits for these through the closing count. */
static net_exit_list closing;

static bool wildcard(const net_sockaddr *sa) {
  if (sa->sa.sa_family == AF_INET6) return IN6_IS_ADDR_UNSPECIFIED(&sa->in6.sin6_addr);
  return sa->in4.sin_addr.s_addr == htonl(INADDR_ANY);
}

/* Could u's bound address be what keeps sa from binding? */
static bool holds(const net_udp *u, const net_sockaddr *sa) {
  const net_sockaddr *l = &u->local;
  if (net__sa_port(l) != net__sa_port(sa)) return false;
  if (wildcard(l) || wildcard(sa)) return true;
  if (l->sa.sa_family != sa->sa.sa_family) return false;
  return l->sa.sa_family == AF_INET ? l->in4.sin_addr.s_addr == sa->in4.sin_addr.s_addr
                                    : !memcmp(&l->in6.sin6_addr, &sa->in6.sin6_addr, 16);
}

/* A closing socket of ours that may hold sa's port, referenced; or NULL. */
static net_udp *closing_holder(const net_sockaddr *sa) {
  if (net__sa_port(sa) == 0 || !net__exit_list_lock(&closing)) return NULL;
  net_udp *found = NULL;
  for (net_exit_link *m = closing.head; m && !found; m = m->next) {
    net_udp *u = (net_udp *)((char *)m - offsetof(net_udp, closing_link));
    if (holds(u, sa)) found = UDP(net__io_ref(&u->obj));   /* listed: the I/O thread still holds it */
  }
  net__exit_list_unlock(&closing);
  return found;
}

static void udp_kicked(net_io *io);
static void udp_event(net_io *io, int mask);
static void udp_timer(net_io *io, uint64_t now) { (void)io, (void)now; }
static const net_io_ops udp_ops = {udp_kicked, udp_event, udp_timer, udp_destroy};

/* ---- spans: records laid over ring memory ------------------------------- */

static size_t spans_len(const net_span *sp, int ns) {
  size_t n = 0;
  for (int i = 0; i < ns; i++) n += sp[i].len;
  return n;
}

/* Copies n bytes from src into the spans, from byte off of the spans on. */
static void spans_put(const net_span *sp, int ns, size_t off, const void *src, size_t n) {
  const char *b = src;
  for (int i = 0; i < ns && n > 0; i++) {
    if (off >= sp[i].len) {   /* not there yet */
      off -= sp[i].len;
      continue;
    }
    size_t k = sp[i].len - off < n ? sp[i].len - off : n;
    memcpy(sp[i].base + off, b, k);
    b += k;
    n -= k;
    off = 0;
  }
}

/* Copies n bytes out of the spans, from byte off of the spans on. */
static void spans_get(const net_span *sp, int ns, size_t off, void *dst, size_t n) {
  char *b = dst;
  for (int i = 0; i < ns && n > 0; i++) {
    if (off >= sp[i].len) {
      off -= sp[i].len;
      continue;
    }
    size_t k = sp[i].len - off < n ? sp[i].len - off : n;
    memcpy(b, sp[i].base + off, k);
    b += k;
    n -= k;
    off = 0;
  }
}

/* iovecs over the spans from byte off on; returns how many. */
static int spans_iov(const net_span *sp, int ns, size_t off, net_iov *iov) {
  int k = 0;
  for (int i = 0; i < ns; i++) {
    if (off >= sp[i].len) {
      off -= sp[i].len;
      continue;
    }
    iov[k++] = NET_IOV(sp[i].base + off, sp[i].len - off);
    off = 0;
  }
  return k;
}

/* Consumer: the header of the first record, if there is one. */
static bool peek_hdr(net_ring *r, rec_hdr *h) {
  net_span sp[2];
  int ns = ring_peek(r, sp, 2, HDR);
  if (spans_len(sp, ns) < HDR) return false;   /* records are committed whole: empty */
  spans_get(sp, ns, 0, h, HDR);
  return true;
}

/* Producer: spans for a whole record of n bytes; 0 when it does not fit, -1
 * when memory for it could not be had. A reserve that meets the consumer
 * trimming an empty ring offers nothing (see ring.c); the ring then has
 * room, so it is tried again. */
static int reserve_record(net_ring *r, net_span *sp, size_t n) {
  for (int i = 0; i < RESERVE_TRIES && ring_free_space(r) >= n; i++) {
    int ns = ring_reserve(r, sp, MAX_SPANS, n);
    if (ns > 0 && spans_len(sp, ns) >= n) return ns;
    ring_commit(r, 0);
    if (ns != 0) return -1;   /* room, but some chunk could not be had */
  }
  return 0;
}

/* ---- owner side: open ---------------------------------------------------- */

/* Failure text made on the owner thread; the caller copies it before its next call. */
static const char *owner_msg(const char *fmt, ...) NET_PRINTF(1, 2);
static const char *owner_msg(const char *fmt, ...) {
  static _Thread_local char msg[NET_ERRMSG_MAX + 128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return msg;
}

/* A taken port is a wrong value, not a network fault. */
static net_err errno_to_code(int e) { return e == EADDRINUSE ? NET_E_INVALID : net__errno_code(e); }

/* "op where: strerror", and its code. */
static net_err errno_error(const char **err, const char *op, const net_sockaddr *sa, int e) {
  char where[NET_IP_MAX + 8], buf[128];
  net__sa_str(sa, where, sizeof where, true);
  *err = owner_msg("%s %s: %s", op, where, net__errstr(e, buf, sizeof buf));
  return errno_to_code(e);
}

/* A bind of fd to sa met a port in use: true when a closing socket of ours
 * holds it (*pred, fd left unbound until it closes) or held it (its fd
 * closed just before it left the list: the second bind takes the port). */
static bool holder_closing(net_sock fd, const net_sockaddr *sa, net_udp **pred) {
  if (errno != EADDRINUSE) return false;
  if ((*pred = closing_holder(sa))) return true;
  if (net_sock_bind(fd, &sa->sa, net__sa_len(sa)) == 0) return true;
  errno = EADDRINUSE;   /* the first refusal, whatever the second said */
  return false;
}

/* socket() and bind() for sa; the wildcard IPv6 socket also takes IPv4 (V6ONLY
 * off). On failure *op names the call that failed and *err its errno. A port
 * a closing socket of ours holds leaves the socket unbound, *pred that one. */
static net_sock bind_socket(net_sockaddr *sa, bool any, const net_udp_opts *o, const char **op,
                            int *err, net_udp **pred) {
  net_sock fd = net_sock_open(sa->sa.sa_family, SOCK_DGRAM);
  if (fd == NET_BAD_SOCK) return *op = "socket", *err = errno, NET_BAD_SOCK;
  int one = 1, zero = 0;
  *op = "bind";
  /* "::" takes IPv4 too, as on Linux by default (Windows: IPv6 only); where
   * it cannot, no address given falls back to IPv4, and "::" stays IPv6 */
  bool dual = sa->sa.sa_family == AF_INET6 && wildcard(sa);
  if ((dual && net_sock_setopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) < 0 && any) ||
      (o && o->reuseaddr && net_sock_setopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) ||
      (net_sock_bind(fd, &sa->sa, net__sa_len(sa)) < 0 && !holder_closing(fd, sa, pred))) {
    *err = errno;
    net_sock_close(fd);
    return NET_BAD_SOCK;
  }
  return fd;
}

/* Opens and binds the socket. No local address: the dual-stack IPv6 wildcard,
 * else (no IPv6 on this host) 0.0.0.0. */
static net_sock open_bound(net_addr *local, uint16_t port, const net_udp_opts *o,
                           net_sockaddr *sa, const char **err, net_err *code, net_udp **pred) {
  const char *op;
  int e = 0;
  net_sock fd;
  memset(sa, 0, sizeof *sa);
  if (local) {
    *sa = local->sa[0];
    net__sa_unmap_v4(sa);   /* ::ffff:a.b.c.d binds an IPv4 socket: sends go out as IPv4 */
  } else {
    sa->in6.sin6_family = AF_INET6;   /* in6addr_any: all zero */
    net__sa_set_port(sa, port);
    if ((fd = bind_socket(sa, true, o, &op, &e, pred)) != NET_BAD_SOCK) return fd;
    /* no IPv6 here (no socket, no ::, or no dual stack): fall back to IPv4 */
    bool no_v6 = strcmp(op, "socket") == 0 || e == EADDRNOTAVAIL || e == ENOPROTOOPT;
    if (!no_v6) {
      *code = errno_error(err, op, sa, e);   /* e.g. the port is taken */
      return NET_BAD_SOCK;
    }
    memset(sa, 0, sizeof *sa);
    sa->in4.sin_family = AF_INET;
  }
  net__sa_set_port(sa, port);
  if ((fd = bind_socket(sa, false, o, &op, &e, pred)) == NET_BAD_SOCK)
    *code = errno_error(err, op, sa, e);
  return fd;
}

static bool is_dual(net_sock fd, const net_sockaddr *sa) {
  if (sa->sa.sa_family != AF_INET6 || !wildcard(sa)) return false;
  int v6only = 1;
  socklen_t len = sizeof v6only;
  return net_sock_getopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len) == 0 && v6only == 0;
}

net_udp *net_udp_open(net_addr *local, uint16_t port, const net_udp_opts *o, const char **err,
                      net_err *code) {
  net_err ignored;
  if (!code) code = &ignored;   /* as every opener takes it */
  if (local) {
    int st = atomic_load_explicit(&local->state, memory_order_acquire);
    /* a copy: the address may be freed before the caller reads it */
    if (st == NET_FAILURE) return *err = owner_msg("%s", local->err.msg), *code = local->err.code, NULL;
    if (st != NET_SUCCESS || local->count == 0) {
      *err = owner_msg("bind %s: the address is not resolved yet", local->host);
      return *code = NET_E_INVALID, NULL;
    }
  }
  if (!net__engine_acquire())
    return *err = net__engine_refusal(), *code = NET_E_LIMIT, NULL;
  net_sockaddr sa;
  net_udp *pred = NULL;
  net_sock fd = open_bound(local, port, o, &sa, err, code, &pred);
  if (fd == NET_BAD_SOCK) {
    net__engine_release();
    return NULL;
  }
  net_udp *u = net__aligned(sizeof(net_udp));
  if (!u) {
    if (pred) net__io_unref(&pred->obj);
    net_sock_close(fd);
    net__engine_release();
    return *err = "out of memory", *code = NET_E_LIMIT, NULL;
  }
  memset(u, 0, sizeof *u);
  /* a ring must hold at least one record of the largest datagram */
  size_t cap = o && o->buffer_size ? o->buffer_size : NET_RING_DEFAULT_CAP;
  if (cap < HDR + DGRAM_MAX) cap = HDR + DGRAM_MAX;
  ring_init(&u->rx, cap);
  ring_init(&u->tx, cap);
  net__io_init(&u->obj, &udp_ops, 2);   /* the owner's and the I/O thread's */
  atomic_init(&u->state, NET_SUCCESS);
  u->fd = fd;
  u->pred = pred;
  socklen_t len = sizeof u->local;
  if (pred || net_sock_getsockname(fd, &u->local.sa, &len) < 0) u->local = sa;   /* unbound: asked */
  u->dual = is_dual(fd, &u->local);
  atomic_fetch_add(&net__live_udp, 1);
  net__exit_list_add(&live, &u->live);
  net__engine_kick(&u->obj);   /* release: the fields above reach the I/O thread */
  return u;
}

uint16_t net_udp_port(net_udp *u) { return net__sa_port(&u->local); }

void net_udp_local(net_udp *u, net_endpoint *out) { net__sa_endpoint(&u->local, out); }

net_result net_udp_status(net_udp *u) {
  net_result r;
  if (net__engine_inherited(&r)) return r;
  net__host_polled();
  /* acquire: pairs with the I/O thread's release of state after err is written */
  if (atomic_load_explicit(&u->state, memory_order_acquire) == NET_FAILURE)
    return (net_result){NET_FAILURE, u->err.code, u->err.msg};
  return (net_result){NET_SUCCESS, NET_E_NONE, ""};
}

net_udp_counts net_udp_stats(net_udp *u) {
  return (net_udp_counts){
      .received = atomic_load_explicit(&u->received, memory_order_relaxed),
      .sent = atomic_load_explicit(&u->sent, memory_order_relaxed),
      .dropped = atomic_load_explicit(&u->dropped, memory_order_relaxed),
      .send_errors = atomic_load_explicit(&u->send_errors, memory_order_relaxed),
  };
}

void net_udp_close(net_udp *u) {
  net__exit_list_remove(&live, &u->live);   /* the closing count waits for its queue from here on */
  net__io_disown(&u->obj);   /* nobody will read it now: what it publishes wakes no host */
  net__engine_closing(1);   /* out again once the queued datagrams were handed over */
  net__exit_list_add(&closing, &u->closing_link);
  atomic_store(&u->close_req, 1);
  net__engine_kick(&u->obj);
  net__io_unref(&u->obj);
  net__engine_release();
}

/* ---- owner side: send ------------------------------------------------------ */

static net_err send_sa(net_udp *u, const net_sockaddr *to, uint16_t port, const void *data,
                       size_t len, const char **err) {
  net__host_polled();
  net_result r;
  if (net__engine_inherited(&r)) return *err = r.msg, r.err;
  if (atomic_load_explicit(&u->state, memory_order_acquire) == NET_FAILURE)
    return *err = u->err.msg, u->err.code;
  if (port == 0) return *err = "port 0 takes no datagram", NET_E_INVALID;
  rec_hdr h = {.peer = *to};
  net__sa_unmap_v4(&h.peer);   /* ::ffff:a.b.c.d goes out as IPv4: its limits and checks */
  net__sa_set_port(&h.peer, port);
  bool v4 = h.peer.sa.sa_family == AF_INET;
  if (v4 && len > DGRAM_MAX4) return *err = "datagram too large (max 65507 bytes)", NET_E_INVALID;
  if (!v4 && len > DGRAM_MAX6) return *err = "datagram too large (max 65527 bytes)", NET_E_INVALID;
  if (u->local.sa.sa_family == AF_INET && !v4)
    return *err = "an IPv4 socket cannot send to an IPv6 address", NET_E_INVALID;
  if (u->local.sa.sa_family == AF_INET6 && v4) {
    if (!u->dual) return *err = "an IPv6-only socket cannot send to an IPv4 address", NET_E_INVALID;
    net__sa_map_v4(&h.peer);
  }
  h.len = (uint32_t)len;
  net_span sp[MAX_SPANS];
  int ns = reserve_record(&u->tx, sp, HDR + len);
  if (ns < 0) return *err = "out of memory for the send queue", NET_E_LIMIT;
  if (ns == 0) return *err = "send queue full", NET_E_LIMIT;
  spans_put(sp, ns, 0, &h, HDR);
  spans_put(sp, ns, HDR, data, len);
  ring_commit(&u->tx, HDR + len);
  /* seq_cst fence: pairs with the one in tx_empty(); either the I/O thread
   * sees our record, or we see it asleep on tx and wake it. */
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load_explicit(&u->tx_idle, memory_order_relaxed) && atomic_exchange(&u->tx_idle, 0))
    net__engine_kick(&u->obj);
  return NET_E_NONE;
}

/* The first address of a that this socket can reach (::ffff:a.b.c.d as the
 * IPv4 address it is, as send_sa takes it). */
static bool pick_target(net_udp *u, net_addr *a, net_sockaddr *to) {
  int fam = u->local.sa.sa_family;
  for (int pass = 0; pass < 2; pass++) {   /* own family first; IPv4 on a dual socket next */
    for (int i = 0; i < a->count; i++) {
      net_sockaddr s = a->sa[i];
      net__sa_unmap_v4(&s);
      int f = s.sa.sa_family;
      if (pass == 0 ? f == fam : (u->dual && f == AF_INET)) {
        *to = a->sa[i];
        return true;
      }
    }
  }
  return false;
}

net_err net_udp_send(net_udp *u, net_addr *to, uint16_t port, const void *data, size_t len,
                     const char **err) {
  if (!to) return *err = "no address to send to", NET_E_INVALID;
  int st = atomic_load_explicit(&to->state, memory_order_acquire);
  if (st == NET_FAILURE) return *err = owner_msg("%s", to->err.msg), to->err.code;   /* see net_udp_open */
  if (st != NET_SUCCESS) return *err = owner_msg("send to %s: the address is not resolved yet", to->host), NET_E_INVALID;
  net_sockaddr sa;
  if (!pick_target(u, to, &sa)) {
    *err = u->local.sa.sa_family == AF_INET ? "an IPv4 socket cannot send to an IPv6 address"
                                            : "an IPv6-only socket cannot send to an IPv4 address";
    return NET_E_INVALID;
  }
  return send_sa(u, &sa, port, data, len, err);
}

net_err net_udp_send_to(net_udp *u, const char *ip, size_t iplen, uint16_t port, const void *data,
                        size_t len, const char **err) {
  net_sockaddr sa;
  if (!net__ip_parse(ip, iplen, &sa)) return *err = "not an IP address", NET_E_INVALID;
  return send_sa(u, &sa, port, data, len, err);
}

/* ---- owner side: receive --------------------------------------------------- */

long net_udp_next_size(net_udp *u) {
  net__host_polled();
  rec_hdr h;
  if (peek_hdr(&u->rx, &h)) return (long)h.len;
  /* acquire: pairs with the release of FAILURE, which follows the last commit,
   * so a second look finds every datagram received before the error */
  bool failed = atomic_load_explicit(&u->state, memory_order_acquire) == NET_FAILURE;
  if (failed && peek_hdr(&u->rx, &h)) return (long)h.len;
  net__io_seen(&u->obj);
  return failed ? NET_READ_ERROR : NET_UDP_NONE;
}

/* Takes the next datagram only if its size is want (any size: -1). */
static long take(net_udp *u, void *buf, size_t cap, long want, net_sockaddr *peer) {
  rec_hdr h;
  if (!peek_hdr(&u->rx, &h)) return NET_UDP_NONE;
  if (want >= 0 && (long)h.len != want) return NET_UDP_NONE;
  net_span sp[MAX_SPANS];
  int ns = ring_peek(&u->rx, sp, MAX_SPANS, HDR + h.len);
  spans_get(sp, ns, HDR, buf, h.len < cap ? h.len : cap);
  if (peer) *peer = h.peer;
  ring_consume(&u->rx, HDR + h.len);
  if (ring_used(&u->rx) == 0) net__io_seen(&u->obj);
  return (long)h.len;
}

long net_udp_take(net_udp *u, void *buf, size_t cap, long want, net_endpoint *from) {
  net_sockaddr peer;
  long n = take(u, buf, cap, want, &peer);
  if (n >= 0 && from) net__sa_endpoint(&peer, from);
  return n;
}

long net_udp_receive(net_udp *u, void *buf, size_t cap, net_addr **from, uint16_t *port) {
  long n = net_udp_next_size(u);
  if (n < 0) return n;
  net_sockaddr peer;
  n = take(u, buf, cap, -1, &peer);
  if (from) *from = net__addr_from_sa(&peer);
  if (port) *port = net__sa_port(&peer);
  return n;
}

/* ---- owner side: options and groups ---------------------------------------- */

static net_err opt_errno(const char **err, const char *what, int e) {
  char buf[128];
  *err = owner_msg("%s: %s", what, net__errstr(e, buf, sizeof buf));
  return net__errno_code(e);
}

static net_err opt_invalid(const char **err, const char *what, const char *why) {
  *err = owner_msg("%s: %s", what, why);
  return NET_E_INVALID;
}

/* The kernel's answers about the membership itself are wrong values, not network faults. */
static net_err member_errno(const char **err, const char *what, bool join, int e) {
  if (e == EADDRINUSE && join) return opt_invalid(err, what, "already joined");
  /* (Winsock says EINVAL: the arguments were checked before, so that is all it can mean) */
  if ((e == EADDRNOTAVAIL || e == EINVAL) && !join) return opt_invalid(err, what, "not joined");
  net_err code = opt_errno(err, what, e);
  return e == EADDRNOTAVAIL || e == EADDRINUSE ? NET_E_INVALID : code;
}

/* level/name of an option for this socket's family (IPv4 options on IPv4 sockets). */
static bool opt_where(net_udp *u, net_udp_option opt, int *level, int *name) {
  bool v6 = u->local.sa.sa_family == AF_INET6;
  switch (opt) {
    case NET_UDP_BROADCAST: *level = SOL_SOCKET, *name = SO_BROADCAST; return true;
    case NET_UDP_REUSEADDR: *level = SOL_SOCKET, *name = SO_REUSEADDR; return true;
    case NET_UDP_MULTICAST_LOOP:
      *level = v6 ? IPPROTO_IPV6 : IPPROTO_IP;
      *name = v6 ? IPV6_MULTICAST_LOOP : IP_MULTICAST_LOOP;
      return true;
    case NET_UDP_MULTICAST_TTL:
      *level = v6 ? IPPROTO_IPV6 : IPPROTO_IP;
      *name = v6 ? IPV6_MULTICAST_HOPS : IP_MULTICAST_TTL;
      return true;
  }
  return false;
}

net_err net_udp_set_option(net_udp *u, net_udp_option opt, int value, const char **err) {
  int level, name;
  if (!opt_where(u, opt, &level, &name)) return opt_invalid(err, "set_option", "unknown option");
  if (opt == NET_UDP_MULTICAST_TTL && (value < 0 || value > 255))
    return opt_invalid(err, "set_option", "multicast_ttl must be 0..255");
  if (opt != NET_UDP_MULTICAST_TTL) value = value != 0;
  if (net_sock_setopt(u->fd, level, name, &value, sizeof value) < 0)
    return opt_errno(err, "set_option", errno);
  /* a dual-stack socket sends IPv4 multicast too: best effort, as not every
   * system takes IPv4 options on an IPv6 socket */
  if (u->dual && opt == NET_UDP_MULTICAST_LOOP)
    (void)net_sock_setopt(u->fd, IPPROTO_IP, IP_MULTICAST_LOOP, &value, sizeof value);
  if (u->dual && opt == NET_UDP_MULTICAST_TTL)
    (void)net_sock_setopt(u->fd, IPPROTO_IP, IP_MULTICAST_TTL, &value, sizeof value);
  return NET_E_NONE;
}

net_err net_udp_get_option(net_udp *u, net_udp_option opt, int *value, const char **err) {
  int level, name, v = 0;
  socklen_t len = sizeof v;
  if (!opt_where(u, opt, &level, &name)) return opt_invalid(err, "get_option", "unknown option");
  if (net_sock_getopt(u->fd, level, name, &v, &len) < 0) return opt_errno(err, "get_option", errno);
  if (len == 1) v = *(unsigned char *)&v;   /* BSD-style u_char IPv4 multicast options */
  *value = opt == NET_UDP_MULTICAST_TTL ? v : v != 0;
  return NET_E_NONE;
}

/* An IPv6 interface: a name ("lo", "eth0") or an index ("1"); 0 for the default. */
static bool iface_index(const char *iface, unsigned *index) {
  *index = 0;
  if (!iface || !*iface) return true;
  char *end;
  unsigned long n = strtoul(iface, &end, 10);
  if (*end == '\0') return (*index = (unsigned)n) == n;
  return (*index = if_nametoindex(iface)) != 0;
}

net_err net_udp_set_multicast_if(net_udp *u, const char *iface, const char **err) {
  net_sockaddr sa;
  char what[96];
  snprintf(what, sizeof what, "multicast_interface %s", iface ? iface : "default");
  if (iface && net__ip_parse(iface, strlen(iface), &sa) && sa.sa.sa_family == AF_INET) {
    if (u->local.sa.sa_family == AF_INET6 && !u->dual)
      return opt_invalid(err, what, "an IPv6-only socket has no IPv4 interface");
    struct in_addr a = sa.in4.sin_addr;
    if (net_sock_setopt(u->fd, IPPROTO_IP, IP_MULTICAST_IF, &a, sizeof a) < 0)
      return opt_errno(err, what, errno);
    u->mif4 = true;
    return NET_E_NONE;
  }
  unsigned index;
  if (!iface_index(iface, &index)) return opt_invalid(err, what, "no such interface");
  if (u->local.sa.sa_family == AF_INET && index)
    return opt_invalid(err, what, "an IPv4 socket takes an IPv4 interface address");
  /* the default, or an IPv6 index: an IPv4 interface set before goes back to
   * the default too, or a dual-stack socket's IPv4 side would keep it */
  struct in_addr any = {.s_addr = htonl(INADDR_ANY)};
  if ((u->local.sa.sa_family == AF_INET || u->mif4) &&
      net_sock_setopt(u->fd, IPPROTO_IP, IP_MULTICAST_IF, &any, sizeof any) < 0)
    return opt_errno(err, what, errno);
  u->mif4 = false;
  if (u->local.sa.sa_family == AF_INET6 &&
      net_sock_setopt(u->fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, sizeof index) < 0)
    return opt_errno(err, what, errno);
  return NET_E_NONE;
}

static int no_room(char *buf, size_t len) {
  if (len) buf[0] = '\0';
  return -1;
}

int net_udp_get_multicast_if(net_udp *u, char *buf, size_t len) {
  if (u->local.sa.sa_family == AF_INET6 && !u->mif4) {
    unsigned index = 0;
    socklen_t l = sizeof index;
    if (net_sock_getopt(u->fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, &l) < 0) return -1;
    int n = snprintf(buf, len, "%u", index);
    return n >= 0 && (size_t)n < len ? 6 : no_room(buf, len);
  }
  struct in_addr a = {0};
  socklen_t l = sizeof a;
  if (net_sock_getopt(u->fd, IPPROTO_IP, IP_MULTICAST_IF, &a, &l) < 0) return -1;
  return len <= INT_MAX && inet_ntop(AF_INET, &a, buf, (socklen_t)len) ? 4 : no_room(buf, len);
}

static net_err membership(net_udp *u, const char *group, const char *iface, bool join,
                          const char **err) {
  net_sockaddr g, ifa;
  char what[160];
  snprintf(what, sizeof what, "%s %s%s%s", join ? "join" : "leave", group ? group : "?",
           iface && *iface ? " on " : "", iface && *iface ? iface : "");
  if (!group || !net__ip_parse(group, strlen(group), &g))
    return opt_invalid(err, what, "not an IP address");
  if (g.sa.sa_family == AF_INET) {
    if (!IN_MULTICAST(ntohl(g.in4.sin_addr.s_addr)))
      return opt_invalid(err, what, "not a multicast group");
    if (u->local.sa.sa_family == AF_INET6 && !u->dual)
      return opt_invalid(err, what, "an IPv6-only socket cannot join an IPv4 group");
    struct ip_mreq m = {.imr_multiaddr = g.in4.sin_addr, .imr_interface.s_addr = htonl(INADDR_ANY)};
    if (iface && *iface) {
      if (!net__ip_parse(iface, strlen(iface), &ifa) || ifa.sa.sa_family != AF_INET)
        return opt_invalid(err, what, "the interface of an IPv4 group is an IPv4 address");
      m.imr_interface = ifa.in4.sin_addr;
    }
    int name = join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP;
    if (net_sock_setopt(u->fd, IPPROTO_IP, name, &m, sizeof m) < 0)
      return member_errno(err, what, join, errno);
    return NET_E_NONE;
  }
  if (!IN6_IS_ADDR_MULTICAST(&g.in6.sin6_addr))
    return opt_invalid(err, what, "not a multicast group");
  if (u->local.sa.sa_family == AF_INET)
    return opt_invalid(err, what, "an IPv4 socket cannot join an IPv6 group");
  struct ipv6_mreq m = {.ipv6mr_multiaddr = g.in6.sin6_addr};
  unsigned index;
  if (!iface_index(iface, &index)) return opt_invalid(err, what, "no such interface");
  /* a zone names the interface too ("ff02::1%lo"); two that differ are a mistake */
  if (g.in6.sin6_scope_id && index && g.in6.sin6_scope_id != index)
    return opt_invalid(err, what, "the group's zone and the interface differ");
  m.ipv6mr_interface = index ? index : g.in6.sin6_scope_id;
  if (net_sock_setopt(u->fd, IPPROTO_IPV6, join ? IPV6_JOIN_GROUP : IPV6_LEAVE_GROUP, &m, sizeof m) < 0)
    return member_errno(err, what, join, errno);
  return NET_E_NONE;
}

net_err net_udp_join(net_udp *u, const char *group, const char *iface, const char **err) {
  return membership(u, group, iface, true, err);
}

net_err net_udp_leave(net_udp *u, const char *group, const char *iface, const char **err) {
  return membership(u, group, iface, false, err);
}

/* ---- I/O thread ------------------------------------------------------------ */

static void close_socket(net_udp *u) {
  if (u->closed) return;
  net__engine_set_interest(u->fd, &u->poll_mask, 0, &u->obj);
  net_sock_close(u->fd);
  u->fd = NET_BAD_SOCK;
  u->closed = true;
  net__exit_list_remove(&closing, &u->closing_link);
  while (u->waiters) {   /* its port is free: they bind now */
    net_udp *w = u->waiters;
    u->waiters = w->wait_next;
    net__engine_kick(&w->obj);
    net__io_unref(&w->obj);
  }
  net__io_retire(&u->obj);
}

/* Stops serving the socket after an unexpected error. The fd stays open (the
 * owner may still call setsockopt on it) until the owner closes. */
static void fail(net_udp *u, const char *op, int e) {
  char where[NET_IP_MAX + 8], buf[128];
  net__sa_str(&u->local, where, sizeof where, true);
  net__seterr(&u->err, errno_to_code(e), "%s %s: %s", op, where, net__errstr(e, buf, sizeof buf));
  /* release: err is complete before anyone can see FAILURE */
  atomic_store_explicit(&u->state, NET_FAILURE, memory_order_release);
  if (!atomic_load(&u->close_req)) net__io_publish(&u->obj);
  u->failed = true;
  net__engine_set_interest(u->fd, &u->poll_mask, 0, &u->obj);
}

static void update_interest(net_udp *u) {
  if (u->failed || u->closed) return;
  int mask = NET_POLL_IN | (u->want_out ? NET_POLL_OUT : 0);
  if (net__engine_set_interest(u->fd, &u->poll_mask, mask, &u->obj) < 0) fail(u, "poll", errno);
}

static void set_want_out(net_udp *u, bool on) {
  if (u->want_out == on) return;
  u->want_out = on;
  update_interest(u);
}

/* Errors a datagram socket reports for earlier sends (ICMP): counted, not fatal. */
static bool late_send_error(int e) {
  switch (e) {
    case ECONNREFUSED: case ECONNRESET: case EHOSTUNREACH: case ENETUNREACH: case EHOSTDOWN:
    case ENETDOWN: case EMSGSIZE: case EPROTO: case EACCES: case ETIMEDOUT: case ENOPROTOOPT:
      return true;
    default:
      return false;
  }
}

/* Spans for the largest record in rx: > 0 spans; 0 when rx has no room for
 * a header and a byte, or no memory for it (the datagram is dropped and
 * counted, or it would spin the loop); -1 when the reserve met the owner
 * trimming the empty ring (see ring.c): not full, so try again later. */
static int reserve_rx(net_udp *u, net_span *sp) {
  for (int i = 0; i < RESERVE_TRIES; i++) {
    if (ring_free_space(&u->rx) <= HDR) return 0;
    int ns = ring_reserve(&u->rx, sp, MAX_SPANS, HDR + DGRAM_MAX);
    if (ns > 0 && spans_len(sp, ns) > HDR) return ns;
    ring_commit(&u->rx, 0);
    if (ns != 0) return 0;   /* out of memory */
  }
  return -1;
}

/* Takes one datagram from the kernel: straight into rx (the header goes in
 * front once the length is known), or dropped and counted when rx cannot hold
 * it. Returns 1 when one was taken, 0 when none is waiting or rx is busy (the
 * datagram stays in the kernel: level-triggered polling comes back for it),
 * -1 with *e set on an error. */
static int recv_one(net_udp *u, int *e) {
  static char sink[1];   /* a datagram read into a short buffer is cut off: gone */
  net_span sp[MAX_SPANS];
  net_iov iov[MAX_SPANS];
  rec_hdr h;
  memset(&h, 0, sizeof h);
  int ns = reserve_rx(u, sp);
  if (ns < 0) return *e = EAGAIN, 0;
  int niov = 1;
  if (ns > 0) {
    niov = spans_iov(sp, ns, HDR, iov);
  } else {   /* full: read it anyway, or it would hold up the ones behind it */
    iov[0] = NET_IOV(sink, sizeof sink);
  }
  socklen_t plen = sizeof h.peer;
  bool trunc;
  ssize_t n = net_sock_readv(u->fd, iov, niov, &h.peer, &plen, &trunc);
  *e = errno;
  if (n < 0 || ns == 0 || trunc) {
    ring_commit(&u->rx, 0);
    if (n < 0) return net_sock_would_block(*e) ? 0 : -1;
    atomic_fetch_add_explicit(&u->dropped, 1, memory_order_relaxed);   /* no room for it */
    return 1;
  }
  h.len = (uint32_t)n;
  net__sa_unmap_v4(&h.peer);
  spans_put(sp, ns, 0, &h, HDR);
  ring_commit(&u->rx, HDR + (size_t)n);
  atomic_fetch_add_explicit(&u->received, 1, memory_order_relaxed);
  if (!atomic_load(&u->close_req)) net__io_publish(&u->obj);
  return 1;
}

static void do_recv(net_udp *u) {
  for (int i = 0; i < RECV_BATCH && !u->failed; i++) {
    int e, r = recv_one(u, &e);
    if (r > 0 || (r < 0 && e == EINTR)) continue;
    if (r == 0 || e == ENOMEM || e == ENOBUFS) return;   /* level-triggered: next turn */
    if (late_send_error(e)) atomic_fetch_add_explicit(&u->send_errors, 1, memory_order_relaxed);
    else fail(u, "receive", e);
  }
}

/* tx is empty: sleep on it unless the owner sent meanwhile. */
static bool tx_empty(net_udp *u) {
  atomic_store(&u->tx_idle, 1);
  /* seq_cst fence: pairs with the one in send_sa() */
  atomic_thread_fence(memory_order_seq_cst);
  if (ring_used(&u->tx) > 0 && atomic_exchange(&u->tx_idle, 0)) return true;
  set_want_out(u, false);
  return false;
}

/* Sends queued datagrams until tx is empty or the kernel refuses more (then
 * OUT interest brings us back), at most SEND_BATCH a turn so that one busy
 * socket cannot starve the others (closing too). closing: what the kernel
 * takes now, with no sleep on tx. True when datagrams are left for the OUT
 * event of the next turn. */
static bool try_send(net_udp *u, bool closing) {
  for (int i = 0; !u->failed; i++) {
    if (i == SEND_BATCH) {
      set_want_out(u, true);   /* the socket is writable: the OUT event comes next turn */
      return true;
    }
    rec_hdr h;
    if (!peek_hdr(&u->tx, &h)) {
      if (!closing && tx_empty(u)) continue;
      return false;
    }
    net_span sp[MAX_SPANS];
    net_iov iov[MAX_SPANS];
    int ns = ring_peek(&u->tx, sp, MAX_SPANS, HDR + h.len);
    int niov = spans_iov(sp, ns, HDR, iov);
    ssize_t n = net_sock_writev(u->fd, iov, niov, &h.peer, net__sa_len(&h.peer));
    if (n < 0) {
      int e = errno;
      if (e == EINTR) continue;
      if (net_sock_would_block(e)) {
        if (!closing) set_want_out(u, true);
        return false;
      }
      /* unreachable, refused, not allowed (broadcast without the option), ...:
       * UDP gives no delivery promise, so this datagram is dropped and counted */
      atomic_fetch_add_explicit(&u->send_errors, 1, memory_order_relaxed);
    } else {
      atomic_fetch_add_explicit(&u->sent, 1, memory_order_relaxed);
    }
    ring_consume(&u->tx, HDR + h.len);
    net__io_activity(&u->obj);   /* room in the send queue */
  }
  return false;
}

/* A socket opened on a port a closing one of ours held: binds once that one's
 * fd is closed (which kicks it). Nothing is sent or received before: a send
 * from an unbound socket would go out from a port of the kernel's choosing.
 * True while it waits. */
static bool bind_waits(net_udp *u) {
  net_udp *p = u->pred;
  if (!p) return false;
  if (!p->closed) {
    if (!u->waiting) {
      u->waiting = true;
      u->wait_next = p->waiters;
      p->waiters = UDP(net__io_ref(&u->obj));
    }
    return true;
  }
  u->pred = NULL;
  net__io_unref(&p->obj);
  if (net_sock_bind(u->fd, &u->local.sa, net__sa_len(&u->local)) < 0) fail(u, "bind", errno);
  return false;
}

/* The owner closed it: what it sent before goes out a batch a turn while the
 * kernel takes it (UDP promises no delivery: no linger beyond that), then
 * the socket closes. */
static void close_step(net_udp *u) {
  if (bind_waits(u) || try_send(u, true)) return;
  close_socket(u);
  net__engine_closing(-1);
}

static void udp_kicked(net_io *io) {
  net_udp *u = UDP(io);
  if (u->closed) return;
  if (atomic_load(&u->close_req)) {
    net__io_seen(&u->obj);   /* published after the owner's close: nobody's news */
    close_step(u);
    return;
  }
  if (bind_waits(u)) return;
  if (!u->serving) {   /* first kick: start serving it */
    u->serving = true;
    update_interest(u);
  }
  try_send(u, false);
}

static void udp_event(net_io *io, int mask) {
  net_udp *u = UDP(io);
  if (u->closed) return;
  if (atomic_load(&u->close_req)) {   /* a batch of what is left to send */
    close_step(u);
    return;
  }
  if (u->failed) return;
  /* ERR: a pending socket error, which recvmsg reports and clears */
  if (mask & (NET_POLL_IN | NET_POLL_ERR)) do_recv(u);
  if (mask & NET_POLL_OUT) try_send(u, false);
}
