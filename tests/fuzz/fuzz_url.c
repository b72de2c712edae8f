/* fuzz_url.c: the URL parser and reference resolution (net/url.c): never a
 * crash, and whatever parses formats to text that parses to the same parts. */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
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
