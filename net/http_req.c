/* http_req.c: the request's own copy of the caller's options (owner thread,
 * at net_http_request) and the request text (I/O thread, per attempt). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "alloc.h"
#include "http.h"

#define USER_AGENT "sluice/" NET_VERSION

/* ---- the copy ------------------------------------------------------------------ */

/* The body's framing is the engine's: a Transfer-Encoding would say chunked
 * of a body that is not, a Content-Length other than the body's would leave
 * its rest to be read as another request (a body file's size is checked
 * once known: net__http_bad_length). */
static bool is_length(const char *value, uint64_t n) {
  char want[24];
  snprintf(want, sizeof want, "%llu", (unsigned long long)n);
  return !strcmp(value, want);
}

static const char *framing_refused(const char *name, const char *value, const net_http_opts *o) {
  if (!strcasecmp(name, "transfer-encoding"))
    return "Transfer-Encoding is not taken: the body goes with Content-Length";
  if (strcasecmp(name, "content-length") || o->body_file) return NULL;
  return is_length(value, o->body ? o->body_len : 0) ? NULL
                                                     : "a Content-Length must be the body's length (left out, it is added)";
}

/* Host or Content-Length a second time (any case): servers that take
 * different copies read different requests (RFC 9112 3.2, 6.3). */
static bool single_repeated(const char *const *h, size_t n) {
  if (strcasecmp(h[2 * n], "host") && strcasecmp(h[2 * n], "content-length")) return false;
  for (size_t i = 0; i < n; i++)
    if (!strcasecmp(h[2 * i], h[2 * n])) return true;
  return false;
}

static bool copy_headers(http_req *r, const net_http_opts *o, const char **err) {
  const char *const *h = o->headers;
  size_t n = 0;
  while (h && h[2 * n]) {
    if (!h[2 * n + 1]) return *err = "headers come in name, value pairs", false;
    if (!http_token_ok(h[2 * n])) return *err = "a header name must be a token (letters, digits, -...)", false;
    if (!http_value_ok(h[2 * n + 1]))
      return *err = "a header value must not hold a control character (CR, LF, NUL...; only tab is taken)", false;
    if ((*err = framing_refused(h[2 * n], h[2 * n + 1], o))) return false;
    if (!strcasecmp(h[2 * n], "proxy-authorization"))   /* through a tunnel it would reach the origin */
      return *err = "Proxy-Authorization is not taken: give the proxy's credentials in its URL "
                    "(http://user:password@host:port)", false;
    if (single_repeated(h, n)) return *err = "Host and Content-Length are taken once", false;
    n++;
  }
  r->names = net__calloc(n + 1, sizeof *r->names);
  r->values = net__calloc(n + 1, sizeof *r->values);
  if (!r->names || !r->values) return *err = "out of memory", false;
  for (size_t i = 0; i < n; i++) {
    r->names[i] = net__strdup(h[2 * i]);
    r->values[i] = net__strdup(h[2 * i + 1]);
    r->nhdr++;   /* counted either way: net__http_req_free frees what was made */
    if (!r->names[i] || !r->values[i]) return *err = "out of memory", false;
  }
  return true;
}

/* The TLS options for every connection of the request (redirects too);
 * without ALPN: HTTP/1.1 is what this client speaks. */
static bool copy_tls(http_req *r, const net_tls_opts *t) {
  bool ok = true;
  r->tls = net__tls_opts_dup(t, &ok);
  return ok;
}

/* Pooled connections are shared only between requests with the same TLS
 * options: each as its length and bytes, so no two sets read alike. */
static char *tls_key(const net_tls_opts *t) {
  static const net_tls_opts none;
  if (!t) t = &none;
  const char *s[] = {t->server_name, t->ca_file, t->ca_path, t->cert_file, t->key_file, t->key_password};
  size_t n = 32;
  for (size_t i = 0; i < sizeof s / sizeof *s; i++) n += (s[i] ? strlen(s[i]) : 0) + 24;
  char *k = net__malloc(n), *p = k;
  if (!k) return NULL;
  p += snprintf(p, n, "%d/%d", t->no_verify, t->min_version);
  for (size_t i = 0; i < sizeof s / sizeof *s; i++) {
    if (s[i]) p += snprintf(p, n - (size_t)(p - k), "|%zu:%s", strlen(s[i]), s[i]);
    else p += snprintf(p, n - (size_t)(p - k), "|-");
  }
  return k;
}

bool net__http_req_rekey(http_req *r) {
  net__free_secret_str(r->tls_key);   /* it names the key's password */
  return (r->tls_key = tls_key(r->tls)) != NULL;
}

/* A proxy from the environment may lack its scheme: curl reads it as http://.
 * upper NULL: only the lower-case name. */
static char *env_proxy(const char *upper, const char *lower, bool *ok) {
  const char *v = getenv(lower);
  if ((!v || !*v) && upper) v = getenv(upper);
  if (!v || !*v) return NULL;
  bool bare = !strstr(v, "://");
  char *c = net__malloc(strlen(v) + 8);
  if (!c) return *ok = false, NULL;
  snprintf(c, strlen(v) + 8, "%s%s", bare ? "http://" : "", v);
  return c;
}

/* The caller's value of a field, or NULL. */
static const char *given_value(const http_req *r, const char *name) {
  for (size_t i = 0; i < r->nhdr; i++)
    if (r->names[i] && !strcasecmp(r->names[i], name)) return r->values[i];
  return NULL;
}

static bool copy_proxy(http_req *r, const char *proxy) {
  bool ok = true;
  if (proxy) return (r->proxy = net__strdup(proxy)) != NULL;
  r->env[0] = env_proxy("HTTPS_PROXY", "https_proxy", &ok);
  /* only http_proxy, as curl: where a CGI-like host puts a request's Proxy
   * header into HTTP_PROXY ("httpoxy"), a client could pick the proxy */
  r->env[1] = env_proxy(NULL, "http_proxy", &ok);
  r->env[2] = env_proxy("ALL_PROXY", "all_proxy", &ok);
  const char *no = getenv("no_proxy");
  if (!no || !*no) no = getenv("NO_PROXY");
  if (no && *no && !(r->env[3] = net__strdup(no))) ok = false;
  return ok;
}

bool net__http_req_copy(http_req *r, const net_http_opts *o, const char **err) {
  memset(r, 0, sizeof *r);
  const char *m = o->method ? o->method : "GET";
  for (const char *p = m; *p; p++)
    if (*p < 'A' || *p > 'Z') return *err = "the method must be an upper-case token (GET, POST...)", false;
  if (!*m) return *err = "the method must be an upper-case token (GET, POST...)", false;
  if (!(r->method = net__strdup(m))) return *err = "out of memory", false;
  if (!copy_headers(r, o, err)) return false;
  if (o->body && o->body_len) {
    if (!(r->body = net__malloc(o->body_len))) return *err = "out of memory", false;
    memcpy(r->body, o->body, o->body_len);
    r->body_len = o->body_len;
  }
  r->timeout_ms = o->timeout_ms == 0 ? HTTP_DEFAULT_TIMEOUT_MS : o->timeout_ms < 0 ? 0 : o->timeout_ms;
  r->connect_timeout_ms = o->connect_timeout_ms;
  r->idle_timeout_ms = o->idle_timeout_ms;
  r->max_redirects = o->max_redirects < 0 ? HTTP_DEFAULT_REDIRECTS : o->max_redirects;
  r->max_size = o->max_size ? o->max_size : HTTP_DEFAULT_MAX_SIZE;
  r->max_size_given = o->max_size != 0;
  r->decompress = !o->no_decompress;
  r->allow_downgrade = o->allow_downgrade != 0;
  r->buffer_size = o->buffer_size;
  /* a caller's "Connection: close" ends the connection as keepalive = false does */
  const char *conn = given_value(r, "connection");
  r->keepalive = !o->no_keepalive && !(conn && http_list_has_token(conn, strlen(conn), "close"));
  if (!copy_proxy(r, o->proxy)) return *err = "out of memory", false;
  if (!copy_tls(r, o->tls) || !(r->tls_key = tls_key(r->tls))) return *err = "out of memory", false;
  return true;
}

void net__http_req_free(http_req *r) {
  /* wiped: a value may be credentials (Authorization), as may the proxy URLs */
  for (size_t i = 0; i < r->nhdr; i++) net__free(r->names[i]), net__free_secret_str(r->values[i]);
  net__free(r->names);
  net__free(r->values);
  net__free(r->method);
  net__free(r->body);
  net__free_secret_str(r->tls_key);
  net__free_secret_str(r->proxy);
  for (int i = 0; i < 4; i++) net__free_secret_str(r->env[i]);
  net__tls_opts_free(r->tls);
  memset(r, 0, sizeof *r);
}

/* ---- the proxy ------------------------------------------------------------------ */

static const unsigned char *ip_bytes(const net_sockaddr *sa) {
  return sa->sa.sa_family == AF_INET ? (const unsigned char *)&sa->in4.sin_addr
                                     : (const unsigned char *)&sa->in6.sin6_addr;
}

/* The first `bits` bits of two addresses of one family are the same. */
static bool same_prefix(const net_sockaddr *a, const net_sockaddr *b, unsigned bits) {
  if (a->sa.sa_family != b->sa.sa_family) return false;
  const unsigned char *x = ip_bytes(a), *y = ip_bytes(b);
  unsigned all = a->sa.sa_family == AF_INET ? 32 : 128;
  if (bits > all) return false;
  if (memcmp(x, y, bits / 8)) return false;
  unsigned rest = bits % 8;
  return !rest || ((x[bits / 8] ^ y[bits / 8]) & (0xff00 >> rest) & 0xff) == 0;
}

/* An entry for an IP literal: the same address, or inside the CIDR block
 * ("10.0.0.0/8", "fe80::/10"), as curl takes them. */
static bool ip_entry(const char *e, size_t el, const net_sockaddr *ip) {
  const char *slash = memchr(e, '/', el);
  size_t al = slash ? (size_t)(slash - e) : el;
  net_sockaddr net;
  if (!net__ip_parse(e, al, &net)) return false;
  unsigned bits = net.sa.sa_family == AF_INET ? 32 : 128;
  if (slash) {
    char *end;
    char num[4] = "";
    size_t nl = el - al - 1;
    if (nl == 0 || nl >= sizeof num) return false;
    memcpy(num, slash + 1, nl);
    bits = (unsigned)strtoul(num, &end, 10);
    if (*end) return false;
  }
  return same_prefix(&net, ip, bits);
}

/* One entry, its port and brackets taken off: a name takes the host and its
 * subdomains (".example.org" the same), an IP or a block only addresses. */
static bool no_proxy_entry(const char *e, size_t el, const char *host, size_t hl, const net_sockaddr *ip) {
  const char *colon = memchr(e, ':', el);
  if (el && *e == '[') {   /* "[::1]" or "[::1]:8080" */
    const char *close = memchr(e, ']', el);
    if (!close) return false;
    e++, el = (size_t)(close - e);
  } else if (colon && !memchr(colon + 1, ':', el - (size_t)(colon - e) - 1)) {
    el = (size_t)(colon - e);   /* "host:port"; IPv6 has more colons */
  }
  while (el && *e == '.') e++, el--;
  if (ip) return ip_entry(e, el, ip);
  while (el && e[el - 1] == '.') el--;
  return el && el <= hl && !strncasecmp(host + hl - el, e, el) && (el == hl || host[hl - el - 1] == '.');
}

bool net__http_no_proxy(const char *list, const char *host) {
  net_sockaddr sa;
  size_t hl = strcspn(host, "%");   /* a zone names this machine's interface */
  const net_sockaddr *ip = net__ip_parse(host, hl, &sa) ? &sa : NULL;
  while (hl && host[hl - 1] == '.') hl--;   /* "localhost." is localhost */
  for (const char *p = list; p && *p;) {
    size_t n = strcspn(p, ", ");
    if ((n == 1 && *p == '*') || no_proxy_entry(p, n, host, hl, ip)) return true;
    p += n;
    p += strspn(p, ", ");
  }
  return false;
}

const char *net__http_proxy_for(const net_http *h) {
  const http_req *r = &h->req;
  if (r->proxy) return *r->proxy ? r->proxy : NULL;
  const char *p = !strcmp(h->url.scheme, "https") ? r->env[0] : r->env[1];
  if (!p) p = r->env[2];
  return p && !net__http_no_proxy(r->env[3], h->url.host) ? p : NULL;
}

/* ---- the request text ------------------------------------------------------- */

bool net__http_origin_bound(const char *name) {
  return !strcasecmp(name, "authorization") || !strcasecmp(name, "cookie") ||
         !strcasecmp(name, "proxy-authorization") || !strcasecmp(name, "host");
}


bool net__http_req_given(const http_req *r, const char *name) { return given_value(r, name) != NULL; }

const char *net__http_bad_length(const net_http *h) {
  const char *v = given_value(&h->req, "content-length");
  if (!v || !h->src || !h->send_body) return NULL;   /* a string body's was checked with the options */
  return is_length(v, h->src_size) ? NULL : v;
}

/* Writes the head into buf (NULL: only measures); returns its length. */
static size_t head_text(const net_http *h, char *buf, size_t cap) {
  const http_req *r = &h->req;
  char host[NET_URL_HOST_MAX + 16];
  size_t n = 0;
#define PUT(...) n += (size_t)snprintf(buf ? buf + n : NULL, buf ? cap - n : 0, __VA_ARGS__)
  if (h->absolute) {   /* through an http proxy: the whole URL, without credentials */
    char url[NET_URL_MAX + NET_URL_HOST_MAX + 64];
    net_url u = h->url;
    u.has_userinfo = false;
    if (u.host_family == 6) u.host[strcspn(u.host, "%")] = '\0';   /* a zone is this machine's (RFC 6874) */
    net__url_format(&u, url, sizeof url);
    PUT("%s %s HTTP/1.1\r\n", h->method, url);
    if (h->proxy_auth[0]) PUT("Proxy-Authorization: %s\r\n", h->proxy_auth);
  } else {
    PUT("%s %s HTTP/1.1\r\n", h->method, h->url.path);
  }
  net__url_host_field(&h->url, host, sizeof host);
  if (!net__http_req_given(r, "host")) PUT("Host: %s\r\n", host);
  if (!net__http_req_given(r, "user-agent")) PUT("User-Agent: %s\r\n", USER_AGENT);
  if (!net__http_req_given(r, "accept")) PUT("Accept: */*\r\n");
  if (r->decompress && !net__http_req_given(r, "accept-encoding")) PUT("Accept-Encoding: gzip, deflate\r\n");
  if (h->offset && !net__http_req_given(r, "range")) PUT("Range: bytes=%llu-\r\n", (unsigned long long)h->offset);
  if (!net__http_req_given(r, "connection")) PUT("Connection: %s\r\n", r->keepalive ? "keep-alive" : "close");
  for (size_t i = 0; i < r->nhdr; i++)
    if (r->names[i]) PUT("%s: %s\r\n", r->names[i], r->values[i]);
  bool wants_length = h->send_body || !strcmp(h->method, "POST") || !strcmp(h->method, "PUT") ||
                      !strcmp(h->method, "PATCH");
  if (wants_length && !net__http_req_given(r, "content-length"))
    PUT("Content-Length: %llu\r\n", (unsigned long long)(!h->send_body ? 0 : h->src ? h->src_size : r->body_len));
  PUT("\r\n");
#undef PUT
  return n;
}

bool net__http_build(net_http *h) {
  size_t head = head_text(h, NULL, 0);
  size_t body = h->send_body && !h->src ? h->req.body_len : 0;
  char *out = net__malloc(head + 1 + body);
  if (!out) return false;
  head_text(h, out, head + 1);
  if (body) memcpy(out + head, h->req.body, body);
  net__free(h->out);
  h->out = out;
  h->out_len = head + body;
  h->head_len = head;
  h->out_pos = 0;
  return true;
}
