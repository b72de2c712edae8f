/* fuzz_ws_ext.c: Sec-WebSocket-Extensions and Sec-WebSocket-Protocol values
 * (net/ws_ext.c, net/ws_hs.c). Input: a byte of server wishes, then the
 * header value. The lexer stays inside the value and hands out tokens; a
 * server's answer to any value is itself a valid answer that a client with
 * default wishes accepts with the same terms; the client's check and the
 * subprotocol choices never fail silently. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws_ext.h"
#include "ws_hs.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

static bool is_token(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!net__ws_tchar((unsigned char)s[i])) return false;
  return n > 0;
}

static void lex(const char *v, size_t n) {
  const char *at = v, *end = v + n;
  net_ws_ext e;
  int r;
  while ((r = net__ws_ext_next(&at, end, &e)) == 1) {
    check(at >= v && at <= end && e.name >= v && e.name + e.name_len <= at);
    check(is_token(e.name, e.name_len));
    for (unsigned i = 0; i < e.nparams && i < NET_WS_EXT_PARAMS; i++) {
      const net_ws_ext_param *pa = &e.params[i];
      check(pa->name >= v && pa->name + pa->name_len <= at && is_token(pa->name, pa->name_len));
      size_t vl = strlen(pa->value);
      check(vl <= NET_WS_EXT_VALUE && (!pa->has_value || pa->value_long || is_token(pa->value, vl)));
    }
  }
  check(r == 0 || r == -1);
}

static void protocols(const char *v, size_t n) {
  const char *list[] = {"chat", "superchat", "v1.json"};
  int pick = net__ws_protocol_pick(v, n, list, 3), got = net__ws_protocol_check(v, n, list, 3);
  check(pick >= -2 && pick < 3 && got >= -2 && got < 3);
  if (got >= 0) check(net__ws_protocol_pick(v, n, list, 3) == got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  static const uint8_t bits[] = {8, 9, 12, 15};
  net_ws_deflate_conf sc, cc;
  net__ws_deflate_conf_init(&sc);
  net__ws_deflate_conf_init(&cc);
  sc.server_max_window_bits = bits[data[0] & 3], sc.client_max_window_bits = bits[data[0] >> 2 & 3];
  sc.server_no_context_takeover = data[0] & 16, sc.client_no_context_takeover = data[0] & 32;
  char *v = malloc(size - 1 ? size - 1 : 1);   /* exact size: reads past it are caught */
  memcpy(v, data + 1, size - 1);
  size_t n = size - 1;
  lex(v, n);
  protocols(v, n);
  net_ws_deflate sa, ca;
  char answer[NET_WS_EXT_LINE];
  const char *why;
  int r = net__ws_deflate_select(&sc, v, n, &sa, answer, sizeof answer, &why);
  check(r >= -1 && r <= 1 && (r >= 0 || (why && *why)));
  if (r == 1) {
    check(strlen(answer) < sizeof answer);
    int c = net__ws_deflate_check(&cc, answer, strlen(answer), &ca, &why);
    check(c == 1 && !memcmp(&ca, &sa, sizeof ca));   /* a window of 8 too (RFC 7692 7.1.2.2) */
  }
  r = net__ws_deflate_check(&cc, v, n, &ca, &why);
  check(r >= -1 && r <= 1 && (r >= 0 || (why && *why)));
  if (r == 1) check(ca.server_max_window_bits >= 8 && ca.client_max_window_bits >= 8);
  free(v);
  return 0;
}
