/* tcp.c: TCP client connections. The net_conn_* functions run on the owner
 * thread and touch only rings and atomics; the net__conn_io_* state machine
 * runs on the I/O thread, which owns the socket. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "poller.h"

#define RECV_BUDGET (512u * 1024)    /* per readiness event, so one peer cannot starve others */
#define RECV_MAX (128u * 1024)      /* per recvmsg */
#define SEND_MAX (256u * 1024)      /* per sendmsg */
#define MAX_SPANS 8

typedef struct conn_list {
  net_conn *head;
  size_t n;
} conn_list;

/* I/O thread only. */
static conn_list resolving, active, closing, dead;

static void list_remove(net_conn *c) {
  conn_list *l = c->list;
  if (!l) return;
  if (c->io_prev) c->io_prev->io_next = c->io_next;
  else l->head = c->io_next;
  if (c->io_next) c->io_next->io_prev = c->io_prev;
  c->io_prev = c->io_next = NULL;
  c->list = NULL;
  l->n--;
}

static void list_move(net_conn *c, conn_list *l) {
  list_remove(c);
  c->io_prev = NULL;
  c->io_next = l->head;
  if (l->head) l->head->io_prev = c;
  l->head = c;
  c->list = l;
  l->n++;
}

#define CONN(io_ptr) ((net_conn *)((char *)(io_ptr) - offsetof(net_conn, obj)))

static void conn_destroy(net_io *io) {
  net_conn *c = CONN(io);
  ring_destroy(&c->rx);
  ring_destroy(&c->tx);
  net_addr_unref(c->addr);
  net__tls_cfg_free(c->tls_cfg);
  net_addr *peer = atomic_load(&c->peer);
  if (peer) net_addr_unref(peer);
  free(c);
  atomic_fetch_sub(&net__live_conns, 1);
}

static void conn_unref(net_conn *c) { net__io_unref(&c->obj); }

static void conn_kicked(net_io *io);
static void conn_event(net_io *io, int mask);
static const net_io_ops conn_ops = {conn_kicked, conn_event, conn_destroy};

/* ---- owner side -------------------------------------------------------- */

net_conn *net_tcp_open(net_addr *a, uint16_t port, const net_conn_opts *o, const char **err) {
  if (!a || port == 0) {
    *err = "an address and a port 1..65535 are required";
    return NULL;
  }
  net_tls_cfg *tls = NULL;
  if (o && o->tls && !(tls = net__tls_cfg_new(o->tls, a->host, err))) return NULL;
  if (!net__engine_acquire()) {
    net__tls_cfg_free(tls);
    *err = "cannot start the I/O thread";
    return NULL;
  }
  size_t size = (sizeof(net_conn) + NET_CACHELINE - 1) / NET_CACHELINE * NET_CACHELINE;
  net_conn *c = aligned_alloc(NET_CACHELINE, size);
  if (!c) {
    net__engine_release();
    net__tls_cfg_free(tls);
    *err = "out of memory";
    return NULL;
  }
  memset(c, 0, sizeof *c);
  c->tls_cfg = tls;
  size_t cap = o && o->buffer_size ? o->buffer_size : NET_RING_DEFAULT_CAP;
  ring_init(&c->rx, cap);
  ring_init(&c->tx, cap);
  net__io_init(&c->obj, &conn_ops, 2);   /* the owner's and the I/O thread's */
  atomic_init(&c->state, NET_WAITING);
  c->addr = net_addr_ref(a);
  c->port = port;
  c->linger_ms = o && o->linger_ms >= 0 ? o->linger_ms : 5000;
  c->fd = NET_BAD_SOCK;
  c->io = IO_NEW;
  atomic_fetch_add(&net__live_conns, 1);
  net__engine_kick(&c->obj);
  return c;
}

net_result net_conn_status(net_conn *c) {
  net__host_polled();
  /* acquire: pairs with the I/O thread's release of state after err is written */
  int st = atomic_load_explicit(&c->state, memory_order_acquire);
  /* Like the peer's close, an error shows once the bytes received before it
   * are read: a loop that stops at "failure" loses nothing. */
  if (st == NET_FAILURE && ring_used(&c->rx) > 0) return (net_result){NET_SUCCESS, NET_E_NONE, ""};
  if (st == NET_FAILURE) return (net_result){NET_FAILURE, c->err.code, c->err.msg};
  if (st == NET_SUCCESS && atomic_load_explicit(&c->rx_eof, memory_order_acquire) &&
      ring_used(&c->rx) == 0)
    return (net_result){NET_FAILURE, NET_E_CLOSED, "closed"};
  return (net_result){(net_status)st, NET_E_NONE, ""};
}

static bool connected_or_failed(void *c) {
  return atomic_load(&((net_conn *)c)->state) != NET_WAITING;
}

net_result net_conn_wait_connected(net_conn *c, int timeout_ms) {
  net__wait_until(connected_or_failed, c, timeout_ms);
  return net_conn_status(c);
}

long net_conn_write(net_conn *c, const void *data, size_t len) {
  if (atomic_load_explicit(&c->state, memory_order_acquire) == NET_FAILURE) return -1;
  size_t n = ring_write(&c->tx, data, len);
  if (n == 0) return 0;
  /* seq_cst fence: pairs with the one in tx_empty(); either the I/O thread
   * sees our bytes, or we see it asleep on tx and wake it. */
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load_explicit(&c->tx_idle, memory_order_relaxed) && atomic_exchange(&c->tx_idle, 0))
    net__engine_kick(&c->obj);
  return (long)n;
}

static void rx_consumed(net_conn *c) {
  /* seq_cst fence: pairs with the one in pause_reading() (Dekker). */
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load_explicit(&c->rx_paused, memory_order_relaxed) &&
      ring_used(&c->rx) <= c->rx.cap / 2 && atomic_exchange(&c->rx_paused, 0))
    net__engine_kick(&c->obj);
}

long net__conn_read_end(net_conn *c) {
  /* acquire: the flag and the failure are published after the last commit */
  if (!atomic_load_explicit(&c->rx_eof, memory_order_acquire) &&
      atomic_load_explicit(&c->state, memory_order_acquire) != NET_FAILURE)
    return 0;
  if (ring_used(&c->rx) > 0) return 0;   /* bytes that raced in before the flag */
  return atomic_load(&c->state) == NET_FAILURE ? NET_READ_ERROR : NET_READ_EOF;
}

long net_conn_read(net_conn *c, void *buf, size_t max) {
  net__host_polled();
  size_t n = ring_read(&c->rx, buf, max);
  if (n == 0) {
    long end = net__conn_read_end(c);
    if (end) return end;
    n = ring_read(&c->rx, buf, max);
  }
  if (n) rx_consumed(c);
  return (long)n;
}

int net__conn_peek(net_conn *c, net_span *spans, int maxspans, size_t max) {
  return ring_peek(&c->rx, spans, maxspans, max);
}

void net__conn_consume(net_conn *c, size_t n) {
  ring_consume(&c->rx, n);
  rx_consumed(c);
}

size_t net_conn_available(net_conn *c) {
  net__host_polled();
  return ring_used(&c->rx);
}
size_t net_conn_pending_writes(net_conn *c) { return ring_used(&c->tx); }

static bool drained_or_failed(void *c) {
  net_conn *k = c;
  return ring_used(&k->tx) == 0 || atomic_load(&k->state) == NET_FAILURE;
}

size_t net_conn_wait_drained(net_conn *c, int timeout_ms) {
  net__wait_until(drained_or_failed, c, timeout_ms);
  return ring_used(&c->tx);
}

net_addr *net_conn_peer(net_conn *c) {
  if (atomic_load_explicit(&c->state, memory_order_acquire) == NET_WAITING) return NULL;
  net_addr *p = atomic_load_explicit(&c->peer, memory_order_acquire);
  return p ? net_addr_ref(p) : NULL;
}

int net_conn_starttls(net_conn *c, const net_tls_opts *o, const char **err) {
  if (c->tls_cfg) return *err = "the connection already uses TLS", -1;
  if (atomic_load_explicit(&c->state, memory_order_acquire) != NET_SUCCESS)
    return *err = "starttls needs an established connection", -1;
  net_tls_cfg *cfg = net__tls_cfg_new(o, c->addr->host, err);
  if (!cfg) return -1;
  c->tls_cfg = cfg;
  /* the owner is tx's producer: every byte before this tail goes out in plain text */
  c->starttls_at = atomic_load_explicit(&c->tx.tail, memory_order_relaxed);
  int expected = NET_SUCCESS;
  if (!atomic_compare_exchange_strong(&c->state, &expected, NET_WAITING))
    return *err = c->err.msg, -1;   /* failed meanwhile */
  /* release (seq_cst): tls_cfg and starttls_at reach the I/O thread with the bit */
  atomic_fetch_or(&c->requests, REQ_STARTTLS);
  net__engine_kick(&c->obj);
  return 0;
}

int net_conn_tls_info(net_conn *c, net_tls_info *out) {
  /* acquire: pairs with the release of tls_ready after tls_info was written */
  if (!atomic_load_explicit(&c->tls_ready, memory_order_acquire) ||
      atomic_load_explicit(&c->state, memory_order_acquire) != NET_SUCCESS)
    return 0;
  *out = c->tls_info;
  return 1;
}

void net_conn_close(net_conn *c) {
  atomic_fetch_or(&c->requests, REQ_CLOSE);
  net__engine_kick(&c->obj);
  conn_unref(c);
  net__engine_release();
}

/* ---- I/O thread --------------------------------------------------------- */

static void update_interest(net_conn *c);

static void reap(net_conn *c) { list_move(c, &dead); }

static void close_socket(net_conn *c) {
  net__tls_free(c->tls);   /* here, on the I/O thread, which owns the shared TLS state */
  c->tls = NULL;
  if (c->fd == NET_BAD_SOCK) return;
  net__engine_set_interest(c->fd, &c->poll_mask, 0, &c->obj);
  net_sock_close(c->fd);
  c->fd = NET_BAD_SOCK;
  c->poll_mask = 0;
  c->want_out = false;
  c->reading = false;
}

static void finish(net_conn *c) {
  close_socket(c);
  c->io = IO_DONE;
  if (c->owner_gone) reap(c);
}

static void fail(net_conn *c, net_err code, const char *fmt, const char *what, const char *why) {
  if (!c->owner_gone && atomic_load_explicit(&c->state, memory_order_relaxed) != NET_FAILURE) {
    net__seterr(&c->err, code, fmt, what, why);
    /* release: err is complete before anyone can see FAILURE */
    atomic_store_explicit(&c->state, NET_FAILURE, memory_order_release);
    net__engine_activity();
  }
  finish(c);
}

static void fail_errno(net_conn *c, const char *op, int e) {
  char ip[NET_IPSTR_MAX + 8], what[NET_IPSTR_MAX + 32], buf[128];
  net__sockaddr_str(&c->cur.sa, ip, sizeof ip, true);
  snprintf(what, sizeof what, "%s %s", op, ip);
  fail(c, net__errno_code(e), "%s: %s", what, net__errstr(e, buf, sizeof buf));
}

static void update_interest(net_conn *c) {
  if (c->fd == NET_BAD_SOCK) return;
  int mask = (c->reading ? NET_POLL_IN : 0) | (c->want_out ? NET_POLL_OUT : 0);
  if (c->io == IO_CONNECTING) mask = NET_POLL_OUT;
  if (net__engine_set_interest(c->fd, &c->poll_mask, mask, &c->obj) < 0)
    fail_errno(c, "poll", errno);
}

static socklen_t sockaddr_len(const net_sockaddr *sa) {
  return sa->sa.sa_family == AF_INET6 ? sizeof sa->in6 : sizeof sa->in4;
}

static void try_send(net_conn *c);
static void do_recv(net_conn *c);

/* The transport is ready for data (TCP connected, or the TLS handshake done). */
static void established(net_conn *c) {
  c->io = c->owner_gone ? IO_FLUSHING : IO_OPEN;   /* closed while connecting */
  c->reading = !c->peer_fin;
  c->want_out = false;
  if (!c->owner_gone) {
    /* release: peer and tls_info are set before SUCCESS becomes visible */
    atomic_store_explicit(&c->state, NET_SUCCESS, memory_order_release);
    net__engine_activity();
  }
  update_interest(c);
  try_send(c);
  if (c->tls && c->fd != NET_BAD_SOCK) do_recv(c);   /* the handshake may have brought data */
}

static void handshake_step(net_conn *c) {
  net_error e;
  int r = net__tls_handshake(c->tls, &e);
  if (r == NET_TLS_ERROR) {
    fail(c, e.code, "%s%s", e.msg, "");
    return;
  }
  if (r != NET_TLS_DONE) {
    c->reading = r == NET_TLS_WANT_READ;
    c->want_out = r == NET_TLS_WANT_WRITE;
    update_interest(c);
    return;
  }
  net__tls_get_info(c->tls, &c->tls_info);
  atomic_store_explicit(&c->tls_ready, 1, memory_order_release);
  established(c);
}

static void start_tls(net_conn *c) {
  char ip[NET_IPSTR_MAX + 8], where[NET_IPSTR_MAX + 16];
  net__sockaddr_str(&c->cur.sa, ip, sizeof ip, true);
  snprintf(where, sizeof where, "tls %s", ip);
  net_error e;
  c->tls = net__tls_new(c->tls_cfg, c->fd, where, &e);
  if (!c->tls) {
    fail(c, e.code, "%s%s", e.msg, "");
    return;
  }
  c->starttls = false;
  c->io = IO_HANDSHAKE;
  handshake_step(c);
}

static void connected(net_conn *c) {
  net_addr *peer = net__addr_from_sockaddr(&c->cur.sa, sockaddr_len(&c->cur));
  atomic_store_explicit(&c->peer, peer, memory_order_release);
  if (c->tls_cfg) {   /* open_tcp with TLS: SUCCESS waits for the handshake */
    start_tls(c);
    return;
  }
  established(c);
}

/* Tries the remaining addresses in order until one connects or starts to. */
static void connect_next(net_conn *c) {
  net_addr *a = c->addr;
  while (c->next_addr < a->count) {
    c->cur = a->sa[c->next_addr++];
    if (c->cur.sa.sa_family == AF_INET6) c->cur.in6.sin6_port = htons(c->port);
    else c->cur.in4.sin_port = htons(c->port);
    c->fd = net_sock_open(c->cur.sa.sa_family, SOCK_STREAM);
    if (c->fd == NET_BAD_SOCK) {
      c->last_errno = errno;
      continue;
    }
    if (connect(c->fd, &c->cur.sa, sockaddr_len(&c->cur)) == 0) {
      connected(c);
      return;
    }
    if (net_sock_in_progress(errno)) {
      c->io = IO_CONNECTING;
      update_interest(c);
      return;
    }
    c->last_errno = errno;
    close_socket(c);
  }
  fail_errno(c, "connect", c->last_errno ? c->last_errno : EADDRNOTAVAIL);
}

static void finish_connect(net_conn *c) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err == 0) {
    connected(c);
    return;
  }
  c->last_errno = err;
  close_socket(c);
  connect_next(c);
}

static void start(net_conn *c) {
  int st = atomic_load_explicit(&c->addr->state, memory_order_acquire);
  if (st == NET_WAITING) {
    c->io = IO_RESOLVING;
    if (!c->owner_gone) list_move(c, &resolving);   /* closing ones stay on `closing` */
    return;
  }
  if (!c->owner_gone) list_move(c, &active);
  c->io = IO_CONNECTING;
  if (st == NET_FAILURE) fail(c, c->addr->err.code, "%s%s", c->addr->err.msg, "");
  else connect_next(c);
}

static void pause_reading(net_conn *c) {
  atomic_store(&c->rx_paused, 1);
  /* seq_cst fence: pairs with rx_consumed(); either the owner sees the flag
   * and kicks us, or we see the space it freed and keep reading. */
  atomic_thread_fence(memory_order_seq_cst);
  if (ring_free_space(&c->rx) > 0 && atomic_exchange(&c->rx_paused, 0)) return;
  c->reading = false;
  update_interest(c);
}

static void peer_closed(net_conn *c) {
  c->peer_fin = true;
  c->reading = false;
  if (c->io == IO_DRAINING) {
    finish(c);
    return;
  }
  if (!c->owner_gone) {
    /* release: every committed byte is visible before the flag */
    atomic_store_explicit(&c->rx_eof, 1, memory_order_release);
    net__engine_activity();
  }
  update_interest(c);
}

/* Decrypts into rx until mbedTLS would block or rx is full. No byte budget:
 * decrypted bytes mbedTLS holds would get no second readiness event. */
static void tls_recv(net_conn *c) {
  while (c->fd != NET_BAD_SOCK && c->io == IO_OPEN) {
    net_span sp[1];
    if (ring_reserve(&c->rx, sp, 1, RECV_MAX) == 0) {
      if (ring_free_space(&c->rx) == 0) pause_reading(c);
      return;
    }
    net_error e;
    long n = net__tls_read(c->tls, sp[0].base, sp[0].len, &e);
    ring_commit(&c->rx, n > 0 ? (size_t)n : 0);
    if (n > 0) {
      net__engine_activity();
    } else if (n == 0) {
      if (net__tls_want(c->tls) == NET_TLS_WANT_WRITE && !c->want_out) {
        c->want_out = true;
        update_interest(c);
      }
      return;
    } else if (n == NET_TLS_EOF) {
      peer_closed(c);
      return;
    } else {
      fail(c, e.code, "%s%s", e.msg, "");
      return;
    }
  }
}

static void do_recv(net_conn *c) {
  static char scratch[RECV_MAX];   /* where a closed connection's input goes */
  size_t budget = RECV_BUDGET;
  if (c->tls && !c->owner_gone) {
    tls_recv(c);
    return;
  }
  while (budget > 0 && c->fd != NET_BAD_SOCK) {
    net_span sp[MAX_SPANS];
    struct iovec iov[MAX_SPANS];
    int ns = 1;
    size_t want = 0;
    if (c->owner_gone) {
      iov[0] = (struct iovec){scratch, sizeof scratch};
      want = sizeof scratch;
    } else {
      ns = ring_reserve(&c->rx, sp, MAX_SPANS, budget < RECV_MAX ? budget : RECV_MAX);
      if (ns == 0) {
        if (ring_free_space(&c->rx) == 0) pause_reading(c);
        return;   /* else the owner is trimming: level-triggered polling retries */
      }
      for (int i = 0; i < ns; i++) {
        iov[i] = (struct iovec){sp[i].base, sp[i].len};
        want += sp[i].len;
      }
    }
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)ns};
    ssize_t n = recvmsg(c->fd, &mh, 0);
    int e = errno;
    if (!c->owner_gone) ring_commit(&c->rx, n > 0 ? (size_t)n : 0);
    if (n > 0) {
      net__engine_activity();
      budget -= (size_t)n < budget ? (size_t)n : budget;
      if ((size_t)n < want) return;
    } else if (n == 0) {
      peer_closed(c);
      return;
    } else if (e != EINTR) {
      if (!net_sock_would_block(e)) fail_errno(c, "recv", e);
      return;
    }
  }
}

static void begin_drain(net_conn *c) {
  if (c->tls && !c->notify_sent) {
    if (net__tls_close_notify(c->tls) == NET_TLS_WANT_WRITE) {
      c->want_out = true;   /* the next OUT event lands here again */
      update_interest(c);
      return;
    }
    c->notify_sent = true;
  }
  shutdown(c->fd, SHUT_WR);
  c->io = IO_DRAINING;
  c->want_out = false;
  if (c->peer_fin) {
    finish(c);
    return;
  }
  c->reading = true;
  update_interest(c);
}

/* tx is empty: sleep on it unless the owner wrote meanwhile. */
static bool tx_empty(net_conn *c) {
  if (c->io == IO_FLUSHING) {
    begin_drain(c);
    return false;
  }
  atomic_store(&c->tx_idle, 1);
  /* seq_cst fence: pairs with the one in net_conn_write() */
  atomic_thread_fence(memory_order_seq_cst);
  if (ring_used(&c->tx) > 0 && atomic_exchange(&c->tx_idle, 0)) return true;
  if (c->want_out) {
    c->want_out = false;
    update_interest(c);
  }
  return false;
}

/* Sends one span through mbedTLS. Returns the bytes consumed, 0 when blocked
 * (repeating the same length later, as mbedTLS requires), -1 on failure. */
static long tls_send(net_conn *c, const net_span *sp) {
  size_t len = c->tls_wlen ? c->tls_wlen : sp->len;
  net_error e;
  long n = net__tls_write(c->tls, sp->base, len, &e);
  if (n > 0) {
    c->tls_wlen = 0;
  } else if (n == 0) {
    c->tls_wlen = len;
  } else {
    fail(c, e.code, "%s%s", e.msg, "");
    return -1;
  }
  return n;
}

/* How much tx may go out now: all of it, unless a STARTTLS boundary comes first. */
static size_t send_limit(net_conn *c) {
  if (!c->starttls) return SEND_MAX;
  size_t head = atomic_load_explicit(&c->tx.head, memory_order_relaxed);   /* we consume tx */
  if (head >= c->starttls_at) {
    start_tls(c);
    return 0;
  }
  return c->starttls_at - head < SEND_MAX ? c->starttls_at - head : SEND_MAX;
}

static void try_send(net_conn *c) {
  while (c->fd != NET_BAD_SOCK && (c->io == IO_OPEN || c->io == IO_FLUSHING)) {
    net_span sp[MAX_SPANS];
    struct iovec iov[MAX_SPANS];
    size_t limit = send_limit(c);
    if (limit == 0) return;
    int ns = ring_peek(&c->tx, sp, c->tls ? 1 : MAX_SPANS, limit);
    if (ns == 0) {
      if (tx_empty(c)) continue;
      return;
    }
    ssize_t n;
    int e = 0;
    if (c->tls) {
      n = tls_send(c, &sp[0]);
      if (n < 0) return;
      /* blocked on a read (a renegotiation): the IN event retries, see io_event */
      if (n == 0 && net__tls_want(c->tls) == NET_TLS_WANT_READ) return;
      if (n == 0) e = EAGAIN;
    } else {
      for (int i = 0; i < ns; i++) iov[i] = (struct iovec){sp[i].base, sp[i].len};
      struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)ns};
      n = sendmsg(c->fd, &mh, NET_SEND_FLAGS);
      e = n < 0 ? errno : 0;
    }
    if (n > 0) {
      ring_consume(&c->tx, (size_t)n);
      net__engine_activity();
      continue;
    }
    if (n < 0 && e == EINTR) continue;
    if (n <= 0 && net_sock_would_block(e)) {
      if (!c->want_out) {
        c->want_out = true;
        update_interest(c);
      }
      return;
    }
    fail_errno(c, "send", n < 0 ? e : EPIPE);
    return;
  }
}

/* The owner closed: deliver what it wrote (connecting first if need be),
 * within the linger time, then close. */
static void begin_close(net_conn *c) {
  c->owner_gone = true;
  ring_destroy(&c->rx);   /* the owner is done with it; a lingering close discards input */
  bool connecting = c->io == IO_NEW || c->io == IO_RESOLVING || c->io == IO_CONNECTING ||
                    c->io == IO_HANDSHAKE;
  if (c->linger_ms == 0 || !(c->io == IO_OPEN || (connecting && ring_used(&c->tx) > 0))) {
    finish(c);   /* nothing worth lingering for */
    return;
  }
  c->deadline = net__now_ms() + (uint64_t)c->linger_ms;
  list_move(c, &closing);
  if (c->io == IO_NEW) start(c);
  if (c->io != IO_OPEN) return;   /* established() will flush */
  c->io = IO_FLUSHING;
  c->reading = !c->peer_fin;
  update_interest(c);
  try_send(c);
}

static void conn_kicked(net_io *io) {
  net_conn *c = CONN(io);
  int req = atomic_load(&c->requests);
  if (c->io == IO_NEW && !(req & REQ_CLOSE)) start(c);   /* begin_close decides otherwise */
  if ((req & REQ_STARTTLS) && !c->tls && !c->starttls && c->io == IO_OPEN)
    c->starttls = true;   /* try_send starts the handshake at the boundary */
  if ((req & REQ_CLOSE) && !c->owner_gone) {
    begin_close(c);
  } else if (c->io == IO_OPEN) {
    if (!c->reading && !c->peer_fin && !atomic_load(&c->rx_paused)) {
      c->reading = true;
      update_interest(c);
      if (c->tls && net__tls_pending(c->tls)) do_recv(c);   /* no readiness event will come */
    }
    try_send(c);
  }
}

static void conn_event(net_io *io, int mask) {
  net_conn *c = CONN(io);
  if (c->fd == NET_BAD_SOCK) return;   /* closed earlier in this batch */
  if (c->io == IO_CONNECTING) {
    if (mask & (NET_POLL_OUT | NET_POLL_ERR)) finish_connect(c);
    return;
  }
  if (c->io == IO_HANDSHAKE) {
    handshake_step(c);
    return;
  }
  if (mask & (NET_POLL_IN | NET_POLL_ERR)) do_recv(c);
  if ((mask & (NET_POLL_OUT | NET_POLL_ERR)) || (c->tls && c->tls_wlen)) try_send(c);
}

static void start_resolved(conn_list *l) {
  net_conn *c = l->head;
  while (c) {
    net_conn *next = c->io_next;
    if (c->io == IO_RESOLVING &&
        atomic_load_explicit(&c->addr->state, memory_order_acquire) != NET_WAITING)
      start(c);
    c = next;
  }
}

static void conns_resolved(void) {
  start_resolved(&resolving);
  start_resolved(&closing);   /* closed while resolving, with bytes to deliver */
}

/* Drops the I/O thread's reference of finished connections. Runs between
 * poller batches, so no event of this turn can still point at them. */
static void reap_dead(void) {
  while (dead.head) {
    net_conn *c = dead.head;
    list_remove(c);
    conn_unref(c);
  }
}

static uint64_t conns_timers(uint64_t now) {
  reap_dead();
  uint64_t next = 0;
  net_conn *c = closing.head;
  while (c) {
    net_conn *n = c->io_next;
    if (c->deadline <= now) finish(c);   /* linger expired: give up on the peer */
    else if (!next || c->deadline < next) next = c->deadline;
    c = n;
  }
  reap_dead();
  return next;
}

static bool conns_idle(void) { return !resolving.n && !active.n && !closing.n && !dead.n; }

static void conns_shutdown(void) {
  conn_list *lists[] = {&resolving, &active, &closing};
  for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
    while (lists[i]->head) {
      net_conn *c = lists[i]->head;
      c->owner_gone = true;
      finish(c);
    }
  }
  reap_dead();
}

const net_module net__tcp_module = {conns_resolved, conns_timers, conns_idle, conns_shutdown};
