/* addr.c: IP literals, socket address conversion and address objects.
 * Any thread: an address is written by one thread (its creator, or the
 * resolver helper that owns the lookup) and published by a release store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "alloc.h"
#include "engine.h"
#include "wake.h"

atomic_size_t net__live_addrs;

/* ---- literals and socket addresses ---------------------------------------- */

/* A scoped IPv6 literal, "fe80::1%eth0" or "fe80::1%2" (ip is ours to cut).
 * Parsed here: getaddrinfo takes only numeric zones on Windows. */
static bool scoped_parse(char *ip, net_sockaddr *out) {
  char *zone = strchr(ip, '%');
  if (!zone || !strchr(ip, ':')) return false;
  *zone++ = '\0';
  if (!*zone || inet_pton(AF_INET6, ip, &out->in6.sin6_addr) != 1) return false;
  unsigned long idx = 0;
  if (*zone >= '0' && *zone <= '9') {
    char *end;
    idx = strtoul(zone, &end, 10);
    if (*end || idx > UINT32_MAX) return false;
  } else {
    idx = if_nametoindex(zone);
  }
  if (!idx) return false;
  out->in6.sin6_family = AF_INET6;
  out->in6.sin6_scope_id = (uint32_t)idx;
  return true;
}

bool net__ip_parse(const char *s, size_t len, net_sockaddr *out) {
  char ip[NET_IP_MAX];
  if (len > 2 && s[0] == '[' && s[len - 1] == ']') {   /* "[::1]", as URLs write it */
    s++;
    len -= 2;
  }
  if (len == 0 || len >= sizeof ip || memchr(s, '\0', len)) return false;
  memcpy(ip, s, len);
  ip[len] = '\0';
  memset(out, 0, sizeof *out);
  if (inet_pton(AF_INET, ip, &out->in4.sin_addr) == 1) {
    out->in4.sin_family = AF_INET;
    return true;
  }
  if (inet_pton(AF_INET6, ip, &out->in6.sin6_addr) == 1) {
    out->in6.sin6_family = AF_INET6;
    return true;
  }
  return scoped_parse(ip, out);
}

int net_ip_family(const char *s, size_t len, int *multicast) {
  net_sockaddr sa;
  if (!net__ip_parse(s, len, &sa)) return 0;
  bool v4 = sa.sa.sa_family == AF_INET;
  if (multicast)
    *multicast = v4 ? IN_MULTICAST(ntohl(sa.in4.sin_addr.s_addr)) : IN6_IS_ADDR_MULTICAST(&sa.in6.sin6_addr);
  return v4 ? 4 : 6;
}

socklen_t net__sa_len(const net_sockaddr *sa) {
  return sa->sa.sa_family == AF_INET6 ? sizeof sa->in6 : sizeof sa->in4;
}

uint16_t net__sa_port(const net_sockaddr *sa) {
  return ntohs(sa->sa.sa_family == AF_INET6 ? sa->in6.sin6_port : sa->in4.sin_port);
}

void net__sa_set_port(net_sockaddr *sa, uint16_t port) {
  if (sa->sa.sa_family == AF_INET6) sa->in6.sin6_port = htons(port);
  else sa->in4.sin_port = htons(port);
}

void net__sa_unmap_v4(net_sockaddr *sa) {
  if (sa->sa.sa_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&sa->in6.sin6_addr)) return;
  struct sockaddr_in in4 = {.sin_family = AF_INET, .sin_port = sa->in6.sin6_port};
  memcpy(&in4.sin_addr, &sa->in6.sin6_addr.s6_addr[12], 4);
  memset(sa, 0, sizeof *sa);
  sa->in4 = in4;
}

void net__sa_map_v4(net_sockaddr *sa) {
  if (sa->sa.sa_family != AF_INET) return;
  struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = sa->in4.sin_port};
  in6.sin6_addr.s6_addr[10] = in6.sin6_addr.s6_addr[11] = 0xff;
  memcpy(&in6.sin6_addr.s6_addr[12], &sa->in4.sin_addr, 4);
  memset(sa, 0, sizeof *sa);
  sa->in6 = in6;
}

bool net__sa_from(net_sockaddr *out, const struct sockaddr *sa, socklen_t len) {
  memset(out, 0, sizeof *out);
  if ((sa->sa_family != AF_INET && sa->sa_family != AF_INET6) || (size_t)len > sizeof *out) return false;
  memcpy(out, sa, len);
  return true;
}

/* The IP as text, with the zone of a scoped IPv6 address ("fe80::1%eth0"). */
static void ip_text(const net_sockaddr *sa, char *ip, size_t len) {
  snprintf(ip, len, "?");
  if (sa->sa.sa_family == AF_INET) {
    inet_ntop(AF_INET, &sa->in4.sin_addr, ip, (socklen_t)len);
  } else if (sa->sa.sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &sa->in6.sin6_addr, ip, (socklen_t)len);
    char name[IF_NAMESIZE];
    size_t n = strlen(ip);
    const struct in6_addr *a6 = &sa->in6.sin6_addr;
    /* only link-local zones parse back by name (getaddrinfo), so others stay numeric */
    bool named = IN6_IS_ADDR_LINKLOCAL(a6) || IN6_IS_ADDR_MC_LINKLOCAL(a6);
    if (sa->in6.sin6_scope_id && n < len) {
      if (named && if_indextoname(sa->in6.sin6_scope_id, name))
        snprintf(ip + n, len - n, "%%%s", name);
      else
        snprintf(ip + n, len - n, "%%%u", (unsigned)sa->in6.sin6_scope_id);
    }
  }
}

void net__sa_str(const net_sockaddr *sa, char *buf, size_t len, bool with_port) {
  char ip[NET_IP_MAX];
  ip_text(sa, ip, sizeof ip);
  if (!with_port) snprintf(buf, len, "%s", ip);
  else if (sa->sa.sa_family == AF_INET6) snprintf(buf, len, "[%s]:%u", ip, (unsigned)net__sa_port(sa));
  else snprintf(buf, len, "%s:%u", ip, (unsigned)net__sa_port(sa));
}

void net__sa_endpoint(const net_sockaddr *sa, net_endpoint *out) {
  memset(out, 0, sizeof *out);
  ip_text(sa, out->ip, sizeof out->ip);
  out->family = sa->sa.sa_family == AF_INET6 ? 6 : 4;
  out->port = net__sa_port(sa);
}

/* ---- address objects ------------------------------------------------------ */

net_addr *net__addr_new(const char *host, size_t len, int cap) {
  if (len > NET_HOST_MAX) len = NET_HOST_MAX;
  net_addr *a = net__calloc(1, sizeof *a + (size_t)cap * sizeof a->sa[0] + len + 1);
  if (!a) return NULL;
  a->cap = cap;
  a->host = (char *)&a->sa[cap];
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
  if (!a) return;
  net_io *k = a->canceller;   /* read before the drop: a may be gone after it */
  if (k) atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
  int before = atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel);
  if (before == 1) {
    if (k) net__io_unref(k);   /* the address's own reference */
    net__free(a);
    atomic_fetch_sub(&net__live_addrs, 1);
  }
  if (!k) return;
  if (before == 2) net__engine_kick(k);   /* maybe only the lookup holds it now */
  net__io_unref(k);
}

/* A full list: a family holding under half the places takes the other's
 * last, so a name with many addresses of one family keeps some of the
 * other's, which may be the only one that can be reached. */
static bool make_room(net_addr *a, int family) {
  int mine = 0, last_other = -1;
  for (int i = 0; i < a->count; i++) {
    if (a->sa[i].sa.sa_family == family) mine++;
    else last_other = i;
  }
  if (mine >= a->cap / 2 || last_other < 0) return false;
  memmove(&a->sa[last_other], &a->sa[last_other + 1], (size_t)(a->count - last_other - 1) * sizeof a->sa[0]);
  a->count--;
  return true;
}

void net__addr_add(net_addr *a, const struct sockaddr *sa, socklen_t len) {
  net_sockaddr s;
  if (!net__sa_from(&s, sa, len)) return;
  for (int i = 0; i < a->count; i++)
    if (!memcmp(&a->sa[i], &s, sizeof s)) return;
  if (a->count >= a->cap && !make_room(a, s.sa.sa_family)) return;
  a->sa[a->count++] = s;
}

void net__addr_publish(net_addr *a) {
  if (a->count > 0) {
    net__sa_str(&a->sa[0], a->ip, sizeof a->ip, false);
    /* release: results and ip are complete before anyone can see SUCCESS */
    atomic_store_explicit(&a->state, NET_SUCCESS, memory_order_release);
    return;
  }
  if (!a->err.code) net__seterr(&a->err, NET_E_DNS, "resolve %s: no address", a->host);
  atomic_store_explicit(&a->state, NET_FAILURE, memory_order_release);
}

net_addr *net__addr_from_sa(const net_sockaddr *sa) {
  char ip[NET_IP_MAX];
  net__sa_str(sa, ip, sizeof ip, false);
  net_addr *a = net__addr_new(ip, strlen(ip), 1);
  if (!a) return NULL;
  net__addr_add(a, &sa->sa, net__sa_len(sa));
  net__addr_publish(a);
  return a;
}

net_addr *net__addr_unix(const char *path) {
  net_addr *a = net__addr_new(path, strlen(path), 0);
  if (a) atomic_store_explicit(&a->state, NET_SUCCESS, memory_order_release);
  return a;
}

net_addr *net_parse_ip(const char *s, size_t len, const char **err) {
  net_sockaddr sa;
  if (!net__ip_parse(s, len, &sa)) return *err = "not an IP address", NULL;
  if (len > 2 && s[0] == '[' && s[len - 1] == ']') s++, len -= 2;   /* named "::1", as a lookup names it */
  net_addr *a = net__addr_new(s, len, 1);
  if (!a) return *err = "out of memory", NULL;
  net__addr_add(a, &sa.sa, net__sa_len(&sa));
  net__addr_publish(a);
  return a;
}

/* ---- owner calls ---------------------------------------------------------- */

net_result net_addr_status(net_addr *a) {
  net__host_polled();
  int st = atomic_load_explicit(&a->state, memory_order_acquire);   /* pairs with publish */
  if (st == NET_FAILURE) return (net_result){NET_FAILURE, a->err.code, a->err.msg};
  return (net_result){(net_status)st, NET_E_NONE, ""};
}

static bool resolved(void *a) { return atomic_load(&((net_addr *)a)->state) != NET_WAITING; }

net_result net_addr_wait(net_addr *a, int timeout_ms) {
  net__wait_until(resolved, a, timeout_ms);
  return net_addr_status(a);
}

const char *net_addr_ip(net_addr *a) {
  return atomic_load_explicit(&a->state, memory_order_acquire) == NET_SUCCESS && a->count ? a->ip : NULL;
}

const char *net_addr_hostname(net_addr *a) { return a->host; }
