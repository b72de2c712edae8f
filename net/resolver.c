/* resolver.c: name lookups, on two lanes of helper threads so that nothing
 * waits behind a DNS server that does not answer:
 *   - literals resolve on the caller's thread (inet_pton never blocks);
 *   - the hosts lane (one thread) answers names from the hosts file and
 *     "localhost" at once, drops lookups nobody waits for any more, and
 *     hands the rest to
 *   - the DNS lane (a bounded pool running the blocking getaddrinfo), where
 *     every request for one name shares a single lookup.
 * Both lanes have bounded queues: past them a lookup fails with "limit".
 * Owners submit; helpers publish. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "alloc.h"
#include "engine.h"
#include "helper.h"
#include "hosts.h"
#include "os.h"

#define HOSTS_QUEUE 4096      /* lookups waiting for the hosts lane */
#define DNS_THREADS 16        /* names looked up at once; a hung one holds only its own */
#define DNS_QUEUE 1024        /* distinct names waiting for a DNS thread */
#define TEST_HANG_MS 10000    /* how long a test "hang" entry holds its thread */

static net_lane hosts_lane = {.name = "sluice-hosts", .max_threads = 1, .max_queued = HOSTS_QUEUE};
static net_lane dns_lane = {.name = "sluice-dns", .max_threads = DNS_THREADS, .max_queued = DNS_QUEUE};

/* A request of one address object, on the hosts lane. */
typedef struct request {
  net_job job;
  net_addr *addr;
  void (*miss)(net_addr *a);   /* names the hosts file lacks go here, else to the DNS lane */
} request;

/* One name on the DNS lane, and every address waiting for it. */
typedef struct lookup {
  net_job job;
  struct lookup *next;          /* the in-flight list */
  net_addr **waiters;
  int n, cap;
  char host[NET_HOST_MAX + 1];
} lookup;

static lookup *in_flight;       /* under flight_mx: helpers only */
static net_mutex *flight_mx;
static atomic_int flight_once;

static bool flight_init(void *unused) {
  (void)unused;
  return (flight_mx = net__mutex_new()) != NULL;
}

/* ---- answers ----------------------------------------------------------------- */

static void finish(net_addr *a) {
  net__addr_publish(a);
  net_addr_unref(a);
  net__engine_background_done();
}

static void fail(net_addr *a, net_err code, const char *why) {
  net__seterr(&a->err, code, "resolve %s: %s", a->host, why);
  finish(a);
}

/* Nobody but the lookup holds it: the owner let it go. */
static bool abandoned(net_addr *a) { return atomic_load_explicit(&a->refs, memory_order_acquire) == 1; }

/* RFC 6761: localhost names are the loopback addresses, never asked for. */
static bool add_localhost(net_addr *a) {
  size_t n = net__hosts_name_len(a->host);
  if ((n != 9 || strncasecmp(a->host, "localhost", 9) != 0) &&
      (n < 10 || strncasecmp(a->host + n - 10, ".localhost", 10) != 0))
    return false;
  net_sockaddr sa;
  net__ip_parse("::1", 3, &sa);
  net__addr_add(a, &sa.sa, net__sa_len(&sa));
  net__ip_parse("127.0.0.1", 9, &sa);
  net__addr_add(a, &sa.sa, net__sa_len(&sa));
  return true;
}

/* ---- the hosts lane --------------------------------------------------------------------- */

static void to_dns(net_addr *a);

static void hosts_run(net_job *job) {
  request *r = (request *)job;
  net_addr *a = r->addr;
  void (*miss)(net_addr *) = r->miss;
  net__free(r);
  if (abandoned(a)) {   /* the owner let it go while it queued: nothing to do */
    net_addr_unref(a);
    return;
  }
  const char *test = getenv("SLUICE_HOSTS_FILE");
  if (test && *test) {   /* test hook: names come only from that file, localhost names or a resolver's own servers */
    char slow[64] = "";
    if (!net__hosts_lookup(a, test, true, miss ? NULL : slow, sizeof slow))
      fail(a, net__errno_code(errno) == NET_E_LIMIT ? NET_E_LIMIT : NET_E_DNS, "cannot read the test hosts file");
    else if (a->count > 0 || add_localhost(a)) finish(a);
    else if (miss) miss(a);
    else if (slow[0]) to_dns(a);
    else fail(a, NET_E_DNS, "not in the test hosts file");
    return;
  }
  char path[512];
  const char *hosts = net_sock_hosts_file(path, sizeof path);
  if (hosts && !net__hosts_lookup(a, hosts, true, NULL, 0) && net__errno_code(errno) == NET_E_LIMIT) {
    char e[64];
    fail(a, NET_E_LIMIT, net__errstr(errno, e, sizeof e));   /* what else it would do needs descriptors too */
    return;
  }
  if (a->count > 0 || add_localhost(a)) finish(a);
  else if (miss) miss(a);
  else to_dns(a);
}

/* ---- the DNS lane ------------------------------------------------------------------- */

static int lookup_gai(net_addr *a, const char *host, int flags) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = flags};
  struct addrinfo *res = NULL;
  int rc = getaddrinfo(host, NULL, &hints, &res);
  if (rc == 0) {
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) net__addr_add(a, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(res);
  }
  return rc;
}

/* The test file's slow entries: "hang" holds the thread, "delay=MS:IP" answers late. */
static void resolve_test(net_addr *a, const char *path) {
  char slow[64] = "";
  net__hosts_lookup(a, path, false, slow, sizeof slow);   /* a DNS thread: the index is the hosts lane's */
  unsigned ms = 0;
  char ip[NET_IP_MAX];
  if (strcmp(slow, "hang") == 0) {
    net__sleep_ms(TEST_HANG_MS);
    net__seterr(&a->err, NET_E_DNS, "resolve %s: no answer (test hang)", a->host);
  } else if (sscanf(slow, "delay=%u:%63s", &ms, ip) == 2) {
    net_sockaddr sa;
    net__sleep_ms(ms);
    if (net__ip_parse(ip, strlen(ip), &sa)) net__addr_add(a, &sa.sa, net__sa_len(&sa));
  }
}

static void resolve_blocking(net_addr *a) {
  const char *test = getenv("SLUICE_HOSTS_FILE");
  if (test && *test) {
    resolve_test(a, test);
    return;
  }
  int rc = lookup_gai(a, a->host, 0);
  if (rc == 0 || a->count > 0) return;
  char buf[128];
  const char *why = net_sock_gai_strerror(rc, buf, sizeof buf);
  net__seterr(&a->err, rc == EAI_MEMORY ? NET_E_LIMIT : NET_E_DNS, "resolve %s: %s", a->host, why);
}

static bool all_abandoned(const lookup *l) {
  for (int i = 0; i < l->n; i++)
    if (!abandoned(l->waiters[i])) return false;
  return true;
}

/* From here (under flight_mx), a new request of l's name starts a new lookup. */
static void leave_flight(lookup *l) {
  for (lookup **p = &in_flight; *p; p = &(*p)->next)
    if (*p == l) {
      *p = l->next;
      return;
    }
}

static void dns_run(net_job *job) {
  lookup *l = (lookup *)job;
  net_addr *result = net__addr_new(l->host, strlen(l->host), NET_MAX_ADDRS);
  net__mutex_lock(flight_mx);   /* waiters may still join */
  bool wanted = result && !all_abandoned(l);
  /* a lookup not to be made leaves in this same hold: a request joining it
   * after the check would be answered with no address */
  if (!wanted) leave_flight(l);
  net__mutex_unlock(flight_mx);
  if (wanted) {
    resolve_blocking(result);
    net__mutex_lock(flight_mx);
    leave_flight(l);
    net__mutex_unlock(flight_mx);
  }
  for (int i = 0; i < l->n; i++) {
    net_addr *a = l->waiters[i];
    if (result) {
      for (int k = 0; k < result->count; k++) net__addr_add(a, &result->sa[k].sa, net__sa_len(&result->sa[k]));
      a->err = result->err;
    } else {
      net__seterr(&a->err, NET_E_LIMIT, "resolve %s: out of memory", a->host);
    }
    finish(a);
  }
  net_addr_unref(result);
  net__free(l->waiters);
  net__free(l);
}

/* Drops the waiters their owners let go (under flight_mx): a name that
 * never answers holds only the addresses somebody still waits for. */
static void prune(lookup *l) {
  int k = 0;
  for (int i = 0; i < l->n; i++) {
    if (abandoned(l->waiters[i])) net_addr_unref(l->waiters[i]);
    else l->waiters[k++] = l->waiters[i];
  }
  l->n = k;
}

static bool add_waiter(lookup *l, net_addr *a) {
  if (l->n == l->cap) prune(l);
  if (l->n == l->cap) {
    int cap = l->cap * 2 + 4;
    net_addr **w = net__realloc(l->waiters, (size_t)cap * sizeof *w);
    if (!w) return false;
    l->waiters = w;
    l->cap = cap;
  }
  l->waiters[l->n++] = a;
  return true;
}

/* A new lookup of a's name, queued on the DNS lane; NULL with *why. */
static lookup *start_lookup(net_addr *a, const char **why) {
  lookup *l = net__calloc(1, sizeof *l);
  if (!l || !add_waiter(l, a)) {
    if (l) net__free(l);
    return *why = "out of memory", NULL;
  }
  snprintf(l->host, sizeof l->host, "%s", a->host);
  l->job.run = dns_run;
  if (net__lane_submit(&dns_lane, &l->job)) return l;
  net__free(l->waiters);
  net__free(l);
  return *why = net__lane_refusal(&dns_lane, "too many names being looked up"), NULL;
}

/* Joins the lookup of the same name in flight, or starts one. */
static void to_dns(net_addr *a) {
  const char *why = "out of memory";
  bool ok = false;
  if (net__once(&flight_once, flight_init, NULL)) {
    net__mutex_lock(flight_mx);
    lookup *l = in_flight;
    while (l && strcasecmp(l->host, a->host) != 0) l = l->next;
    if (l) {
      ok = add_waiter(l, a);
    } else if ((l = start_lookup(a, &why))) {
      l->next = in_flight;
      in_flight = l;
      ok = true;
    }
    net__mutex_unlock(flight_mx);
  }
  if (!ok) fail(a, NET_E_LIMIT, why);
}

/* ---- public API ---------------------------------------------------------------------- */

/* What no name can hold and no lookup could answer: said at once. */
static const char *not_a_name(const char *host, size_t len) {
  if (!memchr(host, ':', len)) return NULL;
  if (memchr(host, '%', len)) return "not a valid IPv6 address, or no such zone (interface)";
  return "neither an IP address nor a host name (':' is in no name; a port is an argument of its own)";
}

/* why, naming the host as every other resolve failure does (a long one cut,
 * one with a NUL up to it), in this thread's buffer. */
static const char *refusal(const char *host, size_t len, const char *why) {
  static _Thread_local char msg[NET_ERRMSG_MAX];
  const char *nul = memchr(host, '\0', len);
  size_t shown = nul ? (size_t)(nul - host) : len;
  bool cut = shown > 64;
  snprintf(msg, sizeof msg, "resolve %.*s%s%s: %s", (int)(cut ? 60 : shown), host, cut ? "..." : "",
           len ? "" : "\"\"", why);
  return msg;
}

net_addr *net_resolve(const char *host, size_t len, const char **err, net_err *code) {
  return net__resolve_via(host, len, NULL, NULL, err, code);
}

net_addr *net__resolve_via(const char *host, size_t len, void (*miss)(net_addr *a), net_io *canceller,
                           const char **err, net_err *code) {
  net_err ignored;
  if (!code) code = &ignored;
  *code = NET_E_INVALID;
  if (len == 0) return *err = refusal(host, len, "host name is empty"), NULL;
  if (len > NET_HOST_MAX) return *err = refusal(host, len, "host name is longer than 253 bytes"), NULL;
  if (memchr(host, '\0', len)) return *err = refusal(host, len, "host name contains a NUL byte"), NULL;
  net_sockaddr sa;
  bool literal = net__ip_parse(host, len, &sa);
  const char *bad = literal ? NULL : not_a_name(host, len);
  if (bad) return *err = refusal(host, len, bad), NULL;
  if (literal && len > 2 && host[0] == '[' && host[len - 1] == ']') host++, len -= 2;   /* named "::1" */
  net_addr *a = net__addr_new(host, len, literal ? 1 : NET_MAX_ADDRS);
  if (!a) return *code = NET_E_LIMIT, *err = "out of memory", NULL;
  if (canceller) a->canceller = net__io_ref(canceller);
  if (literal) {
    net__addr_add(a, &sa.sa, net__sa_len(&sa));
    net__addr_publish(a);
    return a;
  }
  request *r = net__malloc(sizeof *r);
  if (r) {
    *r = (request){.job.run = hosts_run, .addr = net_addr_ref(a), .miss = miss};
    if (net__lane_submit(&hosts_lane, &r->job)) return a;
    net_addr_unref(a);
    net__free(r);
  }
  net__seterr(&a->err, NET_E_LIMIT, "resolve %s: %s", a->host,
              net__os_forked() ? net__engine_refusal()
              : r           ? net__lane_refusal(&hosts_lane, "too many lookups in progress")
                            : "out of memory");
  atomic_store_explicit(&a->state, NET_FAILURE, memory_order_release);
  return a;
}

typedef struct local_list {
  net_endpoint *out;
  int n, max;
} local_list;

static void add_local(void *ud, const struct sockaddr *sa, socklen_t len) {
  local_list *l = ud;
  net_sockaddr s;
  if (l->n >= l->max || !net__sa_from(&s, sa, len)) return;
  net__sa_endpoint(&s, &l->out[l->n]);
  l->out[l->n++].port = 0;
}

int net_local_addresses(net_endpoint *out, int max, const char **err) {
  local_list l = {out, 0, max};
  if (net_sock_local_addrs(add_local, &l) < 0) return *err = "cannot list the network interfaces", -1;
  return l.n;
}
