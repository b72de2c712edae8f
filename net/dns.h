/* dns.h: the part of dns.c (resolvers with their own nameservers) that tests
 * and fuzz targets reach. Any thread. */
#ifndef SLUICE_DNS_H
#define SLUICE_DNS_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"

/* A nameserver: "IPv4", "IPv4:port", "IPv6", "[IPv6]" or "[IPv6]:port"
 * (port 53 unless given; never a name). false with *why (static text). */
bool net__dns_parse_server(const char *s, size_t len, net_sockaddr *out, const char **why);

#endif
