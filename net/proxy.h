/* proxy.h: proxy handshakes as pure functions: the HTTP CONNECT request
 * and its reply head, SOCKS5 (RFC 1928, RFC 1929) messages and replies;
 * and the proxy a connection goes through. Any thread; conn_proxy.c runs
 * them on the I/O thread. */
#ifndef SLUICE_PROXY_H
#define SLUICE_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "url.h"

#define NET_PROXY_HEAD_MAX 8192   /* the longest CONNECT reply head taken */
/* The longest request we send: CONNECT to a 253-byte name, twice (the
 * request line and Host), with 255-byte user and password in Basic. */
#define NET_PROXY_REQ_MAX 1536
#define NET_PROXY_WHY_MAX 160

typedef enum net_proxy_kind { NET_PROXY_HTTP, NET_PROXY_SOCKS5, NET_PROXY_SOCKS5H } net_proxy_kind;

/* A connection's proxy and target, fixed at open (owner), then read by the
 * I/O thread. */
typedef struct net_proxy {
  net_proxy_kind kind;
  bool auth;                          /* user and pass given */
  char user[NET_URL_CRED_MAX + 1], pass[NET_URL_CRED_MAX + 1];
  char where[NET_URL_HOST_MAX + 16];  /* "127.0.0.1:3128", "[::1]:1080": for messages */
  char target[NET_URL_HOST_MAX + 1];  /* the host name (or IP) asked for */
  uint16_t target_port;
  struct net_addr *target_addr;       /* socks5://: the target, resolved here */
} net_proxy;

/* Reads a proxy URL ("http://[user:pass@]host[:port]", socks5h://, socks5://;
 * path "/" at most) into *p and its host into host/port. */
bool net__proxy_parse(const char *url, net_proxy *p, char *host, uint16_t *port, char *why, size_t wl);

/* "CONNECT host:port HTTP/1.1" with Host and, given user, Proxy-Authorization
 * Basic. Returns the length, 0 when it does not fit. */
size_t net__proxy_connect_request(char *buf, size_t cap, const char *host, uint16_t port, const char *user,
                                  const char *pass);
/* The CONNECT reply head in p[0..n): its length (through the empty line)
 * for a 2xx; 0 while incomplete; -1 with why ("refused: 407 Proxy ...",
 * "a malformed reply ...") otherwise. */
long net__proxy_connect_reply(const char *p, size_t n, char *why, size_t wl);

/* SOCKS5 messages; each returns its length, 0 when the input cannot be sent. */
size_t net__socks_greeting(uint8_t *buf, bool auth);
size_t net__socks_auth_request(uint8_t *buf, size_t cap, const char *user, const char *pass);
/* CONNECT to a name (socks5h) or to an IPv4/IPv6 address (16 or 4 bytes
 * in ip, network order). */
size_t net__socks_connect_name(uint8_t *buf, size_t cap, const char *host, uint16_t port);
size_t net__socks_connect_ip(uint8_t *buf, size_t cap, const uint8_t *ip, int family, uint16_t port);
/* The method choice (2 bytes): the method (0 or 2), or -1 with why. */
int net__socks_method_reply(const uint8_t *p, size_t n, bool auth, char *why, size_t wl);
/* The user/password answer (2 bytes): 0, or -1 with why. */
int net__socks_auth_reply(const uint8_t *p, size_t n, char *why, size_t wl);
/* The CONNECT reply: its whole length once p[0..n) holds it and it says
 * success; 0 with *need (the total length known so far) while incomplete;
 * -1 with why for a refusal or a malformed reply. */
long net__socks_connect_reply(const uint8_t *p, size_t n, size_t *need, char *why, size_t wl);

#endif
