/* conn_proxy.c: the proxy stage of a stream connection, between the TCP
 * connect to the proxy and TLS: HTTP CONNECT or SOCKS5, sent and read
 * straight on the socket, never a byte of the tunnel consumed. I/O thread
 * only. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "conn.h"
#include "poller.h"

static void proxy_fail(net_conn *c, const char *what, const char *why) {
  net_error e;
  const char *sep = strncmp(why, "refused", 7) == 0 ? " " : ": ";
  net__seterr(&e, NET_E_PROXY, "proxy %s: %s%s%s", c->proxy->where, what, sep, why);
  net__conn_fail(c, e.code, e.msg);
}

/* "CONNECT example.test:443", what the messages say was being done. */
static void what(const net_conn *c, char *buf, size_t len) {
  const char *h = c->proxy->target;
  int all = (int)strlen(h), n = all > 64 ? 61 : all;   /* cut: the reason after it must still fit */
  snprintf(buf, len, strchr(h, ':') ? "CONNECT [%.*s%s]:%u" : "CONNECT %.*s%s:%u", n, h, n < all ? "..." : "",
           (unsigned)c->proxy->target_port);
}

static void target_fail(net_conn *c, const char *why) {
  char w[NET_URL_HOST_MAX + 24];
  what(c, w, sizeof w);
  proxy_fail(c, w, why);
}

static void sys_fail(net_conn *c, int e) {
  char buf[128];
  target_fail(c, e ? net__errstr(e, buf, sizeof buf) : "the proxy closed the connection during the handshake");
}

static void set_io(net_conn *c, bool in, bool out) {
  c->reading = in;
  c->want_out = out;
  net__conn_interest(c);
}

/* Sends what is left of out; then waits for the reply. */
static void flush(net_conn *c) {
  struct proxy_io *p = c->pio;
  while (p->out_off < p->out_len) {
    ssize_t n = net_sock_send(c->fd, p->out + p->out_off, p->out_len - p->out_off, NET_SEND_FLAGS);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && net_sock_would_block(errno)) {
      set_io(c, false, true);
      return;
    }
    if (n <= 0) {
      sys_fail(c, n < 0 ? errno : EPIPE);
      return;
    }
    p->out_off += (size_t)n;
  }
  set_io(c, true, false);
}

static void send_msg(net_conn *c, size_t len, proxy_step next) {
  if (len == 0) {   /* the builders refuse what does not fit */
    target_fail(c, "the request does not fit");
    return;
  }
  c->pio->out_len = len;
  c->pio->out_off = 0;
  c->pio->in_len = 0;
  c->pio->step = next;
  flush(c);
}

/* recv into in after what is there; peek: leave the bytes in the socket.
 * Returns the count, or -1 when failed (c failed) or nothing came. */
static ssize_t recv_some(net_conn *c, size_t want, bool peek) {
  ssize_t n;
  do n = net_sock_recv(c->fd, c->pio->in + c->pio->in_len, want, peek ? MSG_PEEK : 0);
  while (n < 0 && errno == EINTR);
  if (n > 0) return n;
  if (n == 0 || !net_sock_would_block(errno)) sys_fail(c, n == 0 ? 0 : errno);
  return -1;
}

/* Reads until in holds want bytes: true once it does. */
static bool read_exact(net_conn *c, size_t want) {
  ssize_t n = recv_some(c, want - c->pio->in_len, false);
  if (n < 0) return false;
  c->pio->in_len += (size_t)n;
  return c->pio->in_len == want;
}

/* The tunnel is open: on to TLS or data, as a direct connection would. */
static void tunnel_open(net_conn *c) {
  net__conn_proxy_io_free(c);
  set_io(c, false, false);
  net__conn_connected(c);
}

/* ---- HTTP CONNECT ------------------------------------------------------------- */

/* Peeks at what arrived and consumes only head bytes: everything while the
 * head has not ended (so level-triggered polling does not spin), and at the
 * end exactly through its empty line. */
static void read_head(net_conn *c) {
  struct proxy_io *p = c->pio;
  ssize_t n = recv_some(c, sizeof p->in - p->in_len, true);
  if (n < 0) return;
  char why[NET_PROXY_WHY_MAX];
  long end = net__proxy_connect_reply((const char *)p->in, p->in_len + (size_t)n, why, sizeof why);
  if (end < 0) {
    target_fail(c, why);
    return;
  }
  size_t take = end > 0 ? (size_t)end - p->in_len : (size_t)n;
  if (take > 0 && recv_some(c, take, false) != (ssize_t)take) {   /* peeked: it is there */
    if (c->fd != NET_BAD_SOCK) sys_fail(c, EIO);
    return;
  }
  p->in_len += take;
  if (end > 0) tunnel_open(c);
}

/* ---- SOCKS5 --------------------------------------------------------------------- */

static bool target_ip(net_conn *c, net_sockaddr *sa) {
  net_proxy *p = c->proxy;
  if (net__ip_parse(p->target, strlen(p->target), sa)) return true;
  int want = c->family == 4 ? AF_INET : c->family == 6 ? AF_INET6 : AF_UNSPEC;
  for (int i = 0; i < p->target_addr->count; i++)
    if (want == AF_UNSPEC || p->target_addr->sa[i].sa.sa_family == want) {
      *sa = p->target_addr->sa[i];
      return true;
    }
  return false;
}

/* The CONNECT request: the name for socks5h, else an address (socks5:// may
 * first wait for its lookup). */
static void socks_connect(net_conn *c) {
  net_proxy *p = c->proxy;
  net_sockaddr sa;
  size_t len;
  bool literal = net__ip_parse(p->target, strlen(p->target), &sa);
  if (p->kind == NET_PROXY_SOCKS5 && !literal) {
    int st = atomic_load_explicit(&p->target_addr->state, memory_order_acquire);   /* pairs with publish */
    if (st == NET_WAITING) {
      c->pio->step = P_RESOLVE;
      set_io(c, false, false);
      net__io_await_resolve(&c->obj);
      return;
    }
    if (st == NET_FAILURE) {
      net__conn_fail(c, p->target_addr->err.code, p->target_addr->err.msg);
      return;
    }
    if (!target_ip(c, &sa)) {   /* our lookup's lack, not the proxy's: as a direct connect says */
      char w[NET_URL_HOST_MAX + 24];
      net_error e;
      what(c, w, sizeof w);
      net__seterr(&e, NET_E_UNREACHABLE, "proxy %s: %s: the target has no address of the requested family",
                  p->where, w);
      net__conn_fail(c, e.code, e.msg);
      return;
    }
    literal = true;
  }
  if (!literal) len = net__socks_connect_name(c->pio->out, sizeof c->pio->out, p->target, p->target_port);
  else if (sa.sa.sa_family == AF_INET6)
    len = net__socks_connect_ip(c->pio->out, sizeof c->pio->out, (const uint8_t *)&sa.in6.sin6_addr, 6, p->target_port);
  else
    len = net__socks_connect_ip(c->pio->out, sizeof c->pio->out, (const uint8_t *)&sa.in4.sin_addr, 4, p->target_port);
  send_msg(c, len, P_REPLY);
}

static void read_method(net_conn *c) {
  char why[NET_PROXY_WHY_MAX];
  if (!read_exact(c, 2)) return;
  int m = net__socks_method_reply(c->pio->in, 2, c->proxy->auth, why, sizeof why);
  if (m < 0) {
    proxy_fail(c, "SOCKS5 greeting", why);
  } else if (m == 2) {
    size_t len = net__socks_auth_request(c->pio->out, sizeof c->pio->out, c->proxy->user, c->proxy->pass);
    send_msg(c, len, P_AUTH);
  } else {
    socks_connect(c);
  }
}

static void read_auth(net_conn *c) {
  char why[NET_PROXY_WHY_MAX];
  if (!read_exact(c, 2)) return;
  if (net__socks_auth_reply(c->pio->in, 2, why, sizeof why) < 0) proxy_fail(c, "SOCKS5 authentication", why);
  else socks_connect(c);
}

/* Reads the reply in exact pieces: through its address type, then the rest. */
static void read_reply(net_conn *c) {
  char why[NET_PROXY_WHY_MAX];
  size_t need = 5;
  long r = net__socks_connect_reply(c->pio->in, c->pio->in_len, &need, why, sizeof why);
  while (r == 0) {
    bool whole = read_exact(c, need);
    if (!c->pio) return;   /* the read failed the connection, which freed pio (state stays as the owner saw it) */
    /* what came so far may say no already (a refusal cut short by a broken proxy) */
    r = net__socks_connect_reply(c->pio->in, c->pio->in_len, &need, why, sizeof why);
    if (r == 0 && !whole) return;
  }
  if (r < 0) target_fail(c, why);
  else tunnel_open(c);
}

/* ---- entry points ----------------------------------------------------------------- */

void net__conn_proxy_start(net_conn *c) {
  c->io = IO_PROXY;
  net__conn_set_timer(c);
  if (!(c->pio = net__malloc(sizeof *c->pio))) {
    net__conn_fail(c, NET_E_LIMIT, "proxy: out of memory");
    return;
  }
  net_proxy *p = c->proxy;
  if (p->kind == NET_PROXY_HTTP) {
    size_t len = net__proxy_connect_request((char *)c->pio->out, sizeof c->pio->out, p->target, p->target_port,
                                            p->auth ? p->user : NULL, p->pass);
    send_msg(c, len, P_HEAD);
  } else {
    send_msg(c, net__socks_greeting(c->pio->out, p->auth), P_METHOD);
  }
}

void net__conn_proxy_event(net_conn *c, int mask) {
  struct proxy_io *p = c->pio;
  if (p->out_off < p->out_len) {
    if (mask & (NET_POLL_OUT | NET_POLL_ERR)) flush(c);
    return;
  }
  if (!(mask & (NET_POLL_IN | NET_POLL_ERR))) return;
  switch (p->step) {
    case P_HEAD: read_head(c); break;
    case P_METHOD: read_method(c); break;
    case P_AUTH: read_auth(c); break;
    case P_REPLY: read_reply(c); break;
    case P_RESOLVE: break;
  }
}

void net__conn_proxy_kicked(net_conn *c) {
  if (c->pio && c->pio->step == P_RESOLVE) socks_connect(c);
}
