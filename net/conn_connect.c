/* conn_connect.c: getting a stream connection its socket: waiting for the
 * address, racing its addresses (RFC 8305 Happy Eyeballs), or connecting a
 * Unix socket. I/O thread only. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "conn.h"
#include "poller.h"

#define HE_DELAY_MS 250   /* RFC 8305 "Connection Attempt Delay" */
#define GIVE_WAY_MS 2000  /* unanswered this long, an attempt may make room for another */

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
static void attempt_timer(net_io *io, uint64_t now) { (void)io, (void)now; }
static void attempt_destroy(net_io *io) { (void)io; }   /* owned by its connection */
static const net_io_ops attempt_ops = {attempt_kicked, attempt_event, attempt_timer, attempt_destroy};

static void connect_failed(net_conn *c) {
  if (c->natt > 0 || c->next_try < c->norder) return;   /* others still in the race */
  if (c->norder == 0) {
    char asked[NET_HOST_MAX + 16], msg[NET_HOST_MAX + 96];
    net__conn_asked(c, asked, sizeof asked);
    snprintf(msg, sizeof msg, "connect %s: %s", asked, c->family ? "no address of the requested family" : "no address");
    net__conn_fail(c, NET_E_UNREACHABLE, msg);
    return;
  }
  net__conn_fail_sys(c, "connect", c->last_errno ? c->last_errno : EADDRNOTAVAIL);
}

/* The attempt at index i won: it becomes the connection's socket. */
static void attempt_won(net_conn *c, int i) {
  net_attempt *w = &c->att[i];
  /* the registration moves to the connection, pointed at it and at what it
   * waits for next in most cases (input): one poller change, not two */
  c->poll_mask = w->poll_mask;
  w->poll_mask = 0;
  if (net__engine_set_interest(w->fd, &c->poll_mask, NET_POLL_IN, &c->obj) < 0)
    net__engine_set_interest(w->fd, &c->poll_mask, 0, &c->obj);
  c->fd = w->fd;
  c->fresh_socket = true;
  c->cur = w->sa;
  w->fd = NET_BAD_SOCK;
  c->next_attempt_at = 0;
  net__conn_drop_attempts(c);   /* the losers */
  if (c->proxy) net__conn_proxy_start(c);
  else net__conn_connected(c);
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

/* A connect to a local port nobody listens on can meet itself: the kernel
 * picked that very port as the source (TCP simultaneous open). That is a
 * refusal, not a peer. The local address asked for is kept as the
 * connection's, so a winner asks only once. */
static bool to_itself(net_conn *c, net_sock fd, const net_sockaddr *to) {
  net_sockaddr *me = &c->local;
  socklen_t len = sizeof *me;
  if (net_sock_getsockname(fd, &me->sa, &len) < 0) memset(me, 0, sizeof *me);
  if (me->sa.sa_family != to->sa.sa_family) return false;
  if (to->sa.sa_family == AF_INET)
    return me->in4.sin_port == to->in4.sin_port && me->in4.sin_addr.s_addr == to->in4.sin_addr.s_addr;
  return me->in6.sin6_port == to->in6.sin6_port && !memcmp(&me->in6.sin6_addr, &to->in6.sin6_addr, 16);
}

static void attempt_event(net_io *io, int mask) {
  net_attempt *at = (net_attempt *)io;
  /* closed earlier in this batch (another attempt won, or the connection
   * ended): the slot may already be trash, so look at nothing else */
  if (at->fd == NET_BAD_SOCK) return;
  net_conn *c = at->c;
  int i = (int)(at - c->att), err = 0;
  socklen_t len = sizeof err;
  if (!(mask & (NET_POLL_OUT | NET_POLL_ERR))) return;
  /* writable without an error condition: connected (the error is asked for only then) */
  if ((mask & NET_POLL_ERR) && net_sock_getopt(at->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err == 0 && to_itself(c, at->fd, &at->sa)) err = ECONNREFUSED;
  if (err == 0) {
    attempt_won(c, i);
    return;
  }
  attempt_drop(c, i, err);
  start_attempt(c);   /* a failure starts the next one at once, others in flight or not */
  if (c->io == IO_CONNECTING && c->natt == 0) connect_failed(c);
}

/* Opens a socket for the attempt at slot i and connects it: 1 connected at
 * once, 0 in flight, -1 failed (dropped). */
static int attempt_connect(net_conn *c, int i, const net_sockaddr *sa) {
  net_attempt *at = &c->att[i];
  *at = (net_attempt){.c = c, .fd = net_sock_open(sa->sa.sa_family, SOCK_STREAM), .since = net__now_ms(), .sa = *sa};
  net__io_init(&at->obj, &attempt_ops, 1);
  if (at->fd == NET_BAD_SOCK) {
    c->last_errno = errno;
    c->cur = *sa;
    return -1;
  }
  c->natt++;
  int r = net_sock_connect(at->fd, &sa->sa, net__sa_len(sa)) == 0 ? 1 : net_sock_in_progress(errno) ? 0 : -1;
  if (r == 0) r = net_sock_connect_done(at->fd, &sa->sa, net__sa_len(sa));
  if (r > 0) {
    if (!to_itself(c, at->fd, sa)) return 1;
    attempt_drop(c, i, ECONNREFUSED);
    return -1;
  }
  if (r < 0 || net__engine_set_interest(at->fd, &at->poll_mask, NET_POLL_OUT, &at->obj) < 0) {
    attempt_drop(c, i, errno);
    return -1;
  }
  return 0;
}

/* Every slot busy and addresses left: the oldest attempt, once unanswered
 * for GIVE_WAY_MS (a slow path still gets that long), makes room for the
 * next address, so a name whose first addresses never answer still reaches
 * a later one before connect_timeout. Returns the freed slot, or -1 with the
 * timer set for when the oldest may give way. */
static int give_way(net_conn *c) {
  int old = 0;
  for (int i = 1; i < NET_MAX_ATTEMPTS; i++)
    if (c->att[i].since < c->att[old].since) old = i;
  if (net__now_ms() < c->att[old].since + GIVE_WAY_MS) {
    c->next_attempt_at = c->att[old].since + GIVE_WAY_MS;
    net__conn_set_timer(c);
    return -1;
  }
  attempt_drop(c, old, ETIMEDOUT);
  return old;
}

/* Starts the next address of the plan; returns when one is in flight, has
 * connected, or none is left. While addresses are left the delay timer
 * stays armed: it starts the next one whether or not a slot is free. */
static void start_attempt(net_conn *c) {
  while (c->next_try < c->norder) {
    int i = 0;
    if (c->natt == NET_MAX_ATTEMPTS) {
      if ((i = give_way(c)) < 0) return;
    } else {
      while (c->att[i].fd != NET_BAD_SOCK) i++;   /* natt < NET_MAX_ATTEMPTS: a slot is free */
    }
    net_sockaddr sa = c->addr->sa[c->order[c->next_try++]];
    net__sa_set_port(&sa, c->port);
    int r = attempt_connect(c, i, &sa);
    if (r > 0) {
      attempt_won(c, i);
      return;
    }
    if (r < 0) continue;
    c->next_attempt_at = c->next_try < c->norder ? net__now_ms() + HE_DELAY_MS : 0;
    net__conn_set_timer(c);
    return;
  }
  c->next_attempt_at = 0;
  net__conn_set_timer(c);
}

/* A Unix server's backlog is full: as a TCP client waits for a busy server,
 * try again a moment later (10 ms doubling to 200 ms), until connect_timeout. */
static void unix_wait(net_conn *c) {
  net_sock_close(c->fd);
  c->fd = NET_BAD_SOCK;
  unsigned ms = c->unix_waits < 5 ? 10u << c->unix_waits++ : 200u;
  c->next_attempt_at = net__now_ms() + ms;
  net__conn_set_timer(c);
}

static void connect_unix(net_conn *c) {
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  snprintf(un.sun_path, sizeof un.sun_path, "%s", c->unix_path);
  c->next_attempt_at = 0;
  c->fd = net_sock_open(AF_UNIX, SOCK_STREAM);
  if (c->fd == NET_BAD_SOCK) {
    net__conn_fail_sys(c, "connect", errno);
    return;
  }
  /* a Unix socket connects at once or fails: EAGAIN means its backlog is full */
  if (net_sock_connect(c->fd, &un, sizeof un) == 0 || errno == EINPROGRESS) {
    c->reading = true;
    net__conn_connected(c);
    return;
  }
  int e = errno;
  if (e == EAGAIN) {
    unix_wait(c);
  } else if (e == ENOENT) {   /* no socket file: nobody listens there, as at a closed port */
    char where[NET_WHERE_MAX];
    net_error err;
    net__conn_where(c, where, sizeof where);
    net__seterr_sys(&err, "connect", where, e);
    net__conn_fail(c, NET_E_REFUSED, err.msg);
  } else {
    net__conn_fail_sys(c, "connect", e);
  }
}

void net__conn_next_attempt(net_conn *c) {
  if (c->unix_path) connect_unix(c);
  else start_attempt(c);
}

static bool alloc_attempts(net_conn *c) {
  if (c->att) return true;
  attempt_block *b = net__calloc(1, sizeof *b);
  if (!b) return false;
  c->att = b->att;
  for (int i = 0; i < NET_MAX_ATTEMPTS; i++) c->att[i].fd = NET_BAD_SOCK;
  return true;
}

void net__conn_start(net_conn *c) {
  if (c->connect_timeout_ms && !c->connect_deadline)
    c->connect_deadline = net__now_ms() + (uint64_t)c->connect_timeout_ms;
  c->io = IO_CONNECTING;
  if (c->unix_path) {
    connect_unix(c);
    return;
  }
  int st = atomic_load_explicit(&c->addr->state, memory_order_acquire);   /* pairs with publish */
  if (st == NET_WAITING) {
    c->io = IO_RESOLVING;
    net__io_await_resolve(&c->obj);
    net__conn_set_timer(c);
    return;
  }
  if (st == NET_FAILURE) {
    char msg[sizeof c->proxy->where + NET_ERRMSG_MAX + 16];
    /* the proxy's own name did not resolve: say it was the proxy's */
    if (c->proxy) snprintf(msg, sizeof msg, "connect proxy %s: %s", c->proxy->where, c->addr->err.msg);
    net__conn_fail(c, c->addr->err.code, c->proxy ? msg : c->addr->err.msg);
    return;
  }
  plan_attempts(c);
  if (!alloc_attempts(c)) {
    net__conn_fail(c, NET_E_LIMIT, "connect: out of memory");
    return;
  }
  start_attempt(c);
  if (c->io == IO_CONNECTING && c->natt == 0) connect_failed(c);
}
