/* conn.c: the owner API of stream connections (net_conn_*): opening,
 * status, and the data path over the rings. Owner thread; it touches only
 * rings and atomics and hands everything else to the I/O thread by a kick. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "conn.h"
#include "wake.h"

/* ---- opening ---------------------------------------------------------------- */

/* Common tail of net_tcp_open and net_unix_open: hands c to the I/O thread. */
static net_conn *conn_start(net_conn *c, const net_conn_opts *o, const char *host,
                            const char **err, net_err *code) {
  if (o && o->tls && !(c->tls_cfg = net__tls_cfg_new(o->tls, host, false, err, code))) {
    net__conn_destroy(c);
    return NULL;
  }
  if (!net__engine_acquire()) {
    net__conn_destroy(c);
    *err = net__engine_refusal();
    *code = NET_E_LIMIT;
    return NULL;
  }
  if (!c->link) net__conn_list(c);   /* a host's: the exit waits for what it wrote */
  net__engine_kick(&c->obj);
  return c;
}

static net_addr *lookup(net_resolver *r, const char *host, size_t len, const char **err, net_err *code) {
  return r ? net_resolver_resolve(r, host, len, err, code) : net_resolve(host, len, err, code);
}

/* The target as the proxy is to get it: a name, or an IP literal without
 * brackets. It goes into the proxy's request as it is, so nothing else
 * (a line break would add headers to a CONNECT). */
static bool set_target(net_proxy *p, const char *host, size_t len, uint16_t port, char *why, size_t wl) {
  char name_why[NET_PROXY_WHY_MAX - 48];   /* room for the words before it */
  net_sockaddr sa;
  if (!net__ip_parse(host, len, &sa) && !net__url_check_host(host, len, name_why, sizeof name_why)) {
    snprintf(why, wl, "the target is no host name or IP address: %s", name_why);
    return false;
  }
  if (len >= 2 && host[0] == '[' && host[len - 1] == ']') host++, len -= 2;
  memcpy(p->target, host, len);
  p->target[len] = '\0';
  p->target_port = port;
  return true;
}

/* The proxy's URL and the target into a new net_proxy; phost and pport
 * get the proxy's host to resolve. */
static net_proxy *proxy_new(const net_conn_opts *o, const char *host, size_t len, uint16_t port, char *phost,
                            uint16_t *pport, const char **err, net_err *code) {
  static _Thread_local char why[NET_PROXY_WHY_MAX];
  net_proxy *p = net__malloc(sizeof *p);
  *code = NET_E_LIMIT;
  if (!p) return *err = "out of memory", NULL;
  *code = NET_E_INVALID;
  if (!net__proxy_parse(o->proxy, p, phost, pport, why, sizeof why)) *err = why;
  else if (!set_target(p, host, len, port, why, sizeof why)) *err = why;
  else return p;
  net__free_secret(p, sizeof *p);   /* its credentials */
  return NULL;
}

/* A connection to the proxy of o, which will tunnel to host:port. target:
 * the target's address when the caller has one (socks5:// uses it). */
static net_conn *open_proxied(net_resolver *r, const char *host, size_t len, net_addr *target, uint16_t port,
                              const net_conn_opts *o, net_io *link, const char **err, net_err *code) {
  char phost[NET_URL_HOST_MAX + 1];
  uint16_t pport;
  net_proxy *p = proxy_new(o, host, len, port, phost, &pport, err, code);
  if (!p) return NULL;
  net_addr *pa = lookup(r, phost, strlen(phost), err, code);
  if (pa && p->kind == NET_PROXY_SOCKS5)
    p->target_addr = target ? net_addr_ref(target) : lookup(r, p->target, strlen(p->target), err, code);
  net_conn *c = pa && (p->kind != NET_PROXY_SOCKS5 || p->target_addr) ? net__conn_new(o, 2) : NULL;
  if (!c) {
    if (pa && (p->kind != NET_PROXY_SOCKS5 || p->target_addr)) *err = "out of memory", *code = NET_E_LIMIT;
    if (p->target_addr) net_addr_unref(p->target_addr);
    if (pa) net_addr_unref(pa);
    net__free_secret(p, sizeof *p);
    return NULL;
  }
  c->addr = pa;
  c->port = pport;
  c->proxy = p;
  c->link = link;   /* before the first kick publishes the object */
  return conn_start(c, o, p->target, err, code);
}

int net_proxy_check(const char *url, char *why, size_t len) {
  static _Thread_local net_proxy p;
  char host[NET_URL_HOST_MAX + 1];
  uint16_t port;
  if (!url) return snprintf(why, len, "no proxy URL"), 0;
  int ok = net__proxy_parse(url, &p, host, &port, why, len);
  net__wipe(&p, sizeof p);
  return ok;
}

net_conn *net_tcp_open_host(net_resolver *r, const char *host, size_t len, uint16_t port,
                            const net_conn_opts *o, const char **err, net_err *code) {
  net_err ignored;
  if (!code) code = &ignored;
  *code = NET_E_INVALID;
  if (!host || port == 0) return *err = "a host and a port 1..65535 are required", NULL;
  if (o && o->proxy) return open_proxied(r, host, len, NULL, port, o, NULL, err, code);
  net_addr *a = lookup(r, host, len, err, code);
  if (!a) return NULL;
  net_conn *c = net_tcp_open(a, port, o, err, code);
  net_addr_unref(a);   /* the connection holds its own reference */
  return c;
}

net_conn *net__conn_open_linked(net_addr *a, uint16_t port, const net_conn_opts *o, net_io *link,
                                const char **err, net_err *code) {
  net_err ignored;
  if (!code) code = &ignored;
  *code = NET_E_INVALID;
  if (!a || port == 0) return *err = "an address and a port 1..65535 are required", NULL;
  if (o && o->proxy) return open_proxied(NULL, a->host, strlen(a->host), a, port, o, link, err, code);
  *code = NET_E_LIMIT;
  net_conn *c = net__conn_new(o, 2);   /* the owner's and the I/O thread's */
  if (!c) return *err = "out of memory", NULL;
  c->addr = net_addr_ref(a);
  c->port = port;
  c->link = link;   /* before the first kick publishes the object */
  return conn_start(c, o, a->host, err, code);
}

net_conn *net_tcp_open(net_addr *a, uint16_t port, const net_conn_opts *o, const char **err,
                       net_err *code) {
  return net__conn_open_linked(a, port, o, NULL, err, code);
}

net_conn *net__conn_open_host_linked(const char *host, uint16_t port, const net_conn_opts *o, net_io *link,
                                     const char **err, net_err *code) {
  if (o && o->proxy) return open_proxied(NULL, host, strlen(host), NULL, port, o, link, err, code);
  net_addr *a = net_resolve(host, strlen(host), err, code);
  if (!a) return NULL;
  net_conn *c = net__conn_open_linked(a, port, o, link, err, code);
  net_addr_unref(a);   /* the connection holds its own reference */
  return c;
}

net_conn *net_unix_open(const char *path, const net_conn_opts *o, const char **err, net_err *code) {
  struct sockaddr_un un;
  net_err ignored;
  if (!code) code = &ignored;
  *code = NET_E_INVALID;
  if (o && o->proxy) return *err = "a proxy is for TCP connections", NULL;
  if (!path || !*path || strlen(path) >= sizeof un.sun_path)
    return *err = "a Unix socket path must be 1..107 bytes", NULL;
  *code = NET_E_LIMIT;
  net_conn *c = net__conn_new(o, 2);
  if (!c || !(c->unix_path = net__strdup(path)) || !(c->addr = net__addr_unix(path))) {
    if (c) net__conn_destroy(c);
    return *err = "out of memory", NULL;
  }
  return conn_start(c, o, "localhost", err, code);
}

/* ---- status ------------------------------------------------------------------- */

/* After starttls(), until its handshake is done, no byte in rx is the
 * owner's: one there came in plain text before the I/O thread took the
 * request (which fails the connection for it: CVE-2011-0411's injection).
 * On that failure they are dropped. */
static bool upgrade_hides(net_conn *c) {
  if (!c->upgrading) return false;
  /* acquire, state first: a failure after the handshake shows tls_ready set */
  int st = atomic_load_explicit(&c->state, memory_order_acquire);
  if (atomic_load_explicit(&c->tls_ready, memory_order_acquire)) return false;
  if (st == NET_FAILURE) net_conn_consume(c, ring_used(&c->rx));
  net__io_seen(&c->obj);   /* nothing for the owner to read */
  return true;
}

net_result net_conn_status(net_conn *c) {
  net_result r;
  if (net__engine_inherited(&r)) return r;
  net__host_polled();
  /* acquire: pairs with the I/O thread's release of state after err is written */
  if (c->aborted) return (net_result){NET_FAILURE, c->abort_err.code, c->abort_err.msg};
  bool hidden = upgrade_hides(c);
  int st = atomic_load_explicit(&c->state, memory_order_acquire);
  if (hidden) {
    if (st == NET_FAILURE) return (net_result){NET_FAILURE, c->err.code, c->err.msg};
    net__host_read(c, true);   /* a loop may spin on this too */
    return (net_result){NET_WAITING, NET_E_NONE, ""};
  }
  if (ring_used(&c->rx) == 0) net__io_seen(&c->obj);   /* the state is seen, no byte waits */
  /* Like the peer's close, an error shows once the bytes received before it
   * are read: a loop that stops at "failure" loses nothing. */
  if (st == NET_FAILURE && ring_used(&c->rx) > 0) return (net_result){NET_SUCCESS, NET_E_NONE, ""};
  if (st == NET_FAILURE) return (net_result){NET_FAILURE, c->err.code, c->err.msg};
  if (st == NET_WAITING) net__host_read(c, true);   /* a loop may spin on this too */
  if (st == NET_SUCCESS && atomic_load_explicit(&c->rx_eof, memory_order_acquire) &&
      ring_used(&c->rx) == 0 && !(atomic_load(&c->shut) & NET_SHUT_RECEIVE))
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

/* ---- writing ------------------------------------------------------------------ */

static bool can_send(net_conn *c) {
  return !c->aborted && !net__os_forked() && atomic_load_explicit(&c->state, memory_order_acquire) != NET_FAILURE &&
         !(atomic_load_explicit(&c->shut, memory_order_relaxed) & NET_SHUT_SEND);
}

/* Bytes went into tx: wakes the I/O thread if it sleeps on tx. */
static void tx_filled(net_conn *c) {
  /* seq_cst fence: pairs with the one in tx_empty() (conn_io.c); either the
   * I/O thread sees our bytes, or we see it asleep on tx and wake it. */
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load_explicit(&c->tx_idle, memory_order_relaxed) && atomic_exchange(&c->tx_idle, 0))
    net__engine_kick(&c->obj);
}

long net_conn_write(net_conn *c, const void *data, size_t len) {
  net__host_polled();
  if (!can_send(c)) return -1;
  size_t n = ring_write(&c->tx, data, len);
  c->write_oom = n == 0 && c->tx.oom;   /* room, but no memory for it */
  if (c->write_oom) return -1;
  if (n == 0) return 0;
  tx_filled(c);
  return (long)n;
}

int net__conn_write_record(net_conn *c, const void *head, size_t hlen, const void *body, size_t blen) {
  net__host_polled();
  if (!can_send(c)) return -1;
  bool whole = ring_write_record(&c->tx, head, hlen, body, blen);
  c->write_oom = !whole && c->tx.oom;
  if (!whole) return c->write_oom ? -1 : 0;
  tx_filled(c);
  return 1;
}

net_result net_conn_write_status(net_conn *c) {
  net_result r;
  if (net__engine_inherited(&r)) return r;
  if (c->write_oom) return (net_result){NET_FAILURE, NET_E_LIMIT, "write: out of memory for the send buffer"};
  if (c->aborted) return (net_result){NET_FAILURE, c->abort_err.code, c->abort_err.msg};
  if (atomic_load_explicit(&c->state, memory_order_acquire) == NET_FAILURE)
    return (net_result){NET_FAILURE, c->err.code, c->err.msg};
  if (atomic_load_explicit(&c->shut, memory_order_relaxed) & NET_SHUT_SEND)
    return (net_result){NET_FAILURE, NET_E_CLOSED, "closed for sending (shutdown)"};
  return (net_result){NET_SUCCESS, NET_E_NONE, ""};
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

/* ---- reading ------------------------------------------------------------------- */

/* Reading, stopped by a full rx, goes on once no more than `most` bytes wait. */
static void resume_reading(net_conn *c, size_t most) {
  if (atomic_load_explicit(&c->rx_paused, memory_order_relaxed) && ring_used(&c->rx) <= most &&
      atomic_exchange(&c->rx_paused, 0))
    net__engine_kick(&c->obj);
}

static void rx_consumed(net_conn *c) {
  /* seq_cst fence: pairs with the one in pause_reading() (conn_io.c, Dekker). */
  atomic_thread_fence(memory_order_seq_cst);
  resume_reading(c, ring_cap(&c->rx) / 2);
}

void net_conn_want_more(net_conn *c) {
  /* whatever the low-water mark says; a full buffer waits for a read. No
   * fence: the consume that made room ran rx_consumed's, and a pause after
   * it saw the room and resumed itself. */
  resume_reading(c, ring_cap(&c->rx) - 1);
}

/* With nothing readable: 0 while more may come, else how the stream ended. */
static long read_end(net_conn *c) {
  /* acquire: the flag and the failure are published after the last commit */
  if (!atomic_load_explicit(&c->rx_eof, memory_order_acquire) &&
      atomic_load_explicit(&c->state, memory_order_acquire) != NET_FAILURE)
    return 0;
  if (ring_used(&c->rx) > 0) return 0;   /* bytes that raced in before the flag */
  return atomic_load(&c->state) == NET_FAILURE ? NET_READ_ERROR : NET_READ_EOF;
}

long net_conn_peek(net_conn *c, size_t max, net_span *spans, int *nspans) {
  int cap = *nspans;
  net__host_polled();
  *nspans = 0;
  /* after shutdown("receive") or an abort the end is final: what still arrives is dropped */
  if (c->aborted || (atomic_load(&c->shut) & NET_SHUT_RECEIVE)) {
    net_conn_consume(c, ring_used(&c->rx));
    return c->aborted ? NET_READ_ERROR : NET_READ_EOF;
  }
  /* the I/O thread sent everything: the send buffer gives its memory back */
  if (c->tx.slots && atomic_load_explicit(&c->tx_idle, memory_order_relaxed)) ring_shrink(&c->tx);
  if (upgrade_hides(c)) {
    net__host_read(c, true);
    return atomic_load_explicit(&c->state, memory_order_acquire) == NET_FAILURE ? NET_READ_ERROR : 0;
  }
  int k = ring_peek(&c->rx, spans, cap, max);
  if (k == 0) {
    long end = read_end(c);
    if (!end) k = ring_peek(&c->rx, spans, cap, max);
    if (k == 0) net__io_seen(&c->obj);
    if (end) return end;
  }
  net__host_read(c, k == 0);
  *nspans = k;
  return (long)ring_spans_len(spans, k);
}

void net_conn_consume(net_conn *c, size_t n) {
  if (!ring_consume_upto(&c->rx, n)) return;
  rx_consumed(c);
  if (!ring_used(&c->rx)) net__io_seen(&c->obj);
}

long net_conn_read(net_conn *c, void *buf, size_t max) {
  net_span sp[1];
  int k = 1;
  long r = net_conn_peek(c, max, sp, &k);
  if (r <= 0) return r;
  size_t n = ring_read(&c->rx, buf, max);
  rx_consumed(c);
  if (ring_used(&c->rx) == 0) net__io_seen(&c->obj);
  return (long)n;
}

size_t net_conn_copy(net_conn *c, size_t off, void *dst, size_t n) {
  return upgrade_hides(c) ? 0 : ring_copy(&c->rx, off, dst, n);
}

long net_conn_find(net_conn *c, const void *delim, size_t dlen, size_t from, size_t limit) {
  return upgrade_hides(c) ? -1 : ring_find(&c->rx, delim, dlen, from, limit);
}

size_t net_conn_available(net_conn *c) {
  net__host_polled();
  bool none = c->aborted || (atomic_load(&c->shut) & NET_SHUT_RECEIVE) || upgrade_hides(c);
  size_t n = none ? 0 : ring_used(&c->rx);
  if (n == 0) net__io_seen(&c->obj);
  return n;
}

int net_conn_input_ended(net_conn *c) {
  return c->aborted || atomic_load_explicit(&c->rx_eof, memory_order_acquire) ||
         atomic_load_explicit(&c->state, memory_order_acquire) == NET_FAILURE ||
         (atomic_load(&c->shut) & NET_SHUT_RECEIVE);
}

size_t net_conn_buffer_size(net_conn *c) { return ring_cap(&c->rx); }

/* ---- requests ------------------------------------------------------------------ */

static void request(net_conn *c, int bits) {
  /* seq_cst RMW: what the owner set before reaches the I/O thread with the bits */
  atomic_fetch_or(&c->requests, bits);
  net__engine_kick(&c->obj);
}

int net_conn_starttls(net_conn *c, const net_tls_opts *o, const char **err, net_err *code) {
  net_err ignored;
  if (!code) code = &ignored;
  *code = NET_E_TLS;
  if (c->tls_cfg) return *err = "the connection already uses TLS", -1;
  if (c->accepted) {   /* it would send a ClientHello to its own client */
    *code = NET_E_INVALID;
    return *err = "starttls: an accepted connection cannot start TLS (server-side STARTTLS is not "
                  "supported; create_server's ssl serves TLS from the start)", -1;
  }
  if (atomic_load_explicit(&c->state, memory_order_acquire) != NET_SUCCESS)
    return *err = "starttls needs an established connection", -1;
  if (atomic_load(&c->shut) & NET_SHUT_SEND) return *err = "starttls: the sending side is shut down", -1;
  /* acquire: pairs with got_bytes(); a count that takes in new bytes shows them in rx */
  c->starttls_in = atomic_load_explicit(&c->bytes_in, memory_order_acquire);
  if (ring_used(&c->rx) > 0) {   /* what came before the upgrade is the owner's to read first */
    *code = NET_E_PROTOCOL;
    return *err = "starttls: bytes that came before it are unread (read them first: a peer that "
                  "sent more than its go-ahead may be injecting)", -1;
  }
  /* a Unix socket's peer is checked as localhost, as net_unix_open does: never its path */
  const char *host = c->proxy ? c->proxy->target : c->unix_path ? "localhost" : c->addr->host;
  net_tls_cfg *cfg = net__tls_cfg_new(o, host, false, err, code);
  if (!cfg) return -1;
  c->tls_cfg = cfg;
  /* the owner is tx's producer: every byte before this tail goes out in plain text */
  c->starttls_at = atomic_load_explicit(&c->tx.tail, memory_order_relaxed);
  int expected = NET_SUCCESS;
  if (!atomic_compare_exchange_strong(&c->state, &expected, NET_WAITING))
    return *err = c->err.msg, -1;   /* failed meanwhile */
  c->upgrading = true;
  request(c, REQ_STARTTLS);
  return 0;
}

void net_conn_abort(net_conn *c, net_err code, const char *msg) {
  if (c->aborted || atomic_load_explicit(&c->state, memory_order_acquire) == NET_FAILURE) return;
  net__seterr(&c->abort_err, code, "%s", msg);
  c->aborted = true;
  net_conn_consume(c, ring_used(&c->rx));
  request(c, REQ_ABORT);   /* its seq_cst RMW hands abort_err over */
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
  if ((how & NET_SHUT_RECEIVE) && !(before & NET_SHUT_RECEIVE))
    net_conn_consume(c, ring_used(&c->rx));   /* what arrived is dropped too */
  request(c, (how & NET_SHUT_SEND ? REQ_SHUT_WR : 0) | (how & NET_SHUT_RECEIVE ? REQ_SHUT_RD : 0));
}

void net_conn_pause_read(net_conn *c, int paused) {
  atomic_store(&c->owner_paused, paused != 0);
  request(c, REQ_PAUSE);
}

void net__conn_taken(net_conn *c) { net_conn_pause_read(c, 0); }

void net__conn_set_link(net_conn *c, net_io *link) { c->link = link; }

uint64_t net__conn_delivered(net_conn *c) {
  uint64_t sent = atomic_load_explicit(&c->bytes_out, memory_order_relaxed);
  size_t held = c->fd != NET_BAD_SOCK ? net_sock_unacked(c->fd) : 0;
  return held < sent ? sent - held : 0;
}

void net__conn_set_idle(net_conn *c, int ms) {
  c->idle_timeout_ms = ms > 0 ? ms : 0;
  c->last_io = net__now_ms();
  net__conn_set_timer(c);
}

void net__conn_close_link(net_conn *c) {
  c->link = NULL;   /* at once: the protocol may be gone before the close is taken */
  net_conn_close(c);
}

void net_conn_close(net_conn *c) {
  net__io_disown(&c->obj);   /* nobody will read it now: what it publishes wakes no host */
  net__conn_unlist(c);      /* the exit waits for it as a close now, within its linger */
  net__engine_closing(1);   /* counted out by the I/O thread once all is sent */
  request(c, REQ_CLOSE);
  net__io_unref(&c->obj);
  net__engine_release();
}

/* ---- information ---------------------------------------------------------------- */

net_conn_stats net_conn_get_stats(net_conn *c) {
  return (net_conn_stats){atomic_load_explicit(&c->bytes_in, memory_order_relaxed),
                          atomic_load_explicit(&c->bytes_out, memory_order_relaxed),
                          net_clock() - c->created};
}

/* cur and local are final once peer is published (acquire: pairs with its release). */
static bool established_once(net_conn *c) { return atomic_load_explicit(&c->peer, memory_order_acquire); }

static void endpoint(const net_conn *c, const net_sockaddr *sa, net_endpoint *out) {
  if (!c->unix_path) {
    net__sa_endpoint(sa, out);
    return;
  }
  memset(out, 0, sizeof *out);
  snprintf(out->ip, sizeof out->ip, "%s", c->unix_path);
}

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

net_addr *net_conn_peer(net_conn *c) {
  if (c->unix_path) return NULL;   /* a path, not an address anything else could take */
  if (atomic_load_explicit(&c->state, memory_order_acquire) == NET_WAITING &&
      !atomic_load(&c->tls_ready) && !c->upgrading)   /* connecting; a STARTTLS peer stays known */
    return NULL;
  net_addr *p = atomic_load_explicit(&c->peer, memory_order_acquire);
  return p ? net_addr_ref(p) : NULL;
}

int net_conn_tls_info(net_conn *c, net_tls_info *out) {
  /* acquire: pairs with the release of tls_ready after tls_info was written */
  if (!atomic_load_explicit(&c->tls_ready, memory_order_acquire) ||
      atomic_load_explicit(&c->state, memory_order_acquire) != NET_SUCCESS)
    return 0;
  *out = *atomic_load(&c->tls_info);
  return 1;
}

void net_conn_describe(net_conn *c, char *buf, size_t len) {
  if (c->unix_path) {
    snprintf(buf, len, "unix:%s", c->unix_path);
  } else if (c->proxy) {   /* fixed at open: the peer is the proxy, the target is what was asked for */
    const char *h = c->proxy->target;
    snprintf(buf, len, strchr(h, ':') ? "[%s]:%u via proxy %s" : "%s:%u via proxy %s", h,
             (unsigned)c->proxy->target_port, c->proxy->where);
  } else if (established_once(c)) {
    net__sa_str(&c->cur, buf, len, true);
  } else {
    net__conn_asked(c, buf, len);
  }
}
