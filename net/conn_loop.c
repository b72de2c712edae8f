/* conn_loop.c: a stream connection's entry points on the I/O thread (owner
 * requests, socket events, deadlines), its graceful close, and its
 * lifetime. The I/O thread, except net__conn_new and the destroy callback. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "conn.h"
#include "poller.h"

#define CONN(io_ptr) ((net_conn *)((char *)(io_ptr) - offsetof(net_conn, obj)))

static void conn_kicked(net_io *io);
static void conn_event(net_io *io, int mask);
static void conn_timer(net_io *io, uint64_t now);
static void conn_destroy(net_io *io);
static const net_io_ops conn_ops = {conn_kicked, conn_event, conn_timer, conn_destroy};

/* ---- the hosts' live connections, for the exit (any thread) ---------------------- */

/* A listed connection that has not failed and holds bytes to send. */
static bool conn_pending(net_exit_link *m) {
  net_conn *c = (net_conn *)((char *)m - offsetof(net_conn, live));
  return ring_used(&c->tx) != 0 && atomic_load_explicit(&c->state, memory_order_acquire) != NET_FAILURE;
}

static net_exit_list live = {.pending = conn_pending};

void net__conn_list(net_conn *c) { net__exit_list_add(&live, &c->live); }

void net__conn_unlist(net_conn *c) { net__exit_list_remove(&live, &c->live); }

/* ---- lifetime (any thread) -------------------------------------------------- */

net_conn *net__conn_new(const net_conn_opts *o, int refs) {
  net_conn *c = net__aligned(sizeof(net_conn));
  if (!c) return NULL;
  memset(c, 0, sizeof *c);
  size_t cap = o && o->buffer_size ? o->buffer_size : NET_RING_DEFAULT_CAP;
  ring_init(&c->rx, cap);
  ring_init(&c->tx, cap);
  if (!o || !o->buffer_size) {   /* the default grows with a reader that keeps up */
    ring_allow_growth(&c->rx, NET_RING_GROW_MAX, NET_RING_GROW_STALL_NS);
    ring_allow_growth(&c->tx, NET_RING_GROW_MAX, NET_RING_GROW_STALL_NS);
  } else {   /* a fixed one (2 MiB or more) still earns such a reader a run */
    ring_allow_growth(&c->rx, 0, NET_RING_GROW_STALL_NS);
  }
  ring_take_runs(&c->rx);
  net__io_init(&c->obj, &conn_ops, refs);
  atomic_init(&c->state, NET_WAITING);
  atomic_init(&c->opt[NET_OPT_NODELAY], o ? o->nodelay != 0 : 0);
  atomic_init(&c->opt[NET_OPT_KEEPALIVE], o ? o->keepalive : 0);
  atomic_init(&c->opt[NET_OPT_LINGER], !o || !o->linger_ms ? NET_DEFAULT_LINGER_MS
                                       : o->linger_ms < 0 ? 0 : o->linger_ms);
  c->created = net_clock();
  c->family = o ? o->family : 0;
  c->connect_timeout_ms = !o || o->connect_timeout_ms == 0 ? NET_DEFAULT_CONNECT_TIMEOUT_MS
                          : o->connect_timeout_ms < 0 ? 0 : o->connect_timeout_ms;
  c->idle_timeout_ms = o && o->idle_timeout_ms > 0 ? o->idle_timeout_ms : 0;
  c->fd = NET_BAD_SOCK;
  c->io = IO_NEW;
  atomic_fetch_add(&net__live_conns, 1);
  return c;
}

void net__conn_destroy(net_conn *c) {
  net__conn_unlist(c);   /* first: the exit's look at tx is over before tx goes */
  ring_destroy(&c->rx);
  ring_destroy(&c->tx);
  net_addr_unref(c->addr);
  net__tls_cfg_free(c->tls_cfg);
  net__tls_conf_unref(c->tls_conf);
  net__free(atomic_load(&c->tls_info));
  net__free(c->unix_path);
  if (c->proxy && c->proxy->target_addr) net_addr_unref(c->proxy->target_addr);
  net__free_secret(c->proxy, c->proxy ? sizeof *c->proxy : 0);   /* its credentials */
  net__conn_proxy_io_free(c);
  net_addr *peer = atomic_load(&c->peer);
  if (peer) net_addr_unref(peer);
  net__free_aligned(c);
  atomic_fetch_sub(&net__live_conns, 1);
}

static void conn_destroy(net_io *io) { net__conn_destroy(CONN(io)); }

/* ---- closing ------------------------------------------------------------------ */

/* The owner closed: deliver what it wrote (connecting first if need be),
 * within the linger time, then close. */
static void begin_close(net_conn *c) {
  c->owner_gone = true;
  c->link = NULL;           /* a protocol owning it hears no more from it */
  net__io_seen(&c->obj);    /* what it published since the owner's close is nobody's news */
  c->exit_counted = true;   /* the closer counted it in (net__engine_closing) */
  ring_destroy(&c->rx);   /* the owner is done with it; a lingering close discards input */
  int linger = atomic_load(&c->opt[NET_OPT_LINGER]);
  bool connecting = c->io <= IO_HANDSHAKE;
  if (linger <= 0 || !(c->io == IO_OPEN || (connecting && ring_used(&c->tx) > 0))) {
    net__conn_finish(c);   /* nothing worth lingering for */
    return;
  }
  c->linger_deadline = net__now_ms() + (uint64_t)linger;
  if (c->io == IO_NEW) net__conn_start(c);
  if (c->io == IO_DONE) return;   /* failed at once */
  net__conn_set_timer(c);
  if (c->io == IO_OPEN) net__conn_begin_flush(c);   /* else established() will flush */
}

/* ---- entry points ------------------------------------------------------------- */

/* Plain text that came after the owner asked for STARTTLS, before any
 * handshake: nothing a peer may send there (CVE-2011-0411's injection). */
static bool injected(net_conn *c) {
  uint_fast64_t n = atomic_load_explicit(&c->bytes_in, memory_order_relaxed) - c->starttls_in;
  if (n == 0) return false;
  char where[NET_WHERE_MAX], msg[NET_WHERE_MAX + 96];
  net__conn_where(c, where, sizeof where);
  snprintf(msg, sizeof msg, "tls %s: %llu bytes came in plain text after starttls() (injected?)", where,
           (unsigned long long)n);
  net__conn_fail(c, NET_E_PROTOCOL, msg);
  return true;
}

static void handle_requests(net_conn *c, int req) {
  if ((req & REQ_STARTTLS) && !c->tls && c->io == IO_OPEN && !injected(c)) {
    c->starttls = true;   /* net__conn_send starts the handshake at the boundary */
    net__conn_interest(c);   /* reading stops: the next bytes are the handshake's */
    /* the plain text before it must go within connect_timeout: with reading
     * stopped, no idle timeout notices a peer that takes nothing */
    if (c->connect_timeout_ms) c->connect_deadline = net__now_ms() + (uint64_t)c->connect_timeout_ms;
    net__conn_set_timer(c);
  }
  if (c->io == IO_DONE) return;
  if (req & REQ_OPTIONS) net__conn_apply_options(c, true);
  if (req & REQ_SHUT_RD) {
    c->discard_rx = true;
    atomic_store(&c->rx_paused, 0);
    c->reading = !c->peer_fin;   /* keep reading, so the peer is never blocked by us */
  }
  if (req & REQ_SHUT_WR) c->shut_wr_pending = true;   /* the FIN goes once tx is out */
}

static void conn_kicked(net_io *io) {
  net_conn *c = CONN(io);
  int req = atomic_exchange(&c->requests, 0) | c->held_requests;
  c->held_requests = 0;
  if ((req & REQ_CLOSE) && !c->owner_gone) {
    /* a starttls() taken in the same batch: its handshake comes before the
     * flush, or what was written after it would go out in plain text */
    handle_requests(c, req & (REQ_STARTTLS | REQ_OPTIONS));
    begin_close(c);
    return;
  }
  if (req & REQ_ABORT) {   /* the owner's parser gave up on the stream */
    net__conn_fail(c, c->abort_err.code, c->abort_err.msg);
    return;
  }
  if (c->io == IO_NEW || c->io == IO_RESOLVING) {   /* first kick, or the address resolved */
    net__conn_start(c);
    if (c->io <= IO_RESOLVING) {
      c->held_requests = req;   /* shutdown, options: for the connection to come */
      return;
    }
  }
  if (c->io == IO_PROXY) net__conn_proxy_kicked(c);   /* socks5://: the target may have resolved */
  if (c->io == IO_TLS_WAIT) net__conn_start_tls(c);   /* its configuration may be ready */
  if (c->io == IO_HANDSHAKE && net__tls_want(c->tls) == NET_TLS_WANT_CHECK)
    net__conn_handshake(c);   /* the certificate's verdict may be in */
  if (c->io == IO_DONE) return;
  handle_requests(c, req);
  if (c->io == IO_FLUSHING) net__conn_send(c);   /* a send that spent its budget goes on */
  if (c->io != IO_OPEN) return;
  if (!c->reading && !c->peer_fin && !atomic_load(&c->rx_paused)) c->reading = true;
  net__conn_interest(c);
  if (net__conn_tls_held(c)) net__conn_recv(c);   /* no event will come */
  net__conn_send(c);
}

static void conn_event(net_io *io, int mask) {
  net_conn *c = CONN(io);
  if (c->fd == NET_BAD_SOCK) return;   /* closed earlier in this batch */
  if (c->io == IO_HANDSHAKE) {
    net__conn_handshake(c);
    return;
  }
  if (c->io == IO_PROXY) {
    net__conn_proxy_event(c, mask);
    return;
  }
  if (mask & (NET_POLL_IN | NET_POLL_ERR)) net__conn_recv(c);
  if ((mask & (NET_POLL_OUT | NET_POLL_ERR)) || (c->tls && net__tls_out_pending(c->tls))) {
    net__conn_send(c);
    /* a TLS read that had to write first (an alert) goes on: no IN event may come for what it holds */
    if (net__conn_tls_held(c)) net__conn_recv(c);
  }
}

static void timed_out(net_conn *c, const char *what, int ms, const char *option) {
  char where[NET_WHERE_MAX], msg[NET_WHERE_MAX + 120];
  if (c->io <= IO_CONNECTING && !c->unix_path && !c->proxy)   /* still racing: name what was asked for */
    net__conn_asked(c, where, sizeof where);
  else
    net__conn_where(c, where, sizeof where);
  /* say which part of connecting took the time: reading TLS files, the handshake */
  const char *op = c->starttls ? "starttls"
                   : c->io == IO_OPEN ? (c->want_out ? "send" : "recv")   /* the peer takes nothing */
                   : c->io == IO_HANDSHAKE ? "tls handshake" : "connect";
  bool resolving = c->io == IO_RESOLVING || (c->pio && c->pio->step == P_RESOLVE);   /* socks5:// the target's */
  const char *stage = c->starttls ? " sending the plain text before it"
                      : c->io == IO_TLS_WAIT ? " loading its TLS files" : resolving ? " resolving the name" : "";
  snprintf(msg, sizeof msg, "%s %s: %s %d ms%s (%s)", op, where, what, ms, stage, option);
  net__conn_fail(c, NET_E_TIMEOUT, msg);
}

/* A deadline passed: the linger, the connect or idle timeout, or the next
 * Happy Eyeballs attempt. Idle deadlines move with traffic, so an early
 * wake-up just re-arms. */
static void conn_timer(net_io *io, uint64_t now) {
  net_conn *c = CONN(io);
  if (c->owner_gone && c->linger_deadline && now >= c->linger_deadline) {
    net__conn_finish(c);   /* linger expired: give up on the peer */
  } else if (c->io <= IO_HANDSHAKE && c->connect_deadline && now >= c->connect_deadline) {
    timed_out(c, "timed out after", c->connect_timeout_ms, c->accepted ? "handshake_timeout" : "connect_timeout");
  } else if (c->starttls && c->connect_deadline && now >= c->connect_deadline) {
    timed_out(c, "timed out after", c->connect_timeout_ms, "connect_timeout");
  } else if (c->io == IO_OPEN && c->idle_timeout_ms &&
             now >= c->last_io + (uint64_t)c->idle_timeout_ms) {
    /* we are the ones not reading (a full buffer, pause_read), or the peer
     * closed its side and nothing waits to go to it: not the peer's idling */
    if (c->peer_fin ? !c->want_out : !(c->poll_mask & NET_POLL_IN)) {
      c->last_io = now;
      net__conn_set_timer(c);
    } else {
      timed_out(c, "idle for", c->idle_timeout_ms, "idle_timeout");
    }
  } else if (c->io == IO_CONNECTING && c->next_attempt_at && now >= c->next_attempt_at) {
    net__conn_next_attempt(c);   /* the previous attempt is taking long: race another */
  } else if (c->rx_shrink_at && now >= c->rx_shrink_at) {
    /* everything received was read: give the memory back; else look again later */
    c->rx_shrink_at = ring_used(&c->rx) == 0 && ring_shrink(&c->rx) ? 0 : now + RX_SHRINK_MS;
    net__conn_set_timer(c);
  } else if (c->io != IO_DONE) {
    net__conn_set_timer(c);
  }
}

/* ---- accepted connections (for server.c) -------------------------------------- */

net_conn *net__conn_adopt(net_sock fd, const net_sockaddr *peer, const char *unix_path,
                          const net_conn_opts *o, const net_tls_cfg *tls, net_tls_conf *conf, bool queued) {
  net_conn *c = net__conn_new(o, 2);   /* the owner's (handed over by accept) and ours */
  if (!c) return NULL;
  c->cur = *peer;
  c->accepted = true;
  net__sa_unmap_v4(&c->cur);
  if (unix_path) c->unix_path = net__strdup(unix_path);
  c->addr = unix_path ? net__addr_unix(unix_path) : net__addr_from_sa(&c->cur);
  if (tls) {
    c->tls_cfg = net__tls_cfg_ref(tls);
    c->tls_conf = net__tls_conf_ref(conf);
    if (c->connect_timeout_ms)   /* a client that never finishes its handshake */
      c->connect_deadline = net__now_ms() + (uint64_t)c->connect_timeout_ms;
  }
  if (!c->addr || (unix_path && !c->unix_path)) {
    net__conn_destroy(c);   /* the caller still owns fd */
    return NULL;
  }
  c->fd = fd;
  c->port = net__sa_port(&c->cur);
  c->io = IO_CONNECTING;
  /* a server's queue holds connections the owner has not taken: their input
   * stays in the kernel (its flow control holds the peer), not in our buffers */
  if (queued) atomic_store(&c->owner_paused, 1);
  net__conn_connected(c);
  return c;
}

void net__conn_hold(net_conn *c) {
  atomic_store(&c->owner_paused, 1);
  net__conn_interest(c);
}

void net__conn_abandon(net_conn *c) {
  net__engine_closing(1);
  begin_close(c);
  net__io_unref(&c->obj);
}
