/* resolver.c: address objects and the pool of helper threads that run the
 * blocking getaddrinfo. Owners create and read addresses; helpers publish them. */
#include <SDL.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

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
  SDL_sem *sem;                     /* one post per job */
  SDL_mutex *mx;                    /* helpers only */
  job *head, *tail;                 /* FIFO, under mx */
  atomic_int helpers, idle;
} pool;
static atomic_int pool_state;   /* 0 none, 1 creating, 2 ready */

/* ---- address objects ---------------------------------------------------- */

static net_addr *addr_new(const char *host, size_t len) {
  net_addr *a = calloc(1, sizeof *a);
  if (!a) return NULL;
  atomic_init(&a->refs, 1);
  atomic_init(&a->state, NET_WAITING);
  memcpy(a->host, host, len);
  a->host[len] = '\0';
  atomic_fetch_add(&net__live_addrs, 1);
  return a;
}

net_addr *net_addr_ref(net_addr *a) {
  atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
  return a;
}

void net_addr_unref(net_addr *a) {
  if (!a || atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) != 1) return;
  free(a);
  atomic_fetch_sub(&net__live_addrs, 1);
}

void net__sockaddr_str(const struct sockaddr *sa, char *buf, size_t len, bool with_port) {
  char ip[NET_IPSTR_MAX] = "?";
  unsigned port = 0;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const void *)sa;
    inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
    port = ntohs(in->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const void *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
    port = ntohs(in6->sin6_port);
    if (with_port) {
      snprintf(buf, len, "[%s]:%u", ip, port);
      return;
    }
  }
  if (with_port) snprintf(buf, len, "%s:%u", ip, port);
  else snprintf(buf, len, "%s", ip);
}

/* ::ffff:a.b.c.d as a.b.c.d: dual-stack sockets see IPv4 peers that way, and
 * users expect the address they would see on an IPv4 socket. */
void net__sockaddr_unmap_v4(net_sockaddr *sa) {
  if (sa->sa.sa_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&sa->in6.sin6_addr)) return;
  struct sockaddr_in in4 = {.sin_family = AF_INET, .sin_port = sa->in6.sin6_port};
  memcpy(&in4.sin_addr, &sa->in6.sin6_addr.s6_addr[12], 4);
  memset(sa, 0, sizeof *sa);
  sa->in4 = in4;
}

/* Copies up to NET_MAX_ADDRS stream addresses, skipping duplicates. */
static void add_result(net_addr *a, const struct sockaddr *sa, socklen_t len) {
  if (a->count >= NET_MAX_ADDRS) return;
  if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) return;
  if (len > sizeof(net_sockaddr)) return;
  net_sockaddr s;
  memset(&s, 0, sizeof s);
  memcpy(&s, sa, len);
  for (int i = 0; i < a->count; i++)
    if (!memcmp(&a->sa[i], &s, sizeof s)) return;
  a->sa[a->count++] = s;
}

static void publish(net_addr *a) {
  if (a->count > 0) {
    net__sockaddr_str(&a->sa[0].sa, a->ip, sizeof a->ip, false);
    /* release: results and ip are complete before anyone can see SUCCESS */
    atomic_store_explicit(&a->state, NET_SUCCESS, memory_order_release);
  } else {
    if (!a->err.code) net__seterr(&a->err, NET_E_DNS, "resolve %s: no address", a->host);
    atomic_store_explicit(&a->state, NET_FAILURE, memory_order_release);
  }
}

net_addr *net__addr_from_sockaddr(const struct sockaddr *sa, socklen_t len) {
  char ip[NET_IPSTR_MAX];
  net__sockaddr_str(sa, ip, sizeof ip, false);
  net_addr *a = addr_new(ip, strlen(ip));
  if (!a) return NULL;
  add_result(a, sa, len);
  publish(a);
  return a;
}

/* A resolved address that names a Unix socket: no IP, the path as hostname. */
net_addr *net__addr_unix(const char *path) {
  size_t len = strlen(path);
  net_addr *a = addr_new(path, len > NET_HOST_MAX ? NET_HOST_MAX : len);
  if (a) atomic_store_explicit(&a->state, NET_SUCCESS, memory_order_release);
  return a;
}

/* ---- lookups ------------------------------------------------------------ */

static int lookup_gai(net_addr *a, const char *host, int flags) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = flags};
  struct addrinfo *res = NULL;
  int rc = getaddrinfo(host, NULL, &hints, &res);
  if (rc == 0) {
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) add_result(a, ai->ai_addr, ai->ai_addrlen);
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
      if (strcasecmp(name, a->host) == 0) lookup_gai(a, ip, AI_NUMERICHOST);
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

/* ---- the helper pool ---------------------------------------------------- */

static bool pool_init(void) {
  int s = atomic_load_explicit(&pool_state, memory_order_acquire);
  while (s != 2) {
    int zero = 0;
    if (s == 0 && atomic_compare_exchange_strong(&pool_state, &zero, 1)) {
      pool.mx = SDL_CreateMutex();
      pool.sem = SDL_CreateSemaphore(0);
      if (!pool.mx || !pool.sem) {
        atomic_store(&pool_state, 0);
        return false;
      }
      /* Detached helpers may still be inside getaddrinfo when the host unloads
       * this library; keep the code mapped for them. */
      Dl_info info;
      if (dladdr((void *)&pool_init, &info) && info.dli_fname)
        dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE);
      atomic_store_explicit(&pool_state, 2, memory_order_release);  /* pairs with the acquire above */
      return true;
    }
    SDL_Delay(0);
    s = atomic_load_explicit(&pool_state, memory_order_acquire);
  }
  return true;
}

static int helper_main(void *permanent);

static bool spawn_helper(bool permanent) {
  atomic_fetch_add(&pool.helpers, 1);
  SDL_Thread *t = SDL_CreateThread(helper_main, "sluice-dns", permanent ? &pool : NULL);
  if (!t) {
    atomic_fetch_sub(&pool.helpers, 1);
    return false;
  }
  SDL_DetachThread(t);
  return true;
}

/* A post was consumed, so a job is queued: take the oldest. */
static job *take_job(void) {
  SDL_LockMutex(pool.mx);
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
  SDL_UnlockMutex(pool.mx);
  /* more waiting and nobody free: grow the pool from here, not on an owner */
  if (more && atomic_load(&pool.idle) == 0 && atomic_load(&pool.helpers) < MAX_HELPERS)
    spawn_helper(false);
  return j;
}

static int helper_main(void *permanent) {
  net__background_priority();
  for (;;) {
    atomic_fetch_add(&pool.idle, 1);
    int r = permanent ? SDL_SemWait(pool.sem) : SDL_SemWaitTimeout(pool.sem, HELPER_IDLE_MS);
    atomic_fetch_sub(&pool.idle, 1);
    if (r == SDL_MUTEX_TIMEDOUT) break;   /* no post consumed: no job is left behind */
    if (r != 0) continue;
    job *j = take_job();
    resolve_blocking(j->addr);
    publish(j->addr);
    net__engine_addr_resolved();
    net_addr_unref(j->addr);
    free(j);
  }
  atomic_fetch_sub(&pool.helpers, 1);
  return 0;
}

static atomic_int permanent_started;

static bool submit(net_addr *a) {
  job *j = malloc(sizeof *j);
  if (!j || !pool_init()) {
    free(j);
    return false;
  }
  /* The first lookup ever starts the helper that stays; its creation is the
   * only thread start an owner pays for. */
  int zero = 0;
  if (atomic_compare_exchange_strong(&permanent_started, &zero, 1) && !spawn_helper(true)) {
    atomic_store(&permanent_started, 0);
    free(j);
    return false;
  }
  j->addr = net_addr_ref(a);
  job *top = atomic_load_explicit(&pool.incoming, memory_order_relaxed);
  do j->next = top;
  /* release: the job is complete before a helper can take it */
  while (!atomic_compare_exchange_weak_explicit(&pool.incoming, &top, j, memory_order_release,
                                                memory_order_relaxed));
  SDL_SemPost(pool.sem);
  return true;
}

/* ---- public API --------------------------------------------------------- */

/* Numeric addresses resolve on the caller's thread: inet_pton never blocks. */
static bool parse_literal(net_addr *a, const char *name) {
  net_sockaddr s;
  memset(&s, 0, sizeof s);
  if (inet_pton(AF_INET, name, &s.in4.sin_addr) == 1) {
    s.in4.sin_family = AF_INET;
    add_result(a, &s.sa, sizeof s.in4);
    return true;
  }
  if (inet_pton(AF_INET6, name, &s.in6.sin6_addr) == 1) {
    s.in6.sin6_family = AF_INET6;
    add_result(a, &s.sa, sizeof s.in6);
    return true;
  }
  /* scoped literals (fe80::1%eth0) need the numeric-only getaddrinfo */
  return strchr(name, '%') && strchr(name, ':') && lookup_gai(a, name, AI_NUMERICHOST) == 0;
}

net_addr *net_resolve(const char *host, size_t len, const char **err) {
  if (len == 0) return *err = "host name is empty", NULL;
  if (len > NET_HOST_MAX) return *err = "host name is longer than 253 bytes", NULL;
  if (memchr(host, '\0', len)) return *err = "host name contains a NUL byte", NULL;
  char name[NET_HOST_MAX + 1];
  memcpy(name, host, len);
  name[len] = '\0';
  /* "[::1]" is how URLs write IPv6 literals */
  if (len > 2 && name[0] == '[' && name[len - 1] == ']') {
    memmove(name, name + 1, len - 2);
    name[len -= 2] = '\0';
  }
  net_addr *a = addr_new(name, len);
  if (!a) return *err = "out of memory", NULL;
  if (parse_literal(a, name)) {
    publish(a);
    return a;
  }
  if (!submit(a)) {
    net__seterr(&a->err, NET_E_LIMIT, "resolve %s: cannot start a resolver thread", name);
    atomic_store_explicit(&a->state, NET_FAILURE, memory_order_release);
  }
  return a;
}

net_result net_addr_status(net_addr *a) {
  net__host_polled();
  int st = atomic_load_explicit(&a->state, memory_order_acquire);
  if (st == NET_FAILURE) return (net_result){NET_FAILURE, a->err.code, a->err.msg};
  return (net_result){(net_status)st, NET_E_NONE, ""};
}

static bool resolved(void *a) { return atomic_load(&((net_addr *)a)->state) != NET_WAITING; }

net_result net_addr_wait(net_addr *a, int timeout_ms) {
  net__wait_until(resolved, a, timeout_ms);
  return net_addr_status(a);
}

const char *net_addr_ip(net_addr *a) {
  return atomic_load_explicit(&a->state, memory_order_acquire) == NET_SUCCESS ? a->ip : NULL;
}

const char *net_addr_hostname(net_addr *a) { return a->host; }

int net_local_addresses(net_endpoint *out, int max, const char **err) {
  struct ifaddrs *ifs;
  if (getifaddrs(&ifs) < 0) return *err = "getifaddrs failed", -1;
  int n = 0;
  for (struct ifaddrs *i = ifs; i && n < max; i = i->ifa_next) {
    if (!i->ifa_addr || !(i->ifa_flags & IFF_UP)) continue;
    int fam = i->ifa_addr->sa_family;
    if (fam != AF_INET && fam != AF_INET6) continue;
    memset(&out[n], 0, sizeof out[n]);
    net__sockaddr_str(i->ifa_addr, out[n].ip, sizeof out[n].ip, false);
    out[n++].family = fam == AF_INET6 ? 6 : 4;
  }
  freeifaddrs(ifs);
  return n;
}
