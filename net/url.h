/* url.h: a strict parser of the URLs the engine takes (http, https, ws,
 * wss, socks5, socks5h), reference resolution (RFC 3986 section 5) and
 * origin comparison. Pure: no I/O, any thread. */
#ifndef SLUICE_URL_H
#define SLUICE_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_URL_MAX 8192        /* the longest URL taken, and the longest path+query */
#define NET_URL_HOST_MAX 253    /* a DNS name; IP literals are shorter */
#define NET_URL_CRED_MAX 255    /* user and password, decoded (SOCKS5's limit) */
#define NET_URL_WHY_MAX 160

typedef struct net_url {
  char scheme[8];                    /* lower case */
  bool has_userinfo;
  char user[NET_URL_CRED_MAX + 1];   /* percent-decoded */
  char pass[NET_URL_CRED_MAX + 1];
  char host[NET_URL_HOST_MAX + 1];   /* lower case; IPv6 without brackets, zone as "%eth0" */
  int host_family;                   /* 0: a name, 4 or 6: an IP literal */
  uint16_t port;                     /* the scheme's default when the URL has none */
  char path[NET_URL_MAX + 1];        /* path and query as written, "/" at least */
} net_url;

/* Parses len bytes of s into *u. Returns false with why (a sentence naming
 * what is wrong) for anything malformed or an unknown scheme. */
bool net__url_parse(const char *s, size_t len, net_url *u, char *why, size_t whylen);
/* The URL as text (userinfo percent-encoded, the port only when it is not
 * the default, no fragment); returns the length it needs (>= len: cut). */
size_t net__url_format(const net_url *u, char *buf, size_t len);
/* A host name as a URL may hold one (letters, digits, '-', '_', dots
 * between labels) or an IPv4 literal; false with why otherwise. */
bool net__url_check_host(const char *s, size_t len, char *why, size_t whylen);
/* s with every byte its path, query and fragment cannot hold as it is (a
 * space, UTF-8, a control, one of "<>\"{}|\\^`[]", a '%' that starts no
 * escape) percent-encoded, as browsers and curl read a Location; the scheme
 * and host are left for the parser to judge. Returns the length it needs
 * (>= cap: cut). */
size_t net__url_escape(const char *s, size_t len, char *out, size_t cap);
/* A caller's URL (a C string), escaped as net__url_escape does, then parsed:
 * what browsers, curl and Python's requests send for it. */
bool net__url_parse_given(const char *s, net_url *u, char *why, size_t wl);
/* ref (absolute or relative, e.g. a Location header) against base into *out. */
bool net__url_resolve(const net_url *base, const char *ref, size_t len, net_url *out, char *why,
                      size_t whylen);
/* Host as a Host header names it: brackets around IPv6, the port unless
 * the scheme's default. Returns the length it needs. */
int net__url_host_field(const net_url *u, char *buf, size_t len);
/* Same scheme, host and port. */
bool net__url_same_origin(const net_url *a, const net_url *b);
/* 80, 443, 1080, or 0 for a scheme the parser does not take. */
uint16_t net__url_default_port(const char *scheme);

#endif
