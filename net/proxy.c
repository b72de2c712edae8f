/* proxy.c: the proxy handshakes' messages, built and parsed without I/O:
 * HTTP CONNECT (RFC 9110 9.3.6, Basic auth RFC 7617) and SOCKS5 (RFC 1928,
 * user/password RFC 1929). Pure functions, any thread. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "os.h"
#include "proxy.h"

static int fail(char *why, size_t len, const char *fmt, ...) NET_PRINTF(3, 4);
static int fail(char *why, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (why && len) vsnprintf(why, len, fmt, ap);
  va_end(ap);
  return -1;
}

/* ---- the proxy URL ------------------------------------------------------------ */

static bool check_creds(const net_url *u, net_proxy_kind kind, char *why, size_t wl) {
  if (!u->has_userinfo) return true;
  if (kind == NET_PROXY_HTTP && strchr(u->user, ':'))
    return fail(why, wl, "a proxy user name with ':' cannot go into Basic authentication"), false;
  if (kind != NET_PROXY_HTTP && (!u->user[0] || !u->pass[0]))
    return fail(why, wl, "a SOCKS5 user name and password must be 1..255 bytes each"), false;
  return true;
}

static bool parse(const char *url, net_proxy *p, char *host, uint16_t *port, char *why, size_t wl, net_url *u) {
  char err[NET_URL_WHY_MAX];
  memset(p, 0, sizeof *p);
  if (!net__url_parse(url, strlen(url), u, err, sizeof err))
    return fail(why, wl, "bad proxy URL: %s", err), false;
  if (strcmp(u->scheme, "http") == 0) p->kind = NET_PROXY_HTTP;
  else if (strcmp(u->scheme, "socks5") == 0) p->kind = NET_PROXY_SOCKS5;
  else if (strcmp(u->scheme, "socks5h") == 0) p->kind = NET_PROXY_SOCKS5H;
  else return fail(why, wl, "unsupported proxy scheme '%s' (http, socks5 or socks5h)", u->scheme), false;
  if (strcmp(u->path, "/") != 0) return fail(why, wl, "a proxy URL has no path or query"), false;
  if (!check_creds(u, p->kind, why, wl)) return false;
  p->auth = u->has_userinfo;
  memcpy(p->user, u->user, sizeof p->user);
  memcpy(p->pass, u->pass, sizeof p->pass);
  snprintf(p->where, sizeof p->where, u->host_family == 6 ? "[%s]:%u" : "%s:%u", u->host, (unsigned)u->port);
  memcpy(host, u->host, sizeof u->host);
  *port = u->port;
  return true;
}

bool net__proxy_parse(const char *url, net_proxy *p, char *host, uint16_t *port, char *why, size_t wl) {
  static _Thread_local net_url u;   /* large: kept off the caller's stack */
  bool ok = parse(url, p, host, port, why, wl, &u);
  net__wipe(u.user, sizeof u.user);   /* the per-thread copy keeps no credentials */
  net__wipe(u.pass, sizeof u.pass);
  return ok;
}

/* ---- HTTP CONNECT ------------------------------------------------------------- */

static size_t base64(const char *in, size_t n, char *out) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const uint8_t *s = (const uint8_t *)in;
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
    out[o++] = tab[v >> 18 & 63];
    out[o++] = tab[v >> 12 & 63];
    out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
    out[o++] = i + 2 < n ? tab[v & 63] : '=';
  }
  out[o] = '\0';
  return o;
}

size_t net__proxy_connect_request(char *buf, size_t cap, const char *host, uint16_t port, const char *user,
                                  const char *pass) {
  char target[NET_URL_HOST_MAX + 16], cred[2 * NET_URL_CRED_MAX + 2], auth[4 * sizeof cred / 3 + 8];
  /* an IPv6 zone names an interface of this machine: nothing the proxy could use */
  int hl = strchr(host, ':') ? (int)strcspn(host, "%") : (int)strlen(host);
  snprintf(target, sizeof target, strchr(host, ':') ? "[%.*s]:%u" : "%.*s:%u", hl, host, (unsigned)port);
  auth[0] = '\0';
  if (user) {
    int n = snprintf(cred, sizeof cred, "%s:%s", user, pass ? pass : "");
    if (n < 0 || (size_t)n >= sizeof cred) return 0;
    base64(cred, (size_t)n, auth);
    net__wipe(cred, sizeof cred);
  }
  int n = snprintf(buf, cap, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s%s%s\r\n", target, target,
                   user ? "Proxy-Authorization: Basic " : "", auth, user ? "\r\n" : "");
  net__wipe(auth, sizeof auth);
  return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* The end of the head (after its empty line) in p[0..n), or 0. */
static size_t head_end(const char *p, size_t n) {
  for (size_t i = 0; i + 1 < n; i++) {
    if (p[i] != '\n') continue;
    if (p[i + 1] == '\n') return i + 2;
    if (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n') return i + 3;
  }
  return 0;
}

static bool text_byte(unsigned char c) { return c == '\t' || c == '\r' || c == '\n' || (c >= 0x20 && c != 0x7f); }

/* The status line's code: 1xx (interim) and 2xx (success) as they are; else
 * -1 with the reason for the message. */
static long status_line(const char *p, size_t len, char *why, size_t wl) {
  if (len < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ' ||
      p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' ||
      (len > 12 && p[12] != ' '))
    return fail(why, wl, "a malformed status line \"%.*s\"", (int)(len < 60 ? len : 60), p);
  int code = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
  if (code < 300 && code != 101) return code;
  size_t rl = len > 13 ? len - 13 : 0;
  return fail(why, wl, "refused: %d%s%.*s", code, rl ? " " : "", (int)(rl < 100 ? rl : 100), p + 13);
}

static bool header_line(const char *p, size_t len) {
  size_t i = 0;
  while (i < len && p[i] != ':' && p[i] > 0x20 && p[i] != 0x7f) i++;
  return i > 0 && i < len && p[i] == ':';
}

/* One reply head at p[0..n): its length with *code; 0 while incomplete; -1. */
static long one_head(const char *p, size_t n, long *code, char *why, size_t wl) {
  size_t k = n < 5 ? n : 5;
  if (memcmp(p, "HTTP/", k) != 0) return fail(why, wl, "not an HTTP reply");
  size_t end = head_end(p, n), scan = end ? end : n;   /* what follows the head is the tunnel's */
  for (size_t i = 0; i < scan; i++)
    if (!text_byte((unsigned char)p[i])) return fail(why, wl, "a control byte in the reply head");
  if (!end) return 0;
  size_t line = (size_t)((const char *)memchr(p, '\n', end) - p);   /* there is one before end */
  size_t ll = line > 0 && p[line - 1] == '\r' ? line - 1 : line;
  if ((*code = status_line(p, ll, why, wl)) < 0) return -1;
  for (size_t at = line + 1; at < end;) {
    size_t l = at;
    while (p[l] != '\n') l++;
    size_t hl = l > at && p[l - 1] == '\r' ? l - 1 - at : l - at;
    if (hl > 0 && !header_line(p + at, hl)) return fail(why, wl, "a malformed header line in the reply");
    at = l + 1;
  }
  return (long)end;
}

/* Interim (1xx) heads before the final one are read past (RFC 9110 15.2),
 * all of them within the head cap. */
long net__proxy_connect_reply(const char *p, size_t n, char *why, size_t wl) {
  for (size_t at = 0;;) {
    long code = 0, len = at < n ? one_head(p + at, n - at, &code, why, wl) : 0;
    if (len < 0) return -1;
    if (at + (size_t)len > NET_PROXY_HEAD_MAX || (!len && n >= NET_PROXY_HEAD_MAX))
      return fail(why, wl, "a reply head over %d bytes", NET_PROXY_HEAD_MAX);
    if (!len) return 0;
    at += (size_t)len;
    if (code >= 200) return (long)at;
  }
}

/* ---- SOCKS5 ------------------------------------------------------------------- */

size_t net__socks_greeting(uint8_t *buf, bool auth) {
  buf[0] = 5;
  buf[1] = auth ? 2 : 1;
  buf[2] = 0;   /* no authentication */
  buf[3] = 2;   /* user/password */
  return auth ? 4 : 3;
}

size_t net__socks_auth_request(uint8_t *buf, size_t cap, const char *user, const char *pass) {
  size_t ul = strlen(user), pl = strlen(pass);
  if (ul < 1 || ul > 255 || pl < 1 || pl > 255 || 3 + ul + pl > cap) return 0;
  buf[0] = 1;
  buf[1] = (uint8_t)ul;
  memcpy(buf + 2, user, ul);
  buf[2 + ul] = (uint8_t)pl;
  memcpy(buf + 3 + ul, pass, pl);
  return 3 + ul + pl;
}

static size_t connect_tail(uint8_t *buf, size_t at, uint16_t port) {
  buf[at] = (uint8_t)(port >> 8);
  buf[at + 1] = (uint8_t)port;
  return at + 2;
}

size_t net__socks_connect_name(uint8_t *buf, size_t cap, const char *host, uint16_t port) {
  size_t hl = strlen(host);
  if (hl < 1 || hl > 255 || 7 + hl > cap) return 0;
  memcpy(buf, "\x05\x01\x00\x03", 4);
  buf[4] = (uint8_t)hl;
  memcpy(buf + 5, host, hl);
  return connect_tail(buf, 5 + hl, port);
}

size_t net__socks_connect_ip(uint8_t *buf, size_t cap, const uint8_t *ip, int family, uint16_t port) {
  size_t al = family == 6 ? 16 : 4;
  if (6 + al > cap) return 0;
  memcpy(buf, family == 6 ? "\x05\x01\x00\x04" : "\x05\x01\x00\x01", 4);
  memcpy(buf + 4, ip, al);
  return connect_tail(buf, 4 + al, port);
}

int net__socks_method_reply(const uint8_t *p, size_t n, bool auth, char *why, size_t wl) {
  if (n < 2) return fail(why, wl, "a truncated method reply");
  if (p[0] != 5) return fail(why, wl, "not a SOCKS5 server (version byte %u)", p[0]);
  if (p[1] == 0 || (p[1] == 2 && auth)) return p[1];
  if (p[1] == 0xff)
    return fail(why, wl, "accepts none of the offered authentication methods (%s)",
                auth ? "none, user/password" : "none; it may want a user and password");
  return fail(why, wl, "chose method %u, which was not offered", p[1]);
}

int net__socks_auth_reply(const uint8_t *p, size_t n, char *why, size_t wl) {
  if (n < 2 || p[0] != 1) return fail(why, wl, "a malformed authentication reply");
  return p[1] == 0 ? 0 : fail(why, wl, "rejected the user name and password (status %u)", p[1]);
}

static const char *socks_reply_text(unsigned rep) {
  static const char *const text[] = {
      "succeeded", "general SOCKS server failure", "connection not allowed by ruleset", "network unreachable",
      "host unreachable", "connection refused", "TTL expired", "command not supported",
      "address type not supported"};
  return rep < sizeof text / sizeof text[0] ? text[rep] : "an unassigned reply code";
}

long net__socks_connect_reply(const uint8_t *p, size_t n, size_t *need, char *why, size_t wl) {
  *need = 5;   /* through the first byte that tells the length */
  if (n >= 1 && p[0] != 5) return fail(why, wl, "not a SOCKS5 reply (version byte %u)", p[0]);
  if (n >= 2 && p[1] != 0) return fail(why, wl, "refused: %s (SOCKS5 reply %u)", socks_reply_text(p[1]), p[1]);
  if (n >= 3 && p[2] != 0) return fail(why, wl, "a malformed reply (reserved byte %u)", p[2]);
  if (n < 5) return 0;
  if (p[3] == 1) *need = 10;
  else if (p[3] == 4) *need = 22;
  else if (p[3] == 3 && p[4] > 0) *need = 7 + (size_t)p[4];
  else return fail(why, wl, "a malformed reply (address type %u)", p[3]);
  return n >= *need ? (long)*need : 0;
}
