/* addr.h: the one place for addresses: IP literal parsing, socket address
 * conversion (length, port, text, IPv4-mapped IPv6), and the net_addr
 * object that resolver.c fills. Any thread. */
#ifndef SLUICE_ADDR_H
#define SLUICE_ADDR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "net.h"
#include "sock.h"

#define NET_MAX_ADDRS 16
#define NET_HOST_MAX 253

typedef union net_sockaddr {
  struct sockaddr sa;
  struct sockaddr_in in4;
  struct sockaddr_in6 in6;
} net_sockaddr;

struct net_addr {
  atomic_int refs;
  atomic_int state;                 /* net_status */
  net_error err;
  int count;                        /* results, valid once SUCCESS */
  int cap;                          /* room in sa[]: NET_MAX_ADDRS for a lookup, 1 for a
                                       known address (a connection's peer is most of them) */
  char ip[NET_IP_MAX];              /* first result as text */
  char *host;                       /* the name, stored after sa[cap] */
  struct net_io *canceller;         /* set at creation, with a reference: kicked when
                                       only one holder is left (a custom lookup) */
  net_sockaddr sa[];
};

/* An IP literal ("127.0.0.1", "::1", "[::1]", "fe80::1%eth0") into *out,
 * port 0. Never a lookup. */
bool net__ip_parse(const char *s, size_t len, net_sockaddr *out);

socklen_t net__sa_len(const net_sockaddr *sa);
uint16_t net__sa_port(const net_sockaddr *sa);
void net__sa_set_port(net_sockaddr *sa, uint16_t port);
/* ::ffff:a.b.c.d <-> a.b.c.d (dual-stack sockets see IPv4 peers mapped). */
void net__sa_unmap_v4(net_sockaddr *sa);
void net__sa_map_v4(net_sockaddr *sa);
/* "1.2.3.4" / "fe80::1%eth0"; with_port: "1.2.3.4:80" / "[::1]:80". */
void net__sa_str(const net_sockaddr *sa, char *buf, size_t len, bool with_port);
void net__sa_endpoint(const net_sockaddr *sa, net_endpoint *out);
/* A copy of a kernel-filled address, or false when it is not IPv4/IPv6. */
bool net__sa_from(net_sockaddr *out, const struct sockaddr *sa, socklen_t len);

/* Address objects (one reference for the caller). A canceller (an object
 * of the I/O thread that runs the lookup) is kicked whenever an unref leaves
 * a single reference, so it can drop lookups nobody waits for. */
/* cap: how many results it can hold (0 for a Unix socket path). */
net_addr *net__addr_new(const char *host, size_t len, int cap);
net_addr *net__addr_from_sa(const net_sockaddr *sa);   /* resolved, named by its IP */
net_addr *net__addr_unix(const char *path);            /* resolved, names a socket path */
/* Adds a result (IPv4/IPv6 only, duplicates skipped, at most cap, each
 * family keeping up to half of them while the other has more). */
void net__addr_add(net_addr *a, const struct sockaddr *sa, socklen_t len);
/* Publishes the results (SUCCESS) or err (FAILURE); the writer's last touch. */
void net__addr_publish(net_addr *a);

/* resolver.c: net_resolve, except that names the hosts file does not know
 * go to miss(a) (on a helper thread; it takes over that reference of a)
 * instead of the system's resolver. canceller: see net_addr. */
net_addr *net__resolve_via(const char *host, size_t len, void (*miss)(net_addr *a), struct net_io *canceller,
                           const char **err, net_err *code);

extern atomic_size_t net__live_addrs;

#endif
