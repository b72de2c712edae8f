/* fuzz_url.c: the URL parser, reference resolution and Location escaping
 * (net/url.c): never a crash, whatever parses formats to text that parses
 * to the same parts, and escaping stays in bounds and escapes once. */
#include <stdint.h>
#include <string.h>

#include "url.h"

static net_url u, again, base, rel;

static void same_parts(const net_url *a) {
  static char text[NET_URL_MAX * 3 + 64];
  char why[NET_URL_WHY_MAX];
  size_t n = net__url_format(a, text, sizeof text);
  if (n >= sizeof text) __builtin_trap();
  if (!net__url_parse(text, n, &again, why, sizeof why)) {
    if (n <= NET_URL_MAX) __builtin_trap();   /* only encoding may push it over the cap */
    return;
  }
  if (strcmp(a->scheme, again.scheme) || strcmp(a->host, again.host) || a->port != again.port ||
      strcmp(a->path, again.path) || a->host_family != again.host_family ||
      a->has_userinfo != again.has_userinfo || strcmp(a->user, again.user) || strcmp(a->pass, again.pass))
    __builtin_trap();
  if (!net__url_same_origin(a, &again)) __builtin_trap();
}

/* What it writes fits cap, it says how much it needs, and text escaped once
 * is left as it is. */
static void escape_once(const uint8_t *data, size_t size) {
  static char out[3 * 4096 + 1], again_out[3 * 4096 + 1], small[16];
  if (size > 4096) size = 4096;
  size_t n = net__url_escape((const char *)data, size, out, sizeof out);
  if (n >= sizeof out) __builtin_trap();   /* three bytes per byte at most */
  size_t m = net__url_escape((const char *)data, size, small, sizeof small);
  if (m != n || (m < sizeof small && memcmp(small, out, m))) __builtin_trap();
  size_t k = net__url_escape(out, n, again_out, sizeof again_out);
  if (k != n || memcmp(out, again_out, n)) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  escape_once(data, size);
  char why[NET_URL_WHY_MAX];
  if (net__url_parse((const char *)data, size, &u, why, sizeof why)) {
    if (!u.host[0] || u.port == 0 || u.path[0] != '/') __builtin_trap();
    for (const char *h = u.host; *h && *h != '%'; h++)   /* a zone keeps its case */
      if (*h >= 'A' && *h <= 'Z') __builtin_trap();
    same_parts(&u);
  } else if (!why[0]) {
    __builtin_trap();   /* a failure always says why */
  }
  if (!base.host[0] && !net__url_parse("http://u:p@a.test:8080/b/c/d;p?q", 32, &base, why, sizeof why))
    __builtin_trap();
  if (net__url_resolve(&base, (const char *)data, size, &rel, why, sizeof why)) same_parts(&rel);
  return 0;
}
