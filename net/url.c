/* url.c: the strict URL parser (RFC 3986 syntax, the schemes the engine
 * speaks), formatting, reference resolution and origin comparison. Pure
 * functions, any thread. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "os.h"
#include "sock.h"
#include "url.h"

#define ZONE_MAX 15   /* an interface name (IFNAMSIZ - 1) */

static const struct {
  const char *name;
  uint16_t port;
} schemes[] = {{"http", 80},    {"https", 443},   {"ws", 80},
               {"wss", 443},    {"socks5", 1080}, {"socks5h", 1080}};

uint16_t net__url_default_port(const char *scheme) {
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
    if (strcmp(schemes[i].name, scheme) == 0) return schemes[i].port;
  return 0;
}

static bool fail(char *why, size_t len, const char *fmt, ...) NET_PRINTF(3, 4);
static bool fail(char *why, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (why && len) vsnprintf(why, len, fmt, ap);
  va_end(ap);
  return false;
}

/* ---- character classes ------------------------------------------------------ */

static bool is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_unreserved(int c) { return is_alpha(c) || is_digit(c) || (c && strchr("-._~", c)); }
static bool is_subdelim(int c) { return c && strchr("!$&'()*+,;=", c); }
static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int hexval(int c) {
  if (is_digit(c)) return c - '0';
  c = lower(c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Any byte a URL may hold, in one place or another. */
static bool url_char(int c) { return is_unreserved(c) || is_subdelim(c) || (c && strchr(":/?#[]@%", c)); }

static bool check_chars(const char *s, size_t len, char *why, size_t wl) {
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == ' ') return fail(why, wl, "a space at offset %zu (spaces must be percent-encoded)", i);
    if (c < 0x20 || c == 0x7f) return fail(why, wl, "a control character at offset %zu", i);
    if (c >= 0x80) return fail(why, wl, "a non-ASCII byte at offset %zu (it must be percent-encoded)", i);
    if (!url_char(c)) return fail(why, wl, "the character '%c' at offset %zu must be percent-encoded", c, i);
  }
  return true;
}

/* Percent-escapes well formed in s[0..len). */
static bool check_escapes(const char *s, size_t len, const char *what, char *why, size_t wl) {
  for (size_t i = 0; i < len; i++)
    if (s[i] == '%' && (i + 2 >= len || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0))
      return fail(why, wl, "a bad percent-escape in the %s", what);
  return true;
}

/* Decodes s[0..len) into out (cap bytes with the NUL); no control bytes. */
static bool decode(const char *s, size_t len, char *out, size_t cap, const char *what, char *why, size_t wl) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    int c = (unsigned char)s[i];
    if (c == '%') {
      if (i + 2 >= len || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
        return fail(why, wl, "a bad percent-escape in the %s", what);
      c = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
      i += 2;
    } else if (!is_unreserved(c) && !is_subdelim(c) && c != ':') {
      return fail(why, wl, "the character '%c' in the %s must be percent-encoded", c, what);
    }
    if (c < 0x20 || c == 0x7f) return fail(why, wl, "a control character in the %s", what);
    if (n + 1 >= cap) return fail(why, wl, "the %s is longer than %zu bytes", what, cap - 1);
    out[n++] = (char)c;
  }
  out[n] = '\0';
  return true;
}

/* ---- parts -------------------------------------------------------------------- */

/* scheme "://"; returns the length through "//", or 0. */
static size_t parse_scheme(const char *s, size_t len, net_url *u, char *why, size_t wl) {
  size_t i = 0;
  while (i < len && (is_alpha(s[i]) || (i > 0 && (is_digit(s[i]) || (s[i] && strchr("+-.", s[i])))))) i++;
  if (i == 0 || i >= len || s[i] != ':') return fail(why, wl, "no scheme (such as \"http://\")"), 0;
  if (i >= sizeof u->scheme) return fail(why, wl, "unsupported scheme '%.*s'", (int)(i < 32 ? i : 32), s), 0;
  for (size_t k = 0; k < i; k++) u->scheme[k] = (char)lower(s[k]);
  u->scheme[i] = '\0';
  if (!net__url_default_port(u->scheme)) return fail(why, wl, "unsupported scheme '%s'", u->scheme), 0;
  if (len - i < 3 || s[i + 1] != '/' || s[i + 2] != '/')
    return fail(why, wl, "no \"//\" after \"%s:\"", u->scheme), 0;
  return i + 3;
}

static bool parse_userinfo(const char *s, size_t len, net_url *u, char *why, size_t wl) {
  const char *colon = memchr(s, ':', len);
  size_t ulen = colon ? (size_t)(colon - s) : len;
  u->has_userinfo = true;
  if (!decode(s, ulen, u->user, sizeof u->user, "user name", why, wl)) return false;
  if (!colon) return true;
  return decode(colon + 1, len - ulen - 1, u->pass, sizeof u->pass, "password", why, wl);
}

static bool parse_ipv6(const char *s, size_t len, net_url *u, char *why, size_t wl) {
  char addr[64], zone[ZONE_MAX + 1] = "";
  const char *pct = memchr(s, '%', len);
  size_t alen = pct ? (size_t)(pct - s) : len;
  if (alen == 0 || alen >= sizeof addr) return fail(why, wl, "a bad IPv6 address");
  memcpy(addr, s, alen);
  addr[alen] = '\0';
  struct in6_addr a6;
  if (inet_pton(AF_INET6, addr, &a6) != 1) return fail(why, wl, "a bad IPv6 address '%s'", addr);
  if (pct) {
    if (len - alen < 4 || memcmp(pct, "%25", 3) != 0) return fail(why, wl, "an IPv6 zone must start with \"%%25\"");
    if (!decode(pct + 3, len - alen - 3, zone, sizeof zone, "IPv6 zone", why, wl)) return false;
    for (const char *z = zone; *z; z++)
      if (!is_unreserved(*z)) return fail(why, wl, "a bad character in the IPv6 zone");
  }
  inet_ntop(AF_INET6, &a6, addr, sizeof addr);   /* one spelling per address */
  snprintf(u->host, sizeof u->host, "%s%s%s", addr, *zone ? "%" : "", zone);
  u->host_family = 6;
  return true;
}

/* A DNS name (letters, digits, '-', '_', dots between labels) or an IPv4
 * literal (*numeric). */
static bool check_regname(const char *s, size_t len, bool *numeric, char *why, size_t wl) {
  if (len == 0) return fail(why, wl, "an empty host");
  if (len > NET_URL_HOST_MAX) return fail(why, wl, "a host name longer than %d bytes", NET_URL_HOST_MAX);
  *numeric = true;
  size_t label = 0;
  for (size_t i = 0; i < len; i++) {
    int c = (unsigned char)s[i];
    if (c == '%') return fail(why, wl, "a percent-escape in the host name");
    if (c < 0x20 || c >= 0x7f) return fail(why, wl, "the byte 0x%02x in the host name", c);
    if (c != '.' && !is_alpha(c) && !is_digit(c) && c != '-' && c != '_')
      return fail(why, wl, "the character '%c' in the host name", c);
    if (c == '.' && label == 0) return fail(why, wl, "an empty label in the host name");
    label = c == '.' ? 0 : label + 1;
    if (label > 63) return fail(why, wl, "a host name label longer than 63 bytes");
    *numeric = *numeric && (is_digit(c) || c == '.');
  }
  char ip[NET_URL_HOST_MAX + 1];
  struct in_addr a4;
  if (!*numeric) return true;
  memcpy(ip, s, len);
  ip[len] = '\0';
  return inet_pton(AF_INET, ip, &a4) == 1 || fail(why, wl, "a bad IPv4 address '%s'", ip);
}

bool net__url_check_host(const char *s, size_t len, char *why, size_t wl) {
  bool numeric;
  return check_regname(s, len, &numeric, why, wl);
}

static bool parse_regname(const char *s, size_t len, net_url *u, char *why, size_t wl) {
  bool numeric;
  if (!check_regname(s, len, &numeric, why, wl)) return false;
  for (size_t i = 0; i < len; i++) u->host[i] = (char)lower(s[i]);
  u->host[len] = '\0';
  u->host_family = numeric ? 4 : 0;
  return true;
}

static bool parse_port(const char *s, size_t len, net_url *u, char *why, size_t wl) {
  unsigned long p = 0;
  if (len == 0) return true;   /* "host:" is the default port */
  if (len > 5) return fail(why, wl, "the port must be 1..65535");
  for (size_t i = 0; i < len; i++) {
    if (!is_digit(s[i])) return fail(why, wl, "a port that is not a number");
    p = p * 10 + (unsigned long)(s[i] - '0');
  }
  if (p < 1 || p > 65535) return fail(why, wl, "the port must be 1..65535");
  u->port = (uint16_t)p;
  return true;
}

static bool parse_hostport(const char *s, size_t len, net_url *u, char *why, size_t wl) {
  const char *port;
  if (len > 0 && s[0] == '[') {
    const char *end = memchr(s, ']', len);
    if (!end) return fail(why, wl, "an IPv6 address without its closing ']'");
    if (!parse_ipv6(s + 1, (size_t)(end - s - 1), u, why, wl)) return false;
    port = end + 1;
    if (port < s + len && *port != ':') return fail(why, wl, "bytes after the IPv6 address's ']'");
  } else {
    if (memchr(s, '[', len) || memchr(s, ']', len)) return fail(why, wl, "a '[' or ']' outside an IPv6 address");
    port = memchr(s, ':', len);
    if (!parse_regname(s, port ? (size_t)(port - s) : len, u, why, wl)) return false;
    if (!port) port = s + len;
  }
  if (port == s + len) return true;
  return parse_port(port + 1, (size_t)(s + len - port - 1), u, why, wl);
}

static bool parse_authority(const char *s, size_t len, net_url *u, char *why, size_t wl) {
  const char *at = memchr(s, '@', len);
  if (at) {
    if (memchr(at + 1, '@', (size_t)(s + len - at - 1))) return fail(why, wl, "more than one '@' (encode it as %%40)");
    if (!parse_userinfo(s, (size_t)(at - s), u, why, wl)) return false;
    len -= (size_t)(at + 1 - s);
    s = at + 1;
  }
  return parse_hostport(s, len, u, why, wl);
}

static bool parse_path(const char *s, size_t len, net_url *u, char *why, size_t wl) {
  if (memchr(s, '[', len) || memchr(s, ']', len)) return fail(why, wl, "a '[' or ']' in the path");
  if (!check_escapes(s, len, "path", why, wl)) return false;
  size_t off = len == 0 || s[0] == '?' ? 1 : 0;   /* "" and "?q" get their "/" */
  u->path[0] = '/';
  memcpy(u->path + off, s, len);
  u->path[off + len] = '\0';
  return true;
}

bool net__url_parse(const char *s, size_t len, net_url *u, char *why, size_t wl) {
  memset(u, 0, offsetof(net_url, path) + 1);
  if (len > NET_URL_MAX) return fail(why, wl, "longer than %d bytes", NET_URL_MAX);
  if (!check_chars(s, len, why, wl)) return false;
  const char *hash = memchr(s, '#', len);
  if (hash) len = (size_t)(hash - s);   /* the fragment is the client's business */
  size_t at = parse_scheme(s, len, u, why, wl);
  if (at == 0) return false;
  size_t end = at;
  while (end < len && s[end] != '/' && s[end] != '?') end++;
  u->port = net__url_default_port(u->scheme);
  if (!parse_authority(s + at, end - at, u, why, wl)) return false;
  return parse_path(s + end, len - end, u, why, wl);
}

/* ---- formatting ----------------------------------------------------------------- */

typedef struct out {
  char *buf;
  size_t len, n;
} out;

static void put(out *o, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++, o->n++)
    if (o->n + 1 < o->len) o->buf[o->n] = s[i];
  if (o->len) o->buf[o->n < o->len ? o->n : o->len - 1] = '\0';
}

static void puts_enc(out *o, const char *s, bool colon_ok) {
  for (; *s; s++) {
    char e[4];
    if (is_unreserved(*s) || is_subdelim(*s) || (colon_ok && *s == ':')) {
      put(o, s, 1);
    } else {
      snprintf(e, sizeof e, "%%%02X", (unsigned char)*s);
      put(o, e, 3);
    }
  }
}

static void put_host(out *o, const net_url *u) {
  if (u->host_family != 6) {
    put(o, u->host, strlen(u->host));
    return;
  }
  const char *zone = strchr(u->host, '%');
  put(o, "[", 1);
  put(o, u->host, zone ? (size_t)(zone - u->host) : strlen(u->host));
  if (zone) {
    put(o, "%25", 3);
    puts_enc(o, zone + 1, false);
  }
  put(o, "]", 1);
}

/* scheme://userinfo@host[:port], the part a reference keeps from its base. */
static void put_origin(out *o, const net_url *u) {
  char port[8];
  put(o, u->scheme, strlen(u->scheme));
  put(o, "://", 3);
  if (u->has_userinfo) {
    puts_enc(o, u->user, false);
    put(o, ":", 1);
    puts_enc(o, u->pass, true);
    put(o, "@", 1);
  }
  put_host(o, u);
  if (u->port != net__url_default_port(u->scheme)) {
    snprintf(port, sizeof port, ":%u", (unsigned)u->port);
    put(o, port, strlen(port));
  }
}

size_t net__url_format(const net_url *u, char *buf, size_t len) {
  out o = {buf, len, 0};
  if (len) buf[0] = '\0';
  put_origin(&o, u);
  put(&o, u->path, strlen(u->path));
  return o.n;
}

bool net__url_same_origin(const net_url *a, const net_url *b) {
  return strcmp(a->scheme, b->scheme) == 0 && strcmp(a->host, b->host) == 0 && a->port == b->port;
}

/* ---- reference resolution (RFC 3986 section 5.2) ---------------------------------- */

/* Removes "." and ".." segments of in (modified) into out (RFC 3986 5.2.4). */
static void remove_dots(char *in, out *o) {
  size_t floor = o->n;   /* o may already hold the origin: never pop into it */
  while (*in) {
    if (strncmp(in, "../", 3) == 0) in += 3;
    else if (strncmp(in, "./", 2) == 0) in += 2;
    else if (strncmp(in, "/./", 3) == 0) in += 2;
    else if (strcmp(in, "/.") == 0) *(++in) = '/';
    else if (strncmp(in, "/../", 4) == 0 || strcmp(in, "/..") == 0) {
      if (in[3]) in += 3;
      else *(in += 2) = '/';
      while (o->n > floor && o->buf[o->n - 1] != '/') o->n--;
      if (o->n > floor) o->n--;
    } else if (strcmp(in, ".") == 0 || strcmp(in, "..") == 0) {
      break;
    } else {
      size_t seg = 1 + strcspn(in + 1, "/");
      put(o, in, seg);
      in += seg;
    }
  }
  if (o->len) o->buf[o->n < o->len ? o->n : o->len - 1] = '\0';
}

/* The path of a reference against the base path, dots removed, into o. */
static bool merge_path(const net_url *base, const char *ref, size_t rlen, out *o, char *why, size_t wl) {
  static _Thread_local char tmp[NET_URL_MAX * 2 + 2];
  size_t qpos = strcspn(base->path, "?");
  size_t dir = 0;
  if (rlen == 0 || ref[0] == '?') {   /* same path; the reference's query or the base's */
    put(o, base->path, rlen ? qpos : strlen(base->path));
    put(o, ref, rlen);
    return true;
  }
  if (ref[0] != '/')
    for (size_t i = 0; i < qpos; i++) if (base->path[i] == '/') dir = i + 1;
  const char *qm = memchr(ref, '?', rlen);
  size_t q = qm ? (size_t)(qm - ref) : rlen;
  if (dir + q >= sizeof tmp) return fail(why, wl, "longer than %d bytes", NET_URL_MAX);
  memcpy(tmp, base->path, dir);
  memcpy(tmp + dir, ref, q);
  tmp[dir + q] = '\0';
  remove_dots(tmp, o);
  put(o, ref + q, rlen - q);
  return true;
}

static bool has_scheme(const char *s, size_t len) {
  size_t i = 0;
  while (i < len && (is_alpha(s[i]) || (i > 0 && (is_digit(s[i]) || (s[i] && strchr("+-.", s[i])))))) i++;
  return i > 0 && i < len && s[i] == ':';
}

/* Where the path starts: past "scheme://authority" or "//authority"; past
 * "scheme:" or at 0 for other references. */
static size_t path_start(const char *s, size_t len) {
  size_t i = has_scheme(s, len) ? (size_t)((const char *)memchr(s, ':', len) - s) + 1 : 0;
  if (len - i < 2 || s[i] != '/' || s[i + 1] != '/') return i;
  for (i += 2; i < len && s[i] != '/' && s[i] != '?' && s[i] != '#'; i++) {}
  return i;
}

size_t net__url_escape(const char *s, size_t len, char *out, size_t cap) {
  static const char hex[] = "0123456789ABCDEF";
  size_t o = 0, from = path_start(s, len);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    /* the path, query and fragment only: a host that needs escaping is refused, clearly */
    bool esc = i >= from && (c == '%' ? i + 2 >= len || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0
                                      : !url_char(c) || c == '[' || c == ']');   /* brackets: an IPv6 host's */
    if (o + (esc ? 3 : 1) < cap) {
      if (esc) out[o] = '%', out[o + 1] = hex[c >> 4], out[o + 2] = hex[c & 15];
      else out[o] = (char)c;
    }
    o += esc ? 3 : 1;
  }
  if (cap) out[o < cap ? o : cap - 1] = '\0';
  return o;
}

bool net__url_parse_given(const char *s, net_url *u, char *why, size_t wl) {
  static _Thread_local char text[NET_URL_MAX + 1];
  size_t n = net__url_escape(s, strlen(s), text, sizeof text);
  if (n >= sizeof text) return fail(why, wl, "longer than %d bytes", NET_URL_MAX);
  return net__url_parse(text, n, u, why, wl);
}

bool net__url_resolve(const net_url *base, const char *ref, size_t len, net_url *u, char *why, size_t wl) {
  static _Thread_local char text[NET_URL_MAX * 3];
  if (len > NET_URL_MAX) return fail(why, wl, "longer than %d bytes", NET_URL_MAX);
  if (!check_chars(ref, len, why, wl)) return false;
  const char *hash = memchr(ref, '#', len);
  if (hash) len = (size_t)(hash - ref);
  if (has_scheme(ref, len)) return net__url_parse(ref, len, u, why, wl);
  out o = {text, sizeof text, 0};
  text[0] = '\0';
  if (len >= 2 && ref[0] == '/' && ref[1] == '/') {   /* a network-path reference */
    put(&o, base->scheme, strlen(base->scheme));
    put(&o, ":", 1);
    put(&o, ref, len);
  } else {
    put_origin(&o, base);
    if (!merge_path(base, ref, len, &o, why, wl)) return false;
  }
  if (o.n >= sizeof text) return fail(why, wl, "longer than %d bytes", NET_URL_MAX);
  return net__url_parse(text, o.n, u, why, wl);
}

int net__url_host_field(const net_url *u, char *buf, size_t len) {
  bool v6 = u->host_family == 6;
  /* an IPv6 zone means something only on this machine: never sent (RFC 6874) */
  int n = v6 ? (int)strcspn(u->host, "%") : (int)strlen(u->host);
  if (u->port == net__url_default_port(u->scheme)) return snprintf(buf, len, v6 ? "[%.*s]" : "%.*s", n, u->host);
  return snprintf(buf, len, v6 ? "[%.*s]:%u" : "%.*s:%u", n, u->host, u->port);
}
