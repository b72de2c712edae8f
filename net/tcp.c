/* tcp.c: stream connections (TCP and Unix sockets, plain or TLS). The
 * net_conn_* functions run on the owner thread and touch only rings and
 * atomics; the state machine below them runs on the I/O thread, which owns
 * the socket. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "engine.h"
#include "poller.h"

#define RECV_BUDGET (512u * 1024)    /* per readiness event, so one peer cannot starve others */
#define RECV_MAX (128u * 1024)      /* per recvmsg */
#define SEND_MAX (256u * 1024)      /* per sendmsg */
#define MAX_SPANS 8
#define HE_DELAY_MS 250             /* RFC 8305 "Connection Attempt Delay" */
#define DEFAULT_LINGER_MS 5000

typedef struct conn_list {
  net_conn *head;
  size_t n;
} conn_list;

/* I/O thread only. */
static conn_list resolving, active, closing, dead;
static net_conn *timers;            /* connections with a wake_at */
static net_attempt *att_trash;      /* attempt arrays to free between batches */
static uint64_t timers_next;        /* a lower bound of every wake_at; 0: none */

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
  free(atomic_load(&c->tls_info));
  free(c->att);   /* a connection closed before its attempts were trashed */
  free(c->unix_path);
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

static net_conn *conn_new(const net_conn_opts *o, int refs) {
  size_t size = (sizeof(net_conn) + NET_CACHELINE - 1) / NET_CACHELINE * NET_CACHELINE;
  net_conn *c = aligned_alloc(NET_CACHELINE, size);
  if (!c) return NULL;
  memset(c, 0, sizeof *c);
  size_t cap = o && o->buffer_size ? o->buffer_size : NET_RING_DEFAULT_CAP;
  ring_init(&c->rx, cap);
  ring_init(&c->tx, cap);
  net__io_init(&c->obj, &conn_ops, refs);
  atomic_init(&c->state, NET_WAITING);
  atomic_init(&c->opt[NET_OPT_NODELAY], o ? o->nodelay != 0 : 0);
  atomic_init(&c->opt[NET_OPT_KEEPALIVE], o ? o->keepalive : 0);
  atomic_init(&c->opt[NET_OPT_LINGER], !o || !o->linger_ms ? DEFAULT_LINGER_MS
                                       : o->linger_ms < 0 ? 0 : o->linger_ms);
  c->created = net_clock();
  c->family = o ? o->family : 0;
  c->connect_timeout_ms = o && o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 0;
  c->idle_timeout_ms = o && o->idle_timeout_ms > 0 ? o->idle_timeout_ms : 0;
  c->fd = NET_BAD_SOCK;
  c->io = IO_NEW;
  atomic_fetch_add(&net__live_conns, 1);
  return c;
}

/* Common tail of net_tcp_open and net_unix_open: hands c to the I/O thread. */
static net_conn *conn_start(net_conn *c, const net_conn_opts *o, const char *host,
                            const char **err) {
  if (o && o->tls && !(c->tls_cfg = net__tls_cfg_new(o->tls, host, false, err))) {
    conn_destroy(&c->obj);
    return NULL;
  }
  if (!net__engine_acquire()) {
    conn_destroy(&c->obj);
    *err = "cannot start the I/O thread";
    return NULL;
  }
  net__engine_kick(&c->obj);
  return c;
}

net_conn *net_tcp_open(net_addr *a, uint16_t port, const net_conn_opts *o, const char **err) {
  if (!a || port == 0) return *err = "an address and a port 1..65535 are required", NULL;
  net_conn *c = conn_new(o, 2);   /* the owner's and the I/O thread's */
  if (!c) return *err = "out of memory", NULL;
  c->addr = net_addr_ref(a);
  c->port = port;
  return conn_start(c, o, a->host, err);
}

net_conn *net_unix_open(const char *path, const net_conn_opts *o, const char **err) {
  struct sockaddr_un un;
  if (!path || !*path || strlen(path) >= sizeof un.sun_path)
    return *err = "a Unix socket path must be 1..107 bytes", NULL;
  net_conn *c = conn_new(o, 2);
  if (!c || !(c->unix_path = strdup(path)) || !(c->addr = net__addr_unix(path))) {
    if (c) conn_destroy(&c->obj);
    return *err = "out of memory", NULL;
  }
  return conn_start(c, o, "localhost", err);
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
      ring_used(&c->rx) == 0 && !(atomic_load(&c->shut) & NET_SHUT_RECEIVE))
    return (net_result){NET_FAILURE, NET_E_CLOSED, "closed"};
  return (net_result){(net_status)st, NET_E_NONE, ""};
}

net_result net__conn_write_error(net_conn *c) {
  if (atomic_load_explicit(&c->state, memory_order_acquire) == NET_FAILURE)
    return (net_result){NET_FAILURE, c->err.code, c->err.msg};
  return (net_result){NET_FAILURE, NET_E_CLOSED, "closed for sending (shutdown)"};
}

static bool connected_or_failed(void *c) {
  return atomic_load(&((net_conn *)c)->state) != NET_WAITING;
}

net_result net_conn_wait_connected(net_conn *c, int timeout_ms) {
  net__wait_until(connected_or_failed, c, timeout_ms);
  return net_conn_status(c);
}

long net_conn_write(net_conn *c, const void *data, size_t len) {
  if (atomic_load_explicit(&c->state, memory_order_acquire) == NET_FAILURE ||
      (atomic_load_explicit(&c->shut, memory_order_relaxed) & NET_SHUT_SEND))
    return -1;
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
      atomic_load_explicit(&c->state, memory_order_acquire) != NET_FAILURE &&
      !(atomic_load(&c->shut) & NET_SHUT_RECEIVE))
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

bool net__conn_input_ended(net_conn *c) {
  return atomic_load_explicit(&c->rx_eof, memory_order_acquire) ||
         atomic_load_explicit(&c->state, memory_order_acquire) == NET_FAILURE ||
         (atomic_load(&c->shut) & NET_SHUT_RECEIVE);
}

size_t net__conn_copy(net_conn *c, size_t off, void *dst, size_t n) {
  return ring_copy(&c->rx, off, dst, n);
}

size_t net__conn_cap(net_conn *c) { return c->rx.cap; }

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
  if (atomic_load_explicit(&c->state, memory_order_acquire) == NET_WAITING &&
      !atomic_load(&c->tls_ready))
    return NULL;
  net_addr *p = atomic_load_explicit(&c->peer, memory_order_acquire);
  return p ? net_addr_ref(p) : NULL;
}

static void request(net_conn *c, int bits) {
  /* seq_cst RMW: what the owner set before reaches the I/O thread with the bits */
  atomic_fetch_or(&c->requests, bits);
  net__engine_kick(&c->obj);
}

int net_conn_starttls(net_conn *c, const net_tls_opts *o, const char **err) {
  if (c->tls_cfg) return *err = "the connection already uses TLS", -1;
  if (atomic_load_explicit(&c->state, memory_order_acquire) != NET_SUCCESS)
    return *err = "starttls needs an established connection", -1;
  net_tls_cfg *cfg = net__tls_cfg_new(o, c->addr->host, false, err);
  if (!cfg) return -1;
  c->tls_cfg = cfg;
  /* the owner is tx's producer: every byte before this tail goes out in plain text */
  c->starttls_at = atomic_load_explicit(&c->tx.tail, memory_order_relaxed);
  int expected = NET_SUCCESS;
  if (!atomic_compare_exchange_strong(&c->state, &expected, NET_WAITING))
    return *err = c->err.msg, -1;   /* failed meanwhile */
  request(c, REQ_STARTTLS);
  return 0;
}

int net_conn_tls_info(net_conn *c, net_tls_info *out) {
  /* acquire: pairs with the release of tls_ready after tls_info was written */
  if (!atomic_load_explicit(&c->tls_ready, memory_order_acquire) ||
      atomic_load_explicit(&c->state, memory_order_acquire) != NET_SUCCESS)
    return 0;
  *out = *atomic_load(&c->tls_info);
  return 1;
}

void net_conn_set_option(net_conn *c, net_conn_option opt, int value) {
  if ((unsigned)opt >= sizeof c->opt / sizeof *c->opt) return;
  atomic_store(&c->opt[opt], value);
  request(c, REQ_OPTIONS);
}

int net_conn_get_option(net_conn *c, net_conn_option opt) {
  return (unsigned)opt < sizeof c->opt / sizeof *c->opt ? atomic_load(&c->opt[opt]) : -1;
}

void net_conn_shutdown(net_conn *c, int how) {
  int before = atomic_fetch_or(&c->shut, how & (NET_SHUT_SEND | NET_SHUT_RECEIVE));
  if ((how & NET_SHUT_RECEIVE) && !(before & NET_SHUT_RECEIVE)) {
    size_t n = ring_used(&c->rx);   /* what arrived is dropped too */
    if (n) net__conn_consume(c, n);
  }
  request(c, (how & NET_SHUT_SEND ? REQ_SHUT_WR : 0) | (how & NET_SHUT_RECEIVE ? REQ_SHUT_RD : 0));
}

void net_conn_pause_read(net_conn *c, int paused) {
  atomic_store(&c->owner_paused, paused != 0);
  request(c, REQ_PAUSE);
}

net_conn_stats net_conn_get_stats(net_conn *c) {
  return (net_conn_stats){atomic_load_explicit(&c->bytes_in, memory_order_relaxed),
                          atomic_load_explicit(&c->bytes_out, memory_order_relaxed),
                          net_clock() - c->created};
}

static void endpoint(const net_conn *c, const net_sockaddr *sa, net_endpoint *out) {
  memset(out, 0, sizeof *out);
  if (c->unix_path) {
    snprintf(out->ip, sizeof out->ip, "%s", c->unix_path);
    return;
  }
  net__sockaddr_str(&sa->sa, out->ip, sizeof out->ip, false);
  out->family = sa->sa.sa_family == AF_INET6 ? 6 : 4;
  out->port = ntohs(sa->sa.sa_family == AF_INET6 ? sa->in6.sin6_port : sa->in4.sin_port);
}

/* cur and local are final once the connection was established. */
static bool established_once(net_conn *c) { return atomic_load_explicit(&c->peer, memory_order_acquire); }

int net_conn_local(net_conn *c, net_endpoint *out) {
  if (!established_once(c)) return 0;
  endpoint(c, &c->local, out);
  return 1;
}

int net_conn_remote(net_conn *c, net_endpoint *out) {
  if (!established_once(c)) return 0;
  endpoint(c, &c->cur, out);
  return 1;
}

void net_conn_close(net_conn *c) {
  request(c, REQ_CLOSE);
  conn_unref(c);
  net__engine_release();
}

/* ---- I/O thread: bookkeeping ------------------------------------------- */

static void update_interest(net_conn *c);
static void try_send(net_conn *c);
static void do_recv(net_conn *c);

static void reap(net_conn *c) { list_move(c, &dead); }

static void timer_unlink(net_conn *c) {
  if (!c->timed) return;
  if (c->t_prev) c->t_prev->t_next = c->t_next;
  else timers = c->t_next;
  if (c->t_next) c->t_next->t_prev = c->t_prev;
  c->t_prev = c->t_next = NULL;
  c->timed = false;
}

static uint64_t earliest(uint64_t a, uint64_t b) { return !a ? b : !b ? a : a < b ? a : b; }

/* Recomputes when c next needs the I/O thread without a socket event. */
static void set_timer(net_conn *c) {
  uint64_t at = 0;
  if (c->io <= IO_HANDSHAKE && c->io != IO_NEW) at = earliest(c->connect_deadline, c->next_attempt_at);
  if (c->io == IO_OPEN && c->idle_timeout_ms) at = earliest(at, c->last_io + (uint64_t)c->idle_timeout_ms);
  if (c->owner_gone && c->io != IO_DONE) at = earliest(at, c->linger_deadline);
  c->wake_at = at;
  if (!at) {
    timer_unlink(c);
    return;
  }
  if (!c->timed) {
    c->t_prev = NULL;
    c->t_next = timers;
    if (timers) timers->t_prev = c;
    timers = c;
    c->timed = true;
  }
  timers_next = earliest(timers_next, at);
}

static void close_attempts(net_conn *c, int keep) {
  for (int i = 0; i < NET_MAX_ATTEMPTS; i++) {
    if (i == keep || c->att[i].fd == NET_BAD_SOCK) continue;
    net__engine_set_interest(c->att[i].fd, &c->att[i].poll_mask, 0, &c->att[i].obj);
    net_sock_close(c->att[i].fd);
    c->att[i].fd = NET_BAD_SOCK;
  }
}

/* Events of this poller batch may still point into the attempts: their
 * array is freed between batches (reap_dead), not now. */
static void trash_attempts(net_conn *c) {
  c->att[0].c = (net_conn *)att_trash;   /* the first slot links the trash */
  att_trash = c->att;
  c->att = NULL;
  c->natt = 0;
}

static void close_socket(net_conn *c) {
  net__tls_free(c->tls);   /* here, on the I/O thread, which owns the shared TLS state */
  c->tls = NULL;
  if (c->att) {
    close_attempts(c, -1);
    trash_attempts(c);
  }
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
  timer_unlink(c);
  if (c->owner_gone) reap(c);
}

void net__conn_where(const net_conn *c, char *buf, size_t len) {
  if (c->unix_path) snprintf(buf, len, "unix:%s", c->unix_path);
  else net__sockaddr_str(&c->cur.sa, buf, len, true);
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
  char where[NET_IPSTR_MAX + 120], what[NET_IPSTR_MAX + 140], buf[128];
  net__conn_where(c, where, sizeof where);
  snprintf(what, sizeof what, "%s %s", op, where);
  fail(c, net__errno_code(e), "%s: %s", what, net__errstr(e, buf, sizeof buf));
}

static void update_interest(net_conn *c) {
  if (c->fd == NET_BAD_SOCK) return;
  /* pause_read() holds reading back, unless the input is being thrown away */
  bool in = c->reading && (c->owner_gone || c->discard_rx || !atomic_load(&c->owner_paused));
  int mask = (in ? NET_POLL_IN : 0) | (c->want_out ? NET_POLL_OUT : 0);
  if (net__engine_set_interest(c->fd, &c->poll_mask, mask, &c->obj) < 0)
    fail_errno(c, "poll", errno);
}

static socklen_t sockaddr_len(const net_sockaddr *sa) {
  return sa->sa.sa_family == AF_INET6 ? sizeof sa->in6 : sizeof sa->in4;
}

/* Socket options from the owner's last settings (TCP ones only for TCP).
 * SO_REUSEADDR only when asked: an accepted socket inherits the listener's,
 * and clearing it would make its TIME_WAIT block the port. */
static void apply_options(net_conn *c, bool asked) {
  if (c->fd == NET_BAD_SOCK) return;
  if (asked) {
    int reuse = atomic_load(&c->opt[NET_OPT_REUSEADDR]) != 0;
    setsockopt(c->fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
  }
  if (c->unix_path) return;
  net_conn_opts o = {.nodelay = atomic_load(&c->opt[NET_OPT_NODELAY]),
                     .keepalive = atomic_load(&c->opt[NET_OPT_KEEPALIVE])};
  net__conn_apply_options(c->fd, &o);
}

void net__conn_apply_options(net_sock fd, const net_conn_opts *o) {
  int nodelay = o->nodelay != 0, keep = o->keepalive != 0;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof nodelay);
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &keep, sizeof keep);
#ifdef TCP_KEEPIDLE
  if (o->keepalive > 1) setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &o->keepalive, sizeof o->keepalive);
#endif
}

/* ---- I/O thread: establishing -------------------------------------------- */

/* The transport is ready for data (TCP connected, or the TLS handshake done). */
static void established(net_conn *c) {
  c->io = c->owner_gone ? IO_FLUSHING : IO_OPEN;   /* closed while connecting */
  c->reading = !c->peer_fin;
  c->want_out = false;
  c->last_io = net__now_ms();
  set_timer(c);
  if (!c->owner_gone) {
    /* release: peer, endpoints and tls_info are set before SUCCESS is visible */
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
  net_tls_info *info = atomic_load(&c->tls_info);
  if (!info && !(info = malloc(sizeof *info))) {
    fail(c, NET_E_LIMIT, "%s%s", "tls: out of memory", "");
    return;
  }
  net__tls_get_info(c->tls, info);
  atomic_store(&c->tls_info, info);
  atomic_store_explicit(&c->tls_ready, 1, memory_order_release);
  established(c);
}

static void start_tls(net_conn *c) {
  char ip[NET_IPSTR_MAX + 120], where[NET_IPSTR_MAX + 130];
  net__conn_where(c, ip, sizeof ip);
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

/* The socket is connected: record both ends, then TLS or data. */
static void connected(net_conn *c) {
  net_addr *peer;
  if (c->unix_path) {
    peer = net_addr_ref(c->addr);
  } else {
    socklen_t len = sizeof c->local;
    if (getsockname(c->fd, &c->local.sa, &len) < 0) memset(&c->local, 0, sizeof c->local);
    net__sockaddr_unmap_v4(&c->local);
    peer = net__addr_from_sockaddr(&c->cur.sa, sockaddr_len(&c->cur));
  }
  apply_options(c, false);
  /* release: cur and local are final before anyone sees peer */
  atomic_store_explicit(&c->peer, peer, memory_order_release);
  if (c->tls_cfg) {   /* TLS: SUCCESS waits for the handshake */
    start_tls(c);
    return;
  }
  established(c);
}

/* ---- I/O thread: connecting (RFC 8305 Happy Eyeballs) ------------------- */

/* Families interleaved, starting with the family the resolver put first;
 * within a family, the resolver's order. `family` filters. */
static void plan_attempts(net_conn *c) {
  net_addr *a = c->addr;
  int want = c->family == 4 ? AF_INET : c->family == 6 ? AF_INET6 : AF_UNSPEC;
  int first = -1, lists[2][NET_MAX_ADDRS], n[2] = {0, 0};
  for (int i = 0; i < a->count; i++) {
    int fam = a->sa[i].sa.sa_family;
    if (want != AF_UNSPEC && fam != want) continue;
    if (first < 0) first = fam;
    int k = fam == first ? 0 : 1;
    lists[k][n[k]++] = i;
  }
  c->norder = 0;
  for (int i = 0; i < n[0] || i < n[1]; i++)
    for (int k = 0; k < 2; k++)
      if (i < n[k]) c->order[c->norder++] = (uint8_t)lists[k][i];
  c->next_try = 0;
}

static void attempt_event(net_io *io, int mask);
static void attempt_kicked(net_io *io) { (void)io; }
static void attempt_destroy(net_io *io) { (void)io; }   /* owned by its connection */
static const net_io_ops attempt_ops = {attempt_kicked, attempt_event, attempt_destroy};

static void connect_failed(net_conn *c) {
  if (c->natt > 0 || c->next_try < c->norder) return;   /* others still in the race */
  if (c->norder == 0) {
    char where[NET_HOST_MAX + 16];
    snprintf(where, sizeof where, "%s:%u", c->addr->host, c->port);
    fail(c, NET_E_UNREACHABLE, "connect %s: %s", where,
         c->family ? "no address of the requested family" : "no address");
    return;
  }
  fail_errno(c, "connect", c->last_errno ? c->last_errno : EADDRNOTAVAIL);
}

/* The attempt at index i won: it becomes the connection's socket. */
static void attempt_won(net_conn *c, int i) {
  net_attempt *w = &c->att[i];
  net__engine_set_interest(w->fd, &w->poll_mask, 0, &w->obj);
  c->fd = w->fd;
  c->cur = w->sa;
  w->fd = NET_BAD_SOCK;
  close_attempts(c, -1);
  trash_attempts(c);
  c->next_attempt_at = 0;
  connected(c);
}

static void attempt_drop(net_conn *c, int i, int err) {
  net_attempt *at = &c->att[i];
  c->last_errno = err;
  c->cur = at->sa;   /* for the message, should it be the last one */
  net__engine_set_interest(at->fd, &at->poll_mask, 0, &at->obj);
  net_sock_close(at->fd);
  at->fd = NET_BAD_SOCK;   /* the slot is free again; attempts never move */
  c->natt--;
}

static void start_attempt(net_conn *c);

static void attempt_event(net_io *io, int mask) {
  net_attempt *at = (net_attempt *)io;
  /* closed earlier in this batch (another attempt won, or the connection
   * ended): the slot may already be trash, so look at nothing else */
  if (at->fd == NET_BAD_SOCK) return;
  net_conn *c = at->c;
  int i = (int)(at - c->att), err = 0;
  socklen_t len = sizeof err;
  if (!(mask & (NET_POLL_OUT | NET_POLL_ERR))) return;
  if (getsockopt(at->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err == 0) {
    attempt_won(c, i);
    return;
  }
  attempt_drop(c, i, err);
  if (c->natt == 0) start_attempt(c);   /* a failure starts the next one at once */
  if (c->io == IO_CONNECTING && c->natt == 0) connect_failed(c);
}

/* Starts the next address of the plan; returns when one is in flight, has
 * connected, or none is left. */
static void start_attempt(net_conn *c) {
  while (c->next_try < c->norder && c->natt < NET_MAX_ATTEMPTS) {
    net_sockaddr sa = c->addr->sa[c->order[c->next_try++]];
    if (sa.sa.sa_family == AF_INET6) sa.in6.sin6_port = htons(c->port);
    else sa.in4.sin_port = htons(c->port);
    int i = 0;
    while (c->att[i].fd != NET_BAD_SOCK) i++;   /* natt < NET_MAX_ATTEMPTS: a slot is free */
    net_attempt *at = &c->att[i];
    *at = (net_attempt){.c = c, .fd = net_sock_open(sa.sa.sa_family, SOCK_STREAM), .sa = sa};
    net__io_init(&at->obj, &attempt_ops, 1);
    if (at->fd == NET_BAD_SOCK) {
      c->last_errno = errno;
      c->cur = sa;
      continue;
    }
    c->natt++;
    if (connect(at->fd, &sa.sa, sockaddr_len(&sa)) == 0) {
      attempt_won(c, i);
      return;
    }
    if (!net_sock_in_progress(errno) ||
        net__engine_set_interest(at->fd, &at->poll_mask, NET_POLL_OUT, &at->obj) < 0) {
      attempt_drop(c, i, errno);
      continue;
    }
    c->next_attempt_at = c->next_try < c->norder ? net__now_ms() + HE_DELAY_MS : 0;
    set_timer(c);
    return;
  }
  c->next_attempt_at = 0;
  set_timer(c);
}

static void connect_unix(net_conn *c) {
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  snprintf(un.sun_path, sizeof un.sun_path, "%s", c->unix_path);
  c->fd = net_sock_open(AF_UNIX, SOCK_STREAM);
  if (c->fd == NET_BAD_SOCK) {
    fail_errno(c, "connect", errno);
    return;
  }
  /* a Unix socket connects at once or fails: EAGAIN means its backlog is full */
  if (connect(c->fd, (struct sockaddr *)&un, sizeof un) == 0 || errno == EINPROGRESS) {
    c->reading = true;
    connected(c);
    return;
  }
  fail_errno(c, "connect", errno);
}

static void start(net_conn *c) {
  if (c->connect_timeout_ms)
    c->connect_deadline = net__now_ms() + (uint64_t)c->connect_timeout_ms;
  if (!c->owner_gone) list_move(c, &active);
  c->io = IO_CONNECTING;
  if (c->unix_path) {
    connect_unix(c);
    return;
  }
  int st = atomic_load_explicit(&c->addr->state, memory_order_acquire);
  if (st == NET_WAITING) {
    c->io = IO_RESOLVING;
    if (!c->owner_gone) list_move(c, &resolving);   /* closing ones stay on `closing` */
    set_timer(c);
    return;
  }
  if (st == NET_FAILURE) {
    fail(c, c->addr->err.code, "%s%s", c->addr->err.msg, "");
    return;
  }
  plan_attempts(c);
  if (!c->att) c->att = calloc(NET_MAX_ATTEMPTS, sizeof *c->att);
  if (!c->att) {
    fail(c, NET_E_LIMIT, "%s%s", "connect: out of memory", "");
    return;
  }
  for (int i = 0; i < NET_MAX_ATTEMPTS; i++) c->att[i].fd = NET_BAD_SOCK;
  start_attempt(c);
  if (c->io == IO_CONNECTING && c->natt == 0) connect_failed(c);
}

/* ---- I/O thread: data ---------------------------------------------------- */

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

static void got_bytes(net_conn *c, size_t n) {
  atomic_fetch_add_explicit(&c->bytes_in, n, memory_order_relaxed);
  if (c->idle_timeout_ms) c->last_io = net__now_ms();
  net__engine_activity();
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
      got_bytes(c, (size_t)n);
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
  static char scratch[RECV_MAX];   /* where discarded input goes */
  size_t budget = RECV_BUDGET;
  bool discard = c->owner_gone || c->discard_rx;
  if (c->tls && !discard) {
    tls_recv(c);
    return;
  }
  while (budget > 0 && c->fd != NET_BAD_SOCK) {
    net_span sp[MAX_SPANS];
    struct iovec iov[MAX_SPANS];
    int ns = 1;
    size_t want = 0;
    if (discard) {
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
    if (!discard) ring_commit(&c->rx, n > 0 ? (size_t)n : 0);
    if (n > 0) {
      if (!discard) got_bytes(c, (size_t)n);
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

/* Our side is done sending: close_notify (TLS), then the FIN. Returns false
 * while close_notify waits for the socket. */
static bool send_fin(net_conn *c) {
  if (c->tls && !c->notify_sent) {
    if (net__tls_close_notify(c->tls) == NET_TLS_WANT_WRITE) {
      c->want_out = true;   /* the next OUT event lands here again */
      update_interest(c);
      return false;
    }
    c->notify_sent = true;
  }
  shutdown(c->fd, SHUT_WR);
  c->wr_shut = true;
  c->shut_wr_pending = false;
  c->want_out = false;
  return true;
}

static void begin_drain(net_conn *c) {
  if (!c->wr_shut && !send_fin(c)) return;
  c->io = IO_DRAINING;
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
  if (c->shut_wr_pending) {   /* shutdown("send"): nothing more will be written */
    if (send_fin(c)) update_interest(c);
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

/* One send of up to `limit` bytes of tx: > 0 sent, 0 blocked, < 0 failed. */
static ssize_t send_some(net_conn *c, const net_span *sp, int ns, int *err) {
  if (c->tls) {
    ssize_t n = tls_send(c, &sp[0]);
    /* blocked on a read (a renegotiation): the IN event retries, see conn_event */
    *err = n == 0 && net__tls_want(c->tls) != NET_TLS_WANT_READ ? EAGAIN : 0;
    return n;
  }
  struct iovec iov[MAX_SPANS];
  for (int i = 0; i < ns; i++) iov[i] = (struct iovec){sp[i].base, sp[i].len};
  struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)ns};
  ssize_t n = sendmsg(c->fd, &mh, NET_SEND_FLAGS);
  *err = n < 0 ? errno : 0;
  return n;
}

static void try_send(net_conn *c) {
  while (c->fd != NET_BAD_SOCK && (c->io == IO_OPEN || c->io == IO_FLUSHING) && !c->wr_shut) {
    net_span sp[MAX_SPANS];
    size_t limit = send_limit(c);
    if (limit == 0) return;
    int ns = ring_peek(&c->tx, sp, c->tls ? 1 : MAX_SPANS, limit);
    if (ns == 0) {
      if (tx_empty(c)) continue;
      return;
    }
    int e;
    ssize_t n = send_some(c, sp, ns, &e);
    if (n > 0) {
      ring_consume(&c->tx, (size_t)n);
      atomic_fetch_add_explicit(&c->bytes_out, (size_t)n, memory_order_relaxed);
      if (c->idle_timeout_ms) c->last_io = net__now_ms();
      net__engine_activity();
      continue;
    }
    if (c->fd == NET_BAD_SOCK) return;   /* the TLS layer failed it */
    if (n < 0 && e == EINTR) continue;
    if (n == 0 && e == 0) return;
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

/* ---- I/O thread: requests, events, closing -------------------------------- */

/* The owner closed: deliver what it wrote (connecting first if need be),
 * within the linger time, then close. */
static void begin_close(net_conn *c) {
  c->owner_gone = true;
  ring_destroy(&c->rx);   /* the owner is done with it; a lingering close discards input */
  int linger = atomic_load(&c->opt[NET_OPT_LINGER]);
  bool connecting = c->io == IO_NEW || c->io == IO_RESOLVING || c->io == IO_CONNECTING ||
                    c->io == IO_HANDSHAKE;
  if (linger <= 0 || !(c->io == IO_OPEN || (connecting && ring_used(&c->tx) > 0))) {
    finish(c);   /* nothing worth lingering for */
    return;
  }
  c->linger_deadline = net__now_ms() + (uint64_t)linger;
  list_move(c, &closing);
  if (c->io == IO_NEW) start(c);
  set_timer(c);
  if (c->io != IO_OPEN) return;   /* established() will flush */
  c->io = IO_FLUSHING;
  c->reading = !c->peer_fin;
  update_interest(c);
  try_send(c);
}

static void handle_requests(net_conn *c, int req) {
  if ((req & REQ_STARTTLS) && !c->tls && c->io == IO_OPEN)
    c->starttls = true;   /* try_send starts the handshake at the boundary */
  if (req & REQ_OPTIONS) apply_options(c, true);
  if (req & REQ_SHUT_RD) {
    c->discard_rx = true;
    atomic_store(&c->rx_paused, 0);
    c->reading = !c->peer_fin;   /* keep reading, so the peer is never blocked by us */
  }
  if (req & REQ_SHUT_WR) c->shut_wr_pending = true;   /* try_send sends the FIN once tx is out */
}

static void conn_kicked(net_io *io) {
  net_conn *c = CONN(io);
  int req = atomic_exchange(&c->requests, 0);
  if (c->io == IO_NEW && !(req & REQ_CLOSE)) start(c);   /* begin_close decides otherwise */
  if ((req & REQ_CLOSE) && !c->owner_gone) {
    begin_close(c);
    return;
  }
  if (c->io == IO_DONE) return;
  handle_requests(c, req);
  if (c->io != IO_OPEN) return;
  if (!c->reading && !c->peer_fin && !atomic_load(&c->rx_paused)) c->reading = true;
  update_interest(c);
  if (c->reading && c->tls && net__tls_pending(c->tls)) do_recv(c);   /* no event will come */
  try_send(c);
}

static void conn_event(net_io *io, int mask) {
  net_conn *c = CONN(io);
  if (c->fd == NET_BAD_SOCK) return;   /* closed earlier in this batch */
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
  while (att_trash) {
    net_attempt *next = (net_attempt *)att_trash[0].c;
    free(att_trash);
    att_trash = next;
  }
  while (dead.head) {
    net_conn *c = dead.head;
    list_remove(c);
    conn_unref(c);
  }
}

static void timed_out(net_conn *c, const char *what, int ms, const char *option) {
  char where[NET_HOST_MAX + 16], msg[NET_HOST_MAX + 96];
  if (c->io <= IO_CONNECTING && !c->unix_path)   /* still racing: name what was asked for */
    snprintf(where, sizeof where, strchr(c->addr->host, ':') ? "[%s]:%u" : "%s:%u", c->addr->host,
             c->port);
  else
    net__conn_where(c, where, sizeof where);
  snprintf(msg, sizeof msg, "%s %s: %s %d ms (%s)", c->io == IO_OPEN ? "recv" : "connect", where,
           what, ms, option);
  fail(c, NET_E_TIMEOUT, "%s%s", msg, "");
}

/* Runs what is due for c: a deadline, or the next Happy Eyeballs attempt. */
static void run_timer(net_conn *c, uint64_t now) {
  if (c->owner_gone && c->linger_deadline && now >= c->linger_deadline) {
    finish(c);   /* linger expired: give up on the peer */
  } else if (c->io <= IO_HANDSHAKE && c->connect_deadline && now >= c->connect_deadline) {
    timed_out(c, "timed out after", c->connect_timeout_ms, "connect_timeout");
  } else if (c->io == IO_OPEN && c->idle_timeout_ms &&
             now >= c->last_io + (uint64_t)c->idle_timeout_ms) {
    timed_out(c, "idle for", c->idle_timeout_ms, "idle_timeout");
  } else if (c->io == IO_CONNECTING && c->next_attempt_at && now >= c->next_attempt_at) {
    start_attempt(c);   /* the previous attempt is taking long: race another */
  } else {
    set_timer(c);
  }
}

static uint64_t conns_timers(uint64_t now) {
  reap_dead();
  if (timers_next && now >= timers_next) {
    timers_next = 0;
    for (net_conn *c = timers, *next; c; c = next) {
      next = c->t_next;
      if (c->wake_at <= now) run_timer(c, now);
      else timers_next = earliest(timers_next, c->wake_at);
    }
    reap_dead();
  }
  return timers_next;
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

/* ---- I/O thread: accepted connections (for server.c) --------------------- */

net_conn *net__conn_adopt(net_sock fd, const net_sockaddr *peer, const char *unix_path,
                          const net_conn_opts *o, const net_tls_cfg *tls) {
  net_conn *c = conn_new(o, 2);   /* the owner's (handed over by accept) and ours */
  if (!c) return NULL;
  c->fd = fd;
  c->cur = *peer;
  net__sockaddr_unmap_v4(&c->cur);
  peer = &c->cur;
  if (unix_path) c->unix_path = strdup(unix_path);
  c->addr = unix_path ? net__addr_unix(unix_path) : net__addr_from_sockaddr(&peer->sa, sockaddr_len(peer));
  if (tls) c->tls_cfg = net__tls_cfg_ref(tls);
  if (!c->addr || (unix_path && !c->unix_path)) {
    c->fd = NET_BAD_SOCK;   /* the caller still owns fd */
    conn_destroy(&c->obj);
    return NULL;
  }
  c->port = (uint16_t)ntohs(peer->sa.sa_family == AF_INET6 ? peer->in6.sin6_port : peer->in4.sin_port);
  list_move(c, &active);
  c->io = IO_CONNECTING;
  connected(c);
  return c;
}

void net__conn_abandon(net_conn *c) {
  begin_close(c);
  conn_unref(c);
}
