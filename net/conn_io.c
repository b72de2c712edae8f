/* conn_io.c: a stream connection's transport once it has a socket: the TLS
 * handshake, receiving into rx, sending from tx, the graceful end, timers
 * and failure. I/O thread only. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "conn.h"
#include "poller.h"

#define RECV_BUDGET (512u * 1024)   /* per readiness event, so one peer cannot starve others */
#define RECV_MAX (128u * 1024)      /* per recvmsg */
#define SEND_MAX (256u * 1024)      /* per sendmsg */
#define SEND_BUDGET (1024u * 1024)  /* per turn, so one writer cannot starve others */
#define MAX_SPANS 8

/* ---- bookkeeping ------------------------------------------------------------ */

static uint64_t earliest(uint64_t a, uint64_t b) { return !a ? b : !b ? a : a < b ? a : b; }

void net__conn_set_timer(net_conn *c) {
  uint64_t at = 0;
  if (c->io <= IO_HANDSHAKE && c->io != IO_NEW) at = earliest(c->connect_deadline, c->next_attempt_at);
  if (c->starttls) at = earliest(at, c->connect_deadline);
  if (c->io == IO_OPEN && c->idle_timeout_ms) at = earliest(at, c->last_io + (uint64_t)c->idle_timeout_ms);
  if (c->owner_gone && c->io != IO_DONE) at = earliest(at, c->linger_deadline);
  at = earliest(at, c->rx_shrink_at);
  net__io_timer(&c->obj, at);
}

/* Closes every attempt still in flight. Events of this poller batch may
 * still point into the attempts: their block is freed between batches. */
void net__conn_drop_attempts(net_conn *c) {
  if (!c->att) return;
  for (int i = 0; i < NET_MAX_ATTEMPTS; i++) {
    if (c->att[i].fd == NET_BAD_SOCK) continue;
    net__engine_set_interest(c->att[i].fd, &c->att[i].poll_mask, 0, &c->att[i].obj);
    net_sock_close(c->att[i].fd);
    c->att[i].fd = NET_BAD_SOCK;
  }
  net__engine_defer_free((char *)c->att - offsetof(attempt_block, att));
  c->att = NULL;
  c->natt = 0;
}

static void close_socket(net_conn *c) {
  net__tls_free(c->tls);   /* here, on the I/O thread, which owns the shared TLS state */
  c->tls = NULL;
  net__conn_drop_attempts(c);
  net__conn_proxy_io_free(c);   /* a proxy handshake cut short */
  if (c->fd == NET_BAD_SOCK) return;
  net__engine_set_interest(c->fd, &c->poll_mask, 0, &c->obj);
  net_sock_close(c->fd);
  c->fd = NET_BAD_SOCK;
  c->poll_mask = 0;
  c->want_out = false;
  c->reading = false;
}

/* Everything the closed connection had to send is with the kernel (or
 * given up): a process may exit now without losing it. */
static void close_sent(net_conn *c) {
  if (!c->exit_counted) return;
  c->exit_counted = false;
  net__engine_closing(-1);
}

void net__conn_finish(net_conn *c) {
  close_sent(c);
  close_socket(c);
  c->io = IO_DONE;
  net__io_timer(&c->obj, 0);
  if (c->owner_gone) net__io_retire(&c->obj);
}

/* Something changed for the owner: a host polling from its frame loop is
 * told through the engine; a protocol on the I/O thread is kicked. */
static void news(net_conn *c) {
  if (c->link) net__engine_kick(c->link);
  else net__io_publish(&c->obj);
}

void net__conn_asked(const net_conn *c, char *buf, size_t len) {
  const char *h = c->addr->host;
  snprintf(buf, len, strchr(h, ':') ? "[%s]:%u" : "%s:%u", h, (unsigned)c->port);
}

void net__conn_where(const net_conn *c, char *buf, size_t len) {
  if (c->unix_path) {
    snprintf(buf, len, "unix:%s", c->unix_path);
  } else if (!c->proxy) {
    net__sa_str(&c->cur, buf, len, true);
  } else {
    const char *h = c->proxy->target;
    if (c->io <= IO_CONNECTING) snprintf(buf, len, "proxy %s", c->proxy->where);
    else snprintf(buf, len, strchr(h, ':') ? "[%s]:%u via proxy %s" : "%s:%u via proxy %s", h,
                  (unsigned)c->proxy->target_port, c->proxy->where);
  }
}

void net__conn_fail(net_conn *c, net_err code, const char *msg) {
  if (!c->owner_gone && atomic_load_explicit(&c->state, memory_order_relaxed) != NET_FAILURE) {
    net__seterr(&c->err, code, "%s", msg);
    /* release: err is complete before anyone can see FAILURE */
    atomic_store_explicit(&c->state, NET_FAILURE, memory_order_release);
    news(c);
  }
  net__conn_finish(c);
}

void net__conn_fail_sys(net_conn *c, const char *op, int e) {
  char where[NET_WHERE_MAX];
  net_error err;
  net__conn_where(c, where, sizeof where);
  net__seterr_sys(&err, op, where, e);
  net__conn_fail(c, err.code, err.msg);
}

void net__conn_interest(net_conn *c) {
  if (c->fd == NET_BAD_SOCK) return;
  /* pause_read() holds back application data only: never a handshake, nor
   * input that is being thrown away */
  /* nor, once starttls() is taken, plain text: the next bytes are the handshake's */
  bool in = c->reading && !c->starttls &&
            (c->io == IO_HANDSHAKE || c->io == IO_PROXY || c->owner_gone || c->discard_rx ||
             !atomic_load(&c->owner_paused));
  int mask = (in ? NET_POLL_IN : 0) | (c->want_out ? NET_POLL_OUT : 0);
  /* reading again after we held it back: idleness counts from here (conn_timer) */
  if (in && !(c->poll_mask & NET_POLL_IN) && c->idle_timeout_ms) c->last_io = net__now_ms();
  if (net__engine_set_interest(c->fd, &c->poll_mask, mask, &c->obj) < 0)
    net__conn_fail_sys(c, "poll", errno);
}

static void want_out(net_conn *c, bool on) {
  if (c->want_out == on) return;
  c->want_out = on;
  net__conn_interest(c);
}

/* The idle seconds before keepalive probes that `keep` asks for; 0: the system's. */
static int keepalive_idle(int keep) {
  if (keep > 1) return keep;
  if (keep < 0 && keep >= NET_KEEPALIVE_SECONDS(86400)) return -keep;
  return 0;
}

/* Socket options from the owner's last settings (TCP ones only for TCP).
 * SO_REUSEADDR only when asked: an accepted socket inherits the listener's,
 * and clearing it would make its TIME_WAIT block the port. */
void net__conn_apply_options(net_conn *c, bool asked) {
  if (c->fd == NET_BAD_SOCK) return;
  bool fresh = c->fresh_socket;   /* our own new socket: the kernel's defaults hold */
  c->fresh_socket = false;
  if (asked) {
    int reuse = atomic_load(&c->opt[NET_OPT_REUSEADDR]) != 0;
    net_sock_setopt(c->fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
  }
  if (c->unix_path) return;
  int nodelay = atomic_load(&c->opt[NET_OPT_NODELAY]) != 0, keep = atomic_load(&c->opt[NET_OPT_KEEPALIVE]);
  int on = keep != 0, idle = keepalive_idle(keep);
  if (fresh && !nodelay && !keep) return;
  net_sock_setopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof nodelay);
  net_sock_setopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
#ifdef TCP_KEEPIDLE
  /* Linux takes at most 32767 s and refuses more: the longest it has, not its default */
  if (idle && net_sock_setopt(c->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) < 0 && idle > 32767) {
    idle = 32767;
    net_sock_setopt(c->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  }
#else
  (void)idle;
#endif
}

/* ---- establishing ------------------------------------------------------------- */

/* The transport is ready for data (TCP connected, or the TLS handshake done). */
static void established(net_conn *c) {
  c->io = c->owner_gone ? IO_FLUSHING : IO_OPEN;   /* closed while connecting */
  c->reading = !c->peer_fin;
  c->want_out = false;
  c->last_io = net__now_ms();
  net__conn_set_timer(c);
  if (!c->owner_gone) {
    /* release: peer, endpoints and tls_info are set before SUCCESS is visible */
    atomic_store_explicit(&c->state, NET_SUCCESS, memory_order_release);
    news(c);
  }
  net__conn_interest(c);
  net__conn_send(c);
  if (c->tls && c->fd != NET_BAD_SOCK && (c->owner_gone || !atomic_load(&c->owner_paused)))
    net__conn_recv(c);   /* the handshake may have brought data */
}

/* A handshake flight is several records written one by one: with Nagle's
 * algorithm each after the first waits for the peer's delayed ACK (40 ms
 * on Linux), so the handshake runs without it, then the caller's choice holds. */
static void handshake_nodelay(net_conn *c, bool during) {
  if (c->unix_path || atomic_load(&c->opt[NET_OPT_NODELAY])) return;
  int on = during;
  net_sock_setopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

void net__conn_handshake(net_conn *c) {
  net_error e;
  int r = net__tls_handshake(c->tls, &e);
  if (r == NET_TLS_ERROR) {
    net__conn_fail(c, e.code, e.msg);
    return;
  }
  if (r != NET_TLS_DONE) {
    c->reading = r == NET_TLS_WANT_READ;
    c->want_out = r == NET_TLS_WANT_WRITE;
    net__conn_interest(c);
    if (r == NET_TLS_WANT_CHECK) net__io_await_resolve(&c->obj);   /* kicked with the verdict */
    return;
  }
  net_tls_info *info = atomic_load(&c->tls_info);
  if (!info && !(info = net__malloc(sizeof *info))) {
    net__conn_fail(c, NET_E_LIMIT, "tls: out of memory");
    return;
  }
  net__tls_get_info(c->tls, info);
  handshake_nodelay(c, false);
  atomic_store(&c->tls_info, info);
  atomic_store_explicit(&c->tls_ready, 1, memory_order_release);
  established(c);
}

void net__conn_start_tls(net_conn *c) {
  char ip[NET_WHERE_MAX], where[NET_WHERE_MAX + 8];
  net__conn_where(c, ip, sizeof ip);
  snprintf(where, sizeof where, "tls %s", ip);
  net_error e;
  bool pending = false;
  /* starttls, maybe while closing: the handshake gets its own time */
  if ((c->io == IO_OPEN || c->io == IO_FLUSHING) && c->connect_timeout_ms)
    c->connect_deadline = net__now_ms() + (uint64_t)c->connect_timeout_ms;
  c->starttls = false;
  net_tls_conf *conf = c->tls_conf ? net__tls_conf_ref(c->tls_conf)
                                   : net__tls_conf_get(c->tls_cfg, &c->obj, &pending, &e);
  if (pending) {   /* a helper reads its files: kicked again when done */
    c->io = IO_TLS_WAIT;
    c->reading = c->want_out = false;
    net__conn_interest(c);
    net__conn_set_timer(c);
    return;
  }
  if (!conf) {
    net_error full;
    net__seterr(&full, e.code, "%s: %s", where, e.msg);
    net__conn_fail(c, full.code, full.msg);
    return;
  }
  c->tls = net__tls_new(conf, c->tls_cfg, c->fd, where, &e);
  net__tls_conf_unref(conf);
  if (!c->tls) {
    net__conn_fail(c, e.code, e.msg);
    return;
  }
  c->io = IO_HANDSHAKE;
  net__conn_set_timer(c);
  handshake_nodelay(c, true);
  net__conn_handshake(c);
}

void net__conn_connected(net_conn *c) {
  net_addr *peer;
  if (c->unix_path) {
    peer = net_addr_ref(c->addr);
  } else {
    socklen_t len = sizeof c->local;
    /* an outgoing connection's was read when it connected (conn_connect.c) */
    if (!c->local.sa.sa_family && net_sock_getsockname(c->fd, &c->local.sa, &len) < 0)
      memset(&c->local, 0, sizeof c->local);
    net__sa_unmap_v4(&c->local);
    peer = net__addr_from_sa(&c->cur);
  }
  net__conn_apply_options(c, false);
  /* release: cur and local are final before anyone sees peer */
  atomic_store_explicit(&c->peer, peer, memory_order_release);
  if (c->tls_cfg) {   /* TLS: SUCCESS waits for the handshake */
    net__conn_start_tls(c);
    return;
  }
  established(c);
}

/* ---- receiving ------------------------------------------------------------------ */

/* Bytes mbedTLS holds, which no readiness event announces, for an owner that
 * reads: a paused one (or an accepted connection not yet taken) gets them
 * once it resumes (conn_kicked). */
bool net__conn_tls_held(net_conn *c) {
  return c->tls && c->reading && c->io == IO_OPEN && !atomic_load(&c->owner_paused) &&
         net__tls_pending(c->tls);
}

/* rx is full: stop reading until the owner reads. False when the owner
 * freed space meanwhile: reading goes on, and it is the caller's to read. */
static bool pause_reading(net_conn *c) {
  atomic_store(&c->rx_paused, 1);
  /* seq_cst fence: pairs with rx_consumed() in conn.c; either the owner sees
   * the flag and kicks us, or we see the space it freed and keep reading. */
  atomic_thread_fence(memory_order_seq_cst);
  if (ring_free_space(&c->rx) > 0 && atomic_exchange(&c->rx_paused, 0)) return false;
  c->reading = false;
  net__conn_interest(c);
  return true;
}

static void peer_closed(net_conn *c) {
  c->peer_fin = true;
  c->reading = false;
  if (c->io == IO_DRAINING) {
    net__conn_finish(c);
    return;
  }
  if (!c->owner_gone) {
    /* release: every committed byte is visible before the flag */
    atomic_store_explicit(&c->rx_eof, 1, memory_order_release);
    news(c);
  }
  net__conn_interest(c);
}

static void got_bytes(net_conn *c, size_t n) {
  /* release: the bytes are in rx before the count shows them (net_conn_starttls) */
  atomic_fetch_add_explicit(&c->bytes_in, n, memory_order_release);
  if (c->idle_timeout_ms) c->last_io = net__now_ms();
  if (!c->rx_shrink_at) {   /* look again in a while: once read, rx gives its memory back */
    c->rx_shrink_at = net__now_ms() + RX_SHRINK_MS;
    net__conn_set_timer(c);
  }
  news(c);
}

/* Decrypts into rx until mbedTLS would block, rx is full or the budget is
 * spent. Bytes mbedTLS still holds get no readiness event, so whenever it
 * stops with reading on, a kick brings it back (conn_kicked reads them). */
static void tls_recv(net_conn *c) {
  for (size_t budget = RECV_BUDGET; c->fd != NET_BAD_SOCK && c->io == IO_OPEN;) {
    if (budget == 0) {   /* others' turn; what mbedTLS holds comes after them */
      if (net__tls_pending(c->tls)) net__engine_kick(&c->obj);
      return;
    }
    net_span sp[1];
    int ns = ring_reserve(&c->rx, sp, 1, budget < RECV_MAX ? budget : RECV_MAX);
    if (ns < 0) {
      net__conn_fail(c, NET_E_LIMIT, "recv: out of memory for the receive buffer");
      return;
    }
    if (ns == 0) {
      if (ring_free_space(&c->rx) > 0) net__engine_kick(&c->obj);   /* the owner is inside its trim */
      else if (!pause_reading(c)) continue;   /* the owner freed space meanwhile */
      return;
    }
    net_error e;
    long n = net__tls_read(c->tls, sp[0].base, sp[0].len, &e);
    ring_commit(&c->rx, n > 0 ? (size_t)n : 0);
    if (n > 0) {
      got_bytes(c, (size_t)n);
      budget -= (size_t)n < budget ? (size_t)n : budget;
    } else if (n == 0) {
      if (net__tls_want(c->tls) == NET_TLS_WANT_WRITE) want_out(c, true);
      return;
    } else if (n == NET_TLS_EOF) {
      peer_closed(c);
      return;
    } else {
      net__conn_fail(c, e.code, e.msg);
      return;
    }
  }
}

/* One recvmsg into rx (or into a sink when the input is thrown away).
 * Returns the bytes read, 0 at the peer's FIN, -1 when nothing more now. */
static ssize_t recv_once(net_conn *c, size_t budget, bool discard, size_t *want) {
  static char sink[RECV_MAX];   /* where discarded input goes */
  net_span sp[MAX_SPANS];
  net_iov iov[MAX_SPANS];
  int ns = 1;
  *want = 0;
  if (discard) {
    iov[0] = NET_IOV(sink, sizeof sink);
    *want = sizeof sink;
  } else {
    ns = ring_reserve(&c->rx, sp, MAX_SPANS, budget < RECV_MAX ? budget : RECV_MAX);
    if (ns < 0) {   /* never spin on it: the connection fails, nothing read is lost */
      net__conn_fail(c, NET_E_LIMIT, "recv: out of memory for the receive buffer");
      return -1;
    }
    if (ns == 0) {   /* full; unless the owner freed space meanwhile, pause */
      if (ring_free_space(&c->rx) == 0) pause_reading(c);
      return -1;   /* else level-triggered polling retries */
    }
    for (int i = 0; i < ns; i++) {
      iov[i] = NET_IOV(sp[i].base, sp[i].len);
      *want += sp[i].len;
    }
  }
  ssize_t n;
  do n = net_sock_readv(c->fd, iov, ns, NULL, NULL, NULL);
  while (n < 0 && errno == EINTR);
  int e = errno;
  if (!discard) ring_commit(&c->rx, n > 0 ? (size_t)n : 0);
  if (n < 0) {
    if (!net_sock_would_block(e)) net__conn_fail_sys(c, "recv", e);
    return -1;
  }
  return n;
}

void net__conn_recv(net_conn *c) {
  bool discard = c->owner_gone || c->discard_rx;
  if (c->starttls && !discard) return;   /* the handshake reads what comes next */
  if (c->tls && !discard) {
    tls_recv(c);
    return;
  }
  for (size_t budget = RECV_BUDGET; budget > 0 && c->fd != NET_BAD_SOCK;) {
    size_t want;
    ssize_t n = recv_once(c, budget, discard, &want);
    if (n < 0) return;
    if (n == 0) {
      peer_closed(c);
      return;
    }
    if (!discard) got_bytes(c, (size_t)n);
    budget -= (size_t)n < budget ? (size_t)n : budget;
    if ((size_t)n < want) return;
  }
}

/* ---- sending ------------------------------------------------------------------- */

/* Our side is done sending: close_notify (TLS), then the FIN (fin false: the
 * socket is closed next, which sends it). Returns false while close_notify
 * waits for the socket. */
static bool send_fin(net_conn *c, bool fin) {
  if (c->tls && !c->notify_sent) {
    if (net__tls_close_notify(c->tls) == NET_TLS_WANT_WRITE) {
      want_out(c, true);   /* the next OUT event lands here again */
      return false;
    }
    c->notify_sent = true;
  }
  if (fin) net_sock_shutdown(c->fd, SHUT_WR);
  c->wr_shut = true;
  c->shut_wr_pending = false;
  c->want_out = false;
  return true;
}

static void begin_drain(net_conn *c) {
  /* after the peer's FIN (read, so nothing unread) close() ends it cleanly */
  if (!c->wr_shut && !send_fin(c, !c->peer_fin)) return;
  c->io = IO_DRAINING;
  close_sent(c);
  if (c->peer_fin) {
    net__conn_finish(c);
    return;
  }
  c->reading = true;
  net__conn_interest(c);
}

/* tx is empty: sleep on it unless the owner wrote meanwhile (then true). */
static bool tx_empty(net_conn *c) {
  if (c->io == IO_FLUSHING) {
    begin_drain(c);
    return false;
  }
  if (c->shut_wr_pending) {   /* shutdown("send"): nothing more will be written */
    if (send_fin(c, true)) net__conn_interest(c);
    return false;
  }
  atomic_store(&c->tx_idle, 1);
  /* seq_cst fence: pairs with the one in net_conn_write() */
  atomic_thread_fence(memory_order_seq_cst);
  if (ring_used(&c->tx) > 0 && atomic_exchange(&c->tx_idle, 0)) return true;
  want_out(c, false);
  return false;
}

/* A send failed (the peer reset or closed): what the peer sent before that
 * (an HTTP server's 413, its last message) is still in the kernel. It is read
 * first. False when that reading ended the connection itself. */
static bool salvage_input(net_conn *c) {
  if (c->reading && c->io == IO_OPEN && !c->discard_rx && !c->owner_gone) net__conn_recv(c);
  return c->fd != NET_BAD_SOCK;
}

/* Sends one span through mbedTLS. Returns the bytes consumed, 0 when blocked
 * (the same bytes come again: tx's head moves only when they count), -1 on
 * failure. */
static long tls_send(net_conn *c, const net_span *sp) {
  net_error e;
  long n = net__tls_write(c->tls, sp->base, sp->len, &e);
  if (n < 0 && salvage_input(c)) net__conn_fail(c, e.code, e.msg);
  return n;
}

/* What mbedTLS holds for the wire goes first (an alert its read side made
 * needs an OUT event too, tx empty or not). False while it cannot. */
static bool tls_flushed(net_conn *c) {
  if (!c->tls || !net__tls_out_pending(c->tls)) return true;
  net_error e;
  int r = net__tls_flush(c->tls, &e);
  if (r == NET_TLS_DONE) return true;
  if (r == NET_TLS_ERROR && salvage_input(c)) net__conn_fail(c, e.code, e.msg);
  else if (r != NET_TLS_ERROR) want_out(c, true);
  return false;
}

/* How much tx may go out now: all of it, unless a STARTTLS boundary comes first. */
static size_t send_limit(net_conn *c) {
  if (!c->starttls) return SEND_MAX;
  size_t head = atomic_load_explicit(&c->tx.head, memory_order_relaxed);   /* we consume tx */
  if (head >= c->starttls_at) {
    net__conn_start_tls(c);
    return 0;
  }
  return c->starttls_at - head < SEND_MAX ? c->starttls_at - head : SEND_MAX;
}

/* One send of the spans: > 0 sent, 0 blocked, < 0 failed (*err: errno). */
static ssize_t send_some(net_conn *c, const net_span *sp, int ns, int *err) {
  if (c->tls) {
    ssize_t n = tls_send(c, &sp[0]);
    /* blocked on a read (a renegotiation): the IN event retries, see conn_loop.c */
    *err = n == 0 && net__tls_want(c->tls) != NET_TLS_WANT_READ ? EAGAIN : 0;
    return n;
  }
  net_iov iov[MAX_SPANS];
  for (int i = 0; i < ns; i++) iov[i] = NET_IOV(sp[i].base, sp[i].len);
  ssize_t n = net_sock_writev(c->fd, iov, ns, NULL, 0);
  *err = n < 0 ? errno : 0;
  return n;
}

static void sent(net_conn *c, size_t n) {
  ring_consume(&c->tx, n);
  atomic_fetch_add_explicit(&c->bytes_out, n, memory_order_relaxed);
  if (c->idle_timeout_ms) c->last_io = net__now_ms();
  if (c->link) net__engine_kick(c->link);   /* room to write */
  else net__io_activity(&c->obj);   /* room to write: news, but nothing to read */
}

void net__conn_send(net_conn *c) {
  if ((c->io == IO_OPEN || c->io == IO_FLUSHING) && !tls_flushed(c)) return;
  for (size_t budget = SEND_BUDGET; c->fd != NET_BAD_SOCK && (c->io == IO_OPEN || c->io == IO_FLUSHING) &&
                                    !c->wr_shut;) {
    net_span sp[MAX_SPANS];
    size_t limit = send_limit(c);
    if (limit == 0) return;
    int ns = ring_peek(&c->tx, sp, c->tls ? 1 : MAX_SPANS, limit);
    if (ns == 0) {
      if (tx_empty(c)) continue;
      return;
    }
    if (budget == 0) {   /* others' turn; a kick brings us back next turn (conn_kicked) */
      net__engine_kick(&c->obj);
      return;
    }
    int e;
    ssize_t n = send_some(c, sp, ns, &e);
    if (n > 0) {
      sent(c, (size_t)n);
      budget -= (size_t)n < budget ? (size_t)n : budget;
      continue;
    }
    if (c->fd == NET_BAD_SOCK) return;   /* the TLS layer failed it */
    if (n < 0 && e == EINTR) continue;
    if (n == 0 && e == 0) return;
    if (n <= 0 && net_sock_would_block(e)) {
      want_out(c, true);
      return;
    }
    if (salvage_input(c)) net__conn_fail_sys(c, "send", n < 0 ? e : EPIPE);
    return;
  }
}

void net__conn_begin_flush(net_conn *c) {
  c->io = IO_FLUSHING;
  c->reading = !c->peer_fin;
  if (c->wr_shut) {   /* shutdown("send") sent the FIN already: nothing can be flushed */
    begin_drain(c);
    return;
  }
  net__conn_interest(c);
  net__conn_send(c);
}
