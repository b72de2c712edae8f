/* fuzz_proxy.c: the proxy reply parsers (net/proxy.c): the CONNECT reply
 * head and SOCKS5's method, authentication and CONNECT replies. Never a
 * crash, never a length past the input, and what a whole reply parses to
 * its prefixes agree with. */
#include <stdint.h>
#include <string.h>

#include "proxy.h"

static void http_reply(const char *p, size_t n) {
  char why[NET_PROXY_WHY_MAX];
  long r = net__proxy_connect_reply(p, n, why, sizeof why);
  if (r > (long)n || r > NET_PROXY_HEAD_MAX) __builtin_trap();
  if (r <= 0) return;
  if (net__proxy_connect_reply(p, (size_t)r, why, sizeof why) != r) __builtin_trap();
  if (net__proxy_connect_reply(p, (size_t)r - 1, why, sizeof why) != 0) __builtin_trap();
}

static void socks_reply(const uint8_t *p, size_t n) {
  char why[NET_PROXY_WHY_MAX];
  size_t need = 0, need2 = 0;
  long r = net__socks_connect_reply(p, n, &need, why, sizeof why);
  if (r > (long)n) __builtin_trap();
  if (r == 0 && need <= n) __builtin_trap();   /* incomplete means it needs more than it has */
  if (r > 0 && (size_t)r != need) __builtin_trap();
  if (r > 0 && net__socks_connect_reply(p, (size_t)r - 1, &need2, why, sizeof why) != 0) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char why[NET_PROXY_WHY_MAX];
  if (size == 0) return 0;
  const uint8_t *p = data + 1;
  size_t n = size - 1;
  switch (data[0] % 4) {
    case 0: http_reply((const char *)p, n); break;
    case 1: socks_reply(p, n); break;
    case 2: {
      int m = net__socks_method_reply(p, n, data[0] & 4, why, sizeof why);
      if (m != -1 && m != 0 && m != 2) __builtin_trap();
      break;
    }
    default:
      if (net__socks_auth_reply(p, n, why, sizeof why) == 0 && (n < 2 || p[1] != 0)) __builtin_trap();
  }
  return 0;
}
