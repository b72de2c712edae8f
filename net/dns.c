/* dns.c: resolvers with their own nameservers (net_resolver_*), with c-ares
 * driven by the I/O thread: its sockets sit in the engine's poller and its
 * timeouts on per-lookup timers, so no thread waits on a silent server and a
 * lookup nobody wants any more is cancelled (its channel destroyed).
 * net_resolver_* run on owner threads; the hosts lane (resolver.c) hands
 * names it cannot answer to dns_miss; everything else is the I/O thread. */
#include <ares.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "alloc.h"
#include "dns.h"
#include "engine.h"
#include "os.h"
#include "poller.h"

#define DEFAULT_TIMEOUT_MS 2000
#define DEFAULT_TRIES 3
/* c-ares doubles each round's wait without bound (20 tries of 10 ms: 3 hours):
 * a lookup ends after this, or tries x timeout per nameserver when longer */
#define LOOKUP_MAX_MS 60000
#define MAX_LOOKUPS 256   /* per resolver, queued or running: past it, "limit" */

static atomic_int lookup_max_ms;   /* the tests' shorter bound (net_debug_lookup_max) */

void net_debug_lookup_max(int ms) { atomic_store(&lookup_max_ms, ms > 0 ? ms : 0); }

typedef struct lookup lookup;

struct net_resolver {
  net_io obj;                           /* kicked: new lookups, or an address let go */
  _Atomic(lookup *) incoming;           /* Treiber stack: the hosts lane pushes */
  atomic_int count;                     /* lookups queued or running */
  struct ares_addr_port_node servers[NET_RESOLVER_MAX_SERVERS];
  int timeout_ms, tries, nservers;
  uint64_t limit_ms;                    /* a whole lookup's time */
  char desc[NET_RESOLVER_MAX_SERVERS * (NET_IP_MAX + 10)];
  lookup *active;                       /* I/O thread only */
};

/* One c-ares socket in the poller; freed between poller batches. */
typedef struct dns_sock {
  void *link;                           /* net__engine_defer_free's */
  net_io obj;
  net_sock fd;                          /* NET_BAD_SOCK once c-ares closed it */
  int mask;
  lookup *lk;
  struct dns_sock *next;
} dns_sock;

/* One name being looked up: a channel of its own, so it can be cancelled. */
struct lookup {
  net_io obj;                           /* its timer */
  lookup *next;                         /* incoming, then active */
  net_resolver *r;
  net_addr *addr;                       /* one reference */
  ares_channel ch;
  dns_sock *socks;
  int status;                           /* c-ares' answer; -1 while none */
  bool oom;                             /* a socket could not be tracked */
  int no_socket;                        /* errno when out of descriptors for one */
  uint64_t deadline;                    /* now + r->limit_ms when it started */
  bool cut;                             /* ended at the deadline, c-ares still trying */
};

#define RESOLVER(io) ((net_resolver *)((char *)(io) - offsetof(net_resolver, obj)))
#define LOOKUP(io) ((lookup *)((char *)(io) - offsetof(lookup, obj)))
#define SOCK(io) ((dns_sock *)((char *)(io) - offsetof(dns_sock, obj)))

/* ---- nameservers ----------------------------------------------------------------- */

/* The last c in s[0, len), else NULL (memrchr is not everywhere). */
static const char *last_of(const char *s, char c, size_t len) {
  while (len--)
    if (s[len] == c) return s + len;
  return NULL;
}

bool net__dns_parse_server(const char *s, size_t len, net_sockaddr *out, const char **why) {
  unsigned long port = 53;
  size_t iplen = len;
  const char *colon = memchr(s, ':', len), *last = last_of(s, ':', len);
  if (len && s[0] == '[') {   /* [v6]:port */
    const char *close = memchr(s, ']', len);
    if (!close) return *why = "missing ']'", false;
    iplen = (size_t)(close - s) + 1;
    if (iplen < len && (s[iplen] != ':' || iplen + 1 == len)) return *why = "expected ':port' after ']'", false;
    last = iplen < len ? s + iplen : NULL;
  } else if (colon != last) {   /* a bare IPv6 address: no port */
    last = NULL;
  }
  if (last) {
    iplen = (size_t)(last - s);
    port = 0;
    for (const char *p = last + 1; p < s + len; p++) {
      if (*p < '0' || *p > '9' || port > 65535) return *why = "the port must be 1..65535", false;
      port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port < 1 || port > 65535 || last + 1 == s + len) return *why = "the port must be 1..65535", false;
  }
  if (!net__ip_parse(s, iplen, out)) return *why = "not an IP address (names cannot be nameservers)", false;
  if (out->sa.sa_family == AF_INET6 && out->in6.sin6_scope_id) return *why = "scoped IPv6 addresses are not supported", false;
  net__sa_set_port(out, (uint16_t)port);
  return true;
}

/* ---- c-ares' sockets: non-blocking, close-on-exec, never SIGPIPE ----------------------- */

static ares_socket_t sock_open(int domain, int type, int protocol, void *ud) {
  lookup *lk = ud;
  net_sock s = net_sock_open3(domain, type, protocol);
  /* c-ares would call every server failed: the failure is ours */
  if (s == NET_BAD_SOCK && net__errno_code(errno) == NET_E_LIMIT) lk->no_socket = errno;
  return s;
}

static int sock_close(ares_socket_t fd, void *ud) {
  (void)ud;
  net_sock_close(fd);
  return 0;
}

static int sock_connect(ares_socket_t fd, const struct sockaddr *sa, ares_socklen_t len, void *ud) {
  (void)ud;
  return net_sock_connect(fd, sa, len);
}

static ares_ssize_t sock_recvfrom(ares_socket_t fd, void *buf, size_t n, int flags, struct sockaddr *from,
                                  ares_socklen_t *fromlen, void *ud) {
  (void)ud;
  return recvfrom(fd, buf, n, flags, from, fromlen);
}

static ares_ssize_t sock_sendv(ares_socket_t fd, const struct iovec *iov, int n, void *ud) {
  (void)ud;
  net_iov v[16];
  if (n > 16) n = 16;   /* a short write: c-ares sends the rest later */
  for (int i = 0; i < n; i++) v[i] = NET_IOV(iov[i].iov_base, iov[i].iov_len);
  return net_sock_writev(fd, v, n, NULL, 0);
}

static const struct ares_socket_functions sock_funcs = {sock_open, sock_close, sock_connect, sock_recvfrom,
                                                         sock_sendv};

/* ---- a lookup (I/O thread) ------------------------------------------------------------ */

static void sock_event(net_io *io, int mask);
static void lookup_timer(net_io *io, uint64_t now);
static void lookup_destroy(net_io *io);
static void nothing_kicked(net_io *io) { (void)io; }
static const net_io_ops sock_ops = {nothing_kicked, sock_event, NULL, NULL};
static const net_io_ops lookup_ops = {nothing_kicked, NULL, lookup_timer, lookup_destroy};

static bool abandoned(const net_addr *a) { return atomic_load_explicit(&a->refs, memory_order_acquire) == 1; }

/* c-ares opened, changed or closed one of its sockets. */
static void sock_state(void *data, ares_socket_t fd, int readable, int writable) {
  lookup *lk = data;
  dns_sock **pp = &lk->socks, *s;
  while ((s = *pp) && s->fd != fd) pp = &s->next;
  int mask = (readable ? NET_POLL_IN : 0) | (writable ? NET_POLL_OUT : 0);
  if (!s && !mask) return;
  if (!s) {
    if (!(s = net__calloc(1, sizeof *s))) {
      lk->oom = true;   /* never polled: the lookup fails once c-ares returns */
      return;
    }
    net__io_init(&s->obj, &sock_ops, 1);
    s->fd = fd;
    s->lk = lk;
    s->next = lk->socks;
    lk->socks = s;
  }
  if (net__engine_set_interest(s->fd, &s->mask, mask, &s->obj) < 0) lk->oom = true;
  if (mask) return;
  *pp = s->next;   /* c-ares closes it next: events of this batch must find it dead */
  s->fd = NET_BAD_SOCK;
  net__engine_defer_free(s);
}

static const char *why(const lookup *lk, char *buf, size_t len, const net_resolver *r) {
  switch (lk->status) {
    case ARES_ENOTFOUND: return "no such name";
    case ARES_ENODATA: return "no address for this name";
    case ARES_ESERVFAIL: return "server failure (SERVFAIL)";
    case ARES_EREFUSED: return "query refused (REFUSED)";
    /* c-ares gives this one for SERVFAIL and REFUSED answers too */
    case ARES_ECONNREFUSED: return "every nameserver refused or failed (unreachable, SERVFAIL or REFUSED)";
    case ARES_ETIMEOUT:
      if (lk->cut)
        snprintf(buf, len, "no answer in %llu ms (%d tries, %d ms timeout)", (unsigned long long)r->limit_ms,
                 r->tries, r->timeout_ms);
      else
        snprintf(buf, len, "no answer (%d tries, %d ms timeout)", r->tries, r->timeout_ms);
      return buf;
    default: return ares_strerror(lk->status);
  }
}

/* "resolve HOST via SERVERS: TEXT" with the reason whole: past the message's
 * size a list of servers becomes their count, and then the name is cut. */
static void lookup_error(net_error *e, net_err code, const char *host, const net_resolver *r, const char *text) {
  char count[24];
  const char *via = r->desc;
  size_t fixed = sizeof "resolve  via : " - 1 + strlen(text), hlen = strlen(host);
  if (fixed + hlen + strlen(via) >= NET_ERRMSG_MAX && r->nservers > 1) {
    snprintf(count, sizeof count, "%d nameservers", r->nservers);
    via = count;
  }
  size_t room = NET_ERRMSG_MAX - 1 > fixed + strlen(via) ? NET_ERRMSG_MAX - 1 - fixed - strlen(via) : 0;
  if (hlen <= room) net__seterr(e, code, "resolve %s via %s: %s", host, via, text);
  else net__seterr(e, code, "resolve %.*s... via %s: %s", (int)(room > 3 ? room - 3 : 0), host, via, text);
}

/* The lookup's end: publish, release, retire. Never inside a c-ares callback. */
static void finish(lookup *lk, const char *cancelled) {
  net_resolver *r = lk->r;
  net_addr *a = lk->addr;
  if (lk->ch) ares_destroy(lk->ch);   /* closes its sockets through sock_state */
  lk->ch = NULL;
  if (a->count == 0) {
    char buf[96];
    const char *text = cancelled ? cancelled : lk->oom ? "out of memory" : why(lk, buf, sizeof buf, r);
    net_err code = lk->oom ? NET_E_LIMIT : lk->status == ARES_ETIMEOUT ? NET_E_TIMEOUT : NET_E_DNS;
    /* only when no server could be asked: an answer from another one (no such name) stands */
    if (!cancelled && !lk->oom && lk->no_socket && lk->status == ARES_ECONNREFUSED) {
      char e[64];
      snprintf(buf, sizeof buf, "no socket to ask with: %s", net__errstr(lk->no_socket, e, sizeof e));
      text = buf, code = NET_E_LIMIT;
    }
    lookup_error(&a->err, code, a->host, r, text);
  }
  for (lookup **pp = &r->active; *pp; pp = &(*pp)->next)
    if (*pp == lk) {
      *pp = lk->next;
      break;
    }
  atomic_fetch_sub(&r->count, 1);
  net__addr_publish(a);
  lk->addr = NULL;
  net__io_retire(&lk->obj);
  net__engine_background_done();   /* connections awaiting it go on */
  net_addr_unref(a);   /* last: it may hold the last reference to r */
}

static void answered(void *arg, int status, int timeouts, struct ares_addrinfo *res) {
  lookup *lk = arg;
  (void)timeouts;
  if (status == ARES_EDESTRUCTION) return;   /* finish() is destroying the channel */
  lk->status = status;
  /* IPv6 first, as RFC 6724 sorts for most hosts: Happy Eyeballs interleaves from there */
  for (int v6 = 1; res && lk->addr && v6 >= 0; v6--)
    for (struct ares_addrinfo_node *n = res->nodes; n; n = n->ai_next)
      if ((n->ai_family == AF_INET6) == v6) net__addr_add(lk->addr, n->ai_addr, n->ai_addrlen);
  if (res) ares_freeaddrinfo(res);
}

/* After c-ares ran: done, or wait for its next timeout. */
static void settle(lookup *lk) {
  if (lk->status >= 0 || lk->oom) {
    finish(lk, NULL);
    return;
  }
  struct timeval tv;
  if (!ares_timeout(lk->ch, NULL, &tv)) {   /* nothing pending and no answer: cannot happen */
    lk->status = ARES_ENOTFOUND;
    finish(lk, NULL);
    return;
  }
  uint64_t at = net__now_ms() + (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000 + 1;
  net__io_timer(&lk->obj, at < lk->deadline ? at : lk->deadline);
}

static void sock_event(net_io *io, int mask) {
  dns_sock *s = SOCK(io);
  if (s->fd == NET_BAD_SOCK) return;   /* closed earlier in this batch */
  lookup *lk = s->lk;
  ares_socket_t fd = s->fd;
  ares_process_fd(lk->ch, mask & (NET_POLL_IN | NET_POLL_ERR) ? fd : ARES_SOCKET_BAD,
                  mask & (NET_POLL_OUT | NET_POLL_ERR) ? fd : ARES_SOCKET_BAD);
  settle(lk);
}

static void lookup_timer(net_io *io, uint64_t now) {
  lookup *lk = LOOKUP(io);
  if (!lk->ch) return;
  if (now >= lk->deadline) {
    lk->status = ARES_ETIMEOUT;
    lk->cut = true;
    finish(lk, NULL);
    return;
  }
  ares_process_fd(lk->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);   /* timeouts: retry or give up */
  settle(lk);
}

static void lookup_destroy(net_io *io) { net__free(LOOKUP(io)); }

/* A channel that asks only r's servers and reads no system file. */
static int new_channel(net_resolver *r, lookup *lk) {
  struct ares_options o;
  memset(&o, 0, sizeof o);
  char lookups[] = "b";   /* DNS only: the hosts lane has read the hosts file */
  /* NOALIASES: else ares_getaddrinfo reads $HOSTALIASES (a file, maybe a
   * FIFO) on the I/O thread for a dotless name, and asks for the alias */
  o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
  o.timeout = r->timeout_ms;
  o.tries = r->tries;
  o.ndots = 1;
  o.lookups = lookups;
  o.sock_state_cb = sock_state;
  o.sock_state_cb_data = lk;
  /* everything set, so c-ares has no reason to read resolv.conf; NOROTATE:
   * the servers are asked in the caller's order, whatever RES_OPTIONS says */
  int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_NDOTS | ARES_OPT_LOOKUPS |
             ARES_OPT_SOCK_STATE_CB | ARES_OPT_SERVERS | ARES_OPT_DOMAINS | ARES_OPT_SORTLIST | ARES_OPT_NOROTATE;
  int rc = ares_init_options(&lk->ch, &o, mask);
  if (rc != ARES_SUCCESS) return rc;
  ares_set_socket_functions(lk->ch, &sock_funcs, lk);
  return ares_set_servers_ports(lk->ch, r->servers);
}

static void start(net_resolver *r, lookup *lk) {
  lk->next = r->active;
  r->active = lk;
  if (abandoned(lk->addr)) {
    finish(lk, "cancelled");
    return;
  }
  lk->deadline = net__now_ms() + r->limit_ms;
  int rc = new_channel(r, lk);
  if (rc != ARES_SUCCESS) {
    lk->status = rc;
    lk->oom = rc == ARES_ENOMEM;
    finish(lk, NULL);
    return;
  }
  struct ares_addrinfo_hints hints = {.ai_flags = ARES_AI_NOSORT, .ai_family = AF_UNSPEC};
  ares_getaddrinfo(lk->ch, lk->addr->host, NULL, &hints, answered, lk);   /* may answer at once */
  settle(lk);
}

/* New lookups from the hosts lane, and addresses let go. */
static void resolver_kicked(net_io *io) {
  net_resolver *r = RESOLVER(io);
  /* acquire: pairs with the release in dns_miss */
  lookup *in = atomic_exchange_explicit(&r->incoming, NULL, memory_order_acquire), *fifo = NULL;
  while (in) {   /* the stack is newest first */
    lookup *next = in->next;
    in->next = fifo;
    fifo = in;
    in = next;
  }
  while (fifo) {
    lookup *next = fifo->next;
    start(r, fifo);
    fifo = next;
  }
  for (lookup *lk = r->active, *next; lk; lk = next) {
    next = lk->next;
    if (abandoned(lk->addr)) finish(lk, "cancelled");
  }
}

static void resolver_destroy(net_io *io) { net__free(RESOLVER(io)); }
static const net_io_ops resolver_ops = {resolver_kicked, NULL, NULL, resolver_destroy};

/* ---- the hosts lane's hand-off (a helper thread) ------------------------------------- */

static void dns_miss(net_addr *a) {
  net_resolver *r = RESOLVER(a->canceller);
  lookup *lk = NULL;
  bool full = atomic_fetch_add(&r->count, 1) >= MAX_LOOKUPS;
  if (full || !(lk = net__calloc(1, sizeof *lk))) {
    atomic_fetch_sub(&r->count, 1);
    lookup_error(&a->err, NET_E_LIMIT, a->host, r, full ? "too many lookups in progress" : "out of memory");
    net__addr_publish(a);
    net_addr_unref(a);
    net__engine_background_done();
    return;
  }
  net__io_init(&lk->obj, &lookup_ops, 1);
  lk->r = r;
  lk->addr = a;   /* the job's reference */
  lk->status = -1;
  /* once pushed, the lookup may finish and drop the last reference to r
   * before we kick: hold one of our own until then */
  net__io_ref(&r->obj);
  lookup *top = atomic_load_explicit(&r->incoming, memory_order_relaxed);
  do lk->next = top;
  /* release: the lookup is complete before the I/O thread takes it */
  while (!atomic_compare_exchange_weak_explicit(&r->incoming, &top, lk, memory_order_release, memory_order_relaxed));
  net__engine_kick(&r->obj);
  net__io_unref(&r->obj);
}

/* ---- owner API ------------------------------------------------------------------------- */

static bool library_init(void *unused) {
  (void)unused;
  return ares_library_init(ARES_LIB_INIT_ALL) == ARES_SUCCESS;
}

static const char *add_server(net_resolver *r, int i, const char *s) {
  static _Thread_local char msg[NET_ERRMSG_MAX];
  net_sockaddr sa;
  const char *why = NULL;
  size_t len = strlen(s);
  if (!net__dns_parse_server(s, len, &sa, &why)) {
    snprintf(msg, sizeof msg, "nameserver '%.80s': %s", s, why);
    return msg;
  }
  struct ares_addr_port_node *n = &r->servers[i];
  n->family = sa.sa.sa_family;
  if (n->family == AF_INET) memcpy(&n->addr.addr4, &sa.in4.sin_addr, sizeof n->addr.addr4);
  else memcpy(&n->addr.addr6, &sa.in6.sin6_addr, sizeof n->addr.addr6);
  n->udp_port = n->tcp_port = net__sa_port(&sa);
  n->next = NULL;
  if (i > 0) r->servers[i - 1].next = n;
  size_t at = strlen(r->desc);
  if (i > 0) at += (size_t)snprintf(r->desc + at, sizeof r->desc - at, ", ");
  net__sa_str(&sa, r->desc + at, sizeof r->desc - at, true);
  return NULL;
}

net_resolver *net_resolver_new(const net_resolver_opts *o, const char **err, net_err *code) {
  static atomic_int once;
  net_err ignored;
  if (!code) code = &ignored;
  *code = NET_E_INVALID;
  if (!o || o->count < 1 || o->count > NET_RESOLVER_MAX_SERVERS || !o->nameservers)
    return *err = "1..8 nameservers are required", NULL;
  if (o->timeout_ms < 0 || o->tries < 0) return *err = "timeout and tries must not be negative", NULL;
  *code = NET_E_LIMIT;
  if (!net__once(&once, library_init, NULL)) return *err = "cannot initialise c-ares", NULL;
  net_resolver *r = net__calloc(1, sizeof *r);
  if (!r) return *err = "out of memory", NULL;
  net__io_init(&r->obj, &resolver_ops, 1);
  r->timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
  r->tries = o->tries ? o->tries : DEFAULT_TRIES;
  r->nservers = o->count;
  int test = atomic_load(&lookup_max_ms);
  uint64_t floor = test > 0 ? (uint64_t)test : LOOKUP_MAX_MS;
  r->limit_ms = (uint64_t)r->timeout_ms * (uint64_t)r->tries * (uint64_t)r->nservers;
  if (r->limit_ms < floor) r->limit_ms = floor;
  for (int i = 0; i < o->count; i++) {
    if (!o->nameservers[i] || (*err = add_server(r, i, o->nameservers[i]))) {
      if (!o->nameservers[i]) *err = "a nameserver is missing";
      net__free(r);
      *code = NET_E_INVALID;
      return NULL;
    }
  }
  if (!net__engine_acquire()) {
    net__free(r);
    return *err = net__engine_refusal(), NULL;
  }
  return r;
}

net_addr *net_resolver_resolve(net_resolver *r, const char *host, size_t len, const char **err, net_err *code) {
  return net__resolve_via(host, len, dns_miss, &r->obj, err, code);
}

void net_resolver_describe(net_resolver *r, char *buf, size_t len) { snprintf(buf, len, "%s", r->desc); }

void net_resolver_free(net_resolver *r) {
  if (r) net__io_unref(&r->obj);
}
