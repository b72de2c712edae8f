/* ws_opts.c: a websocket's own copy of the caller's options (owner thread at
 * net_ws_open; the server's at net_server_open). */
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "ws.h"

/* Fields the handshake itself sets: a caller's copy would contradict it. */
static bool reserved_header(const char *name) {
  static const char *const mine[] = {"host", "upgrade", "connection", "content-length", "transfer-encoding"};
  if (!strncasecmp(name, "sec-websocket-", 14)) return true;   /* every one, Accept too */
  for (size_t i = 0; i < sizeof mine / sizeof *mine; i++)
    if (!strcasecmp(name, mine[i])) return true;
  return false;
}

static size_t count(const char *const *v) {
  size_t n = 0;
  while (v && v[n]) n++;
  return n;
}

/* A NULL-terminated copy of n strings (NULL for none). */
static char **copy_list(const char *const *v, size_t n, bool *ok) {
  if (!n) return NULL;
  char **c = net__calloc(n + 1, sizeof *c);
  if (!c) return *ok = false, NULL;
  for (size_t i = 0; i < n; i++)
    if (!(c[i] = net__strdup(v[i]))) return *ok = false, c;   /* free_list stops at the gap */
  return c;
}

static void free_list(char **v) {
  for (size_t i = 0; v && v[i]; i++) net__free(v[i]);
  net__free(v);
}

static bool check_headers(const char *const *h, const char **err) {
  for (size_t i = 0; h && h[i]; i += 2) {
    if (!h[i + 1]) return *err = "headers come in name, value pairs", false;
    if (!http_token_ok(h[i])) return *err = "a header name must be a token (letters, digits, -...)", false;
    if (!http_value_ok(h[i + 1]))
      return *err = "a header value must not hold a control character (CR, LF, NUL...; only tab is taken)", false;
    if (reserved_header(h[i]))
      return *err = "Host, Upgrade, Connection, Sec-WebSocket-* and body headers are the handshake's own "
                    "(subprotocols go in `protocols`)", false;
  }
  return true;
}

static bool check_protocols(const char *const *p, const char **err) {
  for (size_t i = 0; p && p[i]; i++) {
    if (!http_token_ok(p[i])) return *err = "a subprotocol must be a token (letters, digits, -...)", false;
    for (size_t j = 0; j < i; j++)
      if (!strcmp(p[i], p[j])) return *err = "a subprotocol is listed twice", false;
  }
  return true;
}

static bool common(ws_conf *c, uint64_t max_message, int ping_interval, int ping_timeout, int close_timeout,
                   const char **err) {
  if (max_message > NET_WS_MAX_MESSAGE) return *err = "max_message is at most 512 MiB", false;
  if (ping_interval < 0 || ping_timeout < 0 || close_timeout < 0)
    return *err = "ping_interval, ping_timeout and close_timeout are milliseconds, 0 or more", false;
  c->max_message = max_message ? max_message : NET_WS_DEFAULT_MAX_MESSAGE;
  c->ping_interval_ms = ping_interval;
  c->ping_timeout_ms = ping_timeout ? ping_timeout : ping_interval;
  c->close_timeout_ms = close_timeout ? close_timeout : WS_DEFAULT_CLOSE_MS;
  return true;
}

bool net__ws_conf_client(ws_conf *c, const net_ws_opts *o, const char **err) {
  memset(c, 0, sizeof *c);
  c->role = NET_WS_CLIENT;
  if (!common(c, o->max_message, o->ping_interval_ms, o->ping_timeout_ms, o->close_timeout_ms, err) ||
      !check_headers(o->headers, err) || !check_protocols(o->protocols, err))
    return false;
  static _Thread_local char why[NET_PROXY_WHY_MAX + 8];
  if (o->proxy && *o->proxy && !net_proxy_check(o->proxy, why + 7, sizeof why - 7))
    return memcpy(why, "proxy: ", 7), *err = why, false;
  bool ok = true;
  c->headers = copy_list(o->headers, count(o->headers), &ok);
  c->nprotocols = count(o->protocols);
  c->protocols = copy_list(o->protocols, c->nprotocols, &ok);
  c->tls = net__tls_opts_dup(o->tls, &ok);
  if (o->proxy && *o->proxy && !(c->proxy = net__strdup(o->proxy))) ok = false;
  c->connect_timeout_ms = o->connect_timeout_ms;
  c->compress = !o->no_compress;
  return ok || (*err = "out of memory", false);
}

bool net__ws_conf_server(ws_conf *c, const net_ws_server_opts *o, const char **err) {
  memset(c, 0, sizeof *c);
  c->role = NET_WS_SERVER;
  if (!common(c, o->max_message, o->ping_interval_ms, o->ping_timeout_ms, o->close_timeout_ms, err) ||
      !check_protocols(o->protocols, err))
    return false;
  for (size_t i = 0; o->paths && o->paths[i]; i++)
    if (o->paths[i][0] != '/' || !http_value_ok(o->paths[i]) || strchr(o->paths[i], ' '))
      return *err = "a websocket path starts with / and holds no spaces or control bytes", false;
  for (size_t i = 0; o->origins && o->origins[i]; i++)
    if (!o->origins[i][0] || !http_value_ok(o->origins[i]) || strchr(o->origins[i], ' '))
      return *err = "a websocket origin (\"https://example.org\") holds no spaces or control bytes", false;
  bool ok = true;
  c->nprotocols = count(o->protocols);
  c->protocols = copy_list(o->protocols, c->nprotocols, &ok);
  c->paths = copy_list(o->paths, count(o->paths), &ok);
  c->origins = copy_list(o->origins, count(o->origins), &ok);
  c->connect_timeout_ms = o->handshake_timeout_ms ? o->handshake_timeout_ms : WS_DEFAULT_HANDSHAKE_MS;
  c->compress = !o->no_compress;
  return ok || (*err = "out of memory", false);
}

void net__ws_conf_free(ws_conf *c) {
  free_list(c->headers);
  free_list(c->protocols);
  free_list(c->paths);
  free_list(c->origins);
  net__tls_opts_free(c->tls);
  net__free_secret_str(c->proxy);   /* it may hold the proxy's credentials */
  memset(c, 0, sizeof *c);
}
