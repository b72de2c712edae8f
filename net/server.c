/* server.c: listening sockets. The owner binds and listens (quick syscalls,
 * so errors come back at once) and takes connections off a lock-free queue;
 * the I/O thread accepts and fills that queue. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "conn.h"
#include "ws.h"
#include "poller.h"
#include "wake.h"

#define DEFAULT_BACKLOG 128
#define QUEUE_MIN 64
#define HANDSHAKES_MIN 512    /* websocket upgrades in progress, at least (a 1024-fd limit is common) */

struct net_server {
  net_io obj;
  atomic_int state;                 /* NET_SUCCESS listening, NET_FAILURE failed */
  net_error err;
  atomic_int closing;               /* the owner closed it */
  atomic_int fd_claimed;            /* who touches fd first, owner's close or a failed TLS load */
  /* accepted connections (or websockets): the I/O thread produces, the owner consumes */
  void **q;
  size_t qcap;                      /* power of two */
  _Alignas(NET_CACHELINE) atomic_size_t q_tail;
  _Alignas(NET_CACHELINE) atomic_size_t q_head;
  atomic_int q_paused;              /* the I/O thread stopped accepting: queue full */
  atomic_int limited;               /* accept ran out of descriptors: backing off */
  net_error limit_err;              /* why, written before limited is released */
  /* set before the I/O thread sees it, then read-only */
  net_sockaddr local;
  char *unix_path;
  uint64_t node;                    /* our Unix socket file (os.h) */
  net_conn_opts conn;
  net_tls_cfg *tls;
  net_tls_conf *tls_conf;           /* I/O thread: loaded on the file lane before accepting */
  ws_conf *ws;                      /* a websocket server's upgrade rules, else NULL */
  /* I/O thread only */
  net_sock fd;
  int poll_mask;
  int backoff_ms;                   /* while out of descriptors: the next wait */
  /* websockets still upgrading: a cap of their own (hcap, the oldest goes
   * past it), so idle connections never shut the listener; a place in the
   * queue is held only once an upgrade is answered (held) */
  size_t handshakes, hcap, held;
  net_ws *hs_oldest, *hs_newest;
  bool stopped;
};

#define SERVER(io_ptr) ((net_server *)(io_ptr))

static void server_destroy(net_io *io) {
  net_server *s = SERVER(io);
  net__tls_cfg_free(s->tls);
  net__tls_conf_unref(s->tls_conf);
  net__free(s->unix_path);
  if (s->ws) net__ws_conf_free(s->ws);
  net__free(s->ws);
  net__free(s->q);
  net__free_aligned(s);
  atomic_fetch_sub(&net__live_servers, 1);
}

static void server_kicked(net_io *io);
static void server_event(net_io *io, int mask);
static void server_timer(net_io *io, uint64_t now);
static const net_io_ops server_ops = {server_kicked, server_event, server_timer, server_destroy};

/* ---- owner side -------------------------------------------------------- */

/* Whether a socket is bound at the socket file un names. A datagram
 * socket's connect finds the socket bound to the file without connecting to
 * it: a stream server there answers EPROTOTYPE, nobody ECONNREFUSED, and the
 * server sees nothing. Windows has no datagram Unix sockets: there a
 * non-blocking stream connect probes, which a live server sees as a
 * connection that closes at once. */
static bool unix_live(const struct sockaddr_un *un) {
  net_sock probe = net_sock_open(AF_UNIX, SOCK_DGRAM);
  bool stream = probe == NET_BAD_SOCK;
  if (stream) probe = net_sock_open(AF_UNIX, SOCK_STREAM);
  if (probe == NET_BAD_SOCK) return false;
  int r = net_sock_connect(probe, un, sizeof *un), e = errno;
  net_sock_close(probe);
  if (r == 0) return true;
  if (stream) return e == EAGAIN || e == EINPROGRESS;   /* a full backlog: live */
  return e != ECONNREFUSED && e != ENOENT;   /* anything else: leave the file alone */
}

static int bind_unix(net_server *s, const char *path, int backlog, const char **err) {
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  if (!*path || strlen(path) >= sizeof un.sun_path) return *err = "a Unix socket path must be 1..107 bytes", -1;
  snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
  net_file_info st;
  if (net__file_stat(path, false, &st) == 0) {
    if (st.kind != NET_FILE_SOCK) return errno = EEXIST, -1;   /* never delete a user's file */
    /* A socket file nobody is bound to is left over from a crash: replace
     * it. One a socket is bound to is in use. */
    if (unix_live(&un)) return errno = EADDRINUSE, -1;
    net__file_unlink(path);
  }
  if (net_sock_bind(s->fd, &un, sizeof un) < 0 || net_sock_listen(s->fd, backlog) < 0) return -1;
  if (net__file_stat(path, false, &st) == 0) s->node = st.node;   /* so close() removes only our own file */
  return 0;
}

static int bind_ip(net_server *s, const net_addr *a, uint16_t port, const net_server_opts *o) {
  net_sockaddr sa;
  memset(&sa, 0, sizeof sa);
  if (a) sa = a->sa[0];
  else sa.in6 = (struct sockaddr_in6){.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
  s->fd = net_sock_open(sa.sa.sa_family, SOCK_STREAM);
  if (s->fd == NET_BAD_SOCK && !a) {   /* no IPv6 here: IPv4 only */
    sa.in4 = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
    s->fd = net_sock_open(AF_INET, SOCK_STREAM);
  }
  if (s->fd == NET_BAD_SOCK) return -1;
  int one = 1, zero = 0;
  if (!o->no_reuseaddr) net_sock_setopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  /* "::" or none: dual stack, IPv4 clients too (Windows' default is IPv6 only) */
  if (sa.sa.sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&sa.in6.sin6_addr))
    net_sock_setopt(s->fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  net__sa_set_port(&sa, port);
  if (net_sock_bind(s->fd, &sa.sa, net__sa_len(&sa)) < 0 ||
      net_sock_listen(s->fd, o->backlog > 0 ? o->backlog : DEFAULT_BACKLOG) < 0)
    return -1;
  socklen_t len = sizeof s->local;
  return net_sock_getsockname(s->fd, &s->local.sa, &len);
}

static net_server *server_new(const net_server_opts *o, const char **err) {
  net_server *s = net__aligned(sizeof *s);
  if (!s) return *err = "out of memory", NULL;
  memset(s, 0, sizeof *s);
  net__io_init(&s->obj, &server_ops, 2);   /* the owner's and the I/O thread's */
  atomic_init(&s->state, NET_SUCCESS);
  s->fd = NET_BAD_SOCK;
  s->conn = o->conn;
  s->conn.tls = NULL;
  int backlog = o->backlog > 0 ? o->backlog : DEFAULT_BACKLOG;
  for (s->qcap = QUEUE_MIN; s->qcap < (size_t)backlog; s->qcap *= 2) {
  }
  s->q = net__calloc(s->qcap, sizeof *s->q);
  s->hcap = s->qcap > HANDSHAKES_MIN ? s->qcap : HANDSHAKES_MIN;
  atomic_fetch_add(&net__live_servers, 1);
  if (!s->q || (o->websocket && !(s->ws = net__calloc(1, sizeof *s->ws)))) {
    server_destroy(&s->obj);
    return *err = "out of memory", NULL;
  }
  if (o->websocket && !net__ws_conf_server(s->ws, o->websocket, err)) {
    server_destroy(&s->obj);
    return NULL;
  }
  return s;
}

/* Owner thread; the caller copies the text before its next call. */
static const char *listen_error(const net_server_opts *o, const net_addr *a, uint16_t port, int e) {
  static _Thread_local char msg[512];
  char where[NET_IP_MAX + 120], buf[128];
  if (o->unix_path) {
    snprintf(where, sizeof where, "unix:%s", o->unix_path);
  } else if (a) {
    net_sockaddr sa = a->sa[0];
    net__sa_set_port(&sa, port);
    net__sa_str(&sa, where, sizeof where, true);
  } else {
    snprintf(where, sizeof where, "*:%u", (unsigned)port);
  }
  snprintf(msg, sizeof msg, "listen %s: %s", where,
           e == EEXIST ? "a file that is not a socket is in the way" : net__errstr(e, buf, sizeof buf));
  return msg;
}

/* The options are checked here; the certificate and key are read on the
 * file lane, never on the caller's thread (tls_ready). */
static bool load_tls(net_server *s, const net_tls_opts *o, const char **err, net_err *code) {
  return (s->tls = net__tls_cfg_new(o, "", true, err, code)) != NULL;
}

net_server *net_server_open(net_addr *a, uint16_t port, const net_server_opts *o,
                            const char **err, net_err *code) {
  static const net_server_opts defaults;
  net_err ignored;
  if (!code) code = &ignored;   /* as every opener takes it */
  if (!o) o = &defaults;
  *code = NET_E_INVALID;
  if (a && (atomic_load_explicit(&a->state, memory_order_acquire) != NET_SUCCESS || a->count == 0))
    return *err = "the address is not resolved", NULL;
  net_server *s = server_new(o, err);
  if (!s) return *code = strcmp(*err, "out of memory") ? NET_E_INVALID : NET_E_LIMIT, NULL;
  if (o->tls && !load_tls(s, o->tls, err, code)) {
    server_destroy(&s->obj);
    return NULL;
  }
  if (o->unix_path && !(s->unix_path = net__strdup(o->unix_path))) {
    server_destroy(&s->obj);
    return *err = "out of memory", *code = NET_E_LIMIT, NULL;
  }
  int r;
  errno = 0;
  if (o->unix_path) {
    s->fd = net_sock_open(AF_UNIX, SOCK_STREAM);
    r = s->fd == NET_BAD_SOCK ? -1 : bind_unix(s, o->unix_path, o->backlog > 0 ? o->backlog : DEFAULT_BACKLOG, err);
  } else {
    r = bind_ip(s, a, port, o);
  }
  int e = errno;
  if (r == 0 && !net__engine_acquire()) {
    r = -1;
    e = 0;
    *err = net__engine_refusal();
    *code = NET_E_LIMIT;
  } else if (r < 0 && e) {
    *err = listen_error(o, a, port, e);
    *code = e == EADDRINUSE || e == EEXIST ? NET_E_INVALID : net__errno_code(e);
  }
  if (r < 0) {
    if (s->fd != NET_BAD_SOCK) net_sock_close(s->fd);
    server_destroy(&s->obj);
    return NULL;
  }
  net__engine_kick(&s->obj);
  return s;
}

static bool queue_empty(net_server *s) {
  /* acquire: pairs with the release in queue_push; the connection is complete */
  return atomic_load_explicit(&s->q_head, memory_order_relaxed) ==
         atomic_load_explicit(&s->q_tail, memory_order_acquire);
}

net_result net_server_status(net_server *s) {
  net_result r;
  if (net__engine_inherited(&r)) return r;
  net__host_polled();
  int st = atomic_load_explicit(&s->state, memory_order_acquire);
  if (queue_empty(s)) net__io_seen(&s->obj);
  if (st == NET_FAILURE) return (net_result){NET_FAILURE, s->err.code, s->err.msg};
  return (net_result){NET_SUCCESS, NET_E_NONE, ""};
}

/* Why accept found nothing: the server's failure, running out of
 * descriptors (for now), or nothing yet. */
static net_result none_why(net_server *s) {
  if (atomic_load_explicit(&s->state, memory_order_acquire) == NET_FAILURE)
    return (net_result){NET_FAILURE, s->err.code, s->err.msg};
  /* acquire: pairs with the release of limited after limit_err is written */
  if (atomic_load_explicit(&s->limited, memory_order_acquire))
    return (net_result){NET_FAILURE, s->limit_err.code, s->limit_err.msg};
  return (net_result){NET_WAITING, NET_E_NONE, ""};
}

static void *take(net_server *s, net_result *why) {
  net_result r;
  if (net__engine_inherited(&r)) return why ? *why = r, NULL : NULL;
  net__host_polled();
  if (queue_empty(s)) {
    net__io_seen(&s->obj);
    if (why) *why = none_why(s);
    return NULL;
  }
  if (why) *why = (net_result){NET_SUCCESS, NET_E_NONE, ""};
  size_t head = atomic_load_explicit(&s->q_head, memory_order_relaxed);
  void *c = s->q[head & (s->qcap - 1)];
  /* release: the slot is free again for queue_push */
  atomic_store_explicit(&s->q_head, head + 1, memory_order_release);
  if (queue_empty(s)) net__io_seen(&s->obj);   /* nothing left to accept: no more nudges for it */
  /* seq_cst fence: pairs with the one in pause_accepting() (Dekker) */
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load_explicit(&s->q_paused, memory_order_relaxed) && atomic_exchange(&s->q_paused, 0))
    net__engine_kick(&s->obj);
  if (s->ws) net__ws_taken(c);   /* before a free below too: its close handshake reads */
  if (!net__engine_acquire()) {   /* the handle counts as a user, like an opened one */
    if (s->ws) net_ws_free(c);
    else net_conn_close(c);
    if (why) *why = (net_result){NET_FAILURE, NET_E_LIMIT, net__engine_refusal()};
    return NULL;
  }
  if (!s->ws) net__conn_taken(c);
  return c;
}

static net_result wrong_kind(net_server *s) {
  return (net_result){NET_FAILURE, NET_E_INVALID,
                      s->ws ? "a websocket server's accept gives websockets" : "not a websocket server"};
}

net_conn *net_server_accept(net_server *s, net_result *why) {
  if (s->ws) return why ? *why = wrong_kind(s), NULL : NULL;
  return take(s, why);
}

net_ws *net_server_accept_ws(net_server *s, net_result *why) {
  if (!s->ws) return why ? *why = wrong_kind(s), NULL : NULL;
  return take(s, why);
}

int net_server_is_ws(net_server *s) { return s->ws != NULL; }

int net_server_local(net_server *s, net_endpoint *out) {
  memset(out, 0, sizeof *out);
  if (s->unix_path) {
    snprintf(out->ip, sizeof out->ip, "%s", s->unix_path);
    return 1;
  }
  net__sa_endpoint(&s->local, out);
  return 1;
}

void net_server_close(net_server *s) {
  /* Stop listening now, so the port refuses new connections and the path is
   * free the moment close() returns; the I/O thread closes the fd later.
   * fd and the path are the owner's until the request below. */
  /* the I/O thread may have closed it for a failed TLS load: one of us claims it */
  if (!atomic_exchange(&s->fd_claimed, 1) && s->fd != NET_BAD_SOCK) {
    if (net__os_forked()) net_sock_close(s->fd);   /* the parent's socket: only this copy goes */
    else net_sock_shutdown(s->fd, SHUT_RDWR);
  }
  net_file_info st;
  if (s->unix_path && !net__os_forked() && net__file_stat(s->unix_path, false, &st) == 0 && st.node == s->node)
    net__file_unlink(s->unix_path);   /* our socket file, not one somebody put there since */
  net__io_disown(&s->obj);   /* nobody will accept now: what it publishes wakes no host */
  atomic_store(&s->closing, 1);
  net__engine_kick(&s->obj);
  net__io_unref(&s->obj);
  net__engine_release();
}

/* ---- I/O thread --------------------------------------------------------- */

static void server_fail(net_server *s, const char *op, int e) {
  char where[NET_IP_MAX + 120];
  if (s->unix_path) snprintf(where, sizeof where, "unix:%s", s->unix_path);
  else net__sa_str(&s->local, where, sizeof where, true);
  net__seterr_sys(&s->err, op, where, e);
  atomic_store_explicit(&s->state, NET_FAILURE, memory_order_release);
  net__engine_set_interest(s->fd, &s->poll_mask, 0, &s->obj);
  net__io_publish(&s->obj);
}

/* The TLS configuration, loaded on the file lane (the server is kicked when
 * it is in): true once there is one to hand accepted connections. A missing
 * or bad certificate fails the server with the loader's words. */
static bool tls_ready(net_server *s) {
  if (!s->tls || s->tls_conf) return true;
  bool pending;
  net_error e;
  if ((s->tls_conf = net__tls_conf_get(s->tls, &s->obj, &pending, &e))) return true;
  if (!pending) {
    net__seterr(&s->err, e.code, "tls: %s", e.msg);
    atomic_store_explicit(&s->state, NET_FAILURE, memory_order_release);
    /* never accepting: clients in the backlog are refused, not left waiting
     * (unless the owner is closing it already: then that is its to do) */
    if (!atomic_exchange(&s->fd_claimed, 1)) {
      net__engine_set_interest(s->fd, &s->poll_mask, 0, &s->obj);
      net_sock_close(s->fd);
      s->fd = NET_BAD_SOCK;
    }
    net__io_publish(&s->obj);
  }
  return false;
}

static void set_accepting(net_server *s, bool on) {
  if (net__engine_set_interest(s->fd, &s->poll_mask, on ? NET_POLL_IN : 0, &s->obj) < 0)
    server_fail(s, "poll", errno);
}

/* Queue places taken: by what the owner has yet to take, and held for
 * upgrades answered but not yet open. */
static size_t places_used(net_server *s) {
  return atomic_load(&s->q_tail) - atomic_load(&s->q_head) + s->held;
}

/* The queue is full: stop accepting (the kernel's backlog holds the rest)
 * unless the owner took one meanwhile. */
static void pause_accepting(net_server *s) {
  atomic_store(&s->q_paused, 1);
  /* seq_cst fence: pairs with the one in net_server_accept() */
  atomic_thread_fence(memory_order_seq_cst);
  if (places_used(s) < s->qcap && atomic_exchange(&s->q_paused, 0)) return;
  set_accepting(s, false);
}

static bool queue_push(net_server *s, void *c) {
  size_t tail = atomic_load_explicit(&s->q_tail, memory_order_relaxed);
  /* acquire: pairs with the owner's release of q_head; its slot is free */
  if (tail - atomic_load_explicit(&s->q_head, memory_order_acquire) >= s->qcap) return false;
  s->q[tail & (s->qcap - 1)] = c;
  atomic_store_explicit(&s->q_tail, tail + 1, memory_order_release);
  return true;
}

/* Out of descriptors (or memory): the listening socket stays readable, so
 * accepting again at once would spin. Stop, say why to accept(), and try
 * again after a wait that grows to a second. */
static void back_off(net_server *s, int e) {
  char where[NET_IP_MAX + 120], buf[128];
  s->backoff_ms = s->backoff_ms ? (s->backoff_ms * 2 > 1000 ? 1000 : s->backoff_ms * 2) : 50;
  if (s->unix_path) snprintf(where, sizeof where, "unix:%s", s->unix_path);
  else net__sa_str(&s->local, where, sizeof where, true);
  if (!atomic_load_explicit(&s->limited, memory_order_relaxed)) {
    net__seterr(&s->limit_err, NET_E_LIMIT, "accept %s: %s (connections wait in the backlog)", where,
                net__errstr(e, buf, sizeof buf));
    /* release: limit_err is complete before anyone sees limited */
    atomic_store_explicit(&s->limited, 1, memory_order_release);
    net__io_publish(&s->obj);
  }
  set_accepting(s, false);
  net__io_timer(&s->obj, net__now_ms() + (uint64_t)s->backoff_ms);
}

static void server_timer(net_io *io, uint64_t now) {
  (void)now;
  net_server *s = SERVER(io);
  if (!s->stopped && atomic_load(&s->state) != NET_FAILURE && !atomic_load(&s->q_paused))
    set_accepting(s, true);   /* the next event accepts, or backs off again */
}

/* ---- websocket servers: each connection upgrades before the owner sees it ---- */

static void hs_link(net_server *s, net_ws *w) {
  w->hs_older = s->hs_newest;
  if (s->hs_newest) s->hs_newest->hs_newer = w;
  else s->hs_oldest = w;
  s->hs_newest = w;
  s->handshakes++;
}

static void hs_unlink(net_server *s, net_ws *w) {
  if (w->hs_older) w->hs_older->hs_newer = w->hs_newer;
  else s->hs_oldest = w->hs_newer;
  if (w->hs_newer) w->hs_newer->hs_older = w->hs_older;
  else s->hs_newest = w->hs_older;
  w->hs_older = w->hs_newer = NULL;
  s->handshakes--;
  if (w->hs_held) s->held--;
  w->hs_held = false;
}

/* An upgrade is about to be answered with 101: a place in the queue waits for it. */
static bool ws_room(net_io *io, net_ws *w) {
  net_server *s = SERVER(io);
  if (s->stopped || places_used(s) >= s->qcap) return false;
  s->held++;
  w->hs_held = true;
  return true;
}

static bool ws_ready(net_io *io, net_ws *w) {
  net_server *s = SERVER(io);
  hs_unlink(s, w);
  /* as a queued connection: its messages wait in the kernel until accepted
     (held before it is in the queue, where the owner may take it at once) */
  net__conn_hold(w->c);
  if (s->stopped || !queue_push(s, w)) return false;   /* room was held for it */
  net__io_publish(&s->obj);
  return true;
}

static void ws_gone(net_io *io, net_ws *w) {
  net_server *s = SERVER(io);
  hs_unlink(s, w);
  if (!s->stopped && atomic_load(&s->q_paused) && atomic_exchange(&s->q_paused, 0)) set_accepting(s, true);
}

/* Past the cap the oldest upgrade goes: a client that upgrades at once gets
 * through however many idle connections arrived before it. */
static void upgrade(net_server *s, net_conn *c) {
  if (s->handshakes >= s->hcap) net__ws_shed(s->hs_oldest, "too many upgrades in progress");
  ws_acceptor acc = {&s->obj, ws_room, ws_ready, ws_gone};
  net_ws *w = net__ws_upgrade(c, s->ws, &acc);
  if (!w) {
    net__conn_abandon(c);
    return;
  }
  hs_link(s, w);
}

/* Errors of one pending connection, not of the listener: it went (reset
 * or aborted before it was taken, Windows' WSAECONNRESET among them), or
 * Linux passed its network error on; the next one is accepted. */
static bool accept_again(int e) {
  switch (e) {
    case EINTR: case ECONNABORTED: case ECONNRESET: case EPROTO: case ENETDOWN:
    case ENETUNREACH: case EHOSTUNREACH: case EOPNOTSUPP: case ENOPROTOOPT:
    case EPERM: case ETIMEDOUT: case EPROTONOSUPPORT:   /* one connection's: a firewall rule, its handshake */
#ifdef ESOCKTNOSUPPORT
    case ESOCKTNOSUPPORT:
#endif
#ifdef ENOSR
    case ENOSR:
#endif
#ifdef EHOSTDOWN
    case EHOSTDOWN:
#endif
#ifdef ENONET
    case ENONET:
#endif
      return true;
    default:
      return false;
  }
}

static void accept_some(net_server *s) {
  for (int n = 0; n < 64; n++) {   /* a bounded batch: other sockets get their turn */
    if (places_used(s) >= s->qcap) {
      pause_accepting(s);
      return;
    }
    net_sockaddr peer;
    memset(&peer, 0, sizeof peer);
    socklen_t len = sizeof peer;
    net_sock fd = net_sock_accept(s->fd, &peer.sa, &len);
    int e = fd == NET_BAD_SOCK ? errno : 0;
    if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
      if (s->hs_oldest) net__ws_shed(s->hs_oldest, "out of descriptors");   /* its descriptor, for the next try */
      back_off(s, e);
      return;
    }
    if (atomic_load_explicit(&s->limited, memory_order_relaxed)) {   /* descriptors again */
      s->backoff_ms = 0;
      atomic_store(&s->limited, 0);
    }
    if (fd == NET_BAD_SOCK) {
      if (accept_again(e)) continue;
      if (!net_sock_would_block(e)) server_fail(s, "accept", e);
      return;
    }
    net_conn *c = net__conn_adopt(fd, &peer, s->unix_path, &s->conn, s->tls, s->tls_conf, !s->ws);
    if (!c) {
      net_sock_close(fd);
      continue;
    }
    if (s->ws) {
      upgrade(s, c);
      continue;
    }
    net__conn_list(c);   /* the host's once accepted */
    if (!queue_push(s, c)) net__conn_abandon(c);   /* cannot happen: checked above */
    net__io_publish(&s->obj);
  }
}

static void server_stop(net_server *s) {
  net__io_seen(&s->obj);   /* published after the owner's close: nobody's news */
  if (s->fd != NET_BAD_SOCK) {
    net__engine_set_interest(s->fd, &s->poll_mask, 0, &s->obj);
    net_sock_close(s->fd);
    s->fd = NET_BAD_SOCK;
  }
  size_t head = atomic_load(&s->q_head), tail = atomic_load(&s->q_tail);
  for (; head != tail; head++) {
    void *c = s->q[head & (s->qcap - 1)];
    if (!s->ws) {
      net__conn_abandon(c);
      continue;
    }
    net_ws *w = c;
    if (w->c) net__conn_taken(w->c);   /* it reads the peer's close */
    net_ws_free(w);
  }
  atomic_store(&s->q_head, head);
  for (net_ws *w = s->hs_oldest, *next; w; w = next) {   /* no "busy, retry later" from a closed port */
    next = w->hs_newer;
    net__ws_shed(w, "the server closed");
  }
  net__io_retire(&s->obj);   /* the I/O thread's reference */
}

static void server_kicked(net_io *io) {
  net_server *s = SERVER(io);
  if (s->stopped) return;
  if (atomic_load(&s->closing)) {
    s->stopped = true;
    server_stop(s);
    return;
  }
  if (atomic_load(&s->state) != NET_FAILURE && tls_ready(s) && !atomic_load(&s->q_paused)) set_accepting(s, true);
}

static void server_event(net_io *io, int mask) {
  net_server *s = SERVER(io);
  if (s->fd == NET_BAD_SOCK || atomic_load(&s->state) == NET_FAILURE) return;
  if (mask & (NET_POLL_IN | NET_POLL_ERR)) accept_some(s);
}
