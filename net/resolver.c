/* resolver.c: name lookups. Literals resolve on the caller's thread (they
 * never block); names go to a pool of helper threads that run the blocking
 * getaddrinfo and publish the address. Owners submit; helpers publish. */
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "alloc.h"
#include "engine.h"
#include "os.h"

#define MAX_HELPERS 4
#define HELPER_IDLE_MS 10000

typedef struct job {
  struct job *next;
  net_addr *addr;
} job;

/* Owners push jobs onto a lock-free stack and post the semaphore, so a
 * lookup never waits on a helper; helpers share a mutex among themselves to
 * turn the stack into a FIFO. One helper stays for good, the others exit
 * when idle; all are detached. */
static struct {
  _Atomic(job *) incoming;
  net_sem *sem;                     /* one post per job */
  net_mutex *mx;                    /* helpers only */
  job *head, *tail;                 /* FIFO, under mx */
  atomic_int helpers, idle;
  atomic_int permanent_started;
} pool;
static atomic_int pool_once;

/* ---- lookups (helper threads) ---------------------------------------------- */

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

/* Test hook: with SLUICE_HOSTS_FILE set, names come only from that hosts-format
 * file, so a test suite never asks a real DNS server. */
static bool lookup_hosts_file(net_addr *a, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return false;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    char *save = NULL, *ip = strtok_r(line, " \t\r\n", &save);
    if (!ip || ip[0] == '#') continue;
    for (char *name; (name = strtok_r(NULL, " \t\r\n", &save)) && name[0] != '#';) {
      net_sockaddr sa;
      if (strcasecmp(name, a->host) == 0 && net__ip_parse(ip, strlen(ip), &sa))
        net__addr_add(a, &sa.sa, net__sa_len(&sa));
    }
  }
  fclose(f);
  return true;
}

static void resolve_blocking(net_addr *a) {
  const char *hosts = getenv("SLUICE_HOSTS_FILE");
  if (hosts && *hosts) {
    if (!lookup_hosts_file(a, hosts))
      net__seterr(&a->err, NET_E_DNS, "resolve %s: cannot read %s", a->host, hosts);
    else if (a->count == 0)
      net__seterr(&a->err, NET_E_DNS, "resolve %s: not in %s", a->host, hosts);
    return;
  }
  int rc = lookup_gai(a, a->host, 0);
  if (rc == 0 || a->count > 0) return;
  char buf[128];
  const char *why = rc == EAI_SYSTEM ? net__errstr(errno, buf, sizeof buf) : gai_strerror(rc);
  net__seterr(&a->err, rc == EAI_MEMORY ? NET_E_LIMIT : NET_E_DNS, "resolve %s: %s", a->host, why);
}

/* ---- the helper pool ------------------------------------------------------- */

static bool pool_init(void) {
  pool.mx = net__mutex_new();
  pool.sem = net__sem_new(0);
  if (!pool.mx || !pool.sem) return false;
  /* Detached helpers may still be inside getaddrinfo when the host unloads
   * this library; keep the code mapped for them. */
  net__os_pin_library();
  return true;
}

static int helper_main(void *permanent);

static bool spawn_helper(bool permanent) {
  atomic_fetch_add(&pool.helpers, 1);
  if (net__thread_start(helper_main, permanent ? &pool : NULL, "sluice-dns", true, NULL)) return true;
  atomic_fetch_sub(&pool.helpers, 1);
  return false;
}

/* A post was consumed, so a job is queued: take the oldest. */
static job *take_job(void) {
  net__mutex_lock(pool.mx);
  if (!pool.head) {   /* move what owners pushed, reversing it into arrival order */
    /* acquire: pairs with the release in submit; the job is complete */
    job *j = atomic_exchange_explicit(&pool.incoming, NULL, memory_order_acquire), *rev = NULL;
    pool.tail = j;
    while (j) {
      job *next = j->next;
      j->next = rev;
      rev = j;
      j = next;
    }
    pool.head = rev;
  }
  job *j = pool.head;
  pool.head = j->next;
  if (!pool.head) pool.tail = NULL;
  bool more = pool.head || atomic_load(&pool.incoming);
  net__mutex_unlock(pool.mx);
  /* more waiting and nobody free: grow the pool from here, not on an owner */
  if (more && atomic_load(&pool.idle) == 0 && atomic_load(&pool.helpers) < MAX_HELPERS)
    spawn_helper(false);
  return j;
}

static int helper_main(void *permanent) {
  net__thread_background();
  for (;;) {
    atomic_fetch_add(&pool.idle, 1);
    bool got = net__sem_wait(pool.sem, permanent ? -1 : HELPER_IDLE_MS);
    atomic_fetch_sub(&pool.idle, 1);
    if (!got) break;   /* idle too long; no post consumed, so no job is left behind */
    job *j = take_job();
    resolve_blocking(j->addr);
    net__addr_publish(j->addr);
    net__engine_addr_resolved();
    net_addr_unref(j->addr);
    net__free(j);
  }
  atomic_fetch_sub(&pool.helpers, 1);
  return 0;
}

static bool submit(net_addr *a) {
  job *j = net__malloc(sizeof *j);
  if (!j || !net__once(&pool_once, pool_init)) {
    net__free(j);
    return false;
  }
  /* The first lookup ever starts the helper that stays; its creation is the
   * only thread start an owner pays for. */
  int zero = 0;
  if (atomic_compare_exchange_strong(&pool.permanent_started, &zero, 1) && !spawn_helper(true)) {
    atomic_store(&pool.permanent_started, 0);
    net__free(j);
    return false;
  }
  j->addr = net_addr_ref(a);
  job *top = atomic_load_explicit(&pool.incoming, memory_order_relaxed);
  do j->next = top;
  /* release: the job is complete before a helper can take it */
  while (!atomic_compare_exchange_weak_explicit(&pool.incoming, &top, j, memory_order_release,
                                                memory_order_relaxed));
  net__sem_post(pool.sem);
  return true;
}

/* ---- public API ------------------------------------------------------------ */

net_addr *net_resolve(const char *host, size_t len, const char **err) {
  if (len == 0) return *err = "host name is empty", NULL;
  if (len > NET_HOST_MAX) return *err = "host name is longer than 253 bytes", NULL;
  if (memchr(host, '\0', len)) return *err = "host name contains a NUL byte", NULL;
  net_sockaddr sa;
  if (net__ip_parse(host, len, &sa)) {   /* a literal resolves here: inet_pton never blocks */
    size_t n = len;
    if (n > 2 && host[0] == '[' && host[n - 1] == ']') host++, n -= 2;   /* named as "::1" */
    net_addr *a = net__addr_new(host, n);
    if (!a) return *err = "out of memory", NULL;
    net__addr_add(a, &sa.sa, net__sa_len(&sa));
    net__addr_publish(a);
    return a;
  }
  net_addr *a = net__addr_new(host, len);
  if (!a) return *err = "out of memory", NULL;
  if (!submit(a)) {
    net__seterr(&a->err, NET_E_LIMIT, "resolve %s: cannot start a resolver thread", a->host);
    atomic_store_explicit(&a->state, NET_FAILURE, memory_order_release);
  }
  return a;
}

int net_local_addresses(net_endpoint *out, int max, const char **err) {
  struct ifaddrs *ifs;
  if (getifaddrs(&ifs) < 0) return *err = "getifaddrs failed", -1;
  int n = 0;
  for (struct ifaddrs *i = ifs; i && n < max; i = i->ifa_next) {
    net_sockaddr sa;
    if (!i->ifa_addr || !(i->ifa_flags & IFF_UP)) continue;
    socklen_t len = i->ifa_addr->sa_family == AF_INET6 ? sizeof sa.in6 : sizeof sa.in4;
    if (!net__sa_from(&sa, i->ifa_addr, len)) continue;
    net__sa_endpoint(&sa, &out[n]);
    out[n++].port = 0;
  }
  freeifaddrs(ifs);
  return n;
}
